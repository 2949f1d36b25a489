// SCTP through bpf/xdp.bpf.c and bpf/tc.bpf.c under BPF_PROG_TEST_RUN, in a
// lab node with both families (xdp-sctp-cases.ts), checked as xdp-nat.test.ts
// checks TCP and UDP: verdict, output packet byte for byte (its CRC32c
// computed from scratch in TypeScript), the one counter that moves, SNAT
// ports. Then what the table cannot show: the incremental CRC32c right at
// every bit of the packet length, the table it uses, and the idle timeout.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CT_KEY, CT_VAL, NAT_VAL } from '../../src/dataplane/bpf/layout.js';
import { XDP_PASS } from '../../src/dataplane/bpf/testrun.js';
import { crc32c, parsePacket } from '../helpers/packet.js';
import { counterDelta } from './xdp-harness.js';
import { natPort as natPortOf, prepare } from './xdp-nat-lab.js';
import { itNatCases, PLACEHOLDER_MACS, useNatLab } from './xdp-nat-suite.js';
import { SCTP_CLIENT_PORT, SCTP_END_CHUNKS, SCTP_NODE_PORT, SCTP_TARGET_PORT, sctpCases, sctpPacket } from './xdp-sctp-cases.js';
import type { XdpHarness } from './xdp-harness.js';

/** bpf/lib/conntrack.h enum bpx_ct_flag: the end states of an SCTP flow. */
const CTF_SCTP_SHUTDOWN = 1 << 2;
const CTF_SCTP_CLOSED = 1 << 3;
const NS = 1_000_000_000n;
/** The datapath's u64 clock arithmetic: a time dated back past the clock's zero (a guest booted a
 * minute ago, test/vm) wraps, and differences still come out right modulo 2^64. */
const u64 = (x: bigint) => BigInt.asUintN(64, x);

/** The flags and idle time of every conntrack entry, ORIG first. */
function ctEntries(h: XdpHarness): { dir: number; flags: number; idleS: number }[] {
  const d = h.ct.dump();
  const now = process.hrtime.bigint(); // the monotonic clock bpf_ktime_get_ns reads
  return Array.from({ length: d.count }, (_, i) => ({
    dir: d.keys[i * CT_KEY.size + CT_KEY.fields.dir.offset]!,
    flags: d.values[i * d.valueStride + CT_VAL.fields.flags.offset]!,
    idleS: Number(u64(now - d.values.readBigUInt64LE(i * d.valueStride + CT_VAL.fields.last_ns.offset)) / NS),
  })).sort((a, b) => a.dir - b.dir);
}

/** Dates every conntrack entry `seconds` back, as if the flow had been idle that long. */
function ageFlows(h: XdpHarness, seconds: number): void {
  const d = h.ct.dump();
  const now = process.hrtime.bigint();
  for (let i = 0; i < d.count; i++) d.values.writeBigUInt64LE(u64(now - BigInt(seconds) * NS), i * d.valueStride + CT_VAL.fields.last_ns.offset);
  expect(h.ct.write(d.keys, d.values, d.count)).toEqual([]);
}

/** Seconds since the one SNAT port holder's last_ns (a holder is free once past the 210 s SCTP timeout). */
function natHolderAgeS(h: XdpHarness): number {
  const d = h.nat.dump();
  expect(d.count).toBe(1);
  return Number(u64(process.hrtime.bigint() - d.values.readBigUInt64LE(NAT_VAL.fields.last_ns.offset)) / NS);
}

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

  // Issue 7: the chunks that end an association shorten both of its entries' lives, as nf_conntrack's
  // SCTP states do (CLOSED 10 s, SHUTDOWN_* 3 s), in either direction, at XDP and at TC.
  const ENDS = [['ABORT', CTF_SCTP_CLOSED, 10], ['SHUTDOWN COMPLETE', CTF_SCTP_CLOSED, 10], ['SHUTDOWN', CTF_SCTP_SHUTDOWN, 3], ['SHUTDOWN ACK', CTF_SCTP_SHUTDOWN, 3]] as const;
  for (const family of ['IPv4', 'IPv6'] as const) {
    const caseOf = (prefix: string) => sctpCases(s.mac).find((x) => x.name.startsWith(`${family} SCTP: ${prefix}`))!;
    const addrs = () => {
      const c = caseOf('new association to a local backend');
      const parsed = parsePacket(c.step(0).packet);
      const ip = (family === 'IPv4' ? parsed.ipv4 : parsed.ipv6)!;
      return { client: ip.src, node1: ip.dst, inMac: { src: s.mac.client, dst: s.mac.node1 } };
    };
    for (const [chunk, flag, seconds] of ENDS) {
      it(`${family}: the client's ${chunk} (XDP) marks both of the flow's entries, which then live ${seconds} s idle, not 210 s`, () => {
        const c = caseOf('known association to a local backend');
        const { client, node1, inMac } = addrs();
        prepare(s.h, c);
        expect(ctEntries(s.h).map((e) => e.flags & (CTF_SCTP_CLOSED | CTF_SCTP_SHUTDOWN))).toEqual([0, 0]);
        expect(s.h.run(sctpPacket(client, SCTP_CLIENT_PORT, node1, SCTP_NODE_PORT, inMac, SCTP_END_CHUNKS[chunk])).retval).toBe(XDP_PASS);
        expect(ctEntries(s.h).map((e) => ({ dir: e.dir, ended: e.flags & flag, recent: e.idleS <= 1 }))).toEqual([
          { dir: 0, ended: flag, recent: true }, { dir: 1, ended: flag, recent: true },
        ]);
        // Idle just under its timeout the flow is still known; just past it, the next packet is a new flow.
        for (const [idle, event] of [[seconds - 1, 'pkt_local_ct'], [seconds + 1, 'pkt_local_new']] as const) {
          prepare(s.h, c);
          s.h.run(sctpPacket(client, SCTP_CLIENT_PORT, node1, SCTP_NODE_PORT, inMac, SCTP_END_CHUNKS[chunk]));
          ageFlows(s.h, idle);
          const before = s.h.readCounters();
          expect(s.h.run(c.step(0).packet).retval).toBe(XDP_PASS);
          expect(counterDelta(before, s.h.readCounters())).toEqual({ [`event:${event}`]: 1 });
        }
      });
    }

    it(`${family}: a SHUTDOWN after an ABORT leaves the flow CLOSED (10 s), as nf_conntrack's table does`, () => {
      const c = caseOf('known association to a local backend');
      const { client, node1, inMac } = addrs();
      prepare(s.h, c);
      for (const chunk of ['ABORT', 'SHUTDOWN'] as const) s.h.run(sctpPacket(client, SCTP_CLIENT_PORT, node1, SCTP_NODE_PORT, inMac, SCTP_END_CHUNKS[chunk]));
      expect(ctEntries(s.h).map((e) => e.flags & (CTF_SCTP_CLOSED | CTF_SCTP_SHUTDOWN))).toEqual([CTF_SCTP_CLOSED | CTF_SCTP_SHUTDOWN, CTF_SCTP_CLOSED | CTF_SCTP_SHUTDOWN]);
      ageFlows(s.h, 5); // past SHUTDOWN's 3 s, within CLOSED's 10 s
      const before = s.h.readCounters();
      s.h.run(c.step(0).packet);
      expect(counterDelta(before, s.h.readCounters())).toEqual({ 'event:pkt_local_ct': 1 });
    });

    it(`${family}: the local backend's ABORT (TC egress) marks both entries CLOSED, and is still translated`, () => {
      const c = caseOf('the local backend\'s reply leaves (TC egress)');
      prepare(s.h, c);
      const reply = parsePacket(c.step(0).packet);
      const ip = (family === 'IPv4' ? reply.ipv4 : reply.ipv6)!;
      const abort = sctpPacket(ip.src, SCTP_TARGET_PORT, ip.dst, SCTP_CLIENT_PORT, { src: s.mac.node1, dst: s.mac.client }, SCTP_END_CHUNKS.ABORT, 0x0a0b0c0d);
      const res = s.h.run(abort, { program: 'bpx_tc_egress' });
      expect(parsePacket(res.data).l4!.sport).toBe(SCTP_NODE_PORT);
      expect(ctEntries(s.h).map((e) => e.flags & CTF_SCTP_CLOSED)).toEqual([CTF_SCTP_CLOSED, CTF_SCTP_CLOSED]);
    });

    it(`${family}: the remote backend's ABORT to the NAT port (XDP) marks both entries CLOSED and dates the NAT port's holder back so it frees with them`, () => {
      const c = caseOf('the remote backend\'s reply to the NAT port');
      const port = prepare(s.h, c);
      expect(natHolderAgeS(s.h)).toBeLessThanOrEqual(1);
      const step = parsePacket(c.step(port).packet);
      const ip = (family === 'IPv4' ? step.ipv4 : step.ipv6)!;
      const abort = sctpPacket(ip.src, SCTP_TARGET_PORT, ip.dst, port, { src: s.mac.node2, dst: s.mac.node1 }, SCTP_END_CHUNKS.ABORT, 0x0a0b0c0d);
      s.h.run(abort);
      expect(ctEntries(s.h).map((e) => e.flags & CTF_SCTP_CLOSED)).toEqual([CTF_SCTP_CLOSED, CTF_SCTP_CLOSED]);
      // 210 s (the holder's timeout) less 10 s (CLOSED): free 10 s from now, not 210 s.
      expect(natHolderAgeS(s.h)).toBeGreaterThanOrEqual(199);
      expect(natHolderAgeS(s.h)).toBeLessThanOrEqual(201);
    });

    it(`${family}: the client's SHUTDOWN to a remote backend dates the NAT port's holder back by 207 s (free after 3 s)`, () => {
      const c = caseOf('known association to a remote backend');
      const port = prepare(s.h, c);
      const { client, node1, inMac } = addrs();
      s.h.run(sctpPacket(client, SCTP_CLIENT_PORT, node1, SCTP_NODE_PORT, inMac, SCTP_END_CHUNKS.SHUTDOWN));
      expect(natPortOf(s.h)).toBe(port);
      expect(natHolderAgeS(s.h)).toBeGreaterThanOrEqual(206);
      expect(natHolderAgeS(s.h)).toBeLessThanOrEqual(208);
    });
  }

  it('an association idle past 210 s is forgotten: its next packet is a new flow, one idle 200 s is still known', () => {
    const c = sctpCases(s.mac).find((x) => x.name.startsWith('IPv4 SCTP: known association to a local backend'))!;
    const age = (seconds: number) => {
      const d = s.h.ct.dump();
      const now = process.hrtime.bigint(); // the monotonic clock bpf_ktime_get_ns reads
      for (let i = 0; i < d.count; i++) d.values.writeBigUInt64LE(u64(now - BigInt(seconds) * 1_000_000_000n), i * d.valueStride + CT_VAL.fields.last_ns.offset);
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
