// The IPv6 translating paths of bpf/xdp.bpf.c and bpf/tc.bpf.c, beside
// xdp-nat-cases.ts's IPv4 ones and in its shape (one table, checked by
// test/bpf/xdp-nat6.test.ts). They run inside lab node1's network namespace
// with the lab's IPv6 plan (src/lab/README.md): node1 fd00:18::11 (eth0),
// node2 fd00:18::12 with pods in fd00:244:2::/64, the external client
// fd00:18::100. Every expected packet is built with valid checksums, so a
// case compares byte for byte: addresses, ports, MACs, the TCP/UDP checksum
// over the 128-bit pseudo header, ICMPv6's.
import { FE_LOAD_BALANCER, FE_NODE_PORT, FE_PRESERVE_SRC, FE_SOURCE_RANGES } from '../../src/dataplane/bpf/layout.js';
import { XDP_DROP, XDP_PASS, XDP_REDIRECT, XDP_TX } from '../../src/dataplane/bpf/testrun.js';
import { buildPacket, TCP_FLAGS, type Ipv6Ext, type PacketSpec } from '../helpers/packet.js';
import type { Frontend } from './xdp-cases.js';
import type { TestSet } from './xdp-harness.js';
import { TC_ACT_OK, tcMeta, type MacEnv, type NatCase, type Step } from './xdp-nat-cases.js';

export const NODE1_6 = 'fd00:18::11';
export const CLIENT6 = 'fd00:18::100';
export const LOCAL_POD6 = 'fd00:244:1::10';
export const LOCAL_POD6_2 = 'fd00:244:1::11';
export const REMOTE_POD6 = 'fd00:244:2::10';
/** A LoadBalancer ingress IP routed to node1 (documentation prefix). */
export const LB_IP6 = '2001:db8::10';
/** On the wire's /64, but no host: the route is there, the neighbour never is. */
export const NO_NEIGH_HOST6 = 'fd00:18::13';
/** Nothing routes there from node1 (the lab has no default route). */
export const UNROUTED6 = '2001:db8::99';
export const NODE_PORT = 30080;
export const UDP_NODE_PORT = 30053;

type Proto = 'TCP' | 'UDP';
const CLIENT_PORT = 40000;
const payload = Buffer.from('hello\n');

/** An IPv6 TCP or UDP packet, with extension headers when given. */
export function packet6(proto: Proto, src: string, sport: number, dst: string, dport: number,
  mac?: { src: string; dst: string }, flags: number = TCP_FLAGS.SYN, ext?: Ipv6Ext[]): Buffer {
  const spec: PacketSpec = {
    ...(mac ? { eth: mac } : {}),
    ipv6: { src, dst, ...(ext ? { ext } : {}) },
    l4: proto === 'TCP' ? { proto: 'tcp', sport, dport, flags, ...(flags & TCP_FLAGS.ACK ? { payload } : {}) } : { proto: 'udp', sport, dport, payload },
  };
  return buildPacket(spec);
}

/** Frontend svc N: NodePort on node1's IPv6 address, its external set N*4+2 (as lb-tables.ts numbers them). */
function nodePort(proto: Proto, svc: number, flags = FE_NODE_PORT): Frontend {
  return {
    key: { address: NODE1_6, port: proto === 'TCP' ? NODE_PORT : UDP_NODE_PORT, protocol: proto, family: 'IPv6' },
    val: { svcId: svc, localSet: svc * 4, extSet: svc * 4 + 2, flags },
  };
}

function set(svc: number, backends: TestSet['backends'], empty?: TestSet['empty']): TestSet {
  return { id: svc * 4 + 2, backends, ...(empty ? { empty } : {}) };
}

const be = (id: number, address: string, proto: Proto, local: boolean, port = 80) => ({ id, address, port, protocol: proto, local });

/** Hop-by-hop and destination options: headers the parse stage steps over, which travel on untouched. */
const EXT: Ipv6Ext[] = [{ type: 'hop' }, { type: 'dest', options: Uint8Array.from([1, 10, ...new Array(10).fill(0)]) }];

export function nat6Cases(mac: MacEnv): NatCase[] {
  const inMac = { src: mac.client, dst: mac.node1 };
  const toNode2 = { src: mac.node1, dst: mac.node2 };
  const toClient = { src: mac.node1, dst: mac.client };
  const fePort = (proto: Proto) => (proto === 'TCP' ? NODE_PORT : UDP_NODE_PORT);
  const fromClient = (proto: Proto, flags?: number, ext?: Ipv6Ext[]) => packet6(proto, CLIENT6, CLIENT_PORT, NODE1_6, fePort(proto), inMac, flags, ext);
  const xdp = (p: Buffer): Step => ({ program: 'bpx_xdp', packet: p });
  const at = (p: Buffer) => () => xdp(p);
  const unchanged = (p: Buffer) => () => p;
  const synAck = TCP_FLAGS.SYN | TCP_FLAGS.ACK;
  const cases: NatCase[] = [];

  for (const proto of ['TCP', 'UDP'] as const) {
    const local = { frontends: [nodePort(proto, 1)], sets: [set(1, [be(11, LOCAL_POD6, proto, true)])] };
    const remote = { frontends: [nodePort(proto, 2)], sets: [set(2, [be(21, REMOTE_POD6, proto, false)])] };
    const later = proto === 'TCP' ? TCP_FLAGS.ACK | TCP_FLAGS.PSH : undefined;
    cases.push(
      {
        name: `IPv6 ${proto}: new flow to a local backend: DNAT to the pod, to the stack`, ...local,
        before: [], step: at(fromClient(proto)), verdict: XDP_PASS,
        output: () => packet6(proto, CLIENT6, CLIENT_PORT, LOCAL_POD6, 80, inMac), counter: { event: 'pkt_local_new' },
      },
      {
        name: `IPv6 ${proto}: known flow to a local backend: conntrack keeps the backend`, ...local,
        before: [xdp(fromClient(proto))], step: at(fromClient(proto, later)), verdict: XDP_PASS,
        output: () => packet6(proto, CLIENT6, CLIENT_PORT, LOCAL_POD6, 80, inMac, later), counter: { event: 'pkt_local_ct' },
      },
      {
        name: `IPv6 ${proto}: the local backend's reply leaves (TC egress) from the NodePort the client used`, ...local,
        before: [xdp(fromClient(proto))],
        step: () => ({ program: 'bpx_tc_egress', packet: packet6(proto, LOCAL_POD6, 80, CLIENT6, CLIENT_PORT, toClient, synAck) }),
        verdict: TC_ACT_OK,
        output: () => packet6(proto, NODE1_6, fePort(proto), CLIENT6, CLIENT_PORT, toClient, synAck), counter: { event: 'tc_reply_rnat' },
      },
      {
        name: `IPv6 ${proto}: new flow to a remote backend: SNAT to node1's IPv6 address and a NAT port, DNAT, routed to node2`, ...remote,
        before: [], step: at(fromClient(proto)), verdict: XDP_REDIRECT, snat: true,
        output: (port) => packet6(proto, NODE1_6, port, REMOTE_POD6, 80, toNode2), counter: { event: 'pkt_remote_new' },
      },
      {
        name: `IPv6 ${proto}: known flow to a remote backend: same backend, same NAT port`, ...remote,
        before: [xdp(fromClient(proto))], step: at(fromClient(proto, later)), verdict: XDP_REDIRECT, snat: true,
        output: (port) => packet6(proto, NODE1_6, port, REMOTE_POD6, 80, toNode2, later), counter: { event: 'pkt_remote_ct' },
      },
      {
        name: `IPv6 ${proto}: the remote backend's reply to the NAT port: reverse NAT to the client, from the NodePort`, ...remote,
        before: [xdp(fromClient(proto))],
        step: (port) => xdp(packet6(proto, REMOTE_POD6, 80, NODE1_6, port, { src: mac.node2, dst: mac.node1 }, synAck)), verdict: XDP_REDIRECT,
        output: () => packet6(proto, NODE1_6, fePort(proto), CLIENT6, CLIENT_PORT, toClient, synAck), counter: { event: 'pkt_reply_rnat' },
      },
    );
  }

  const syn = fromClient('TCP');
  const udpIn = fromClient('UDP');
  const lbIp = (svc: number): Frontend => ({
    key: { address: LB_IP6, port: 80, protocol: 'TCP', family: 'IPv6' },
    val: { svcId: svc, localSet: svc * 4, extSet: svc * 4 + 2, flags: FE_LOAD_BALANCER | FE_SOURCE_RANGES },
  });
  const toLb = packet6('TCP', CLIENT6, CLIENT_PORT, LB_IP6, 80, inMac);
  const reply6 = (l4: PacketSpec['l4']) => buildPacket({ eth: toClient, ipv6: { src: NODE1_6, dst: CLIENT6, hopLimit: 64 }, l4 });
  cases.push(
    {
      name: 'IPv6 with hop-by-hop and destination options, new flow to a local backend: DNAT, the headers kept where they are',
      frontends: [nodePort('TCP', 1)], sets: [set(1, [be(11, LOCAL_POD6, 'TCP', true)])],
      before: [], step: at(fromClient('TCP', undefined, EXT)), verdict: XDP_PASS,
      output: () => packet6('TCP', CLIENT6, CLIENT_PORT, LOCAL_POD6, 80, inMac, undefined, EXT), counter: { event: 'pkt_local_new' },
    },
    {
      name: 'IPv6 UDP with extension headers to a remote backend: SNAT + DNAT past the headers, checksum right',
      frontends: [nodePort('UDP', 2)], sets: [set(2, [be(21, REMOTE_POD6, 'UDP', false)])],
      before: [], step: at(fromClient('UDP', undefined, EXT)), verdict: XDP_REDIRECT, snat: true,
      output: (port) => packet6('UDP', NODE1_6, port, REMOTE_POD6, 80, toNode2, undefined, EXT), counter: { event: 'pkt_remote_new' },
    },
    {
      name: 'IPv6: a local backend\'s reply with a destination options header: TC egress restores the source past it',
      frontends: [nodePort('UDP', 1)], sets: [set(1, [be(11, LOCAL_POD6, 'UDP', true)])],
      before: [xdp(udpIn)],
      step: () => ({ program: 'bpx_tc_egress', packet: packet6('UDP', LOCAL_POD6, 80, CLIENT6, CLIENT_PORT, toClient, undefined, [EXT[1]!]) }),
      verdict: TC_ACT_OK,
      output: () => packet6('UDP', NODE1_6, UDP_NODE_PORT, CLIENT6, CLIENT_PORT, toClient, undefined, [EXT[1]!]), counter: { event: 'tc_reply_rnat' },
    },
    {
      name: 'IPv6, Local policy, a local backend: DNAT only, the client\'s address kept',
      frontends: [nodePort('TCP', 3, FE_NODE_PORT | FE_PRESERVE_SRC)], sets: [set(3, [be(31, LOCAL_POD6, 'TCP', true)])],
      before: [], step: at(syn), verdict: XDP_PASS, output: () => packet6('TCP', CLIENT6, CLIENT_PORT, LOCAL_POD6, 80, inMac), counter: { event: 'pkt_local_new' },
    },
    {
      name: 'IPv6, Local policy, no local backend: dropped',
      frontends: [nodePort('TCP', 4, FE_NODE_PORT | FE_PRESERVE_SRC)], sets: [set(4, [], 'drop')],
      before: [], step: at(syn), verdict: XDP_DROP, output: unchanged(syn), counter: { drop: 'no_local_backend' },
    },
    {
      name: 'IPv6, no endpoints, TCP SYN: refused at XDP with a RST|ACK from the address and port the client used',
      frontends: [nodePort('TCP', 5)], sets: [set(5, [], 'reject')],
      before: [], step: at(syn), verdict: XDP_TX,
      output: () => reply6({ proto: 'tcp', sport: NODE_PORT, dport: CLIENT_PORT, seq: 0, ack: 2, flags: TCP_FLAGS.RST | TCP_FLAGS.ACK, window: 0 }),
      counter: { event: 'pkt_refused_no_endpoints' },
    },
    {
      name: 'IPv6, no endpoints, TCP segment with ACK and data behind extension headers: a RST from its ack number, without the headers',
      frontends: [nodePort('TCP', 5)], sets: [set(5, [], 'reject')],
      before: [], step: at(fromClient('TCP', TCP_FLAGS.ACK | TCP_FLAGS.PSH, EXT)), verdict: XDP_TX,
      output: () => reply6({ proto: 'tcp', sport: NODE_PORT, dport: CLIENT_PORT, seq: 0, ack: 0, flags: TCP_FLAGS.RST, window: 0 }),
      counter: { event: 'pkt_refused_no_endpoints' },
    },
    {
      name: 'IPv6, no endpoints, a TCP RST: never answered, dropped',
      frontends: [nodePort('TCP', 5)], sets: [set(5, [], 'reject')],
      before: [], step: at(fromClient('TCP', TCP_FLAGS.RST)), verdict: XDP_DROP, output: unchanged(fromClient('TCP', TCP_FLAGS.RST)), counter: { drop: 'no_endpoints' },
    },
    {
      name: 'IPv6, no endpoints, UDP: ICMPv6 port unreachable (type 1, code 4) quoting the datagram\'s IPv6 and UDP headers',
      frontends: [nodePort('UDP', 15)], sets: [set(15, [], 'reject')],
      before: [], step: at(udpIn), verdict: XDP_TX,
      output: () => reply6({ proto: 'icmpv6', type: 1, code: 4, id: 0, seq: 0, payload: udpIn.subarray(14, 14 + 40 + 8) }),
      counter: { event: 'pkt_refused_no_endpoints' },
    },
    {
      name: 'IPv6, no endpoints, UDP behind extension headers: the ICMPv6 error quotes them too, so the client finds its socket',
      frontends: [nodePort('UDP', 15)], sets: [set(15, [], 'reject')],
      before: [], step: at(fromClient('UDP', undefined, EXT)), verdict: XDP_TX,
      output: () => reply6({ proto: 'icmpv6', type: 1, code: 4, id: 0, seq: 0, payload: fromClient('UDP', undefined, EXT).subarray(14, 14 + 40 + 8 + 16 + 8) }),
      counter: { event: 'pkt_refused_no_endpoints' },
    },
    {
      name: 'IPv6 frontend whose set names an IPv4 backend (never planned; a sync in flight or a bug): dropped, not translated across families',
      frontends: [nodePort('TCP', 6)], sets: [set(6, [be(61, '10.244.1.10', 'TCP', true)])],
      before: [], step: at(syn), verdict: XDP_DROP, output: unchanged(syn), counter: { drop: 'no_backend' },
    },
    {
      name: 'IPv6 remote backend with no route from node1: dropped',
      frontends: [nodePort('TCP', 7)], sets: [set(7, [be(71, UNROUTED6, 'TCP', false)])],
      before: [], step: at(syn), verdict: XDP_DROP, output: unchanged(syn), counter: { drop: 'fib_failed' },
    },
    {
      name: 'IPv6 remote backend whose next hop has no neighbour entry: translated, passed for TC to send with bpf_redirect_neigh',
      frontends: [nodePort('TCP', 8)], sets: [set(8, [be(81, NO_NEIGH_HOST6, 'TCP', false)])],
      before: [], step: at(syn), verdict: XDP_PASS, snat: true,
      output: (port) => Buffer.concat([tcMeta(mac.eth0Ifindex), packet6('TCP', NODE1_6, port, NO_NEIGH_HOST6, 80, inMac)]), counter: { event: 'pkt_neigh_via_tc' },
    },
    {
      name: 'IPv6 UDP: known flow whose backend left the service: re-selected, not followed',
      frontends: [nodePort('UDP', 10)], sets: [set(10, [be(101, LOCAL_POD6, 'UDP', true)])],
      before: [xdp(udpIn)], setsAfter: [set(10, [be(102, LOCAL_POD6_2, 'UDP', true)])],
      step: at(udpIn), verdict: XDP_PASS, output: () => packet6('UDP', CLIENT6, CLIENT_PORT, LOCAL_POD6_2, 80, inMac),
      counter: { event: 'pkt_local_new' }, also: ['pkt_ct_reselect'],
    },
    {
      name: 'IPv6 TCP: known flow to a remote backend that left: re-selected, its old NAT port given back',
      frontends: [nodePort('TCP', 11)], sets: [set(11, [be(111, REMOTE_POD6, 'TCP', false)])],
      before: [xdp(syn)], setsAfter: [set(11, [be(112, LOCAL_POD6, 'TCP', true)])],
      step: at(fromClient('TCP', TCP_FLAGS.ACK | TCP_FLAGS.PSH)), verdict: XDP_PASS,
      output: () => packet6('TCP', CLIENT6, CLIENT_PORT, LOCAL_POD6, 80, inMac, TCP_FLAGS.ACK | TCP_FLAGS.PSH),
      counter: { event: 'pkt_local_new' }, also: ['pkt_ct_reselect'], natHeldAfter: 0,
    },
    {
      name: 'IPv6 LoadBalancer IP with source ranges, client inside one: served',
      frontends: [lbIp(13)], sets: [set(13, [be(131, LOCAL_POD6, 'TCP', true)])], ranges: [[13, 'fd00:99::/64'], [13, 'fd00:18::/119'], [14, '::/0']],
      before: [], step: at(toLb), verdict: XDP_PASS, output: () => packet6('TCP', CLIENT6, CLIENT_PORT, LOCAL_POD6, 80, inMac), counter: { event: 'pkt_local_new' },
    },
    {
      name: 'IPv6 LoadBalancer IP with source ranges, client outside all of them (another service\'s range would admit it): dropped',
      frontends: [lbIp(13)], sets: [set(13, [be(131, LOCAL_POD6, 'TCP', true)])], ranges: [[13, 'fd00:99::/64'], [13, 'fd00:18::/121'], [14, '::/0']],
      before: [], step: at(toLb), verdict: XDP_DROP, output: unchanged(toLb), counter: { drop: 'source_range' },
    },
    {
      name: 'IPv6 ClientIP affinity: a new flow of the client goes to the backend its last flow used, not to the Maglev pick',
      frontends: [nodePort('TCP', 12)], sets: [{ ...set(12, [be(121, LOCAL_POD6, 'TCP', true)]), affinity: 60 }],
      before: [xdp(syn)],
      setsAfter: [{ ...set(12, [be(121, LOCAL_POD6, 'TCP', true), be(122, LOCAL_POD6_2, 'TCP', true)]), affinity: 60, maglevAll: 122 }],
      step: at(packet6('TCP', CLIENT6, CLIENT_PORT + 1, NODE1_6, NODE_PORT, inMac)), verdict: XDP_PASS,
      output: () => packet6('TCP', CLIENT6, CLIENT_PORT + 1, LOCAL_POD6, 80, inMac), counter: { event: 'pkt_local_new' }, also: ['pkt_affinity_hit'],
    },
    {
      name: 'IPv6 new flow to a set without a Maglev table: a random backend of the set, counted as pkt_maglev_miss',
      frontends: [nodePort('TCP', 9)], sets: [{ ...set(9, [be(91, LOCAL_POD6, 'TCP', true)]), maglev: false }],
      before: [], step: at(syn), verdict: XDP_PASS, output: () => packet6('TCP', CLIENT6, CLIENT_PORT, LOCAL_POD6, 80, inMac),
      counter: { event: 'pkt_local_new' }, also: ['pkt_maglev_miss'],
    },
  );
  return cases;
}
