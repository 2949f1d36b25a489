// The local-redirect stage of bpf/xdp.bpf.c (bpf/lib/redirect-local.h), as a
// table of packets through BPF_PROG_TEST_RUN in lab node1's namespace: a
// NodePort flow to a local backend whose veth the control plane wrote into
// bpx_local_ep_v1 / bpx_local_dev_v1 is DNATed and redirected into that veth
// (the pod's MAC, the gateway's MAC, one hop less); every case where the
// redirect cannot deliver keeps today's path to the stack (XDP_PASS) with
// the frame's Ethernet header and TTL untouched. A packet routed to the
// backend itself (no frontend: another node's NodePort flow) takes the same
// redirect. Each case: verdict, output
// packet byte for byte (valid checksums), the counters that move.
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { LOCAL_EP, LOCAL_EP_KEY } from '../../src/dataplane/bpf/layout.js';
import * as native from '../../src/dataplane/bpf/native.js';
import { XDP_PASS, XDP_REDIRECT } from '../../src/dataplane/bpf/testrun.js';
import { ipBytes } from '../../src/util/ip.js';
import { buildPacket, TCP_FLAGS, type PacketSpec } from '../helpers/packet.js';
import { counterDelta } from './xdp-harness.js';
import { CLIENT, LOCAL_POD, NODE1, NODE_PORT, packet, TC_ACT_OK, UDP_NODE_PORT } from './xdp-nat-cases.js';
import { useNatLab } from './xdp-nat-suite.js';
import { CLIENT6, LOCAL_POD6, NODE1_6 } from './xdp-nat6-cases.js';
import { FE_NODE_PORT } from '../../src/dataplane/bpf/layout.js';
import type { Frontend } from './xdp-cases.js';
import type { TestSet } from './xdp-harness.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('XDP local-redirect packet tests skipped: they build a lab and load BPF programs, which needs root');

type Proto = 'TCP' | 'UDP';
const CLIENT_PORT = 40000;
const NODE2 = '172.18.0.12';

/** The pod a1's side of node1, read from the lab. */
interface PodEnv { veth: string; ifindex: number; podMac: string; gwMac: string }

/** What the redirect maps hold for the case. */
type Maps = 'veth known' | 'no entry' | 'veth not in the devmap';

interface RedirectCase {
  name: string;
  proto: Proto;
  /** Default IPv4. */
  v6?: boolean;
  maps: Maps;
  /** Run first (the flow's first packet). */
  before?: (env: Env) => Buffer;
  step: (env: Env) => { program: 'bpx_xdp' | 'bpx_tc_egress'; packet: Buffer };
  verdict: number;
  output: (env: Env) => Buffer;
  counters: Record<string, number>;
}

interface Env { pod: PodEnv; inMac: { src: string; dst: string }; clientMac: string; node1Mac: string; node2Mac: string }

const frontend = (proto: Proto, v6 = false): Frontend => ({
  key: { address: v6 ? NODE1_6 : NODE1, port: proto === 'TCP' ? NODE_PORT : UDP_NODE_PORT, protocol: proto, family: v6 ? 'IPv6' : 'IPv4' },
  val: { svcId: 1, localSet: 4, extSet: 6, flags: FE_NODE_PORT },
});
const localSet = (proto: Proto, v6 = false): TestSet => ({ id: 6, backends: [{ id: 11, address: v6 ? LOCAL_POD6 : LOCAL_POD, port: 80, protocol: proto, local: true }] });

/** A TCP SYN over IPv6, to the NodePort or (translated) to the pod. */
const syn6 = (mac: { src: string; dst: string }, dst: string, dport: number, hopLimit: number): Buffer => buildPacket({
  eth: mac,
  ipv6: { src: CLIENT6, dst, hopLimit },
  l4: { proto: 'tcp', sport: CLIENT_PORT, dport, flags: TCP_FLAGS.SYN },
});

const fromClient = (e: Env, proto: Proto, opts: { flags?: number; ttl?: number } = {}): Buffer => {
  const spec: PacketSpec = {
    eth: e.inMac,
    ipv4: { src: CLIENT, dst: NODE1, ttl: opts.ttl ?? 64 },
    l4: proto === 'TCP'
      ? { proto: 'tcp', sport: CLIENT_PORT, dport: NODE_PORT, flags: opts.flags ?? TCP_FLAGS.SYN }
      : { proto: 'udp', sport: CLIENT_PORT, dport: UDP_NODE_PORT, payload: Buffer.from('hello\n') },
  };
  return buildPacket(spec);
};
/** The DNATed frame as it must reach the pod: its MAC, the gateway's, one hop less. */
const toPod = (e: Env, proto: Proto, ttl: number, mac: { src: string; dst: string } = { src: e.pod.gwMac, dst: e.pod.podMac }, flags: number = TCP_FLAGS.SYN): Buffer => buildPacket({
  eth: mac,
  ipv4: { src: CLIENT, dst: LOCAL_POD, ttl },
  l4: proto === 'TCP' ? { proto: 'tcp', sport: CLIENT_PORT, dport: 80, flags } : { proto: 'udp', sport: CLIENT_PORT, dport: 80, payload: Buffer.from('hello\n') },
});

/** What node2 sends for a NodePort flow it SNATed to its own address and DNATed to the pod on node1. */
const fromNode2 = (e: Env, ttl: number, mac: { src: string; dst: string } = { src: e.node2Mac, dst: e.node1Mac }): Buffer => buildPacket({
  eth: mac,
  ipv4: { src: NODE2, dst: LOCAL_POD, ttl },
  l4: { proto: 'tcp', sport: 61000, dport: 80, flags: TCP_FLAGS.SYN },
});

const redirectedNew = { 'event:pkt_local_new': 1, 'event:pkt_local_redirect': 1 };
const xdp = (p: Buffer) => ({ program: 'bpx_xdp' as const, packet: p });

const CASES: RedirectCase[] = [
  ...(['TCP', 'UDP'] as const).flatMap((proto): RedirectCase[] => [
    {
      name: `${proto}: new flow to a local backend whose veth is known: DNAT, redirected into the veth with the pod's MAC and one hop less`,
      proto, maps: 'veth known', step: (e) => xdp(fromClient(e, proto)), verdict: XDP_REDIRECT,
      output: (e) => toPod(e, proto, 63), counters: redirectedNew,
    },
    {
      name: `${proto}: known flow to that backend: conntrack keeps it, redirected`,
      proto, maps: 'veth known', before: (e) => fromClient(e, proto),
      step: (e) => xdp(fromClient(e, proto, { flags: TCP_FLAGS.ACK })), verdict: XDP_REDIRECT,
      output: (e) => toPod(e, proto, 63, undefined, TCP_FLAGS.ACK), counters: { 'event:pkt_local_ct': 1, 'event:pkt_local_redirect': 1 },
    },
    {
      name: `${proto}: the reply of a redirected flow leaves (TC egress) from the NodePort the client used`,
      proto, maps: 'veth known', before: (e) => fromClient(e, proto),
      step: (e) => ({ program: 'bpx_tc_egress', packet: packet(proto, LOCAL_POD, 80, CLIENT, CLIENT_PORT, { src: e.node1Mac, dst: e.clientMac }, TCP_FLAGS.SYN | TCP_FLAGS.ACK) }),
      verdict: TC_ACT_OK,
      output: (e) => packet(proto, NODE1, proto === 'TCP' ? NODE_PORT : UDP_NODE_PORT, CLIENT, CLIENT_PORT, { src: e.node1Mac, dst: e.clientMac }, TCP_FLAGS.SYN | TCP_FLAGS.ACK),
      counters: { 'event:tc_reply_rnat': 1 },
    },
  ]),
  {
    name: 'to no frontend, addressed to the local backend itself (the second hop of node2\'s NodePort flow, SNATed and DNATed there), veth known: redirected into the veth',
    proto: 'TCP', maps: 'veth known', step: (e) => xdp(fromNode2(e, 64)), verdict: XDP_REDIRECT,
    output: (e) => fromNode2(e, 63, { src: e.pod.gwMac, dst: e.pod.podMac }), counters: { 'event:pkt_routed_redirect': 1 },
  },
  {
    name: 'to no frontend, addressed to the local backend, no entry: to the stack untouched, as before',
    proto: 'TCP', maps: 'no entry', step: (e) => xdp(fromNode2(e, 64)), verdict: XDP_PASS,
    output: (e) => fromNode2(e, 64), counters: { 'event:pkt_pass_no_frontend': 1 },
  },
  {
    name: 'no entry for the backend (veth unknown, or its peer runs no NAPI): DNAT, to the stack as before, Ethernet and TTL untouched',
    proto: 'TCP', maps: 'no entry', step: (e) => xdp(fromClient(e, 'TCP')), verdict: XDP_PASS,
    output: (e) => toPod(e, 'TCP', 64, e.inMac), counters: { 'event:pkt_local_new': 1 },
  },
  {
    name: 'an entry whose veth left the devmap (deleted): to the stack, Ethernet and TTL untouched',
    proto: 'UDP', maps: 'veth not in the devmap', step: (e) => xdp(fromClient(e, 'UDP')), verdict: XDP_PASS,
    output: (e) => toPod(e, 'UDP', 64, e.inMac), counters: { 'event:pkt_local_new': 1 },
  },
  {
    name: 'IPv6: new flow to a local backend whose veth is known: DNAT, redirected with the pod\'s MAC and one hop less (hop limit)',
    proto: 'TCP', v6: true, maps: 'veth known', step: (e) => xdp(syn6(e.inMac, NODE1_6, NODE_PORT, 64)), verdict: XDP_REDIRECT,
    output: (e) => syn6({ src: e.pod.gwMac, dst: e.pod.podMac }, LOCAL_POD6, 80, 63), counters: redirectedNew,
  },
  {
    name: 'IPv6: hop limit 1: to the stack, not redirected',
    proto: 'TCP', v6: true, maps: 'veth known', step: (e) => xdp(syn6(e.inMac, NODE1_6, NODE_PORT, 1)), verdict: XDP_PASS,
    output: (e) => syn6(e.inMac, LOCAL_POD6, 80, 1), counters: { 'event:pkt_local_new': 1 },
  },
  {
    name: 'TTL 1: to the stack (which answers time exceeded), not redirected',
    proto: 'TCP', maps: 'veth known', step: (e) => xdp(fromClient(e, 'TCP', { ttl: 1 })), verdict: XDP_PASS,
    output: (e) => buildPacket({ eth: e.inMac, ipv4: { src: CLIENT, dst: LOCAL_POD, ttl: 1 }, l4: { proto: 'tcp', sport: CLIENT_PORT, dport: 80, flags: TCP_FLAGS.SYN } }),
    counters: { 'event:pkt_local_new': 1 },
  },
];

describe.skipIf(!isRoot)('XDP local redirect: packet cases', () => {
  const state = useNatLab('xdp-redirect', { ipv6: true });
  let pod: PodEnv | undefined;

  const linkOf = async (netns: string, dev: string) =>
    JSON.parse((await state.lab.exec(netns, ['ip', '-j', 'link', 'show', dev])).stdout)[0] as { address: string; ifindex: number };

  async function env(): Promise<Env> {
    if (!pod) {
      const a1 = state.lab.pod('a1');
      const n1 = state.lab.nodes[0]!;
      const [veth, podEth, br] = await Promise.all([linkOf(n1.netns, a1.hostVeth), linkOf(a1.netns, 'eth0'), linkOf(n1.netns, 'br0')]);
      pod = { veth: a1.hostVeth, ifindex: veth.ifindex, podMac: podEth.address, gwMac: br.address };
    }
    const { mac } = state;
    return { pod, inMac: { src: mac.client, dst: mac.node1 }, clientMac: mac.client, node1Mac: mac.node1, node2Mac: mac.node2 };
  }

  const fds = new Map<string, number>();
  /** The pinned maps, opened by path (the harness's object pinned them). */
  const fd = (name: string) => {
    if (!fds.has(name)) fds.set(name, native.objGet(join(state.h.pinDir, name)));
    return fds.get(name)!;
  };

  function writeMaps(e: Env, maps: Maps, v6 = false): void {
    const [eps, devs] = [fd('bpx_local_ep_v1'), fd('bpx_local_dev_v1')];
    const key = Buffer.alloc(LOCAL_EP_KEY.size);
    key.set(ipBytes(v6 ? LOCAL_POD6 : LOCAL_POD), LOCAL_EP_KEY.fields.addr.offset);
    key.writeUInt8(v6 ? 6 : 4, LOCAL_EP_KEY.fields.family.offset);
    const ifx = Buffer.alloc(4);
    ifx.writeUInt32LE(e.pod.ifindex);
    native.remove(eps, key);
    native.remove(devs, ifx);
    if (maps === 'no entry') return;
    const v = Buffer.alloc(LOCAL_EP.size);
    v.writeUInt32LE(e.pod.ifindex, LOCAL_EP.fields.ifindex.offset);
    Buffer.from(e.pod.podMac.replace(/:/g, ''), 'hex').copy(v, LOCAL_EP.fields.mac.offset);
    Buffer.from(e.pod.gwMac.replace(/:/g, ''), 'hex').copy(v, LOCAL_EP.fields.src_mac.offset);
    expect(native.update(eps, key, v)).toBe(0);
    if (maps === 'veth known') expect(native.update(devs, ifx, ifx)).toBe(0);
  }

  afterEach(async () => {
    if (state.h && pod) for (const v6 of [false, true]) writeMaps(await env(), 'no entry', v6);
  });
  afterAll(() => {
    for (const f of fds.values()) native.closeFd(f);
  });

  for (const c of CASES) {
    it(c.name, async () => {
      const { h } = state;
      const e = await env();
      h.clearFlows();
      h.setFrontends([frontend(c.proto, c.v6)]);
      h.setSets([localSet(c.proto, c.v6)]);
      h.setRanges([]);
      writeMaps(e, c.maps, c.v6);
      if (c.before) h.run(c.before(e));
      const before = h.readCounters();
      const step = c.step(e);
      const res = h.run(step.packet, { program: step.program });
      expect(res.retval).toBe(c.verdict);
      expect(counterDelta(before, h.readCounters())).toEqual(c.counters);
      expect(res.data.toString('hex')).toBe(c.output(e).toString('hex'));
    });
  }
});
