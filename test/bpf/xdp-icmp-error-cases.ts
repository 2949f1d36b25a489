// ICMP and ICMPv6 errors about translated flows (bpf/lib/icmp-error.h), one
// table per family in the shape of xdp-nat-cases.ts, run in the same lab
// node1 (test/bpf/xdp-icmp-error.test.ts). Each case first sends the flow's
// packet through XDP (so conntrack and the NAT port are real), then an error
// quoting a packet of that flow as it travelled, and expects the error the
// other end must get: the quote restored to the very bytes that end sent
// (addresses, ports, the quoted IP and L4 checksums), its own addresses
// translated, the ICMP checksum right (buildPacket computes every checksum
// from scratch, so a byte-for-byte match proves the incremental updates).
import { FE_NODE_PORT } from '../../src/dataplane/bpf/layout.js';
import { XDP_DROP, XDP_PASS, XDP_REDIRECT } from '../../src/dataplane/bpf/testrun.js';
import { buildPacket, ICMP_ERR, icmpError, ipPart, TCP_FLAGS, type L4Spec } from '../helpers/packet.js';
import type { Frontend } from './xdp-cases.js';
import type { TestSet } from './xdp-harness.js';
import { CLIENT, LOCAL_POD, NODE1, NODE_PORT, packet, REMOTE_POD, TC_ACT_OK, UDP_NODE_PORT, type MacEnv, type NatCase, type Step } from './xdp-nat-cases.js';
import { CLIENT6, LOCAL_POD6, NODE1_6, packet6, REMOTE_POD6 } from './xdp-nat6-cases.js';

/** node2 on the wire: the backend side's router in these cases. */
export const NODE2 = '172.18.0.12';
export const NODE2_6 = 'fd00:18::12';
/** A router on the client's side (any address: nothing routes to it, the error only comes from it). */
const ROUTER = '198.51.100.1';
const ROUTER6 = '2001:db8:1::1';
const CLIENT_PORT = 40000;

type Proto = 'TCP' | 'UDP';
type Family = 'IPv4' | 'IPv6';

const be = (id: number, address: string, proto: Proto, local: boolean) => ({ id, address, port: 80, protocol: proto, local });

/** The addresses of one family of the lab, and its packet builder. */
interface Fam {
  family: Family;
  node1: string; node2: string; client: string; router: string; localPod: string; remotePod: string;
  pkt: (proto: Proto, src: string, sport: number, dst: string, dport: number, mac?: { src: string; dst: string }, flags?: number, hop?: number) => Buffer;
  /** An error (or other ICMP message) with these addresses. */
  icmp: (mac: { src: string; dst: string }, src: string, dst: string, l4: L4Spec) => Buffer;
  portUnreach: [number, number];
  tooBig: [number, number];
  timeExceeded: [number, number];
  echo: number;
}

const V4: Fam = {
  family: 'IPv4', node1: NODE1, node2: NODE2, client: CLIENT, router: ROUTER, localPod: LOCAL_POD, remotePod: REMOTE_POD,
  pkt: (proto, src, sport, dst, dport, mac, flags = TCP_FLAGS.SYN, hop) =>
    hop === undefined ? packet(proto, src, sport, dst, dport, mac, flags)
      : buildPacket({ ...(mac ? { eth: mac } : {}), ipv4: { src, dst, ttl: hop }, l4: l4(proto, sport, dport, flags) }),
  icmp: (mac, src, dst, l4s) => buildPacket({ eth: mac, ipv4: { src, dst }, l4: l4s }),
  portUnreach: [ICMP_ERR.DEST_UNREACH, ICMP_ERR.PORT_UNREACH],
  tooBig: [ICMP_ERR.DEST_UNREACH, ICMP_ERR.FRAG_NEEDED],
  timeExceeded: [ICMP_ERR.TIME_EXCEEDED, 0],
  echo: 8,
};

const V6: Fam = {
  family: 'IPv6', node1: NODE1_6, node2: NODE2_6, client: CLIENT6, router: ROUTER6, localPod: LOCAL_POD6, remotePod: REMOTE_POD6,
  pkt: (proto, src, sport, dst, dport, mac, flags = TCP_FLAGS.SYN, hop) =>
    hop === undefined ? packet6(proto, src, sport, dst, dport, mac, flags)
      : buildPacket({ ...(mac ? { eth: mac } : {}), ipv6: { src, dst, hopLimit: hop }, l4: l4(proto, sport, dport, flags) }),
  icmp: (mac, src, dst, l4s) => buildPacket({ eth: mac, ipv6: { src, dst }, l4: l4s }),
  portUnreach: [ICMP_ERR.V6_DEST_UNREACH, ICMP_ERR.V6_PORT_UNREACH],
  tooBig: [ICMP_ERR.V6_PACKET_TOO_BIG, 0],
  timeExceeded: [ICMP_ERR.V6_TIME_EXCEEDED, 0],
  echo: 128,
};

const hello = Buffer.from('hello\n');
function l4(proto: Proto, sport: number, dport: number, flags: number): L4Spec {
  return proto === 'TCP' ? { proto: 'tcp', sport, dport, flags, ...(flags & TCP_FLAGS.ACK ? { payload: hello } : {}) } : { proto: 'udp', sport, dport, payload: hello };
}

function nodePort(f: Fam, proto: Proto, svc: number): Frontend {
  return {
    key: { address: f.node1, port: proto === 'TCP' ? NODE_PORT : UDP_NODE_PORT, protocol: proto, family: f.family },
    val: { svcId: svc, localSet: svc * 4, extSet: svc * 4 + 2, flags: FE_NODE_PORT },
  };
}

function set(svc: number, backends: TestSet['backends']): TestSet {
  return { id: svc * 4 + 2, backends };
}

/** The ICMP error cases of one family. */
function errorCases(f: Fam, mac: MacEnv): NatCase[] {
  const v = f.family === 'IPv6' ? 'IPv6' : 'IPv4';
  const inMac = { src: mac.client, dst: mac.node1 };
  const fromNode2 = { src: mac.node2, dst: mac.node1 };
  const toNode2 = { src: mac.node1, dst: mac.node2 };
  const toClient = { src: mac.node1, dst: mac.client };
  const fePort = (proto: Proto) => (proto === 'TCP' ? NODE_PORT : UDP_NODE_PORT);
  const data = TCP_FLAGS.ACK | TCP_FLAGS.PSH;
  const synAck = TCP_FLAGS.SYN | TCP_FLAGS.ACK;
  const flagsOf = (proto: Proto) => (proto === 'TCP' ? data : undefined);
  /** The client's packet, as it sent it (and as an error about it must quote it back). */
  const fromClient = (proto: Proto, hop?: number) => f.pkt(proto, f.client, CLIENT_PORT, f.node1, fePort(proto), inMac, flagsOf(proto), hop);
  const xdp = (p: Buffer): Step => ({ program: 'bpx_xdp', packet: p });
  const local = (proto: Proto, svc: number) => ({ frontends: [nodePort(f, proto, svc)], sets: [set(svc, [be(svc * 10 + 1, f.localPod, proto, true)])] });
  const remote = (proto: Proto, svc: number) => ({ frontends: [nodePort(f, proto, svc)], sets: [set(svc, [be(svc * 10 + 1, f.remotePod, proto, false)])] });
  /** The packet node1 sent to the remote backend for the client's (SNATed and DNATed). */
  const snated = (proto: Proto, port: number, hop?: number) => f.pkt(proto, f.node1, port, f.remotePod, 80, toNode2, flagsOf(proto), hop);
  const err = (m: { src: string; dst: string }, src: string, dst: string, [type, code]: [number, number], quote: Buffer, mtu = 0) =>
    f.icmp(m, src, dst, icmpError(f.family, type, code, quote, mtu));
  const mtu = f.family === 'IPv6' ? 1280 : 1400;
  const cases: NatCase[] = [];

  cases.push(
    {
      name: `${v}: "${f.family === 'IPv6' ? 'packet too big' : 'fragmentation needed'}" from node2 about an SNATed TCP segment to a remote backend: to the client, quoting what it sent, from the NodePort address`,
      ...remote('TCP', 2), before: [xdp(fromClient('TCP'))], snat: true,
      step: (port) => xdp(err(fromNode2, f.node2, f.node1, f.tooBig, ipPart(snated('TCP', port)), mtu)),
      verdict: XDP_REDIRECT, output: () => err(toClient, f.node1, f.client, f.tooBig, ipPart(fromClient('TCP')), mtu),
      counter: { event: 'pkt_icmp_err_to_client' },
    },
    {
      name: `${v}: port unreachable from the remote backend of a UDP flow: to the client, quoting its datagram to the NodePort`,
      ...remote('UDP', 3), before: [xdp(fromClient('UDP'))], snat: true,
      step: (port) => xdp(err(fromNode2, f.remotePod, f.node1, f.portUnreach, ipPart(snated('UDP', port)))),
      verdict: XDP_REDIRECT, output: () => err(toClient, f.node1, f.client, f.portUnreach, ipPart(fromClient('UDP'))),
      counter: { event: 'pkt_icmp_err_to_client' },
    },
    {
      name: `${v}: time exceeded from a router about an SNATed TCP segment, quoting only 8 bytes of TCP (no TCP checksum in the quote): to the client`,
      ...remote('TCP', 4), before: [xdp(fromClient('TCP'))], snat: true,
      step: (port) => {
        const q = ipPart(snated('TCP', port, 1), (f.family === 'IPv6' ? 40 : 20) + 8);
        return xdp(err(fromNode2, f.node2, f.node1, f.timeExceeded, q));
      },
      verdict: XDP_REDIRECT,
      output: () => err(toClient, f.node1, f.client, f.timeExceeded, ipPart(fromClient('TCP', 1), (f.family === 'IPv6' ? 40 : 20) + 8)),
      counter: { event: 'pkt_icmp_err_to_client' },
    },
    {
      name: `${v}: port unreachable from the client about a local backend's UDP reply: to the stack for the backend, quoting the reply as the backend sent it`,
      ...local('UDP', 5), before: [xdp(fromClient('UDP'))],
      step: () => xdp(err(inMac, f.client, f.node1, f.portUnreach, ipPart(f.pkt('UDP', f.node1, UDP_NODE_PORT, f.client, CLIENT_PORT)))),
      verdict: XDP_PASS, output: () => err(inMac, f.client, f.localPod, f.portUnreach, ipPart(f.pkt('UDP', f.localPod, 80, f.client, CLIENT_PORT))),
      counter: { event: 'pkt_icmp_err_to_backend' },
    },
    {
      name: `${v}: "${f.family === 'IPv6' ? 'packet too big' : 'fragmentation needed'}" from a router on the client's side about a remote backend's reply: to the backend, from node1's NAT port, quoting the reply as the backend sent it`,
      ...remote('TCP', 6), before: [xdp(fromClient('TCP'))], snat: true,
      step: () => xdp(err(inMac, f.router, f.node1, f.tooBig, ipPart(f.pkt('TCP', f.node1, NODE_PORT, f.client, CLIENT_PORT, undefined, synAck)), mtu)),
      verdict: XDP_REDIRECT,
      output: (port) => err(toNode2, f.node1, f.remotePod, f.tooBig, ipPart(f.pkt('TCP', f.remotePod, 80, f.node1, port, undefined, synAck)), mtu),
      counter: { event: 'pkt_icmp_err_to_backend' },
    },
  );

  const noFlow = err(fromNode2, f.node2, f.node1, f.portUnreach, ipPart(f.pkt('UDP', f.node1, 45000, f.remotePod, 80)));
  const echo = f.icmp(inMac, f.node1, f.remotePod, { proto: f.family === 'IPv6' ? 'icmpv6' : 'icmp', type: f.echo, payload: hello });
  const aboutEcho = err(fromNode2, f.node2, f.node1, f.timeExceeded, ipPart(echo));
  const ipLen = f.family === 'IPv6' ? 40 : 20;
  const cut = (p: number) => err(fromNode2, f.node2, f.node1, f.tooBig, ipPart(snated('TCP', p), ipLen + 4), mtu);
  const ping = f.icmp(inMac, f.client, f.node1, { proto: f.family === 'IPv6' ? 'icmpv6' : 'icmp', type: f.echo, payload: hello });
  cases.push(
    {
      name: `${v}: an error quoting no flow of ours: to the stack untouched, counted`,
      ...remote('UDP', 7), before: [], step: () => xdp(noFlow), verdict: XDP_PASS, output: () => noFlow, counter: { event: 'pkt_icmp_err_no_flow' },
    },
    {
      name: `${v}: time exceeded quoting an ICMP echo (never translated): to the stack untouched, counted as no flow`,
      ...remote('UDP', 7), before: [], step: () => xdp(aboutEcho), verdict: XDP_PASS, output: () => aboutEcho, counter: { event: 'pkt_icmp_err_no_flow' },
    },
    {
      name: `${v}: an error quoting the IP header and 4 bytes only (the ports cut short): dropped as icmp_truncated, as the kernel drops it`,
      ...remote('TCP', 8), before: [xdp(fromClient('TCP'))],
      step: (port) => xdp(cut(port)), verdict: XDP_DROP, output: (port) => cut(port), counter: { drop: 'icmp_truncated' },
    },
    {
      name: `${v}: an echo request to the node (not an error): to the stack as before, pkt_pass_icmp`,
      ...remote('TCP', 8), before: [], step: () => xdp(ping), verdict: XDP_PASS, output: () => ping, counter: { event: 'pkt_pass_icmp' },
    },
    {
      name: `${v}: TC egress: the local backend's port unreachable for a UDP flow leaves from the NodePort address, quoting the client's datagram as it sent it`,
      ...local('UDP', 9), before: [xdp(fromClient('UDP'))],
      step: () => ({ program: 'bpx_tc_egress', packet: err(toClient, f.localPod, f.client, f.portUnreach, ipPart(f.pkt('UDP', f.client, CLIENT_PORT, f.localPod, 80))) }),
      verdict: TC_ACT_OK, output: () => err(toClient, f.node1, f.client, f.portUnreach, ipPart(fromClient('UDP'))),
      counter: { event: 'tc_icmp_err_rnat' },
    },
  );
  return cases;
}

/** Cases only one family has. */
function familyCases(mac: MacEnv): NatCase[] {
  const fromNode2 = { src: mac.node2, dst: mac.node1 };
  const inMac = { src: mac.client, dst: mac.node1 };
  const toClient = { src: mac.node1, dst: mac.client };
  const toNode2 = { src: mac.node1, dst: mac.node2 };
  const xdp = (p: Buffer): Step => ({ program: 'bpx_xdp', packet: p });
  const remote = { frontends: [nodePort(V4, 'UDP', 10)], sets: [set(10, [be(101, REMOTE_POD, 'UDP', false)])] };
  const remote6 = { frontends: [nodePort(V6, 'UDP', 10)], sets: [set(10, [be(101, REMOTE_POD6, 'UDP', false)])] };
  const ext = [{ type: 'hop' as const }, { type: 'dest' as const, options: Uint8Array.from([1, 10, ...new Array(10).fill(0)]) }];
  const fromClient6 = packet6('UDP', CLIENT6, CLIENT_PORT, NODE1_6, UDP_NODE_PORT, inMac, undefined, ext);
  const badIhl = (port: number) => buildPacket({ eth: fromNode2, ipv4: { src: NODE2, dst: NODE1 }, l4: icmpError('IPv4', 3, 3, quoteIhl4(port)) });
  const noSum = (frame: Buffer) => { const b = Buffer.from(frame); b.writeUInt16BE(0, 14 + 20 + 6); return b; };
  const fromClientNoSum = noSum(packet('UDP', CLIENT, CLIENT_PORT, NODE1, UDP_NODE_PORT, inMac));
  return [
    {
      name: 'IPv4: port unreachable about a UDP datagram sent without a checksum (0, allowed over IPv4): the quoted 0 stays 0, to the client',
      ...remote, before: [xdp(fromClientNoSum)], snat: true,
      step: (port) => xdp(buildPacket({ eth: fromNode2, ipv4: { src: REMOTE_POD, dst: NODE1 }, l4: icmpError('IPv4', 3, 3, ipPart(noSum(packet('UDP', NODE1, port, REMOTE_POD, 80, toNode2)))) })),
      verdict: XDP_REDIRECT,
      output: () => buildPacket({ eth: toClient, ipv4: { src: NODE1, dst: CLIENT }, l4: icmpError('IPv4', 3, 3, ipPart(fromClientNoSum)) }),
      counter: { event: 'pkt_icmp_err_to_client' },
    },
    {
      name: 'IPv4: an error quoting an IPv4 header with IHL 4: dropped as icmp_err_invalid, as the kernel drops it',
      ...remote, before: [xdp(packet('UDP', CLIENT, CLIENT_PORT, NODE1, UDP_NODE_PORT, inMac))],
      step: (port) => xdp(badIhl(port)), verdict: XDP_DROP, output: (port) => badIhl(port), counter: { drop: 'icmp_err_invalid' },
    },
    {
      name: 'IPv6: port unreachable from the remote backend quoting a datagram with hop-by-hop and destination options: the quoted headers stepped over, to the client',
      ...remote6, before: [xdp(fromClient6)], snat: true,
      step: (port) => xdp(buildPacket({ eth: fromNode2, ipv6: { src: REMOTE_POD6, dst: NODE1_6 }, l4: icmpError('IPv6', 1, 4, ipPart(packet6('UDP', NODE1_6, port, REMOTE_POD6, 80, toNode2, undefined, ext))) })),
      verdict: XDP_REDIRECT,
      output: () => buildPacket({ eth: toClient, ipv6: { src: NODE1_6, dst: CLIENT6 }, l4: icmpError('IPv6', 1, 4, ipPart(fromClient6)) }),
      counter: { event: 'pkt_icmp_err_to_client' },
    },
  ];
}

/** A UDP datagram's IPv4 header and UDP header with IHL 4 written into the header. */
function quoteIhl4(port: number): Buffer {
  return ipPart(buildPacket({ ipv4: { src: NODE1, dst: REMOTE_POD, ihl: 4 }, l4: { proto: 'udp', sport: port, dport: 80, payload: hello } }));
}

export function icmpErrorCases(mac: MacEnv): NatCase[] {
  return [...errorCases(V4, mac), ...errorCases(V6, mac), ...familyCases(mac)];
}
