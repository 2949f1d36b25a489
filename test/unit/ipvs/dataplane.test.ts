// The ipvs dataplane against a model of a node's kernel (IPVS table, ipsets,
// kube-ipvs0, iptables): what a sync writes, that a partial sync writes only
// what the changed service owns, that a restarted proxy prunes only its own
// virtual servers, that a failure is reported and makes the next sync full
// and listed, and that cleanup removes exactly what bpfproxy made.
import { describe, expect, it } from 'vitest';
import { cleanupIpvs } from '../../../src/dataplane/ipvs/cleanup.js';
import { parseSave } from '../../../src/dataplane/ipvs/ipvsadm.js';
import { describeTrace, trace } from '../../../src/dataplane/ipvs/trace.js';
import { fakeIpvs, modelIpvs, TEST_IPVS_CONFIG } from '../../helpers/ipvs-model.js';
import { frontend, plannedBackend, plannedService } from '../../helpers/planned.js';
import { desired, fromPod, fromScratch, svc } from '../../helpers/rule-fixtures.js';

const inputsOf = (fake: ReturnType<typeof fakeIpvs>, from: number, line: string) =>
  fake.calls.slice(from).filter((c) => `${c.command} ${c.args.join(' ')}` === line).map((c) => c.input);

describe('IpvsDataplane', () => {
  it('a full sync: a virtual server per frontend, its address on kube-ipvs0, its ipset entry, the fixed rules', async () => {
    const { dp, fake } = modelIpvs();
    const r = await dp.sync(desired([svc(1, ['10.244.1.10', '10.244.2.10'], { affinity: true })]), { full: true, changed: new Set() });
    expect(r).toMatchObject({ full: true, errors: [] });
    expect(inputsOf(fake, 0, 'ipvsadm -R')).toEqual([
      '-A -t 10.96.0.1:80 -s rr -p 10800\n-a -t 10.96.0.1:80 -r 10.244.1.10:8080 -m -w 1\n-a -t 10.96.0.1:80 -r 10.244.2.10:8080 -m -w 1\n',
    ]);
    expect([...fake.model.dummy!.addresses]).toEqual(['10.96.0.1']);
    expect(fake.model.dummy!.alias).toBe('bpfproxy');
    expect([...fake.model.sets.get('BPX-CLUSTER-IP')!.entries]).toEqual(['10.96.0.1,tcp:80']);
    expect(fake.model.xt.save('IPv4')).toMatch(/^-A PREROUTING -m comment --comment "bpfproxy-ipvs service portals" -j BPX-SERVICES$/m);
    expect(describeTrace(trace(fake.model, fromPod('10.96.0.1')))).toBe('dnat 10.244.1.10:8080 | dnat 10.244.2.10:8080');
    expect(describeTrace(trace(fake.model, { src: '198.18.0.7', dst: '10.96.0.1', proto: 'TCP', port: 80 }))).toBe('dnat 10.244.1.10:8080 masquerade | dnat 10.244.2.10:8080 masquerade');
  });

  it('--ipvs-scheduler: every virtual server gets it; mh gets mh-fallback,mh-port', async () => {
    const { dp, fake } = modelIpvs(fakeIpvs(), { ...TEST_IPVS_CONFIG, scheduler: 'mh' });
    await dp.sync(desired([svc(1, ['10.244.1.10'])]), { full: true, changed: new Set() });
    expect(fake.model.ipvsSave()).toMatch(/^-A -t 10\.96\.0\.1:80 -s mh -b mh-fallback,mh-port$/m);
  });

  it('--ipvs-scheduler sh gets sh-fallback: a client hashed to a draining (weight 0) real server goes to another, not refused', async () => {
    const { dp, fake } = modelIpvs(fakeIpvs(), { ...TEST_IPVS_CONFIG, scheduler: 'sh' });
    await dp.sync(desired([svc(1, ['10.244.1.10'])]), { full: true, changed: new Set() });
    expect(fake.model.ipvsSave()).toMatch(/^-A -t 10\.96\.0\.1:80 -s sh -b sh-fallback$/m);
  });

  it('a partial sync writes only what changed: one TCP real server drains (weight 0), one comes in; no iptables, no address', async () => {
    const { dp, fake } = modelIpvs();
    const others = Array.from({ length: 20 }, (_, i) => svc(10 + i, [`10.244.3.${i + 1}`]));
    const a = svc(1, ['10.244.1.10', '10.244.2.10']);
    await dp.sync(desired([a, ...others]), { full: true, changed: new Set() });
    const from = fake.calls.length;
    const a2 = svc(1, ['10.244.1.10', '10.244.2.11']);
    const r = await dp.sync(desired([a2, ...others]), { full: false, changed: new Set([a2.key]) });
    expect(r).toMatchObject({ full: false, errors: [] });
    // graceful.ts: the leaving TCP real server keeps its connections at weight 0.
    expect(inputsOf(fake, from, 'ipvsadm -R')).toEqual(['-e -t 10.96.0.1:80 -r 10.244.2.10:8080 -m -w 0\n-a -t 10.96.0.1:80 -r 10.244.2.11:8080 -m -w 1\n']);
    // The hairpin entries of the endpoints change; nothing else in the ipsets.
    expect(inputsOf(fake, from, 'ipset restore -exist')).toEqual(['del BPX-LOOP-BACK 10.244.2.10,tcp:8080,10.244.2.10\nadd BPX-LOOP-BACK 10.244.2.11,tcp:8080,10.244.2.11\n']);
    expect(fake.calls.slice(from).map((c) => c.command)).toEqual(['ipset', 'ipvsadm']);
    // New connections go where a fresh sync would send them.
    const fresh = modelIpvs();
    await fromScratch(fresh, desired([a2, ...others]));
    expect(describeTrace(trace(fake.model, fromPod('10.96.0.1')))).toBe(describeTrace(trace(fresh.fake.model, fromPod('10.96.0.1'))));
  });

  it('an address stays on kube-ipvs0 while one service port still uses it; the last one takes it away', async () => {
    const { dp, fake } = modelIpvs();
    const web = svc(1, ['10.244.1.10']);
    const dns = { ...svc(2, ['10.244.1.11']), key: 'default/s1:dns/IPv4', portName: 'dns', frontends: [frontend('ClusterIP', '10.96.0.1', 53)] };
    await dp.sync(desired([web, dns]), { full: true, changed: new Set() });
    await dp.sync(desired([dns]), { full: false, changed: new Set([web.key]) });
    expect([...fake.model.dummy!.addresses]).toEqual(['10.96.0.1']);
    expect(fake.model.ipvsSave()).not.toContain('10.96.0.1:80 ');
    await dp.sync(desired([]), { full: false, changed: new Set([dns.key]) });
    expect([...fake.model.dummy!.addresses]).toEqual([]);
    expect(fake.model.ipvsSave()).toBe('');
    expect(describeTrace(trace(fake.model, fromPod('10.96.0.1')))).toBe('not a service');
  });

  it('a service without endpoints has no virtual server: the filter table refuses; with a Local policy and none local, NodePort traffic is dropped', async () => {
    const { dp, fake } = modelIpvs();
    const empty = svc(1, []);
    const local = plannedService({ id: 2, frontends: [frontend('ClusterIP', '10.96.0.2', 80), frontend('NodePort', '172.18.0.11', 30080)], backends: [plannedBackend(21, '10.244.2.10')], localExternal: [] });
    await dp.sync(desired([empty, local]), { full: true, changed: new Set() });
    fake.model.nodeAddresses.add('172.18.0.11');
    expect(fake.model.ipvsSave()).not.toContain('10.96.0.1:80');
    expect(describeTrace(trace(fake.model, fromPod('10.96.0.1')))).toBe('reject');
    expect(describeTrace(trace(fake.model, { src: '198.18.0.7', dst: '172.18.0.11', proto: 'TCP', port: 30080 }))).toBe('drop');
    // This node's pods reach it through the cluster set (the fwmark virtual server).
    expect(describeTrace(trace(fake.model, { src: '10.244.1.99', dst: '172.18.0.11', proto: 'TCP', port: 30080 }))).toBe('dnat 10.244.2.10:8080 masquerade');
    expect(fake.model.ipvsSave()).toMatch(/^-A -f 131072 -s rr$/m);
  });

  it('a restarted proxy lists the kernel, prunes its own stale state and never touches a virtual server it did not make', async () => {
    const first = modelIpvs();
    await first.dp.sync(desired([svc(1, ['10.244.1.10']), svc(2, ['10.244.2.10'])]), { full: true, changed: new Set() });
    // kube-proxy (or anyone) has a virtual server here too.
    first.fake.model.ipvsRestore('-A -t 10.0.0.1:443 -s wlc\n-a -t 10.0.0.1:443 -r 172.18.0.2:6443 -m -w 1\n');
    const { dp, fake } = modelIpvs(first.fake);
    const from = fake.calls.length;
    const r = await dp.sync(desired([svc(1, ['10.244.1.10'])]), { full: true, changed: new Set() });
    expect(r).toMatchObject({ full: true, errors: [] });
    expect(fake.calls.slice(from, from + 2).map((c) => `${c.command} ${c.args.join(' ')}`)).toEqual(['ipset save', 'ipvsadm -S -n']);
    expect(inputsOf(fake, from, 'ipvsadm -R')).toEqual(['-D -t 10.96.0.2:80\n']);
    expect(fake.model.ipvsSave()).toContain('-A -t 10.0.0.1:443 -s wlc');
    fake.model.ipvsRestore('-D -t 10.0.0.1:443\n');
    expect(fake.model.dump()).toBe(await fromScratch(modelIpvs(), desired([svc(1, ['10.244.1.10'])])));
  });

  it('a failed ipvsadm -R is a sync error with its stderr; the next sync is full and lists the kernel first', async () => {
    const { dp, fake } = modelIpvs();
    await dp.sync(desired([svc(1, ['10.244.1.10'])]), { full: true, changed: new Set() });
    fake.failNext = { command: 'ipvsadm -R', stderr: 'Memory allocation problem' };
    const a2 = svc(1, ['10.244.1.11']);
    const r = await dp.sync(desired([a2]), { full: false, changed: new Set([a2.key]) });
    expect(r.errors).toEqual([{ service: '', code: 'IPVS_APPLY_FAILED', message: expect.stringContaining('Memory allocation problem') }]);
    const from = fake.calls.length;
    const next = await dp.sync(desired([a2]), { full: false, changed: new Set() });
    expect(next).toMatchObject({ full: true, errors: [] });
    expect(fake.calls[from]!.command).toBe('ipset');
    expect(fake.calls[from + 1]!.args).toEqual(['-S', '-n']);
    expect(describeTrace(trace(fake.model, fromPod('10.96.0.1')))).toBe('dnat 10.244.1.11:8080');
  });

  it('reads ipvsadm -S -n as ipvsadm prints it: IPv6, UDP, persistence, scheduler flags, fwmark', () => {
    const saved = parseSave([
      '-A -u [fd00:96::a]:53 -s rr -p 10800',
      '-a -u [fd00:96::a]:53 -r [fd00:244:1::5]:5353 -m -w 1',
      '-A -f 65536 -6 -s mh -b mh-port,mh-fallback',
      '-a -f 65536 -6 -r [fd00:244:1::5]:80 -m -w 1',
      '',
    ].join('\n'));
    expect([...saved.keys()]).toEqual(['UDP fd00:96::a 53', 'fwmark IPv6 65536']);
    expect(saved.get('UDP fd00:96::a 53')).toMatchObject({ persistence: 10800, reals: [{ address: 'fd00:244:1::5', port: 5353, weight: 1 }] });
    expect(saved.get('fwmark IPv6 65536')).toMatchObject({ scheduler: 'mh', flags: ['mh-fallback', 'mh-port'] });
    expect(() => parseSave('-X what\n')).toThrow(/not an ipvsadm command/);
  });
});

describe('cleanupIpvs', () => {
  it('removes what bpfproxy made, kube-ipvs0 with it, and leaves everything else', async () => {
    const { dp, fake } = modelIpvs();
    await dp.sync(desired([svc(1, ['10.244.1.10'])]), { full: true, changed: new Set() });
    fake.model.ipvsRestore('-A -t 10.0.0.1:443 -s wlc\n');
    fake.model.ipsetRestore('create KUBE-CLUSTER-IP hash:ip,port family inet\nadd KUBE-CLUSTER-IP 10.0.0.1,tcp:443\n');
    const r = await cleanupIpvs(fake.run, true);
    expect(r).toMatchObject({ ok: true, virtualServers: 1, device: 'removed', error: '' });
    expect(r.chains).toBeGreaterThan(0);
    expect(fake.model.ipvsSave()).toBe('-A -t 10.0.0.1:443 -s wlc\n');
    expect([...fake.model.sets.keys()]).toEqual(['KUBE-CLUSTER-IP']);
    expect(fake.model.dummy).toBeNull();
    expect(fake.model.xt.save('IPv4')).not.toMatch(/BPX-|bpfproxy-ipvs/);
    expect(fake.model.xt.save('IPv6')).not.toMatch(/BPX-|bpfproxy-ipvs/);
    // Again: nothing left, nothing to do.
    expect(await cleanupIpvs(fake.run, true)).toMatchObject({ ok: true, virtualServers: 0, device: 'absent', chains: 0, sets: 0 });
  });

  it('keeps a kube-ipvs0 someone else made, removing only our addresses from it', async () => {
    const fake = fakeIpvs();
    fake.model.createDummy('');
    fake.model.dummy!.addresses.add('10.0.0.10');
    const { dp } = modelIpvs(fake);
    await dp.sync(desired([svc(1, ['10.244.1.10'])]), { full: true, changed: new Set() });
    expect([...fake.model.dummy!.addresses].sort()).toEqual(['10.0.0.10', '10.96.0.1']);
    expect(await cleanupIpvs(fake.run, true)).toMatchObject({ ok: true, device: 'kept' });
    expect([...fake.model.dummy!.addresses]).toEqual(['10.0.0.10']);
  });

  it('runs nothing on a kernel without IPVS', async () => {
    const fake = fakeIpvs();
    expect(await cleanupIpvs(fake.run, false)).toMatchObject({ ok: true, virtualServers: 0 });
    expect(fake.calls).toEqual([]);
  });
});
