import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalIP, cidrContains, compareIP, hostPort, ipBytes, ipFromBytes, parseCidr } from '../../../src/util/ip.js';

describe('ip helpers', () => {
  it('canonicalizes IPv6 as RFC 5952 and keeps IPv4', () => {
    expect(canonicalIP('2001:DB8:0:0:0:0:0:1')).toBe('2001:db8::1');
    expect(canonicalIP('::ffff:10.0.0.1')).toBe('::ffff:a00:1');
    expect(canonicalIP('10.1.2.3')).toBe('10.1.2.3');
    expect(canonicalIP('10.1.2')).toBeNull();
  });

  it('orders IPv4 numerically, IPv4 before IPv6, IPv6 by bytes', () => {
    const sorted = ['fd00::2', '10.0.0.10', 'fd00::10', '9.255.255.255', '10.0.0.9', '::1'].sort(compareIP);
    expect(sorted).toEqual(['9.255.255.255', '10.0.0.9', '10.0.0.10', '::1', 'fd00::2', 'fd00::10']);
  });

  it('compares IPv4 the same way as comparing its bytes', () => {
    const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((b) => b.join('.'));
    fc.assert(fc.property(v4, v4, (a, b) => {
      const [ba, bb] = [ipBytes(a), ipBytes(b)];
      const byBytes = ba.findIndex((x, i) => x !== bb[i]);
      const expected = byBytes < 0 ? 0 : ba[byBytes]! - bb[byBytes]!;
      expect(Math.sign(compareIP(a, b))).toBe(Math.sign(expected));
    }));
  });

  it('round-trips bytes and checks CIDR membership', () => {
    expect(ipFromBytes(ipBytes('fd00:96::40'), 'IPv6')).toBe('fd00:96::40');
    const c = parseCidr('10.96.7.1/16')!;
    expect(c.text).toBe('10.96.0.0/16');
    expect(cidrContains(c, '10.96.255.1')).toBe(true);
    expect(cidrContains(c, '10.97.0.1')).toBe(false);
    expect(cidrContains(parseCidr('fd00::/8')!, 'fd12::1')).toBe(true);
    expect(hostPort('fd00::1', 80)).toBe('[fd00::1]:80');
  });
});

describe('ip helpers agree with node:net on what IPv4 is', () => {
  it('for any dotted text', async () => {
    const { isIPv4 } = await import('node:net');
    const { familyOf, isLoopback, isLinkLocal, isLinkLocalMulticast, isUnspecified } = await import('../../../src/util/ip.js');
    const part = fc.oneof(fc.nat(300).map(String), fc.constantFrom('00', '01', '007', '', 'a', '255', '256'));
    fc.assert(fc.property(fc.array(part, { minLength: 1, maxLength: 5 }), (parts) => {
      const text = parts.join('.');
      expect(familyOf(text) === 'IPv4').toBe(isIPv4(text));
    }));
    expect([isLoopback('127.9.9.9'), isLinkLocal('169.254.1.1'), isLinkLocalMulticast('224.0.0.251'), isUnspecified('0.0.0.0')]).toEqual([true, true, true, true]);
    expect([isLoopback('128.0.0.1'), isLinkLocal('169.253.1.1'), isLinkLocalMulticast('224.0.1.1'), isUnspecified('0.0.0.1')]).toEqual([false, false, false, false]);
  });
});
