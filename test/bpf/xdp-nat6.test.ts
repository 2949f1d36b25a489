// The IPv6 translating paths of bpf/xdp.bpf.c (and the reply path of
// bpf/tc.bpf.c) under BPF_PROG_TEST_RUN, run inside lab node1's network
// namespace with the lab's IPv6 addresses, routes and neighbours
// (xdp-nat6-cases.ts), checked as xdp-nat.test.ts checks the IPv4 ones:
// verdict, output packet byte for byte, the one counter that moves, SNAT
// ports. Then what the table cannot show: NAT ports per flow, and the
// IPv6 Maglev hash agreeing with its TypeScript twin.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Lab } from '../../src/lab/lab.js';
import { FE_NODE_PORT } from '../../src/dataplane/bpf/layout.js';
import { maglevHashV6 } from '../../src/dataplane/bpf/maglev-hash.js';
import { XDP_PASS } from '../../src/dataplane/bpf/testrun.js';
import { ipBytes } from '../../src/util/ip.js';
import { parsePacket } from '../helpers/packet.js';
import { enterNetns } from '../../src/lab/netns-thread.js';
import type { Frontend } from './xdp-cases.js';
import { NAT_PORT_MAX, NAT_PORT_MIN, type MacEnv } from './xdp-nat-cases.js';
import { CLIENT6, NODE1_6, NODE_PORT, nat6Cases, packet6 } from './xdp-nat6-cases.js';
import { counterDelta, maglevIds, TEST_MAGLEV_M, testPinDir, XdpHarness, type TestSet } from './xdp-harness.js';
import { natLab, natPort, prepare } from './xdp-nat-lab.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('xdp IPv6 NAT packet tests skipped: they build a lab and load BPF programs, which needs root');

describe.skipIf(!isRoot)('IPv6 packet NAT of xdp.bpf.o and tc.bpf.o under BPF_PROG_TEST_RUN, in a lab node', () => {
  let lab: Lab;
  let mac: MacEnv;
  let h: XdpHarness | undefined;
  let leave: (() => void) | undefined;

  beforeAll(async () => {
    ({ lab, mac } = await natLab({ ipv6: true }));
    leave = enterNetns(lab.nodes[0]!.netns);
    h = XdpHarness.load(testPinDir('xdp-nat6'));
    h.loadTc();
  });
  afterAll(async () => {
    h?.close();
    leave?.();
    await lab?.teardown();
  });

  // Built with placeholder MACs for the names; run with the lab's.
  const names = nat6Cases({ node1: '02:00:00:00:00:01', node2: '02:00:00:00:00:02', client: '02:00:00:00:00:03', eth0Ifindex: 0 }).map((c) => c.name);
  names.forEach((name, i) => {
    it(name, () => {
      const c = nat6Cases(mac)[i]!;
      const before = prepare(h!, c);
      const counters = h!.readCounters();
      const res = h!.run(c.step(before).packet, { program: c.step(before).program });
      const moved = counterDelta(counters, h!.readCounters());
      const port = natPort(h!);
      expect(res.retval).toBe(c.verdict);
      const also = Object.fromEntries((c.also ?? []).map((e) => [`event:${e}`, 1]));
      expect(moved).toEqual({ ...also, ...('drop' in c.counter ? { [`drop:${c.counter.drop}`]: 1 } : { [`event:${c.counter.event}`]: 1 }) });
      if (c.natHeldAfter !== undefined) expect(h!.nat.dump().count).toBe(c.natHeldAfter);
      if (c.snat) {
        expect(port).toBeGreaterThanOrEqual(NAT_PORT_MIN);
        expect(port).toBeLessThanOrEqual(NAT_PORT_MAX);
        if (before) expect(port).toBe(before); // a known flow keeps its port
      }
      expect(res.data.toString('hex')).toBe(c.output(port).toString('hex'));
    });
  });

  it('IPv6: two hundred flows from different client ports hold two hundred NAT ports of node1\'s IPv6 address, checksums right', () => {
    const c = nat6Cases(mac).find((x) => 'event' in x.counter && x.counter.event === 'pkt_remote_new' && x.name.startsWith('IPv6 TCP'))!;
    prepare(h!, c);
    const ports = new Set<number>();
    for (let sport = 41000; sport < 41200; sport++) {
      const out = parsePacket(h!.run(packet6('TCP', CLIENT6, sport, NODE1_6, NODE_PORT)).data);
      expect(out.ipv6!.src).toBe(NODE1_6);
      expect(out.l4!.checksumOk).toBe(true);
      ports.add(out.l4!.sport!);
    }
    expect(ports.size).toBe(200);
    expect(h!.nat.dump().count).toBe(200);
  });

  it('IPv6 Maglev: a new flow gets the slot maglev_hash_v6 names (C and TypeScript agree), whatever node address it was sent to', () => {
    const SET = 7 * 4 + 2;
    const list: TestSet['backends'] = Array.from({ length: 5 }, (_, i) => ({ id: 100 + i, address: `fd00:244:1::${10 + i}`, port: 80, protocol: 'TCP', local: true }));
    const fe = (address: string): Frontend => ({ key: { address, port: NODE_PORT, protocol: 'TCP', family: 'IPv6' }, val: { svcId: 7, localSet: 28, extSet: SET, flags: FE_NODE_PORT } });
    h!.clearFlows();
    h!.setFrontends([fe(NODE1_6), fe('fd00:18::12')]);
    h!.setSets([{ id: SET, backends: list }]);
    const ids = maglevIds(list);
    const byId = new Map(list.map((b) => [b.id, b.address]));
    const before = h!.readCounters();
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const client = `2001:db8:${(i * 7) & 0xffff}::${(i * 31 + 1).toString(16)}`;
      const sport = 1024 + ((i * 7919) % 60000);
      const want = byId.get(ids[maglevHashV6(ipBytes(client), sport, NODE_PORT, 6) % TEST_MAGLEV_M]!);
      for (const to of [NODE1_6, 'fd00:18::12']) {
        h!.clearFlows();
        const res = h!.run(packet6('TCP', client, sport, to, NODE_PORT));
        expect(res.retval).toBe(XDP_PASS);
        expect(parsePacket(res.data).ipv6!.dst, `${client}:${sport} to ${to}`).toBe(want);
      }
      seen.add(want!);
    }
    expect(seen.size).toBe(5);
    expect(counterDelta(before, h!.readCounters())).toEqual({ 'event:pkt_local_new': 400 });
  });
});
