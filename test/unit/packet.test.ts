// The packet builder the BPF packet tests stand on: its checksums against
// values computed independently of it (by hand, by a published example, by a
// separate Python one-liner noted next to each), and its parser against the
// builder for every shape the tests use.
import { describe, expect, it } from 'vitest';
import { buildPacket, crc32c, IPPROTO, onesSum, parsePacket, truncate, type PacketSpec } from '../helpers/packet.js';

const v4 = { src: '172.18.0.100', dst: '172.18.0.11' };
const v6 = { src: 'fd00:18::100', dst: 'fd00:18::11' };

describe('packet builder checksums', () => {
  it('IPv4 header: the published worked example (Wikipedia, "Internet checksum"), 0xb861', () => {
    // 4500 0073 0000 4000 4011 [b861] c0a8 0001 c0a8 00c7
    const p = buildPacket({
      ipv4: { src: '192.168.0.1', dst: '192.168.0.199', id: 0, dontFragment: true, ttl: 64, totalLength: 0x73 },
      l4: { proto: 'udp', sport: 1, dport: 2 },
    });
    expect(p.subarray(14, 34).toString('hex')).toBe('45000073000040004011b861c0a80001c0a800c7');
    expect(onesSum(p.subarray(14, 34))).toBe(0xffff);
  });

  it('UDP over IPv4: 192.0.2.1:1 -> 192.0.2.2:2, no payload, 0x7bd7 (by hand)', () => {
    // pseudo c000+0201+c000+0202+0011+0008, header 0001+0002+0008 = 0x18427 -> 0x8428 -> ~ = 0x7bd7
    const p = buildPacket({ ipv4: { src: '192.0.2.1', dst: '192.0.2.2' }, l4: { proto: 'udp', sport: 1, dport: 2 } });
    expect(p.readUInt16BE(14 + 20 + 6)).toBe(0x7bd7);
  });

  it('TCP over IPv6: fd00:18::100:40000 -> [fd00:96::1]:80 SYN, 0x1cb0 (Python struct + sum)', () => {
    const p = buildPacket({ ipv6: { src: 'fd00:18::100', dst: 'fd00:96::1' }, l4: { proto: 'tcp', sport: 40000, dport: 80, seq: 1, flags: 0x02, window: 64240 } });
    expect(p.readUInt16BE(14 + 40 + 16)).toBe(0x1cb0);
  });

  it('ICMPv6 echo request fd00:18::100 -> fd00:18::11 id 1 seq 1, 0x8478 (Python), with the pseudo header ICMPv4 lacks', () => {
    const p = buildPacket({ ipv6: v6, l4: { proto: 'icmpv6', id: 1, seq: 1 } });
    expect(p.readUInt16BE(14 + 40 + 2)).toBe(0x8478);
  });

  it('CRC32c (SCTP): the standard check value of "123456789" is 0xe3069283', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
  });

  it('IPv4 options and fragment fields are covered by the header checksum', () => {
    const p = buildPacket({ ipv4: { ...v4, options: Uint8Array.from([148, 4, 0, 0]), moreFragments: true, fragmentOffset: 0 }, l4: { proto: 'udp', sport: 5, dport: 53 } });
    expect(p.readUInt8(14) & 0xf).toBe(6);
    expect(onesSum(p.subarray(14, 14 + 24))).toBe(0xffff);
  });
});

describe('packet parser reads back what the builder wrote', () => {
  const payload = Buffer.from('hello');
  const shapes: [string, PacketSpec][] = [
    ['TCP/IPv4', { ipv4: v4, l4: { proto: 'tcp', sport: 40000, dport: 30080, payload } }],
    ['UDP/IPv4 with two VLAN tags', { eth: { vlans: [100, 200] }, ipv4: v4, l4: { proto: 'udp', sport: 40000, dport: 53, payload } }],
    ['SCTP/IPv4', { ipv4: v4, l4: { proto: 'sctp', sport: 40000, dport: 30080, payload } }],
    ['ICMP/IPv4', { ipv4: v4, l4: { proto: 'icmp', payload } }],
    ['TCP/IPv6', { ipv6: v6, l4: { proto: 'tcp', sport: 40000, dport: 30080, payload } }],
    ['UDP/IPv6 after hop-by-hop, destination options and fragment headers', {
      ipv6: { ...v6, ext: [{ type: 'hop' }, { type: 'dest', options: Uint8Array.from([1, 0]) }, { type: 'fragment', more: false }] },
      l4: { proto: 'udp', sport: 40000, dport: 53, payload },
    }],
    ['TCP/IPv6 through a routing header (checksum to the final destination)', {
      ipv6: { ...v6, ext: [{ type: 'routing', segments: ['fd00:18::12'] }] },
      l4: { proto: 'tcp', sport: 40000, dport: 80, payload },
    }],
    ['ICMPv6', { ipv6: v6, l4: { proto: 'icmpv6', type: 128, payload } }],
  ];

  for (const [name, spec] of shapes) {
    it(name, () => {
      const p = buildPacket({ ...spec, eth: { src: '02:aa:00:00:00:01', dst: '02:bb:00:00:00:02', ...spec.eth } });
      const r = parsePacket(p);
      expect(r.eth).toMatchObject({ src: '02:aa:00:00:00:01', dst: '02:bb:00:00:00:02', vlans: spec.eth?.vlans ?? [] });
      const ip = r.ipv4 ?? r.ipv6!;
      expect(ip.src).toBe((spec.ipv4 ?? spec.ipv6)!.src);
      expect(ip.dst).toBe((spec.ipv4 ?? spec.ipv6)!.dst);
      if (r.ipv4) expect(r.ipv4.checksumOk).toBe(true);
      expect(r.l4?.checksumOk).toBe(true);
      expect(r.l4?.payload.toString()).toBe('hello');
      if ('sport' in spec.l4!) expect([r.l4?.sport, r.l4?.dport]).toEqual([spec.l4.sport, spec.l4.dport]);
      if (spec.ipv6?.ext) expect(r.ipv6?.ext).toEqual(spec.ipv6.ext.map((e) => ({ hop: 0, routing: 43, fragment: 44, dest: 60 })[e.type]));

      // Any flipped bit of the L4 segment breaks its checksum.
      const bad = Buffer.from(p);
      bad[bad.length - 1]! ^= 0x01;
      expect(parsePacket(bad).l4?.checksumOk).toBe(false);
    });
  }

  it('says where a packet cut short ends', () => {
    const p = buildPacket({ ipv4: v4, l4: { proto: 'tcp', sport: 1, dport: 2 } });
    expect(parsePacket(truncate(p, 30)).truncated).toBe('ipv4');
    expect(parsePacket(truncate(p, 40)).truncated).toBe('tcp');
    expect(parsePacket(buildPacket({ ipv4: v4, l4: { proto: 'raw', protocol: IPPROTO.GRE, payload } })).protocol).toBe(IPPROTO.GRE);
  });
});
