// SCTP through bpf/xdp.bpf.c and bpf/tc.bpf.c under BPF_PROG_TEST_RUN, in a
// lab node with both families (xdp-sctp-cases.ts), checked as xdp-nat.test.ts
// checks TCP and UDP: verdict, output packet byte for byte (its CRC32c
// computed from scratch in TypeScript), the one counter that moves, SNAT
// ports. Then what the table cannot show: the incremental CRC32c right at
// every bit of the packet length, the table it uses, and the idle timeout.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CT_VAL } from '../../src/dataplane/bpf/layout.js';
import { XDP_PASS } from '../../src/dataplane/bpf/testrun.js';
import { crc32c, parsePacket } from '../helpers/packet.js';
import { counterDelta } from './xdp-harness.js';
import { prepare } from './xdp-nat-lab.js';
import { itNatCases, PLACEHOLDER_MACS, useNatLab } from './xdp-nat-suite.js';
import { SCTP_CLIENT_PORT, SCTP_TARGET_PORT, sctpCases, sctpPacket } from './xdp-sctp-cases.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('xdp SCTP packet tests skipped: they build a lab and load BPF programs, which needs root');

/** GF(2) product mod CRC32c's polynomial, reflected (bit 31 is x^0): the TypeScript twin of bpf/lib/sctp-crc.h's. */
function gfMul(a: number, b: number): number {
  let p = 0;
  for (let i = 0; i < 32; i++) {
    if ((a >>> (31 - i)) & 1) p ^= b;
    b = b & 1 ? (b >>> 1) ^ 0x82f63b78 : b >>> 1;
  }
  return p >>> 0;
}

describe('the CRC32c table of bpf/lib/sctp-crc.h', () => {
  it('holds x^(8 * lo) and x^(2048 * hi) mod P for lo, hi = 0..255, and the x^4 reduction (sctp-crc-tables.h, generated)', () => {
    const src = readFileSync(new URL('../../bpf/lib/sctp-crc-tables.h', import.meta.url), 'utf8');
    const table = (name: string) => new RegExp(`${name}\\[\\d+\\] = \\{([^}]*)\\}`).exec(src)![1]!.split(',').map((x) => x.trim()).filter(Boolean).map(Number);
    const powers = (step: number) => { const t = [0x80000000]; for (let i = 1; i < 256; i++) t.push(gfMul(t[i - 1]!, step)); return t; };
    const lo = powers(0x00800000); // x^8: bit 31 - 8
    expect(table('bpx_crc32c_x8n_lo')).toEqual(lo);
    expect(table('bpx_crc32c_x8n_hi')).toEqual(powers(gfMul(lo[255]!, 0x00800000))); // x^2048
    // v * x^4 for the 4 lowest bits v: four single-bit steps of v alone.
    const mulx = (v: number) => (v & 1 ? (v >>> 1) ^ 0x82f63b78 : v >>> 1) >>> 0;
    expect(table('bpx_crc32c_x4_reduce')).toEqual(Array.from({ length: 16 }, (_, v) => mulx(mulx(mulx(mulx(v))))));
  });

  it('an incremental update as the C does it matches a CRC32c computed from scratch (the math, without the kernel)', () => {
    for (const len of [12, 13, 100, 1480, 4095, 65535]) {
      const a = Buffer.alloc(len, 0xa5);
      a.writeUInt32LE(0, 8);
      const b = Buffer.from(a);
      b.writeUInt16BE(0x1234, 0);
      b.writeUInt16BE(0xbeef, 2);
      // w * x^(8 len) = w * x^(8 (len & 255)) * x^(2048 (len >> 8)), as sctp_crc_delta computes it.
      const pow = (e: number) => { let t = 0x80000000; for (let i = 0; i < e; i++) t = gfMul(t, 0x00800000); return t; };
      const r = gfMul(pow(256 * (len >> 8)), gfMul(pow(len & 0xff), (a.readUInt32LE(0) ^ b.readUInt32LE(0)) >>> 0));
      expect(((crc32c(a) ^ r) >>> 0).toString(16)).toBe(crc32c(b).toString(16));
    }
  });
});

describe.skipIf(!isRoot)('SCTP packet NAT of xdp.bpf.o and tc.bpf.o under BPF_PROG_TEST_RUN, in a lab node', () => {
  const s = useNatLab('xdp-sctp', { ipv6: true });
  itNatCases(sctpCases(PLACEHOLDER_MACS).map((c) => c.name), (i) => sctpCases(s.mac)[i]!, s);

  for (const family of ['IPv4', 'IPv6'] as const) {
    it(`${family}: DNAT keeps the CRC32c valid at every packet length bit the frame can carry (16 to 2060 bytes of SCTP)`, () => {
      const c = sctpCases(s.mac).find((x) => x.name.startsWith(`${family} SCTP: new association to a local backend`))!;
      const step = c.step(0).packet;
      const parsed = parsePacket(step);
      const [client, node1] = family === 'IPv4' ? [parsed.ipv4!.src, parsed.ipv4!.dst] : [parsed.ipv6!.src, parsed.ipv6!.dst];
      const mac = { src: s.mac.client, dst: s.mac.node1 };
      // SCTP lengths 12 + 4n: each of the bits 2..11 set alone, then mixed ones (both tables' entries vary).
      const lengths = [16, 20, 28, 44, 76, 140, 268, 524, 1036, 2060, 12 + 4 * 377, 12 + 4 * 111];
      for (const len of lengths) {
        prepare(s.h, c);
        const payload = Buffer.alloc(len - 12);
        for (let i = 0; i < payload.length; i++) payload[i] = (i * 7 + len) & 0xff;
        const res = s.h.run(sctpPacket(client, SCTP_CLIENT_PORT, node1, 30132, mac, payload));
        expect(res.retval).toBe(XDP_PASS);
        const out = parsePacket(res.data);
        expect({ len, dport: out.l4!.dport, crcOk: out.l4!.checksumOk }).toEqual({ len, dport: SCTP_TARGET_PORT, crcOk: true });
      }
    });
  }

  it('an association idle past 210 s is forgotten: its next packet is a new flow, one idle 200 s is still known', () => {
    const c = sctpCases(s.mac).find((x) => x.name.startsWith('IPv4 SCTP: known association to a local backend'))!;
    const age = (seconds: number) => {
      const d = s.h.ct.dump();
      const now = process.hrtime.bigint(); // the monotonic clock bpf_ktime_get_ns reads
      for (let i = 0; i < d.count; i++) d.values.writeBigUInt64LE(now - BigInt(seconds) * 1_000_000_000n, i * d.valueStride + CT_VAL.fields.last_ns.offset);
      expect(s.h.ct.write(d.keys, d.values, d.count)).toEqual([]);
    };
    for (const [idle, event] of [[200, 'pkt_local_ct'], [211, 'pkt_local_new']] as const) {
      prepare(s.h, c);
      age(idle);
      const before = s.h.readCounters();
      expect(s.h.run(c.step(0).packet).retval).toBe(XDP_PASS);
      expect(counterDelta(before, s.h.readCounters())).toEqual({ [`event:${event}`]: 1 });
    }
  });
});
