// The allocation-free address parsers agree with the reference ones (ipBytes,
// net.isIPv6) on every form an address can be written in.
import { isIPv6 } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ipBytes, ipFromBytes, ipv4ToUint32, ipv6Words } from '../../../src/util/ip.js';

function wordsOf(ip: string): number[] | null {
  const out = new Uint32Array(6).fill(0xdeadbeef);
  if (!ipv6Words(ip, out, 1)) {
    expect([...out].every((w) => w === 0xdeadbeef), 'nothing written on failure').toBe(true);
    return null;
  }
  expect([out[0], out[5]]).toEqual([0xdeadbeef, 0xdeadbeef]);
  return [...out.subarray(1, 5)];
}

function wordsFromBytes(b: Uint8Array): number[] {
  const v = new DataView(b.buffer, b.byteOffset, 16);
  return [0, 4, 8, 12].map((o) => v.getUint32(o));
}

describe('ipv4ToUint32', () => {
  it('reads dotted quads, and a range of a longer string', () => {
    expect(ipv4ToUint32('10.244.1.2')).toBe(0x0af40102);
    expect(ipv4ToUint32('255.255.255.255')).toBe(0xffffffff);
    expect(ipv4ToUint32('::ffff:1.2.3.4', 7)).toBe(0x01020304);
    expect(ipv4ToUint32('1.2.3.4/24', 0, 7)).toBe(0x01020304);
  });

  it('refuses what is not canonical IPv4', () => {
    for (const bad of ['', '1.2.3', '1.2.3.4.5', '01.2.3.4', '1.2.3.256', '1..2.3', 'a.b.c.d', '::1']) expect(ipv4ToUint32(bad), bad).toBe(-1);
  });
});

describe('ipv6Words', () => {
  it('reads every spelling of an address to the same words', () => {
    const want = [0x20010db8, 0, 0, 1];
    for (const s of ['2001:db8::1', '2001:DB8:0:0:0:0:0:1', '2001:0db8:0000::0001', '2001:db8:0:0::0.0.0.1']) expect(wordsOf(s), s).toEqual(want);
    expect(wordsOf('::')).toEqual([0, 0, 0, 0]);
    expect(wordsOf('::1')).toEqual([0, 0, 0, 1]);
    expect(wordsOf('fd00::')).toEqual([0xfd000000, 0, 0, 0]);
    expect(wordsOf('1:2:3:4:5:6:7::')).toEqual([0x00010002, 0x00030004, 0x00050006, 0x00070000]);
    expect(wordsOf('::ffff:10.1.2.3')).toEqual([0, 0, 0xffff, 0x0a010203]);
  });

  it('refuses what is not IPv6', () => {
    for (const bad of ['', ':', ':1', '1:', '1:2', '1::2::3', '1:::2', '12345::', '1:2:3:4:5:6:7:8:9', '1:2:3:4::5:6:7:8', 'g::', '10.1.2.3', '::1.2.3', '1:2:3:4:5:6:7:1.2.3.4']) {
      expect(wordsOf(bad), bad).toBeNull();
    }
  });

  it('agrees with ipBytes and net.isIPv6 on random addresses in canonical and full form', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.integer({ min: 0, max: 15 }), (raw, zeros) => {
        // Runs of zero groups, so that "::" appears in every position.
        const b = Uint8Array.from(raw);
        b.fill(0, zeros, Math.min(16, zeros + 2 * (zeros % 5)));
        const canonical = ipFromBytes(b, 'IPv6');
        const full = Array.from({ length: 8 }, (_, i) => ((b[2 * i]! << 8) | b[2 * i + 1]!).toString(16).padStart(4, '0')).join(':');
        for (const s of [canonical, full]) {
          expect(isIPv6(s)).toBe(true);
          expect(wordsOf(s)).toEqual(wordsFromBytes(ipBytes(s)));
        }
      }),
      { numRuns: 500 },
    );
  });
});
