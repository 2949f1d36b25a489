// The translating paths of bpf/xdp.bpf.c and bpf/tc.bpf.c, one table for two
// users: test/bpf/xdp-nat.test.ts checks every case, bench/packets.ts times
// the new-flow, known-flow and reply cases. They run inside lab node1's
// network namespace (src/lab/netns-thread.ts), whose routes and
// neighbours the expected packets name: node1 172.18.0.11 (eth0), node2
// 172.18.0.12 with pods in 10.244.2.0/24, the external client 172.18.0.100.
// In a test run the frame arrives on the namespace's loopback, so a packet
// routed out of eth0 is redirected (XDP_REDIRECT); in the lab, where it
// arrives on eth0 itself, the same path is XDP_TX.
import { FE_LOAD_BALANCER, FE_NODE_PORT, FE_PRESERVE_SRC, FE_SOURCE_RANGES } from '../../src/dataplane/bpf/layout.js';
import { XDP_DROP, XDP_PASS, XDP_REDIRECT, XDP_TX } from '../../src/dataplane/bpf/testrun.js';
import { buildPacket, TCP_FLAGS, type PacketSpec } from '../helpers/packet.js';
import type { Frontend } from './xdp-cases.js';
import type { TestSet } from './xdp-harness.js';

export const NODE1 = '172.18.0.11';
export const CLIENT = '172.18.0.100';
export const NODE_PORT = 30080;
export const UDP_NODE_PORT = 30053;
export const LOCAL_POD = '10.244.1.10';
export const REMOTE_POD = '10.244.2.10';
export const LOCAL_POD2 = '10.244.1.11';
/** A LoadBalancer ingress IP routed to node1. */
export const LB_IP = '192.0.2.10';
/** On the wire's /24, but no host: the route is there, the neighbour never is. */
export const NO_NEIGH_HOST = '172.18.0.13';
/** Nothing routes there from node1 (the lab has no default route). */
export const UNROUTED = '192.0.2.99';
export const NAT_PORT_MIN = 61000;
export const NAT_PORT_MAX = 65535;
export const TC_ACT_OK = 0;

/** MACs of the lab the expected packets carry. */
export interface MacEnv { node1: string; node2: string; client: string; /** node1's eth0 */ eth0Ifindex: number }

/** The metadata xdp.bpf.c puts before a frame it passes for TC to send (bpf/lib/fib.h). */
export function tcMeta(ifindex: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(0x21787062, 0);
  b.writeUInt32LE(ifindex, 4);
  return b;
}

type Proto = 'TCP' | 'UDP';
const CLIENT_PORT = 40000;
const payload = Buffer.from('hello\n');

export function packet(proto: Proto, src: string, sport: number, dst: string, dport: number, mac?: { src: string; dst: string }, flags: number = TCP_FLAGS.SYN): Buffer {
  const spec: PacketSpec = {
    ...(mac ? { eth: mac } : {}),
    ipv4: { src, dst },
    l4: proto === 'TCP' ? { proto: 'tcp', sport, dport, flags, ...(flags & TCP_FLAGS.ACK ? { payload } : {}) } : { proto: 'udp', sport, dport, payload },
  };
  return buildPacket(spec);
}

/** Frontend svc N: NodePort on node1, its external set N*4+2 (as lb-tables.ts numbers them). */
function nodePort(proto: Proto, svc: number, flags = FE_NODE_PORT): Frontend {
  return {
    key: { address: NODE1, port: proto === 'TCP' ? NODE_PORT : UDP_NODE_PORT, protocol: proto, family: 'IPv4' },
    val: { svcId: svc, localSet: svc * 4, extSet: svc * 4 + 2, flags },
  };
}

function set(svc: number, backends: TestSet['backends'], empty?: TestSet['empty']): TestSet {
  return { id: svc * 4 + 2, backends, ...(empty ? { empty } : {}) };
}

const be = (id: number, address: string, proto: Proto, local: boolean, port = 80) => ({ id, address, port, protocol: proto, local });

export type Program = 'bpx_xdp' | 'bpx_tc_egress';

export interface Step {
  program: Program;
  packet: Buffer;
}

export interface NatCase {
  name: string;
  /** What the bench calls it, when it times it. */
  bench?: 'new flow' | 'known flow' | 'reply';
  frontends: Frontend[];
  sets: TestSet[];
  /** Run first, in order, from empty conntrack (e.g. the SYN before the data). */
  before: Step[];
  /** loadBalancerSourceRanges: [service ID, CIDR]. */
  ranges?: [number, string][];
  /** Written after `before` ran: the sets as a sync changed them under a known flow. */
  setsAfter?: TestSet[];
  /** The packet the case is about, given the SNAT port the flow got in `before` (0 when none). */
  step: (natPort: number) => Step;
  verdict: number;
  /**
   * The packet as it must leave, given the SNAT port the flow got (the port
   * is random; the case checks its range and that the flow keeps it).
   */
  output: (natPort: number) => Buffer;
  counter: { drop: string } | { event: string };
  /** Events counted besides the exit's (a fallback on the way). */
  also?: string[];
  /** How many SNAT ports are held after the step, when the case is about that. */
  natHeldAfter?: number;
  /** The case's output carries an SNAT source port. */
  snat?: boolean;
}

export function natCases(mac: MacEnv): NatCase[] {
  const inMac = { src: mac.client, dst: mac.node1 };
  const toNode2 = { src: mac.node1, dst: mac.node2 };
  const toClient = { src: mac.node1, dst: mac.client };
  const fromClient = (proto: Proto, flags?: number) =>
    packet(proto, CLIENT, CLIENT_PORT, NODE1, proto === 'TCP' ? NODE_PORT : UDP_NODE_PORT, inMac, flags);
  const xdp = (p: Buffer): Step => ({ program: 'bpx_xdp', packet: p });
  const at = (p: Buffer) => () => xdp(p);
  const fePort = (proto: Proto) => (proto === 'TCP' ? NODE_PORT : UDP_NODE_PORT);
  const cases: NatCase[] = [];

  for (const proto of ['TCP', 'UDP'] as const) {
    const local = { frontends: [nodePort(proto, 1)], sets: [set(1, [be(11, LOCAL_POD, proto, true)])] };
    const remote = { frontends: [nodePort(proto, 2)], sets: [set(2, [be(21, REMOTE_POD, proto, false)])] };
    const later = proto === 'TCP' ? TCP_FLAGS.ACK | TCP_FLAGS.PSH : undefined;
    cases.push(
      {
        name: `${proto}: new flow to a local backend: DNAT to the pod, to the stack`, bench: proto === 'TCP' ? 'new flow' : undefined, ...local,
        before: [], step: at(fromClient(proto)), verdict: XDP_PASS,
        output: () => packet(proto, CLIENT, CLIENT_PORT, LOCAL_POD, 80, inMac), counter: { event: 'pkt_local_new' },
      },
      {
        name: `${proto}: known flow to a local backend: conntrack keeps the backend`, bench: proto === 'TCP' ? 'known flow' : undefined, ...local,
        before: [xdp(fromClient(proto))], step: at(fromClient(proto, later)), verdict: XDP_PASS,
        output: () => packet(proto, CLIENT, CLIENT_PORT, LOCAL_POD, 80, inMac, later), counter: { event: 'pkt_local_ct' },
      },
      {
        name: `${proto}: the local backend's reply leaves (TC egress) from the NodePort the client used`, bench: proto === 'TCP' ? 'reply' : undefined, ...local,
        before: [xdp(fromClient(proto))],
        step: () => ({ program: 'bpx_tc_egress', packet: packet(proto, LOCAL_POD, 80, CLIENT, CLIENT_PORT, toClient, TCP_FLAGS.SYN | TCP_FLAGS.ACK) }),
        verdict: TC_ACT_OK,
        output: () => packet(proto, NODE1, fePort(proto), CLIENT, CLIENT_PORT, toClient, TCP_FLAGS.SYN | TCP_FLAGS.ACK), counter: { event: 'tc_reply_rnat' },
      },
      {
        name: `${proto}: new flow to a remote backend: SNAT to node1 and a NAT port, DNAT, routed to node2`, bench: proto === 'TCP' ? 'new flow' : undefined, ...remote,
        before: [], step: at(fromClient(proto)), verdict: XDP_REDIRECT, snat: true,
        output: (port) => packet(proto, NODE1, port, REMOTE_POD, 80, toNode2), counter: { event: 'pkt_remote_new' },
      },
      {
        name: `${proto}: known flow to a remote backend: same backend, same NAT port`, bench: proto === 'TCP' ? 'known flow' : undefined, ...remote,
        before: [xdp(fromClient(proto))], step: at(fromClient(proto, later)), verdict: XDP_REDIRECT, snat: true,
        output: (port) => packet(proto, NODE1, port, REMOTE_POD, 80, toNode2, later), counter: { event: 'pkt_remote_ct' },
      },
      {
        name: `${proto}: the remote backend's reply to the NAT port: reverse NAT to the client, from the NodePort`, bench: proto === 'TCP' ? 'reply' : undefined, ...remote,
        before: [xdp(fromClient(proto))],
        step: (port) => xdp(packet(proto, REMOTE_POD, 80, NODE1, port, { src: mac.node2, dst: mac.node1 }, TCP_FLAGS.SYN | TCP_FLAGS.ACK)), verdict: XDP_REDIRECT,
        output: () => packet(proto, NODE1, fePort(proto), CLIENT, CLIENT_PORT, toClient, TCP_FLAGS.SYN | TCP_FLAGS.ACK), counter: { event: 'pkt_reply_rnat' },
      },
    );
  }
  const unchanged = (p: Buffer) => () => p;
  const syn = fromClient('TCP');
  const toLb = packet('TCP', CLIENT, CLIENT_PORT, LB_IP, 80, inMac);
  const rst = packet('TCP', CLIENT, CLIENT_PORT, NODE1, NODE_PORT, inMac, TCP_FLAGS.RST);
  const udpIn = fromClient('UDP');
  const lbIp = (svc: number): Frontend => ({
    key: { address: LB_IP, port: 80, protocol: 'TCP', family: 'IPv4' },
    val: { svcId: svc, localSet: svc * 4, extSet: svc * 4 + 2, flags: FE_LOAD_BALANCER | FE_SOURCE_RANGES },
  });
  cases.push(
    {
      name: 'Local policy, a local backend: DNAT only, the client\'s address kept',
      frontends: [nodePort('TCP', 3, FE_NODE_PORT | FE_PRESERVE_SRC)], sets: [set(3, [be(31, LOCAL_POD, 'TCP', true)])],
      before: [], step: at(syn), verdict: XDP_PASS, output: () => packet('TCP', CLIENT, CLIENT_PORT, LOCAL_POD, 80, inMac), counter: { event: 'pkt_local_new' },
    },
    {
      name: 'Local policy, no local backend: dropped (the client times out, as with kube-proxy)',
      frontends: [nodePort('TCP', 4, FE_NODE_PORT | FE_PRESERVE_SRC)], sets: [set(4, [], 'drop')],
      before: [], step: at(syn), verdict: XDP_DROP, output: unchanged(syn), counter: { drop: 'no_local_backend' },
    },
    {
      name: 'no endpoints, TCP SYN: refused at XDP with a RST|ACK from the address and port the client used',
      frontends: [nodePort('TCP', 5)], sets: [set(5, [], 'reject')],
      before: [], step: at(syn), verdict: XDP_TX,
      output: () => buildPacket({ eth: toClient, ipv4: { src: NODE1, dst: CLIENT, id: 0, dontFragment: true }, l4: { proto: 'tcp', sport: NODE_PORT, dport: CLIENT_PORT, seq: 0, ack: 2, flags: TCP_FLAGS.RST | TCP_FLAGS.ACK, window: 0 } }),
      counter: { event: 'pkt_refused_no_endpoints' },
    },
    {
      name: 'no endpoints, TCP segment with ACK and data: a RST from its ack number',
      frontends: [nodePort('TCP', 5)], sets: [set(5, [], 'reject')],
      before: [], step: at(packet('TCP', CLIENT, CLIENT_PORT, NODE1, NODE_PORT, inMac, TCP_FLAGS.ACK | TCP_FLAGS.PSH)), verdict: XDP_TX,
      output: () => buildPacket({ eth: toClient, ipv4: { src: NODE1, dst: CLIENT, id: 0, dontFragment: true }, l4: { proto: 'tcp', sport: NODE_PORT, dport: CLIENT_PORT, seq: 0, ack: 0, flags: TCP_FLAGS.RST, window: 0 } }),
      counter: { event: 'pkt_refused_no_endpoints' },
    },
    {
      name: 'no endpoints, a TCP RST: never answered, dropped',
      frontends: [nodePort('TCP', 5)], sets: [set(5, [], 'reject')],
      before: [], step: at(rst), verdict: XDP_DROP, output: unchanged(rst), counter: { drop: 'no_endpoints' },
    },
    {
      name: 'no endpoints, UDP: ICMP port unreachable quoting the datagram\'s IP and UDP headers',
      frontends: [nodePort('UDP', 15)], sets: [set(15, [], 'reject')],
      before: [], step: at(udpIn), verdict: XDP_TX,
      output: () => buildPacket({ eth: toClient, ipv4: { src: NODE1, dst: CLIENT, id: 0, dontFragment: true }, l4: { proto: 'icmp', type: 3, code: 3, id: 0, seq: 0, payload: udpIn.subarray(14, 14 + 28) } }),
      counter: { event: 'pkt_refused_no_endpoints' },
    },
    {
      name: 'frontend whose backend set is missing (a sync in flight): dropped',
      frontends: [nodePort('TCP', 6)], sets: [],
      before: [], step: at(syn), verdict: XDP_DROP, output: unchanged(syn), counter: { drop: 'no_backend' },
    },
    {
      name: 'remote backend with no route from node1: dropped',
      frontends: [nodePort('TCP', 7)], sets: [set(7, [be(71, UNROUTED, 'TCP', false)])],
      before: [], step: at(syn), verdict: XDP_DROP, output: unchanged(syn), counter: { drop: 'fib_failed' },
    },
    {
      name: 'remote backend whose next hop has no neighbour entry: translated, passed for TC to send with bpf_redirect_neigh',
      frontends: [nodePort('TCP', 8)], sets: [set(8, [be(81, NO_NEIGH_HOST, 'TCP', false)])],
      before: [], step: at(syn), verdict: XDP_PASS, snat: true,
      output: (port) => Buffer.concat([tcMeta(mac.eth0Ifindex), packet('TCP', NODE1, port, NO_NEIGH_HOST, 80, inMac)]), counter: { event: 'pkt_neigh_via_tc' },
    },
    {
      name: 'UDP: known flow whose backend left the service: re-selected (a live backend), not followed',
      frontends: [nodePort('UDP', 10)], sets: [set(10, [be(101, LOCAL_POD, 'UDP', true)])],
      before: [xdp(fromClient('UDP'))], setsAfter: [set(10, [be(102, LOCAL_POD2, 'UDP', true)])],
      step: at(fromClient('UDP')), verdict: XDP_PASS, output: () => packet('UDP', CLIENT, CLIENT_PORT, LOCAL_POD2, 80, inMac),
      counter: { event: 'pkt_local_new' }, also: ['pkt_ct_reselect'],
    },
    {
      name: 'TCP: known flow to a remote backend that left the service: re-selected, its old NAT port given back',
      frontends: [nodePort('TCP', 11)], sets: [set(11, [be(111, REMOTE_POD, 'TCP', false)])],
      before: [xdp(syn)], setsAfter: [set(11, [be(112, LOCAL_POD, 'TCP', true)])],
      step: at(fromClient('TCP', TCP_FLAGS.ACK | TCP_FLAGS.PSH)), verdict: XDP_PASS,
      output: () => packet('TCP', CLIENT, CLIENT_PORT, LOCAL_POD, 80, inMac, TCP_FLAGS.ACK | TCP_FLAGS.PSH),
      counter: { event: 'pkt_local_new' }, also: ['pkt_ct_reselect'], natHeldAfter: 0,
    },
    {
      name: 'LoadBalancer IP with source ranges, client inside one: served (DNAT to the pod)',
      frontends: [lbIp(13)], sets: [set(13, [be(131, LOCAL_POD, 'TCP', true)])], ranges: [[13, '10.0.0.0/8'], [13, `${CLIENT}/32`], [14, '0.0.0.0/0']],
      before: [], step: at(toLb), verdict: XDP_PASS, output: () => packet('TCP', CLIENT, CLIENT_PORT, LOCAL_POD, 80, inMac), counter: { event: 'pkt_local_new' },
    },
    {
      name: 'LoadBalancer IP with source ranges, client outside all of them (another service\'s range would admit it): dropped',
      frontends: [lbIp(13)], sets: [set(13, [be(131, LOCAL_POD, 'TCP', true)])], ranges: [[13, '10.0.0.0/8'], [13, '172.18.0.0/30'], [14, '0.0.0.0/0']],
      before: [], step: at(toLb), verdict: XDP_DROP, output: unchanged(toLb), counter: { drop: 'source_range' },
    },
    {
      name: 'ClientIP affinity: a new flow of a client goes to the backend its last flow used, not to the Maglev pick',
      frontends: [nodePort('TCP', 12)], sets: [{ ...set(12, [be(121, LOCAL_POD, 'TCP', true)]), affinity: 60 }],
      before: [xdp(syn)],
      setsAfter: [{ ...set(12, [be(121, LOCAL_POD, 'TCP', true), be(122, LOCAL_POD2, 'TCP', true)]), affinity: 60, maglevAll: 122 }],
      step: at(packet('TCP', CLIENT, CLIENT_PORT + 1, NODE1, NODE_PORT, inMac)), verdict: XDP_PASS,
      output: () => packet('TCP', CLIENT, CLIENT_PORT + 1, LOCAL_POD, 80, inMac), counter: { event: 'pkt_local_new' }, also: ['pkt_affinity_hit'],
    },
    {
      name: 'new flow to a set without a Maglev table: a random backend of the set, counted as pkt_maglev_miss',
      frontends: [nodePort('TCP', 9)], sets: [{ ...set(9, [be(91, LOCAL_POD, 'TCP', true)]), maglev: false }],
      before: [], step: at(syn), verdict: XDP_PASS, output: () => packet('TCP', CLIENT, CLIENT_PORT, LOCAL_POD, 80, inMac),
      counter: { event: 'pkt_local_new' }, also: ['pkt_maglev_miss'],
    },
  );
  return cases;
}
