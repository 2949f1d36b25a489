// The packet cases of bpf/xdp.bpf.c, one table for two users: the tests
// (test/bpf/xdp.test.ts) and the micro-benchmark (bench/packets.ts, `make
// bench`). Each case: what it is, the packet in, the frontends in the pinned
// map, the verdict, the packet out, and the one counter that moves.
import type { FeKey, FeVal } from '../../src/dataplane/bpf/layout.js';
import { FE_EXTERNAL_IP, FE_NODE_PORT } from '../../src/dataplane/bpf/layout.js';
import { buildPacket, IPPROTO, pad, truncate, type Ipv4Spec, type Ipv6Spec, type L4Spec, type PacketSpec } from '../helpers/packet.js';

export type Verdict = 'XDP_PASS' | 'XDP_DROP';

export interface Frontend { key: FeKey; val: FeVal }

export interface PacketCase {
  name: string;
  packet: Buffer;
  frontends: Frontend[];
  verdict: Verdict;
  /** The packet as the program must leave it. */
  output: Buffer;
  /** The one counter that moves by one: a drop reason or an event label (src/dataplane/bpf/reasons.ts). */
  counter: { drop: string } | { event: string };
}

// The node of the lab plan (src/lab/README.md): 172.18.0.11 / fd00:18::11 on the
// wire, an ExternalIP of a service, the external client at .100.
const NODE4 = '172.18.0.11';
const NODE6 = 'fd00:18::11';
const EXTERNAL_IP = '192.0.2.10';
const CLIENT4 = '172.18.0.100';
const CLIENT6 = 'fd00:18::100';
const NODE_PORT = 30080;

function fe(address: string, port: number, protocol: FeKey['protocol'], flags: number, svcId: number): Frontend {
  return {
    key: { address, port, protocol, family: address.includes(':') ? 'IPv6' : 'IPv4' },
    val: { svcId, localSet: svcId * 2, extSet: svcId * 2 + 1, flags },
  };
}

/** The frontends every case runs with: a case not to one of them shows that a near miss is no match. */
export const FRONTENDS: Frontend[] = [
  fe(NODE4, NODE_PORT, 'TCP', FE_NODE_PORT, 1),
  fe(NODE4, NODE_PORT, 'SCTP', 0, 2), // of no kind XDP serves (no NodePort, external or ClusterIP flag)
  fe(NODE4, 30132, 'SCTP', FE_NODE_PORT, 7),
  fe(NODE4, 30053, 'UDP', FE_NODE_PORT, 3),
  fe(EXTERNAL_IP, 80, 'TCP', FE_EXTERNAL_IP, 4),
  fe(NODE6, NODE_PORT, 'TCP', FE_NODE_PORT, 5),
  fe(NODE6, 30053, 'UDP', FE_NODE_PORT, 6),
];

const payload = Buffer.from('GET / HTTP/1.1\r\n\r\n');
const ip4 = (over: Partial<Ipv4Spec> = {}): Ipv4Spec => ({ src: CLIENT4, dst: NODE4, ...over });
const ip6 = (over: Partial<Ipv6Spec> = {}): Ipv6Spec => ({ src: CLIENT6, dst: NODE6, ...over });
const tcp = (dport = NODE_PORT, over: Partial<Extract<L4Spec, { proto: 'tcp' }>> = {}): L4Spec => ({ proto: 'tcp', sport: 40000, dport, ...over });
const udp = (dport = 30053, over: Partial<Extract<L4Spec, { proto: 'udp' }>> = {}): L4Spec => ({ proto: 'udp', sport: 40000, dport, payload, ...over });

type Expect = { verdict: Verdict; counter: PacketCase['counter'] };
const passed = (event: string): Expect => ({ verdict: 'XDP_PASS', counter: { event } });
const dropped = (drop: string): Expect => ({ verdict: 'XDP_DROP', counter: { drop } });

function unchanged(name: string, packet: Buffer | PacketSpec, e: Expect): PacketCase {
  const p = Buffer.isBuffer(packet) ? packet : buildPacket(packet);
  return { name, packet: p, frontends: FRONTENDS, verdict: e.verdict, output: p, counter: e.counter };
}

const FRONTEND = passed('pkt_frontend_untranslated');
const NO_SET = dropped('no_backend');
const NO_FRONTEND = passed('pkt_pass_no_frontend');

export const XDP_CASES: PacketCase[] = [
  // ---- to a frontend of no kind the packet NAT serves (flags without NodePort, external or ClusterIP): to the stack untranslated
  unchanged('SCTP to a frontend of no kind XDP serves', { ipv4: ip4(), l4: { proto: 'sctp', sport: 40000, dport: NODE_PORT } }, FRONTEND),
  // SCTP is translated like TCP and UDP (xdp-sctp-cases.ts); without its backend set, dropped the same way.
  unchanged('SCTP to an IPv4 NodePort without its backend set', { ipv4: ip4(), l4: { proto: 'sctp', sport: 40000, dport: 30132 } }, NO_SET),

  // ---- to an IPv4 TCP/UDP frontend whose backend set is not written (these
  // frontends are written without sets here): dropped with a reason. The
  // translating paths are xdp-nat-cases.ts.
  unchanged('TCP SYN to an IPv4 NodePort without its backend set', { ipv4: ip4(), l4: tcp() }, NO_SET),
  unchanged('TCP data to an IPv4 NodePort without its backend set', { ipv4: ip4(), l4: tcp(NODE_PORT, { flags: 0x18, payload }) }, NO_SET),
  unchanged('UDP to an IPv4 NodePort without its backend set', { ipv4: ip4(), l4: udp() }, NO_SET),
  unchanged('TCP to an ExternalIP without its backend set', { ipv4: ip4({ dst: EXTERNAL_IP }), l4: tcp(80) }, NO_SET),
  unchanged('TCP SYN to a NodePort in a minimum-size frame: Ethernet padding past the IP length is fine',
    pad(buildPacket({ ipv4: ip4(), l4: tcp() }), 60), NO_SET),
  // The same for IPv6 (the translating paths are xdp-nat6-cases.ts), with the
  // extension headers the parse stage steps over (bpf/lib/parse6.h).
  unchanged('TCP SYN to an IPv6 NodePort without its backend set', { ipv6: ip6(), l4: tcp() }, NO_SET),
  unchanged('UDP to an IPv6 NodePort without its backend set', { ipv6: ip6(), l4: udp() }, NO_SET),
  unchanged('IPv6 hop-by-hop header before TCP: stepped over', { ipv6: ip6({ ext: [{ type: 'hop' }] }), l4: tcp() }, NO_SET),
  unchanged('IPv6 destination options before UDP: stepped over', { ipv6: ip6({ ext: [{ type: 'dest' }] }), l4: udp() }, NO_SET),
  unchanged('IPv6 routing header with no segments left (the destination is final): stepped over',
    { ipv6: ip6({ ext: [{ type: 'routing', segments: ['fd00:18::12'], segmentsLeft: 0 }] }), l4: tcp() }, NO_SET),
  unchanged('IPv6 hop-by-hop, destination options, routing (none left), destination options: 4 headers, the bound, stepped over',
    { ipv6: ip6({ ext: [{ type: 'hop' }, { type: 'dest' }, { type: 'routing', segments: ['fd00:18::12'], segmentsLeft: 0 }, { type: 'dest' }] }), l4: udp() }, NO_SET),
  unchanged('IPv6 destination options header of 256 bytes (the byte bound): stepped over',
    { ipv6: ip6({ ext: [{ type: 'dest', options: Uint8Array.from([1, 252, ...new Array(252).fill(0)]) }] }), l4: tcp() }, NO_SET),

  // ---- not to a frontend: to the stack untouched
  unchanged('TCP to the node on a port that is no NodePort (ssh)', { ipv4: ip4(), l4: tcp(22) }, NO_FRONTEND),
  unchanged('UDP to a TCP-only NodePort: the protocol is part of the frontend', { ipv4: ip4(), l4: udp(NODE_PORT) }, NO_FRONTEND),
  unchanged('TCP to the NodePort number on another address', { ipv4: ip4({ dst: '172.18.0.12' }), l4: tcp() }, NO_FRONTEND),
  unchanged('UDP to an IPv6 address on an IPv4-only port', { ipv6: ip6(), l4: udp(NODE_PORT) }, NO_FRONTEND),
  unchanged('TCP from the NodePort (a reply of the node\'s own connection)', { ipv4: ip4(), l4: { proto: 'tcp', sport: NODE_PORT, dport: 40000 } }, NO_FRONTEND),

  // ---- not ours: to the stack, counted by why
  unchanged('ARP', { eth: { dst: 'ff:ff:ff:ff:ff:ff' } }, passed('pkt_pass_not_ip')),
  unchanged('TCP to a NodePort behind one VLAN tag', { eth: { vlans: [100] }, ipv4: ip4(), l4: tcp() }, passed('pkt_pass_vlan')),
  unchanged('UDP to a NodePort behind two VLAN tags (QinQ)', { eth: { vlans: [100, 200] }, ipv6: ip6(), l4: udp() }, passed('pkt_pass_vlan')),
  unchanged('first IPv4 fragment of UDP to a NodePort', { ipv4: ip4({ moreFragments: true }), l4: udp() }, passed('pkt_pass_fragment')),
  unchanged('later IPv4 fragment (offset, no L4 header)', { ipv4: ip4({ fragmentOffset: 185 }), l4: { proto: 'raw', protocol: IPPROTO.UDP, payload } }, passed('pkt_pass_fragment')),
  unchanged('IPv6 fragment of UDP to a NodePort', { ipv6: ip6({ ext: [{ type: 'fragment', more: true }] }), l4: udp() }, passed('pkt_pass_fragment')),
  unchanged('IPv4 with options (router alert) to a NodePort', { ipv4: ip4({ options: Uint8Array.from([148, 4, 0, 0]) }), l4: tcp() }, passed('pkt_pass_ip_options')),
  unchanged('IPv6 fragment header after a hop-by-hop header', { ipv6: ip6({ ext: [{ type: 'hop' }, { type: 'fragment', more: true }] }), l4: udp() }, passed('pkt_pass_fragment')),
  unchanged('IPv6 routing header with a segment left (the final destination is elsewhere)', { ipv6: ip6({ ext: [{ type: 'routing', segments: ['fd00:18::12'] }] }), l4: tcp() }, passed('pkt_pass_ipv6_ext')),
  unchanged('IPv6 hop-by-hop header that is not the first (the stack answers with a parameter problem)',
    { ipv6: ip6({ ext: [{ type: 'dest' }, { type: 'hop' }] }), l4: tcp() }, passed('pkt_pass_ipv6_ext')),
  unchanged('IPv6 with 5 skippable extension headers: past the bound',
    { ipv6: ip6({ ext: [{ type: 'hop' }, { type: 'dest' }, { type: 'dest' }, { type: 'dest' }, { type: 'dest' }] }), l4: tcp() }, passed('pkt_pass_ipv6_ext')),
  unchanged('IPv6 destination options header of 264 bytes: past the byte bound',
    { ipv6: ip6({ ext: [{ type: 'dest', options: Uint8Array.from([1, 252, ...new Array(252).fill(0), 1, 4, 0, 0, 0, 0]) }] }), l4: tcp() }, passed('pkt_pass_ipv6_ext')),
  unchanged('IPv6 authentication header (AH) before TCP', { ipv6: ip6({ nextHeader: IPPROTO.AH }), l4: { proto: 'raw', protocol: IPPROTO.AH, payload: Buffer.alloc(24) } }, passed('pkt_pass_ipv6_ext')),
  unchanged('ICMP echo request to the node', { ipv4: ip4(), l4: { proto: 'icmp' } }, passed('pkt_pass_icmp')),
  unchanged('ICMPv6 echo request to the node', { ipv6: ip6(), l4: { proto: 'icmpv6' } }, passed('pkt_pass_icmp')),
  unchanged('ICMPv6 neighbour solicitation', { ipv6: ip6({ dst: 'ff02::1:ff00:11', hopLimit: 255 }), l4: { proto: 'icmpv6', type: 135, payload: Buffer.alloc(16) } }, passed('pkt_pass_icmp')),
  unchanged('GRE over IPv4', { ipv4: ip4(), l4: { proto: 'raw', protocol: IPPROTO.GRE, payload } }, passed('pkt_pass_other_l4')),
  unchanged('ESP over IPv6', { ipv6: ip6(), l4: { proto: 'raw', protocol: IPPROTO.ESP, payload } }, passed('pkt_pass_other_l4')),
  unchanged('IPv6 with no next header', { ipv6: ip6(), l4: { proto: 'raw', protocol: IPPROTO.NONE } }, passed('pkt_pass_other_l4')),
  unchanged('ICMPv6 number inside IPv4 is no ICMP', { ipv4: ip4(), l4: { proto: 'raw', protocol: IPPROTO.ICMPV6, payload } }, passed('pkt_pass_other_l4')),

  // ---- malformed L3: what ip_rcv / ipv6_rcv would drop, dropped here with a reason
  unchanged('IPv4 header cut short', truncate(buildPacket({ ipv4: ip4(), l4: tcp() }), 14 + 12), dropped('truncated_l3')),
  unchanged('IPv6 header cut short', truncate(buildPacket({ ipv6: ip6(), l4: tcp() }), 14 + 30), dropped('truncated_l3')),
  unchanged('IPv4 total length past the end of the frame', { ipv4: ip4({ totalLength: 20 + 20 + 100 }), l4: tcp() }, dropped('truncated_l3')),
  unchanged('IPv6 payload length past the end of the frame', { ipv6: ip6({ payloadLength: 200 }), l4: udp() }, dropped('truncated_l3')),
  unchanged('IPv6 extension header past the payload length', { ipv6: ip6({ ext: [{ type: 'dest' }], payloadLength: 4 }), l4: tcp() }, dropped('truncated_l3')),
  unchanged('IPv6 extension header past the end of the frame', truncate(buildPacket({ ipv6: ip6({ ext: [{ type: 'hop' }], payloadLength: 2 }), l4: tcp() }), 14 + 40 + 2), dropped('truncated_l3')),
  unchanged('IPv4 EtherType carrying an IPv6 header', { eth: { type: 0x0800 }, ipv6: ip6(), l4: tcp() }, dropped('invalid_l3')),
  unchanged('IPv6 EtherType carrying an IPv4 header', { eth: { type: 0x86dd }, ipv4: ip4(), l4: tcp() }, dropped('invalid_l3')),
  unchanged('IPv4 IHL below 5', { ipv4: ip4({ ihl: 4 }), l4: tcp() }, dropped('invalid_l3')),
  unchanged('IPv4 total length shorter than its header', { ipv4: ip4({ totalLength: 16 }), l4: tcp() }, dropped('invalid_l3')),

  // ---- malformed L4: what TCP/UDP would drop
  // (A frame cut inside the L4 header with the IP length left as it was is truncated_l3: the IP length is checked first.)
  unchanged('TCP header cut short (frame and IP length agree)', truncate(buildPacket({ ipv4: ip4({ totalLength: 30 }), l4: tcp() }), 14 + 30), dropped('truncated_l4')),
  unchanged('TCP header past the IP total length (the rest is padding)', { ipv4: ip4({ totalLength: 30 }), l4: tcp() }, dropped('truncated_l4')),
  unchanged('IPv6 UDP header cut short', truncate(buildPacket({ ipv6: ip6({ payloadLength: 4 }), l4: udp() }), 14 + 44), dropped('truncated_l4')),
  unchanged('IPv6 payload length 0 without a jumbo option', { ipv6: ip6({ payloadLength: 0 }), l4: tcp() }, dropped('truncated_l4')),
  unchanged('SCTP common header cut short', truncate(buildPacket({ ipv4: ip4({ totalLength: 28 }), l4: { proto: 'sctp', sport: 1, dport: NODE_PORT } }), 14 + 28), dropped('truncated_l4')),
  unchanged('TCP data offset past the IP packet (options that are not there)', { ipv4: ip4(), l4: tcp(NODE_PORT, { dataOffset: 15 }) }, dropped('truncated_l4')),
  unchanged('UDP length past the IP packet', { ipv4: ip4(), l4: udp(30053, { length: 200 }) }, dropped('truncated_l4')),
  unchanged('TCP data offset below 5', { ipv4: ip4(), l4: tcp(NODE_PORT, { dataOffset: 4 }) }, dropped('invalid_l4')),
  unchanged('UDP length below its header', { ipv4: ip4(), l4: udp(30053, { length: 7 }) }, dropped('invalid_l4')),
  unchanged('IPv6 UDP length 0 outside a jumbogram', { ipv6: ip6(), l4: udp(30053, { length: 0 }) }, dropped('invalid_l4')),
];
