// Graceful termination of TCP real servers (src/dataplane/ipvs/graceful.ts),
// against the model of a node's kernel: a leaving endpoint drains at weight 0
// while IPVS counts connections to it, is deleted at the first check (at
// most once a minute) that finds none, comes back at full weight if the
// endpoint returns, survives a restart of the proxy, and UDP goes at once.
import { describe, expect, it } from 'vitest';
import { parseConnectionCounts } from '../../../src/dataplane/ipvs/graceful.js';
import { describeTrace, trace } from '../../../src/dataplane/ipvs/trace.js';
import { canonicalIP } from '../../../src/util/ip.js';
import { fakeIpvs, modelIpvs } from '../../helpers/ipvs-model.js';
import { frontend, plannedBackend, plannedService } from '../../helpers/planned.js';
import { desired, fromPod, fromScratch, svc } from '../../helpers/rule-fixtures.js';

const FULL = { full: true, changed: new Set<string>() };
const part = (key: string) => ({ full: false, changed: new Set([key]) });
const reals = (save: string, vip: string) => save.split('\n').filter((l) => l.startsWith(`-a -t ${vip}:80 `) || l.startsWith(`-a -u ${vip}:53 `)).map((l) => /-r (\S+) -m -w (\d+)/.exec(l)!.slice(1).join(' w'));
const CONN = '-t 10.96.0.1:80';

function clocked() {
  let t = 1_000_000;
  const m = modelIpvs(fakeIpvs(), undefined, undefined, () => t);
  return { ...m, advance: (ms: number) => (t += ms) };
}

describe('ipvs graceful termination', () => {
  it('drains a removed TCP endpoint at weight 0 and deletes it at the first check after its connections end', async () => {
    const { dp, fake, advance } = clocked();
    const a = svc(1, ['10.244.1.10', '10.244.2.10']);
    await dp.sync(desired([a]), FULL);
    fake.model.connections.set('TCP 10.96.0.1 80 10.244.2.10 8080', 3);
    const b = svc(1, ['10.244.1.10']);
    await dp.sync(desired([b]), part(b.key));
    expect(reals(fake.model.ipvsSave(), '10.96.0.1')).toEqual(['10.244.1.10:8080 w1', '10.244.2.10:8080 w0']);
    // No new connection goes to it.
    expect(describeTrace(trace(fake.model, fromPod('10.96.0.1')))).toBe('dnat 10.244.1.10:8080');
    // Periodic full syncs before a minute has passed do not even list the connections.
    advance(30_000);
    const from = fake.calls.length;
    await dp.sync(desired([b]), FULL);
    expect(fake.calls.slice(from).some((c) => c.args.join(' ') === '-L -n')).toBe(false);
    expect(reals(fake.model.ipvsSave(), '10.96.0.1')).toContain('10.244.2.10:8080 w0');
    // A minute on, it still has connections: it stays.
    advance(31_000);
    await dp.sync(desired([b]), FULL);
    expect(fake.calls.slice(from).filter((c) => c.args.join(' ') === '-L -n')).toHaveLength(1);
    expect(reals(fake.model.ipvsSave(), '10.96.0.1')).toContain('10.244.2.10:8080 w0');
    // Its connections end; the next check deletes it, and the table is what a fresh sync makes.
    fake.model.connections.delete('TCP 10.96.0.1 80 10.244.2.10 8080');
    advance(60_000);
    const r = await dp.sync(desired([b]), FULL);
    expect(r.errors).toEqual([]);
    expect(reals(fake.model.ipvsSave(), '10.96.0.1')).toEqual(['10.244.1.10:8080 w1']);
    expect(fake.model.dump()).toBe(await fromScratch(modelIpvs(), desired([b])));
  });

  it('a draining endpoint that comes back gets its weight back and is not deleted later', async () => {
    const { dp, fake, advance } = clocked();
    const a = svc(1, ['10.244.1.10', '10.244.2.10']);
    await dp.sync(desired([a]), FULL);
    const b = svc(1, ['10.244.1.10']);
    await dp.sync(desired([b]), part(b.key));
    const from = fake.calls.length;
    await dp.sync(desired([a]), part(a.key));
    expect(fake.calls.slice(from).filter((c) => c.command === 'ipvsadm').map((c) => c.input)).toEqual([`-e ${CONN} -r 10.244.2.10:8080 -m -w 1\n`]);
    advance(120_000);
    await dp.sync(desired([a]), FULL);
    expect(reals(fake.model.ipvsSave(), '10.96.0.1')).toEqual(['10.244.1.10:8080 w1', '10.244.2.10:8080 w1']);
  });

  it('other services\' partial syncs leave a draining endpoint alone', async () => {
    const { dp, fake } = clocked();
    const a = svc(1, ['10.244.1.10', '10.244.2.10']);
    const other = svc(2, ['10.244.3.1']);
    await dp.sync(desired([a, other]), FULL);
    const b = svc(1, ['10.244.1.10']);
    await dp.sync(desired([b, other]), part(b.key));
    const from = fake.calls.length;
    const b2 = svc(1, ['10.244.1.10', '10.244.1.11']);
    await dp.sync(desired([b2, other]), part(b2.key));
    expect(fake.calls.slice(from).filter((c) => c.command === 'ipvsadm').map((c) => c.input)).toEqual([`-a ${CONN} -r 10.244.1.11:8080 -m -w 1\n`]);
    expect(reals(fake.model.ipvsSave(), '10.96.0.1')).toEqual(['10.244.1.10:8080 w1', '10.244.1.11:8080 w1', '10.244.2.10:8080 w0']);
  });

  it('a UDP endpoint goes at once (its flows move with expire_nodest_conn), as in kube-proxy', async () => {
    const { dp, fake } = clocked();
    const udp = (eps: string[]) => plannedService({ id: 5, protocol: 'UDP', frontends: [frontend('ClusterIP', '10.96.0.5', 53)], backends: eps.map((a, i) => plannedBackend(50 + i, a)) });
    await dp.sync(desired([udp(['10.244.1.10', '10.244.2.10'])]), FULL);
    const from = fake.calls.length;
    await dp.sync(desired([udp(['10.244.1.10'])]), part(udp([]).key));
    expect(fake.calls.slice(from).filter((c) => c.command === 'ipvsadm').map((c) => c.input)).toEqual(['-d -u 10.96.0.5:53 -r 10.244.2.10:8080\n']);
  });

  it('a service that goes takes its draining real servers with it', async () => {
    const { dp, fake } = clocked();
    const a = svc(1, ['10.244.1.10', '10.244.2.10']);
    await dp.sync(desired([a]), FULL);
    await dp.sync(desired([svc(1, ['10.244.1.10'])]), part(a.key));
    await dp.sync(desired([]), part(a.key));
    expect(fake.model.ipvsSave()).toBe('');
  });

  it('a restarted proxy keeps a weight-0 real server it finds draining, and deletes it once drained', async () => {
    const first = clocked();
    const a = svc(1, ['10.244.1.10', '10.244.2.10']);
    await first.dp.sync(desired([a]), FULL);
    const b = svc(1, ['10.244.1.10']);
    await first.dp.sync(desired([b]), part(b.key));
    first.fake.model.connections.set('TCP 10.96.0.1 80 10.244.2.10 8080', 1);
    let t = 5_000_000;
    const { dp, fake } = modelIpvs(first.fake, undefined, undefined, () => t);
    await dp.sync(desired([b]), FULL);
    expect(reals(fake.model.ipvsSave(), '10.96.0.1')).toEqual(['10.244.1.10:8080 w1', '10.244.2.10:8080 w0']);
    fake.model.connections.clear();
    t += 61_000;
    await dp.sync(desired([b]), FULL);
    expect(reals(fake.model.ipvsSave(), '10.96.0.1')).toEqual(['10.244.1.10:8080 w1']);
  });

  it('reads ipvsadm -L -n as ipvsadm 1.31 prints it: IPv4, IPv6, fwmark of both families, the header lines', () => {
    const text = [
      'IP Virtual Server version 1.2.1 (size=4096)',
      'Prot LocalAddress:Port Scheduler Flags',
      '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
      'TCP  10.96.0.1:80 rr persistent 10800',
      '  -> 10.244.1.10:8080             Masq    1      2          5         ',
      '  -> 10.244.2.10:8080             Masq    0      0          0         ',
      'UDP  10.96.0.5:53 rr',
      '  -> 10.244.1.10:53               Masq    1      0          7         ',
      'TCP  [fd00:0:0:0::a]:80 sh (sh-port)',
      '  -> [fd00:10:244::5]:8080         Masq    1      1          0         ',
      'FWM  131072 IPv6 rr',
      '  -> [fd00:10:244::6]:8080         Masq    0      0          4         ',
      'FWM  131072 rr',
      '  -> 10.244.1.11:8080             Masq    1      0          0         ',
    ].join('\n');
    expect([...parseConnectionCounts(text, canonicalIP)]).toEqual([
      ['TCP 10.96.0.1 80 10.244.1.10 8080', 7],
      ['TCP 10.96.0.1 80 10.244.2.10 8080', 0],
      ['UDP 10.96.0.5 53 10.244.1.10 53', 7],
      ['TCP fd00::a 80 fd00:10:244::5 8080', 1],
      ['fwmark IPv6 131072 fd00:10:244::6 8080', 4],
      ['fwmark IPv4 131072 10.244.1.11 8080', 0],
    ]);
  });
});
