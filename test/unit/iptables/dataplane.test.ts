// The iptables dataplane against a model of the kernel's tables: what a sync
// writes, that a partial sync rewrites only the changed service's chains and
// the index chains, that a failed restore is reported and makes the next sync
// full (re-reading the tables), that a restart neither duplicates the jumps
// nor leaves stale chains, and that cleanup removes exactly what we made.
import { describe, expect, it } from 'vitest';
import { cleanupRestore } from '../../../src/dataplane/iptables/cleanup.js';
import { hash16, svcChain } from '../../../src/dataplane/iptables/names.js';
import { describeTrace, trace } from '../../../src/dataplane/iptables/trace.js';
import { fakeXtables, modelIptables, TEST_XT_CONFIG } from '../../helpers/iptables-model.js';
import { frontend, plannedBackend, plannedService } from '../../helpers/planned.js';
import { desired, fromPod, fromScratch, svc } from '../../helpers/rule-fixtures.js';

const restores = (fake: ReturnType<typeof fakeXtables>) => fake.calls.filter((c) => c.command.endsWith('-restore'));

describe('IptablesDataplane', () => {
  it('names chains as kube-proxy does: 16 base32 characters of SHA-256', () => {
    expect(hash16('default/kubernetes:httpstcp')).toMatch(/^[A-Z2-7]{16}$/);
    expect(svcChain(svc(1, []))).toMatch(/^KUBE-SVC-[A-Z2-7]{16}$/);
    expect(svcChain(svc(1, []))).not.toBe(svcChain(svc(2, [])));
  });

  it('a partial sync rewrites only the changed service and the index chains, and equals a full sync', async () => {
    const { dp, fake } = modelIptables();
    const a = svc(1, ['10.244.1.10']);
    const b = svc(2, ['10.244.2.10', '10.244.2.11']);
    expect((await dp.sync(desired([a, b]), { full: true, changed: new Set() })).errors).toEqual([]);
    const b2 = svc(2, ['10.244.2.10', '10.244.2.12'], { affinity: true });
    const r = await dp.sync(desired([a, b2]), { full: false, changed: new Set([b2.key]) });
    expect(r).toMatchObject({ full: false, errors: [] });
    const last = restores(fake).at(-1)!;
    expect(last.command).toBe('iptables-restore');
    expect(last.args).toEqual(['-w', '5', '--noflush']);
    expect(last.input).toContain(`:${svcChain(b2)} - [0:0]`);
    expect(last.input).not.toContain(`:${svcChain(a)} - [0:0]`);
    expect(last.input).not.toMatch(/^-[ID] (PREROUTING|OUTPUT|POSTROUTING|INPUT|FORWARD) /m); // jumps left alone
    expect(last.input).toMatch(/-m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-\w+ --mask 255.255.255.255 --rsource/);
    expect(last.input).toContain('-X KUBE-SEP-'); // the endpoint 10.244.2.11 went away
    expect(describeTrace(trace(fake.model, fromPod('10.96.0.2')))).toBe('dnat 10.244.2.10:8080 | dnat 10.244.2.12:8080');
    expect(describeTrace(trace(fake.model, fromPod('10.96.0.1')))).toBe('dnat 10.244.1.10:8080');

    expect(fake.model.dump()).toBe(await fromScratch(modelIptables(), desired([a, b2])));

    // Removing a service deletes its chains after KUBE-SERVICES stopped jumping to them.
    await dp.sync(desired([a]), { full: false, changed: new Set([b2.key]) });
    expect(describeTrace(trace(fake.model, fromPod('10.96.0.2')))).toBe('not a service');
    expect(fake.model.dump()).not.toContain(svcChain(b2));
  });

  it('spreads endpoints with kube-proxy\'s statistic ladder, 1/N each', async () => {
    const { dp, fake } = modelIptables();
    await dp.sync(desired([svc(1, ['10.244.1.10', '10.244.1.11', '10.244.1.12'])]), { full: true, changed: new Set() });
    const rules = fake.model.table('IPv4', 'nat').get(svcChain(svc(1, [])))!.rules;
    expect(rules.filter((r) => r.includes('-j KUBE-SEP-')).map((r) => /--probability (\S+)/.exec(r)?.[1] ?? 'last')).toEqual(['0.3333333333', '0.5000000000', 'last']);
    const w = trace(fake.model, fromPod('10.96.0.1')).weights;
    for (const p of w.values()) expect(p).toBeCloseTo(1 / 3, 9);
  });

  it('a hairpin connection (an endpoint reaching itself through the service) is masqueraded', async () => {
    const { dp, fake } = modelIptables();
    await dp.sync(desired([svc(1, ['10.244.1.10'])]), { full: true, changed: new Set() });
    expect(describeTrace(trace(fake.model, { src: '10.244.1.10', dst: '10.96.0.1', proto: 'TCP', port: 80 }))).toBe('dnat 10.244.1.10:8080 masquerade');
  });

  it('uses the configured masquerade bit everywhere', async () => {
    const { dp, fake } = modelIptables(fakeXtables(), { ...TEST_XT_CONFIG, masqueradeBit: 5 });
    await dp.sync(desired([svc(1, ['10.244.1.10'])]), { full: true, changed: new Set() });
    const save = fake.model.save('IPv4');
    expect(save).toContain('-A KUBE-MARK-MASQ -j MARK --or-mark 0x20');
    expect(save).toContain('-m mark ! --mark 0x20/0x20 -j RETURN');
    expect(save).not.toContain('0x4000');
    expect(describeTrace(trace(fake.model, { src: '198.18.0.7', dst: '10.96.0.1', proto: 'TCP', port: 80 }))).toBe('dnat 10.244.1.10:8080 masquerade');
  });

  it('--iptables-localhost-nodeports: the node reaches a NodePort on 127.0.0.1, masqueraded; without it, not at all', async () => {
    const np = plannedService({ id: 7, frontends: [frontend('ClusterIP', '10.96.0.7', 80), frontend('NodePort', '172.18.0.11', 30080)], backends: [plannedBackend(70, '10.244.2.10')] });
    const fromNode = (dst: string) => ({ src: dst === '127.0.0.1' ? '127.0.0.1' : '172.18.0.11', dst, proto: 'TCP' as const, port: 30080, fromNode: true });
    for (const localhostNodePorts of [true, false]) {
      const { dp, fake } = modelIptables(fakeXtables(), { ...TEST_XT_CONFIG, localhostNodePorts });
      await dp.sync(desired([np]), { full: true, changed: new Set() });
      expect(describeTrace(trace(fake.model, fromNode('172.18.0.11')))).toBe('dnat 10.244.2.10:8080 masquerade');
      expect(describeTrace(trace(fake.model, fromNode('127.0.0.1'))), String(localhostNodePorts)).toBe(localhostNodePorts ? 'dnat 10.244.2.10:8080 masquerade' : 'not a service');
      expect(fake.model.save('IPv6')).not.toContain('127.0.0.0/8');
    }
  });

  it('a failed restore is a sync error with its stderr; the next sync is full and re-reads the tables', async () => {
    const { dp, fake } = modelIptables();
    const a = svc(1, ['10.244.1.10']);
    await dp.sync(desired([a]), { full: true, changed: new Set() });
    fake.failNext = 'iptables-restore: line 7 failed';
    const a2 = svc(1, ['10.244.1.11']);
    const r = await dp.sync(desired([a2]), { full: false, changed: new Set([a2.key]) });
    expect(r.errors).toEqual([{ service: '', code: 'IPTABLES_APPLY_FAILED', message: expect.stringContaining('line 7 failed') }]);
    expect(describeTrace(trace(fake.model, fromPod('10.96.0.1')))).toBe('dnat 10.244.1.10:8080'); // the kernel kept the old state
    const calls = fake.calls.length;
    const next = await dp.sync(desired([a2]), { full: false, changed: new Set() });
    expect(next).toMatchObject({ full: true, errors: [] });
    expect(fake.calls.slice(calls).map((c) => `${c.command} ${c.args.join(' ')}`)).toEqual([
      'iptables-save -t nat', 'iptables-save -t filter', 'iptables-restore -w 5 --noflush',
      'ip6tables-save -t nat', 'ip6tables-save -t filter', 'ip6tables-restore -w 5 --noflush',
    ]);
    expect(describeTrace(trace(fake.model, fromPod('10.96.0.1')))).toBe('dnat 10.244.1.11:8080');
  });

  it('a restart neither duplicates the jumps nor keeps chains of services that are gone', async () => {
    const first = modelIptables();
    await first.dp.sync(desired([svc(1, ['10.244.1.10']), svc(2, ['10.244.2.10'])]), { full: true, changed: new Set() });
    const { dp, fake } = modelIptables(first.fake);
    await dp.sync(desired([svc(1, ['10.244.1.10'])]), { full: true, changed: new Set() });
    expect(fake.model.table('IPv4', 'nat').get('PREROUTING')!.rules).toHaveLength(1);
    expect(fake.model.dump()).not.toContain(svcChain(svc(2, [])));
    expect(fake.model.dump()).toBe(await fromScratch(modelIptables(), desired([svc(1, ['10.244.1.10'])])));
  });

  it('cleanup removes our chains and jumps and nothing else; a chain other rules use stays', async () => {
    const { dp, fake } = modelIptables();
    // Someone else's rules: a chain of their own, a rule in a built-in chain, and a jump into KUBE-MARK-MASQ.
    fake.model.apply('IPv4', '*nat\n:CNI-HOSTPORT - [0:0]\n-A CNI-HOSTPORT -j RETURN\n-A PREROUTING -j CNI-HOSTPORT\nCOMMIT\n');
    await dp.sync(desired([svc(1, ['10.244.1.10'])]), { full: true, changed: new Set() });
    fake.model.apply('IPv4', '*nat\n-A CNI-HOSTPORT -s 10.0.0.0/8 -j KUBE-MARK-MASQ\nCOMMIT\n');
    const c = cleanupRestore(fake.model.save('IPv4'));
    fake.model.apply('IPv4', c.text);
    expect(c.kept).toEqual(['nat/KUBE-MARK-MASQ']);
    const nat = fake.model.table('IPv4', 'nat');
    expect([...nat.keys()].sort()).toEqual(['CNI-HOSTPORT', 'INPUT', 'KUBE-MARK-MASQ', 'OUTPUT', 'POSTROUTING', 'PREROUTING']);
    expect(nat.get('PREROUTING')!.rules).toEqual(['-j CNI-HOSTPORT']);
    expect([...fake.model.table('IPv4', 'filter').values()].every((ch) => ch.rules.length === 0)).toBe(true);
    // Nothing left of ours: a second cleanup has nothing to do.
    fake.model.apply('IPv4', '*nat\n-D CNI-HOSTPORT -s 10.0.0.0/8 -j KUBE-MARK-MASQ\nCOMMIT\n');
    fake.model.apply('IPv4', cleanupRestore(fake.model.save('IPv4')).text);
    expect(cleanupRestore(fake.model.save('IPv4')).text).toBe('');
  });
});
