// The SCTP translating paths of bpf/xdp.bpf.c and bpf/tc.bpf.c, in the shape
// of xdp-nat-cases.ts (one table, checked by test/bpf/xdp-sctp.test.ts), for
// both families in one lab with IPv6 (xdp-nat6-cases.ts names its IPv6
// plan). The NodePort maps to a different target port, so every translated
// packet changes ports and its CRC32c must move with them: the expected
// packets are built with a CRC32c computed from scratch over the whole SCTP
// packet (test/helpers/packet.ts), so a byte-for-byte match is a valid CRC.
import { FE_CLUSTER_IP, FE_EXTERNAL_IP, FE_LOAD_BALANCER, FE_NODE_PORT } from '../../src/dataplane/bpf/layout.js';
import { XDP_DROP, XDP_PASS, XDP_REDIRECT, XDP_TX } from '../../src/dataplane/bpf/testrun.js';
import { buildPacket, ICMP_ERR, icmpError, ipPart, type PacketSpec } from '../helpers/packet.js';
import type { Frontend } from './xdp-cases.js';
import type { TestSet } from './xdp-harness.js';
import { CLIENT, LB_IP, LOCAL_POD, NODE1, REMOTE_POD, TC_ACT_OK, type MacEnv, type NatCase, type Step } from './xdp-nat-cases.js';
import { NODE2, NODE2_6 } from './xdp-icmp-error-cases.js';
import { CLIENT6, LB_IP6, LOCAL_POD6, NODE1_6, REMOTE_POD6 } from './xdp-nat6-cases.js';

export const SCTP_NODE_PORT = 30132;
/** The pods' port: not the NodePort, so DNAT rewrites the destination port. */
export const SCTP_TARGET_PORT = 9132;
export const SCTP_CLIENT_PORT = 40000;
/** An INIT-sized payload (a chunk header and its value, a multiple of 4 bytes). */
const CHUNK = Buffer.from('0100001401020304000100000a0a0a0a00000000', 'hex');
/** The chunks that end an association (RFC 9260 3.3): type, flags, length, value. */
export const SCTP_END_CHUNKS = {
  ABORT: Buffer.from('06000004', 'hex'),
  SHUTDOWN: Buffer.from('0700000800000001', 'hex'), // its cumulative TSN ack
  'SHUTDOWN ACK': Buffer.from('08000004', 'hex'),
  'SHUTDOWN COMPLETE': Buffer.from('0e000004', 'hex'),
} as const;

type Family = 'IPv4' | 'IPv6';
type Mac = { src: string; dst: string };

/** An SCTP packet of either family, its CRC32c valid; `payload` defaults to one INIT-like chunk. */
export function sctpPacket(src: string, sport: number, dst: string, dport: number, mac?: Mac, payload: Buffer = CHUNK, tag = 0x01020304): Buffer {
  const ip = src.includes(':') ? { ipv6: { src, dst } } : { ipv4: { src, dst } };
  const spec: PacketSpec = { ...(mac ? { eth: mac } : {}), ...ip, l4: { proto: 'sctp', sport, dport, tag, payload } };
  return buildPacket(spec);
}

/** The same packet with its checksum field 0: an skb whose CRC is offloaded (CHECKSUM_PARTIAL). */
export function withZeroCrc(frame: Buffer): Buffer {
  const b = Buffer.from(frame);
  const l4 = b.readUInt16BE(12) === 0x86dd ? 14 + 40 : 14 + 20;
  b.writeUInt32LE(0, l4 + 8);
  return b;
}

interface Addrs { node1: string; node2: string; client: string; local: string; remote: string; lb: string; clusterIp: string }
const ADDRS: Record<Family, Addrs> = {
  IPv4: { node1: NODE1, node2: NODE2, client: CLIENT, local: LOCAL_POD, remote: REMOTE_POD, lb: LB_IP, clusterIp: '10.96.0.40' },
  IPv6: { node1: NODE1_6, node2: NODE2_6, client: CLIENT6, local: LOCAL_POD6, remote: REMOTE_POD6, lb: LB_IP6, clusterIp: 'fd00:96::40' },
};

function fe(address: string, port: number, svc: number, flags: number): Frontend {
  return {
    key: { address, port, protocol: 'SCTP', family: address.includes(':') ? 'IPv6' : 'IPv4' },
    val: { svcId: svc, localSet: svc * 4, extSet: svc * 4 + 2, flags },
  };
}

function set(svc: number, backends: TestSet['backends'], empty?: TestSet['empty']): TestSet {
  return { id: svc * 4 + 2, backends, ...(empty ? { empty } : {}) };
}

const be = (id: number, address: string, local: boolean) => ({ id, address, port: SCTP_TARGET_PORT, protocol: 'SCTP' as const, local });

export function sctpCases(mac: MacEnv): NatCase[] {
  const inMac = { src: mac.client, dst: mac.node1 };
  const toNode2 = { src: mac.node1, dst: mac.node2 };
  const toClient = { src: mac.node1, dst: mac.client };
  const xdp = (p: Buffer): Step => ({ program: 'bpx_xdp', packet: p });
  const at = (p: Buffer) => () => xdp(p);
  const unchanged = (p: Buffer) => () => p;
  const cases: NatCase[] = [];

  for (const family of ['IPv4', 'IPv6'] as const) {
    const a = ADDRS[family];
    const svc = family === 'IPv4' ? 0 : 10;
    const fromClient = (dst = a.node1, dport = SCTP_NODE_PORT, payload?: Buffer) => sctpPacket(a.client, SCTP_CLIENT_PORT, dst, dport, inMac, payload);
    const toLocal = (payload?: Buffer) => sctpPacket(a.client, SCTP_CLIENT_PORT, a.local, SCTP_TARGET_PORT, inMac, payload);
    const nodePort = (n: number) => fe(a.node1, SCTP_NODE_PORT, svc + n, FE_NODE_PORT);
    const local = { frontends: [nodePort(1)], sets: [set(svc + 1, [be((svc + 1) * 10, a.local, true)])] };
    const remote = { frontends: [nodePort(2)], sets: [set(svc + 2, [be((svc + 2) * 10, a.remote, false)])] };
    const sack = Buffer.from('0300001000000001000100000000000000', 'hex').subarray(0, 16); // a SACK chunk: a later packet of the association
    const reply = (src: string, sport: number, dst: string, dport: number, m: Mac) => sctpPacket(src, sport, dst, dport, m, sack, 0x0a0b0c0d);
    const empty = fromClient();
    // 32 bytes of SCTP: the INIT chunk's initiate tag with them, which the client's stack matches an error about an INIT by (refuse.h).
    const icmpQuote = empty.subarray(14, 14 + (family === 'IPv4' ? 20 : 40) + 32);
    const refused = family === 'IPv4'
      ? buildPacket({ eth: toClient, ipv4: { src: a.node1, dst: a.client, id: 0, dontFragment: true }, l4: { proto: 'icmp', type: 3, code: 3, id: 0, seq: 0, payload: icmpQuote } })
      : buildPacket({ eth: toClient, ipv6: { src: a.node1, dst: a.client, hopLimit: 64 }, l4: { proto: 'icmpv6', type: 1, code: 4, id: 0, seq: 0, payload: icmpQuote } });
    // The IP length says 8 bytes of SCTP: a common header cut short, the frame's bytes after it padding.
    const short = family === 'IPv4'
      ? buildPacket({ eth: inMac, ipv4: { src: a.client, dst: a.node1, totalLength: 28 }, l4: { proto: 'sctp', sport: SCTP_CLIENT_PORT, dport: SCTP_NODE_PORT } })
      : buildPacket({ eth: inMac, ipv6: { src: a.client, dst: a.node1, payloadLength: 8 }, l4: { proto: 'sctp', sport: SCTP_CLIENT_PORT, dport: SCTP_NODE_PORT } });
    // ICMP errors about the SNATed association (icmp-error.h): "fragmentation needed" / "packet too big" from node2.
    const tooBig: [number, number] = family === 'IPv4' ? [ICMP_ERR.DEST_UNREACH, ICMP_ERR.FRAG_NEEDED] : [ICMP_ERR.V6_PACKET_TOO_BIG, 0];
    const mtu = family === 'IPv4' ? 1400 : 1280;
    const icmpErr = (m: Mac, src: string, dst: string, quote: Buffer) => {
      const l4 = icmpError(family, tooBig[0], tooBig[1], quote, mtu);
      return buildPacket(family === 'IPv4' ? { eth: m, ipv4: { src, dst }, l4 } : { eth: m, ipv6: { src, dst }, l4 });
    };
    const ipHdr = family === 'IPv4' ? 20 : 40;
    const snated = (port: number) => sctpPacket(a.node1, port, a.remote, SCTP_TARGET_PORT, toNode2);
    /** The client's packet as an error must quote it back: the quoted CRC32c stays the one that travelled (icmp-xlate.h). */
    const quoteBack = (port: number) => {
      const q = ipPart(fromClient());
      ipPart(snated(port)).copy(q, ipHdr + 8, ipHdr + 8, ipHdr + 12);
      return q;
    };
    cases.push(
      {
        name: `${family} SCTP: new association to a local backend: DNAT to the pod and its target port, CRC32c updated, to the stack`, ...local,
        before: [], step: at(fromClient()), verdict: XDP_PASS, output: () => toLocal(), counter: { event: 'pkt_local_new' },
      },
      {
        name: `${family} SCTP: known association to a local backend: conntrack keeps the backend`, ...local,
        before: [xdp(fromClient())], step: at(fromClient(a.node1, SCTP_NODE_PORT, sack)), verdict: XDP_PASS,
        output: () => toLocal(sack), counter: { event: 'pkt_local_ct' },
      },
      {
        name: `${family} SCTP: the local backend's reply leaves (TC egress) from the NodePort the client used, CRC32c updated`, ...local,
        before: [xdp(fromClient())],
        step: () => ({ program: 'bpx_tc_egress', packet: reply(a.local, SCTP_TARGET_PORT, a.client, SCTP_CLIENT_PORT, toClient) }),
        verdict: TC_ACT_OK, output: () => reply(a.node1, SCTP_NODE_PORT, a.client, SCTP_CLIENT_PORT, toClient), counter: { event: 'tc_reply_rnat' },
      },
      {
        name: `${family} SCTP: the local backend's reply with its CRC offloaded (checksum field 0): rewritten, the field left 0 for the kernel to fill`, ...local,
        before: [xdp(fromClient())],
        step: () => ({ program: 'bpx_tc_egress', packet: withZeroCrc(reply(a.local, SCTP_TARGET_PORT, a.client, SCTP_CLIENT_PORT, toClient)) }),
        verdict: TC_ACT_OK, output: () => withZeroCrc(reply(a.node1, SCTP_NODE_PORT, a.client, SCTP_CLIENT_PORT, toClient)), counter: { event: 'tc_reply_rnat' },
      },
      {
        name: `${family} SCTP: an INIT after the client's ABORT starts a new association: picked afresh as a new flow, not followed (sctp-ct.h)`, ...local,
        before: [xdp(fromClient()), xdp(fromClient(a.node1, SCTP_NODE_PORT, SCTP_END_CHUNKS.ABORT))], step: at(fromClient()), verdict: XDP_PASS,
        output: () => toLocal(), counter: { event: 'pkt_local_new' }, also: ['pkt_sctp_new_assoc'],
      },
      {
        name: `${family} SCTP: an INIT to a live association follows conntrack (only an ended one is picked afresh)`, ...local,
        before: [xdp(fromClient())], step: at(fromClient()), verdict: XDP_PASS, output: () => toLocal(), counter: { event: 'pkt_local_ct' },
      },
      {
        name: `${family} SCTP: the client's ABORT to a remote backend is translated like any packet of the association (same NAT port)`, ...remote,
        before: [xdp(fromClient())], step: at(fromClient(a.node1, SCTP_NODE_PORT, SCTP_END_CHUNKS.ABORT)), verdict: XDP_REDIRECT, snat: true,
        output: (port) => sctpPacket(a.node1, port, a.remote, SCTP_TARGET_PORT, toNode2, SCTP_END_CHUNKS.ABORT), counter: { event: 'pkt_remote_ct' },
      },
      {
        // No `snat`: the new flow's NAT port is a new random one, not the old flow's.
        name: `${family} SCTP: an INIT after SHUTDOWN COMPLETE to a remote backend: a new flow, the old NAT port given back (one held)`, ...remote,
        before: [xdp(fromClient()), xdp(fromClient(a.node1, SCTP_NODE_PORT, SCTP_END_CHUNKS['SHUTDOWN COMPLETE']))], step: at(fromClient()),
        verdict: XDP_REDIRECT, natHeldAfter: 1,
        output: (port) => sctpPacket(a.node1, port, a.remote, SCTP_TARGET_PORT, toNode2), counter: { event: 'pkt_remote_new' }, also: ['pkt_sctp_new_assoc'],
      },
      {
        name: `${family} SCTP: new association to a remote backend: SNAT to node1 and a NAT port, DNAT, CRC32c updated for both ports, routed to node2`, ...remote,
        before: [], step: at(fromClient()), verdict: XDP_REDIRECT, snat: true,
        output: (port) => sctpPacket(a.node1, port, a.remote, SCTP_TARGET_PORT, toNode2), counter: { event: 'pkt_remote_new' },
      },
      {
        name: `${family} SCTP: known association to a remote backend: same backend, same NAT port`, ...remote,
        before: [xdp(fromClient())], step: at(fromClient(a.node1, SCTP_NODE_PORT, sack)), verdict: XDP_REDIRECT, snat: true,
        output: (port) => sctpPacket(a.node1, port, a.remote, SCTP_TARGET_PORT, toNode2, sack), counter: { event: 'pkt_remote_ct' },
      },
      {
        name: `${family} SCTP: the remote backend's reply to the NAT port: reverse NAT to the client, from the NodePort, CRC32c updated`, ...remote,
        before: [xdp(fromClient())],
        step: (port) => xdp(reply(a.remote, SCTP_TARGET_PORT, a.node1, port, { src: mac.node2, dst: mac.node1 })), verdict: XDP_REDIRECT,
        output: () => reply(a.node1, SCTP_NODE_PORT, a.client, SCTP_CLIENT_PORT, toClient), counter: { event: 'pkt_reply_rnat' },
      },
      ...([['a LoadBalancer IP', a.lb, FE_LOAD_BALANCER], ['an external IP', a.lb, FE_EXTERNAL_IP], ['a ClusterIP routed to the node', a.clusterIp, FE_CLUSTER_IP]] as const)
        .map(([what, addr, flag]): NatCase => ({
          name: `${family} SCTP: ${what} is served like the NodePort (DNAT, CRC32c updated)`,
          frontends: [fe(addr, 80, svc + 3, flag)], sets: [set(svc + 3, [be((svc + 3) * 10, a.local, true)])],
          before: [], step: at(fromClient(addr, 80)), verdict: XDP_PASS, output: () => toLocal(), counter: { event: 'pkt_local_new' },
        })),
      {
        name: `${family} SCTP: no endpoints: ${family === 'IPv4' ? 'ICMP' : 'ICMPv6'} port unreachable quoting the IP header and 32 bytes of SCTP (the INIT and its initiate tag), as kube-proxy's REJECT`,
        frontends: [nodePort(4)], sets: [set(svc + 4, [], 'reject')],
        before: [], step: at(empty), verdict: XDP_TX, output: () => refused, counter: { event: 'pkt_refused_no_endpoints' },
      },
      {
        name: `${family} SCTP: common header cut short by the IP length: dropped as truncated_l4`, ...local,
        before: [], step: at(short), verdict: XDP_DROP, output: unchanged(short), counter: { drop: 'truncated_l4' },
      },
      {
        name: `${family} SCTP: an ICMP error from node2 quoting 8 bytes of the SNATed packet: to the client, quoting its ports and tag back`, ...remote,
        before: [xdp(fromClient())], snat: true,
        step: (port) => xdp(icmpErr({ src: mac.node2, dst: mac.node1 }, a.node2, a.node1, ipPart(snated(port), ipHdr + 8))), verdict: XDP_REDIRECT,
        output: () => icmpErr(toClient, a.node1, a.client, ipPart(fromClient(), ipHdr + 8)), counter: { event: 'pkt_icmp_err_to_client' },
      },
      {
        name: `${family} SCTP: an ICMP error quoting the whole SNATed packet: to the client, addresses and ports restored, the quoted CRC32c as it travelled`, ...remote,
        before: [xdp(fromClient())], snat: true,
        step: (port) => xdp(icmpErr({ src: mac.node2, dst: mac.node1 }, a.node2, a.node1, ipPart(snated(port)))), verdict: XDP_REDIRECT,
        output: (port) => icmpErr(toClient, a.node1, a.client, quoteBack(port)), counter: { event: 'pkt_icmp_err_to_client' },
      },
    );
  }
  return cases;
}
