// ClusterIPs of packets routed to the node from elsewhere (a router with a
// route for the service CIDR via node1), through xdp.bpf.o and tc.bpf.o under
// BPF_PROG_TEST_RUN in lab node1's namespace (the NAT cases' lab, test/bpf/
// xdp-nat-lab.ts): served as a NodePort with externalTrafficPolicy Cluster
// (any backend; SNAT to node1 for a remote one; replies restored to the
// ClusterIP and port), internalTrafficPolicy Local kept to local backends and
// dropped without one. Each case: verdict, output byte for byte, the counter.
import { describe } from 'vitest';
import { FE_CLUSTER_IP } from '../../src/dataplane/bpf/layout.js';
import { XDP_DROP, XDP_PASS, XDP_REDIRECT } from '../../src/dataplane/bpf/testrun.js';
import { TCP_FLAGS } from '../helpers/packet.js';
import type { Frontend } from './xdp-cases.js';
import type { TestSet } from './xdp-harness.js';
import { CLIENT, LOCAL_POD, NODE1, packet, REMOTE_POD, TC_ACT_OK, type MacEnv, type NatCase } from './xdp-nat-cases.js';
import { itNatCases, PLACEHOLDER_MACS, useNatLab } from './xdp-nat-suite.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('xdp ClusterIP packet tests skipped: they build a lab and load BPF programs, which needs root');

const CLUSTER_IP = '10.96.3.10';
const CLIENT_PORT = 40000;
/** node1's address on its pod bridge (the lab plan). */
const GATEWAY = '10.244.1.1';
type Proto = 'TCP' | 'UDP';

/** A ClusterIP frontend as lb-tables.ts writes it: both sets are the internal one (internalTrafficPolicy). */
function clusterIP(proto: Proto, svc: number): Frontend {
  return {
    key: { address: CLUSTER_IP, port: proto === 'TCP' ? 80 : 53, protocol: proto, family: 'IPv4' },
    val: { svcId: svc, localSet: svc * 4, extSet: svc * 4, flags: FE_CLUSTER_IP },
  };
}
const internal = (svc: number, backends: TestSet['backends'], empty?: TestSet['empty']): TestSet => ({ id: svc * 4, backends, ...(empty ? { empty } : {}) });
const be = (id: number, address: string, proto: Proto, local: boolean) => ({ id, address, port: proto === 'TCP' ? 80 : 53, protocol: proto, local });

/** node1's pod bridge and pod a1, for the hairpin case. */
interface PodMacs { br0: string; pod: string }

function cases(mac: MacEnv, pm: PodMacs): NatCase[] {
  const inMac = { src: mac.client, dst: mac.node1 };
  const toNode2 = { src: mac.node1, dst: mac.node2 };
  const toClient = { src: mac.node1, dst: mac.client };
  const fePort = (proto: Proto) => (proto === 'TCP' ? 80 : 53);
  const fromClient = (proto: Proto, flags?: number) => packet(proto, CLIENT, CLIENT_PORT, CLUSTER_IP, fePort(proto), inMac, flags);
  const xdp = (p: Buffer) => ({ program: 'bpx_xdp' as const, packet: p });
  const synAck = TCP_FLAGS.SYN | TCP_FLAGS.ACK;
  const out: NatCase[] = [];
  for (const proto of ['TCP', 'UDP'] as const) {
    const local = { frontends: [clusterIP(proto, 1)], sets: [internal(1, [be(11, LOCAL_POD, proto, true)])] };
    const remote = { frontends: [clusterIP(proto, 2)], sets: [internal(2, [be(21, REMOTE_POD, proto, false)])] };
    const later = proto === 'TCP' ? TCP_FLAGS.ACK | TCP_FLAGS.PSH : undefined;
    out.push(
      {
        name: `${proto} to a ClusterIP routed to node1, local backend: DNAT to the pod, to the stack`, ...local,
        before: [], step: () => xdp(fromClient(proto)), verdict: XDP_PASS,
        output: () => packet(proto, CLIENT, CLIENT_PORT, LOCAL_POD, fePort(proto), inMac), counter: { event: 'pkt_local_new' },
      },
      {
        name: `${proto}: the local backend's reply leaves (TC egress) from the ClusterIP and port the client used`, ...local,
        before: [xdp(fromClient(proto))],
        step: () => ({ program: 'bpx_tc_egress', packet: packet(proto, LOCAL_POD, fePort(proto), CLIENT, CLIENT_PORT, toClient, synAck) }),
        verdict: TC_ACT_OK,
        output: () => packet(proto, CLUSTER_IP, fePort(proto), CLIENT, CLIENT_PORT, toClient, synAck), counter: { event: 'tc_reply_rnat' },
      },
      {
        name: `${proto} to a ClusterIP routed to node1, remote backend: SNAT to node1 and a NAT port, DNAT, routed to node2`, ...remote,
        before: [], step: () => xdp(fromClient(proto)), verdict: XDP_REDIRECT, snat: true,
        output: (port) => packet(proto, NODE1, port, REMOTE_POD, fePort(proto), toNode2), counter: { event: 'pkt_remote_new' },
      },
      {
        name: `${proto}: a known flow to the ClusterIP keeps its remote backend and NAT port`, ...remote,
        before: [xdp(fromClient(proto))], step: () => xdp(fromClient(proto, later)), verdict: XDP_REDIRECT, snat: true,
        output: (port) => packet(proto, NODE1, port, REMOTE_POD, fePort(proto), toNode2, later), counter: { event: 'pkt_remote_ct' },
      },
      {
        name: `${proto}: the remote backend's reply to the NAT port: reverse NAT to the client, from the ClusterIP and port`, ...remote,
        before: [xdp(fromClient(proto))],
        step: (port) => xdp(packet(proto, REMOTE_POD, fePort(proto), NODE1, port, { src: mac.node2, dst: mac.node1 }, synAck)), verdict: XDP_REDIRECT,
        output: () => packet(proto, CLUSTER_IP, fePort(proto), CLIENT, CLIENT_PORT, toClient, synAck), counter: { event: 'pkt_reply_rnat' },
      },
    );
  }
  const syn = fromClient('TCP');
  const fromPod = packet('TCP', LOCAL_POD, CLIENT_PORT, CLUSTER_IP, 80, { src: pm.pod, dst: pm.br0 });
  out.push(
    {
      // Seen where XDP runs on the pod bridge (--devices br0): the pod's
      // packet to its own service. DNAT alone would hand the pod a packet
      // from itself (a martian); it leaves SNATed to node1's bridge address.
      name: 'hairpin: a pod to its own ClusterIP, the only endpoint: SNAT to the node (the bridge address), DNAT to the pod',
      frontends: [clusterIP('TCP', 5)], sets: [internal(5, [be(51, LOCAL_POD, 'TCP', true)])],
      before: [], step: () => xdp(fromPod), verdict: XDP_REDIRECT, snat: true,
      output: (port) => packet('TCP', GATEWAY, port, LOCAL_POD, 80, { src: pm.br0, dst: pm.pod }), counter: { event: 'pkt_remote_new' },
    },
    {
      name: 'hairpin: the pod\'s reply to the node\'s NAT port: back to the pod from its ClusterIP and port',
      frontends: [clusterIP('TCP', 5)], sets: [internal(5, [be(51, LOCAL_POD, 'TCP', true)])],
      before: [xdp(fromPod)],
      step: (port) => xdp(packet('TCP', LOCAL_POD, 80, GATEWAY, port, { src: pm.pod, dst: pm.br0 }, synAck)), verdict: XDP_REDIRECT,
      output: () => packet('TCP', CLUSTER_IP, 80, LOCAL_POD, CLIENT_PORT, { src: pm.br0, dst: pm.pod }, synAck), counter: { event: 'pkt_reply_rnat' },
    },
    {
      // The internal set of internalTrafficPolicy: Local holds the local endpoints only.
      name: 'internalTrafficPolicy Local, a local endpoint: DNAT to it, the client\'s address kept',
      frontends: [clusterIP('TCP', 3)], sets: [internal(3, [be(31, LOCAL_POD, 'TCP', true)])],
      before: [], step: () => xdp(syn), verdict: XDP_PASS,
      output: () => packet('TCP', CLIENT, CLIENT_PORT, LOCAL_POD, 80, inMac), counter: { event: 'pkt_local_new' },
    },
    {
      name: 'internalTrafficPolicy Local, no local endpoint (endpoints elsewhere): dropped, as kube-proxy drops',
      frontends: [clusterIP('TCP', 4)], sets: [internal(4, [], 'drop')],
      before: [], step: () => xdp(syn), verdict: XDP_DROP, output: () => syn, counter: { drop: 'no_local_backend' },
    },
  );
  return out;
}

describe.skipIf(!isRoot)('ClusterIPs routed to the node, at XDP and TC (BPF_PROG_TEST_RUN in a lab node)', () => {
  let pm: PodMacs;
  const s = useNatLab('xdp-clusterip', {
    setup: async (lab) => {
      // node1 learns pod a1's MAC the way any traffic teaches it.
      await lab.client(lab.nodes[0]!, { proto: 'tcp', host: LOCAL_POD, port: 80, count: 1, timeoutMs: 2000 });
      const macOf = async (netns: string, dev: string) => (JSON.parse((await lab.exec(netns, ['ip', '-j', 'link', 'show', dev])).stdout)[0] as { address: string }).address;
      pm = { br0: await macOf(lab.nodes[0]!.netns, 'br0'), pod: await macOf(lab.pod('a1').netns, 'eth0') };
    },
  });
  const names = cases(PLACEHOLDER_MACS, { br0: '02:00:00:00:00:04', pod: '02:00:00:00:00:05' }).map((c) => c.name);
  itNatCases(names, (i) => cases(s.mac, pm)[i]!, s);
});
