// ICMP and ICMPv6 errors about translated flows (bpf/lib/icmp-error.h)
// through xdp.bpf.o and tc.bpf.o under BPF_PROG_TEST_RUN, inside lab node1's
// network namespace (both families: xdp-icmp-error-cases.ts), checked as
// the NAT tables are (xdp-nat-suite.ts): verdict, output packet byte for
// byte with every checksum valid, the one counter that moves. Then what a
// table cannot show: that an error does not keep its flow alive.
import { describe, expect, it } from 'vitest';
import { CT_KEY, CT_VAL } from '../../src/dataplane/bpf/layout.js';
import { parsePacket } from '../helpers/packet.js';
import { icmpErrorCases } from './xdp-icmp-error-cases.js';
import { prepare } from './xdp-nat-lab.js';
import { itNatCases, PLACEHOLDER_MACS, useNatLab } from './xdp-nat-suite.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('xdp ICMP error packet tests skipped: they build a lab and load BPF programs, which needs root');

describe.skipIf(!isRoot)('ICMP and ICMPv6 errors about translated flows, xdp.bpf.o and tc.bpf.o under BPF_PROG_TEST_RUN, in a lab node', () => {
  const s = useNatLab('xdp-icmp-error', { ipv6: true });
  itNatCases(icmpErrorCases(PLACEHOLDER_MACS).map((c) => c.name), (i) => icmpErrorCases(s.mac)[i]!, s);

  it('every translated error leaves with valid IP, ICMP and quoted checksums (read back by the parser)', () => {
    for (const c of icmpErrorCases(s.mac).filter((x) => 'event' in x.counter && x.counter.event !== 'pkt_pass_icmp' && x.counter.event !== 'pkt_icmp_err_no_flow')) {
      const port = prepare(s.h, c);
      const step = c.step(port);
      const out = parsePacket(s.h.run(step.packet, { program: step.program }).data);
      expect(out.l4?.checksumOk, c.name).toBe(true);
      if (out.ipv4) expect(out.ipv4.checksumOk, c.name).toBe(true);
      const quote = out.l4!.payload;
      if (out.ipv4) expect(parsePacket(Buffer.concat([Buffer.alloc(12), Buffer.from([8, 0]), quote])).ipv4!.checksumOk, c.name).toBe(true);
    }
  });

  it('an error does not refresh its flow: conntrack\'s last-seen time stays what the flow\'s own packet wrote', () => {
    const c = icmpErrorCases(s.mac).find((x) => x.name.startsWith('IPv4: port unreachable from the remote backend'))!;
    const port = prepare(s.h, c);
    const lastSeen = () => {
      const d = s.h.ct.dump();
      return Array.from({ length: d.count }, (_, i) => d.values.readBigUInt64LE(i * CT_VAL.size + CT_VAL.fields.last_ns.offset)).sort();
    };
    // Age the entries by 5 s (the programs refresh at most once a second), then send the error.
    const before = lastSeen();
    const d = s.h.ct.dump();
    const aged = s.h.ct.update(d.count, (i, k, ko, v, vo) => {
      d.keys.copy(k, ko, i * CT_KEY.size, (i + 1) * CT_KEY.size);
      d.values.copy(v, vo, i * CT_VAL.size, (i + 1) * CT_VAL.size);
      v.writeBigUInt64LE(v.readBigUInt64LE(vo + CT_VAL.fields.last_ns.offset) - 5_000_000_000n, vo + CT_VAL.fields.last_ns.offset);
    });
    expect(aged).toEqual([]);
    expect(before.length).toBe(2);
    const step = c.step(port);
    expect(s.h.run(step.packet, { program: step.program }).retval).toBe(c.verdict);
    expect(lastSeen()).toEqual(before.map((t) => t - 5_000_000_000n));
  });
});
