// The IPv6 translating paths of bpf/xdp.bpf.c (and the reply path of
// bpf/tc.bpf.c) under BPF_PROG_TEST_RUN, run inside lab node1's network
// namespace with the lab's IPv6 addresses, routes and neighbours
// (xdp-nat6-cases.ts), checked as xdp-nat.test.ts checks the IPv4 ones:
// verdict, output packet byte for byte, the one counter that moves, SNAT
// ports. Then what the table cannot show: NAT ports per flow, and the
// IPv6 Maglev hash agreeing with its TypeScript twin.
import { describe, expect, it } from 'vitest';
import { FE_NODE_PORT } from '../../src/dataplane/bpf/layout.js';
import { maglevHashV6 } from '../../src/dataplane/bpf/maglev-hash.js';
import { XDP_PASS } from '../../src/dataplane/bpf/testrun.js';
import { ipBytes } from '../../src/util/ip.js';
import { parsePacket } from '../helpers/packet.js';
import type { Frontend } from './xdp-cases.js';
import { CLIENT6, NODE1_6, NODE_PORT, nat6Cases, packet6 } from './xdp-nat6-cases.js';
import { counterDelta, maglevIds, TEST_MAGLEV_M, type TestSet } from './xdp-harness.js';
import { prepare } from './xdp-nat-lab.js';
import { itNatCases, PLACEHOLDER_MACS, useNatLab } from './xdp-nat-suite.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('xdp IPv6 NAT packet tests skipped: they build a lab and load BPF programs, which needs root');

describe.skipIf(!isRoot)('IPv6 packet NAT of xdp.bpf.o and tc.bpf.o under BPF_PROG_TEST_RUN, in a lab node', () => {
  const s = useNatLab('xdp-nat6', { ipv6: true });
  itNatCases(nat6Cases(PLACEHOLDER_MACS).map((c) => c.name), (i) => nat6Cases(s.mac)[i]!, s);

  it('IPv6: two hundred flows from different client ports hold two hundred NAT ports of node1\'s IPv6 address, checksums right', () => {
    const c = nat6Cases(s.mac).find((x) => 'event' in x.counter && x.counter.event === 'pkt_remote_new' && x.name.startsWith('IPv6 TCP'))!;
    prepare(s.h, c);
    const ports = new Set<number>();
    for (let sport = 41000; sport < 41200; sport++) {
      const out = parsePacket(s.h.run(packet6('TCP', CLIENT6, sport, NODE1_6, NODE_PORT)).data);
      expect(out.ipv6!.src).toBe(NODE1_6);
      expect(out.l4!.checksumOk).toBe(true);
      ports.add(out.l4!.sport!);
    }
    expect(ports.size).toBe(200);
    expect(s.h.nat.dump().count).toBe(200);
  });

  it('IPv6 Maglev: a new flow gets the slot maglev_hash_v6 names (C and TypeScript agree), whatever node address it was sent to', () => {
    const SET = 7 * 4 + 2;
    const list: TestSet['backends'] = Array.from({ length: 5 }, (_, i) => ({ id: 100 + i, address: `fd00:244:1::${10 + i}`, port: 80, protocol: 'TCP', local: true }));
    const fe = (address: string): Frontend => ({ key: { address, port: NODE_PORT, protocol: 'TCP', family: 'IPv6' }, val: { svcId: 7, localSet: 28, extSet: SET, flags: FE_NODE_PORT } });
    s.h.clearFlows();
    s.h.setFrontends([fe(NODE1_6), fe('fd00:18::12')]);
    s.h.setSets([{ id: SET, backends: list }]);
    const ids = maglevIds(list);
    const byId = new Map(list.map((b) => [b.id, b.address]));
    const before = s.h.readCounters();
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const client = `2001:db8:${(i * 7) & 0xffff}::${(i * 31 + 1).toString(16)}`;
      const sport = 1024 + ((i * 7919) % 60000);
      const want = byId.get(ids[maglevHashV6(ipBytes(client), sport, NODE_PORT, 6) % TEST_MAGLEV_M]!);
      for (const to of [NODE1_6, 'fd00:18::12']) {
        s.h.clearFlows();
        const res = s.h.run(packet6('TCP', client, sport, to, NODE_PORT));
        expect(res.retval).toBe(XDP_PASS);
        expect(parsePacket(res.data).ipv6!.dst, `${client}:${sport} to ${to}`).toBe(want);
      }
      seen.add(want!);
    }
    expect(seen.size).toBe(5);
    expect(counterDelta(before, s.h.readCounters())).toEqual({ 'event:pkt_local_new': 400 });
  });
});
