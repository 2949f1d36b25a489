// The lab's address plan and naming, as pure functions. Every address the lab
// configures comes from here, and the containment check accepts nothing else.
import { parseCidr, cidrContains, type Cidr } from '../util/ip.js';

export const SERVICE_CIDR_V4 = '10.96.0.0/16';
export const SERVICE_CIDR_V6 = 'fd00:96::/112';
export const WIRE_CIDR_V4 = '172.18.0.0/24';
export const WIRE_CIDR_V6 = 'fd00:18::/64';
/** Covers every node's pod CIDR (10.244.N.0/24 and fd00:244:N::/64). */
export const POD_CIDR_V4 = '10.244.0.0/16';
export const POD_CIDR_V6 = 'fd00:244::/32';
export const EXTERNAL_V4 = '172.18.0.100';
/** Second links (a node's eth1 to the external client, `sideLink`): 172.19.N.0/24 for node N. */
export const SIDE_CIDR_V4 = '172.19.0.0/16';
export const EXTERNAL_V6 = 'fd00:18::100';

/** Node N's wire address is .(10+N), and .100 is the external client: 89 nodes at most. */
export const MAX_NODES = 89;
/** Pods of a node are .10 to .254 of its /24. */
export const MAX_PODS_PER_NODE = 245;
export const DEFAULT_POD_PORTS: readonly number[] = [80, 8080, 53];

/** Interface names inside lab namespaces: fixed and short, unique per namespace. */
export const DEVICES = {
  /** The bridge in the wire namespace that joins nodes and the external client. */
  wireBridge: 'wire',
  /** A node's (or the external client's, or a pod's) uplink. */
  uplink: 'eth0',
  /** The bridge in a node namespace that its pods hang off. */
  podBridge: 'br0',
} as const;

/** Wire-side end of node N's uplink (in the wire namespace). */
export const wirePortOfNode = (n: number): string => `vn${n}`;
export const WIRE_PORT_OF_EXTERNAL = 'vext';
/** Node-side end of pod I's veth (in the node namespace), I 1-based. */
export const hostVethOfPod = (i: number): string => `vp${i}`;

export const nodeWireV4 = (n: number): string => `172.18.0.${10 + n}`;
// The IPv6 plan mirrors the IPv4 digits (172.18.0.11 <-> fd00:18::11) so either
// address of a node can be read off the other.
export const nodeWireV6 = (n: number): string => `fd00:18::${10 + n}`;
/** Node N's second link: the node is .1, the external client .100 of 172.19.N.0/24; `eth1` in the node, `sn<N>` in the external client. */
export const nodeSideV4 = (n: number): string => `172.19.${n}.1`;
export const externalSideV4 = (n: number): string => `172.19.${n}.100`;
export const NODE_SIDE_DEVICE = 'eth1';
export const externalSideDevice = (n: number): string => `sn${n}`;
export const podCidrV4 = (n: number): string => `10.244.${n}.0/24`;
export const podCidrV6 = (n: number): string => `fd00:244:${n}::/64`;
export const podGatewayV4 = (n: number): string => `10.244.${n}.1`;
export const podGatewayV6 = (n: number): string => `fd00:244:${n}::1`;
/** Pod I (1-based) of node N. */
export const podV4 = (n: number, i: number): string => `10.244.${n}.${9 + i}`;
export const podV6 = (n: number, i: number): string => `fd00:244:${n}::${9 + i}`;

export const RUN_ID_PATTERN = /^[0-9a-f]{6}$/;
export const NAMESPACE_PREFIX = 'bpx-';
export const LAB_DIR_PREFIX = 'bpfproxy-lab-';

export const wireNetns = (runId: string): string => `bpx-${runId}-wire`;
export const externalNetns = (runId: string): string => `bpx-${runId}-ext`;
export const nodeNetns = (runId: string, n: number): string => `bpx-${runId}-n${n}`;
export const podNetns = (runId: string, n: number, i: number): string => `bpx-${runId}-n${n}p${i}`;
export const netnsPath = (netns: string): string => `/var/run/netns/${netns}`;

/** Name of the per-run directory under the cgroup2 mount and under bpffs. */
export const labDirName = (runId: string): string => `${LAB_DIR_PREFIX}${runId}`;
/**
 * The cgroup leaf for processes on no node: the external client and anything run
 * in the wire namespace. The underscore keeps it apart from node names (DNS-1123).
 */
export const OUTSIDE_CGROUP = '_outside';

/**
 * Every prefix a lab route or address may fall in: the plan itself, plus what the
 * kernel adds on its own (loopback, link-local, multicast).
 */
export const CONTAINED_PREFIXES: readonly Cidr[] = [
  SERVICE_CIDR_V4, SERVICE_CIDR_V6, WIRE_CIDR_V4, WIRE_CIDR_V6, POD_CIDR_V4, POD_CIDR_V6, SIDE_CIDR_V4,
  '127.0.0.0/8', '::1/128', 'fe80::/64', 'ff00::/8', '224.0.0.0/4',
].map(mustParseCidr);

function mustParseCidr(s: string): Cidr {
  const c = parseCidr(s);
  if (!c) throw new Error(`lab plan: bad CIDR ${s}`);
  return c;
}

/**
 * True when every address of `prefix` (an address or "addr/len") lies inside one
 * of the contained prefixes. A wider route that merely includes the plan
 * (10.0.0.0/8) is not contained.
 */
export function isContainedPrefix(prefix: string): boolean {
  const text = prefix.includes('/') ? prefix : `${prefix}/${prefix.includes(':') ? 128 : 32}`;
  const c = parseCidr(text);
  if (!c) return false;
  const network = c.text.slice(0, c.text.indexOf('/'));
  return CONTAINED_PREFIXES.some((allowed) =>
    allowed.family === c.family && c.prefix >= allowed.prefix && cidrContains(allowed, network));
}
