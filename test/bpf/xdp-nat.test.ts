// The translating paths of bpf/xdp.bpf.c (and the reply path of
// bpf/tc.bpf.c) under BPF_PROG_TEST_RUN, run inside lab node1's network
// namespace so routes and neighbours are the lab's (xdp-nat-cases.ts): each
// case's verdict, its output packet byte for byte (addresses, ports, MACs and
// checksums: the expected packets are built with valid checksums), the one
// counter it moves, and for SNAT the port range and that the flow keeps its
// port. Maps are pinned in a directory of this test's own; nothing is attached.
import { describe, expect, it } from 'vitest';
import { NAT_KEY, NAT_VAL, writeAddr } from '../../src/dataplane/bpf/layout.js';
import { XDP_DROP, XDP_TX } from '../../src/dataplane/bpf/testrun.js';
import { parsePacket } from '../helpers/packet.js';
import { CLIENT, NAT_PORT_MAX, NAT_PORT_MIN, NODE1, NODE_PORT, natCases, packet } from './xdp-nat-cases.js';
import { counterDelta } from './xdp-harness.js';
import { prepare } from './xdp-nat-lab.js';
import { itNatCases, PLACEHOLDER_MACS, useNatLab } from './xdp-nat-suite.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('xdp NAT packet tests skipped: they build a lab and load BPF programs, which needs root');

describe.skipIf(!isRoot)('packet NAT of xdp.bpf.o and tc.bpf.o under BPF_PROG_TEST_RUN, in a lab node', () => {
  const s = useNatLab('xdp-nat');
  itNatCases(natCases(PLACEHOLDER_MACS).map((c) => c.name), (i) => natCases(s.mac)[i]!, s);

  it('two flows from different client ports never share a NAT port, and each reply finds its own client', () => {
    const c = natCases(s.mac).find((x) => 'event' in x.counter && x.counter.event === 'pkt_remote_new' && x.name.startsWith('TCP'))!;
    prepare(s.h, c);
    const ports = new Set<number>();
    for (let sport = 41000; sport < 41200; sport++) {
      const p = packet('TCP', CLIENT, sport, NODE1, NODE_PORT);
      const out = parsePacket(s.h.run(p).data);
      expect(out.l4!.checksumOk).toBe(true);
      ports.add(out.l4!.sport!);
    }
    expect(ports.size).toBe(200);
    expect(s.h.nat.dump().count).toBe(200);
  });

  it('refusals are rate limited as the kernel limits its ICMP errors: a burst of 50, then 1 a millisecond; the rest dropped as refuse_rate_limited', async () => {
    const c = natCases(s.mac).find((x) => x.name.startsWith('no endpoints, TCP SYN'))!;
    prepare(s.h, c);
    await new Promise((r) => setTimeout(r, 80));	// the earlier cases' refusals: let the burst refill (50 ms)
    const counters = s.h.readCounters();
    const started = process.hrtime.bigint();
    let sent = 0;
    const RUNS = 1000;
    for (let i = 0; i < RUNS; i++) if (s.h.run(c.step(0).packet).retval === XDP_TX) sent++;
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
    // The whole burst first, then no more than the refill over the time the loop took (+2: CPUs racing on the shared state).
    expect(sent).toBeGreaterThanOrEqual(50);
    expect(sent).toBeLessThanOrEqual(50 + Math.ceil(elapsedMs) + 2);
    expect(counterDelta(counters, s.h.readCounters())).toEqual({ 'event:pkt_refused_no_endpoints': sent, 'drop:refuse_rate_limited': RUNS - sent });
  });

  it('a node address whose NAT ports are all held drops a new remote flow as nat_ports_exhausted', () => {
    const c = natCases(s.mac).find((x) => 'event' in x.counter && x.counter.event === 'pkt_remote_new' && x.name.startsWith('TCP'))!;
    prepare(s.h, c);
    // Hold every port of node1/TCP, fresh (last_ns = now on the monotonic clock bpf_ktime_get_ns reads).
    const n = NAT_PORT_MAX - NAT_PORT_MIN + 1;
    const now = process.hrtime.bigint();
    const failed = s.h.nat.update(n, (i, k, ko, v, vo) => {
      k.fill(0, ko, ko + NAT_KEY.size);
      writeAddr(k, ko + NAT_KEY.fields.addr.offset, NODE1);
      k.writeUInt16BE(NAT_PORT_MIN + i, ko + NAT_KEY.fields.port.offset);
      k.writeUInt8(6, ko + NAT_KEY.fields.proto.offset);
      k.writeUInt8(4, ko + NAT_KEY.fields.family.offset);
      v.fill(0, vo, vo + NAT_VAL.size);
      v.writeBigUInt64LE(now, vo + NAT_VAL.fields.last_ns.offset);
      writeAddr(v, vo + NAT_VAL.fields.client.offset, CLIENT);
    });
    expect(failed).toEqual([]);
    const counters = s.h.readCounters();
    const res = s.h.run(c.step(0).packet);
    expect(res.retval).toBe(XDP_DROP);
    expect(counterDelta(counters, s.h.readCounters())).toEqual({ 'drop:nat_ports_exhausted': 1 });
  });
});
