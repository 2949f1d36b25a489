// Names of everything the ipvs mode makes. They are kube-proxy's ipvs-mode
// names (KUBE-CLUSTER-IP, KUBE-NODE-PORT-TCP, KUBE-MARK-MASQ, ...) with our
// prefix BPX- (BPX6- for IPv6 sets) in place of KUBE-: an operator who knows
// kube-proxy's ipsets reads ours, and `bpfproxy cleanup` can remove exactly
// ours, never kube-proxy's nor the iptables mode's KUBE-* chains. ipset names
// are at most 31 characters, chain names 28: the prefix keeps the longest
// (BPX6-LOAD-BALANCER-SOURCE-CIDR) inside both.
import type { IPFamily, Protocol } from '../../model/types.js';
import type { IpvsScheduler } from '../../util/ipvs-schedulers.js';

export const PREFIX = 'BPX-';

// The iptables tables and built-in chains we write to. These few facts are
// also in the iptables mode's folder; a mode's folder does not import another's.
export type XtTable = 'nat' | 'filter';
export const XT_TABLES: readonly XtTable[] = ['nat', 'filter'];
export const BUILTIN_CHAINS: Readonly<Record<XtTable, readonly string[]>> = {
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
};
/** kube-proxy's --iptables-masquerade-bit default. */
export const DEFAULT_MASQUERADE_BIT = 14;

/** "ns/name:port" as kube-proxy writes it in comments ("ns/name" for an unnamed port). */
export function servicePortName(s: { namespace: string; name: string; portName: string }): string {
  return s.portName ? `${s.namespace}/${s.name}:${s.portName}` : `${s.namespace}/${s.name}`;
}

/** The dummy device the virtual addresses are bound to, kube-proxy's name. */
export const DUMMY_DEVICE = 'kube-ipvs0';
/** Written as the device's alias when we create it: cleanup deletes the device only when it carries this. */
export const DUMMY_ALIAS = 'bpfproxy';

/** The word in the comment of every jump we add to a built-in chain ("bpfproxy-ipvs ..."; the iptables mode's is "bpfproxy "). */
export const JUMP_MARK = 'bpfproxy-ipvs';

// nat
export const CHAIN_SERVICES = 'BPX-SERVICES';
export const CHAIN_POSTROUTING = 'BPX-POSTROUTING';
export const CHAIN_MARK_MASQ = 'BPX-MARK-MASQ';
export const CHAIN_MARK_DROP = 'BPX-MARK-DROP';
export const CHAIN_NODE_PORT = 'BPX-NODE-PORT';
export const CHAIN_LOAD_BALANCER = 'BPX-LOAD-BALANCER';
export const CHAIN_FIREWALL = 'BPX-FIREWALL';
/** Ours, not kube-proxy's: marks this node's own traffic to external frontends whose cluster set differs (see render-service.ts). */
export const CHAIN_CLUSTER_POLICY = 'BPX-CLUSTER-POLICY';
// filter
export const CHAIN_FILTER = 'BPX-FILTER';
export const CHAIN_FORWARD = 'BPX-FORWARD';

export const OUR_CHAIN_RE = /^BPX-[A-Z-]+$/;

/** kube-proxy's --iptables-drop-bit default: the mark that asks the filter table to drop. */
export const DROP_BIT = 15;
/** The fwmark of a service's cluster-policy virtual server lives in the upper 16 bits of the mark. */
export const FWMARK_SHIFT = 16;
export const FWMARK_MASK = 0xffff0000;
/** Service IDs fit in the upper 16 bits of the mark. */
export const MAX_SERVICE_ID = 0xffff;

export function fwmarkOf(serviceId: number): number {
  return (serviceId << FWMARK_SHIFT) >>> 0;
}

export const hex = (n: number) => `0x${(n >>> 0).toString(16)}`;

/** The ipsets, as kube-proxy names them after its KUBE- prefix. */
export const SETS = {
  loopBack: 'LOOP-BACK',
  clusterIP: 'CLUSTER-IP',
  externalIP: 'EXTERNAL-IP',
  externalIPLocal: 'EXTERNAL-IP-LOCAL',
  loadBalancer: 'LOAD-BALANCER',
  loadBalancerLocal: 'LOAD-BALANCER-LOCAL',
  loadBalancerFW: 'LOAD-BALANCER-FW',
  loadBalancerSourceCIDR: 'LOAD-BALANCER-SOURCE-CIDR',
  // Ours: frontends whose set is empty, so no virtual server; the filter table answers (reject or drop).
  noEndpoints: 'NO-ENDPOINTS',
  noLocalEndpoints: 'NO-LOCAL-ENDPOINTS',
} as const;
export type SetId = (typeof SETS)[keyof typeof SETS] | `NODE-PORT-${string}`;

export const nodePortSet = (p: Protocol, local: boolean): SetId => `NODE-PORT-${local ? 'LOCAL-' : ''}${p}`;

export type SetType = 'hash:ip,port' | 'hash:ip,port,ip' | 'hash:ip,port,net' | 'bitmap:port';

export function setType(id: SetId): SetType {
  if (id.startsWith('NODE-PORT-')) return 'bitmap:port';
  if (id === SETS.loopBack) return 'hash:ip,port,ip';
  if (id === SETS.loadBalancerSourceCIDR) return 'hash:ip,port,net';
  return 'hash:ip,port';
}

/** Every set of a family, in a fixed order (creation order; destruction goes backwards). */
export const ALL_SET_IDS: readonly SetId[] = [
  ...Object.values(SETS),
  ...(['TCP', 'UDP', 'SCTP'] as const).flatMap((p) => [nodePortSet(p, false), nodePortSet(p, true)]),
];

export function setName(family: IPFamily, id: SetId): string {
  return `${family === 'IPv4' ? 'BPX-' : 'BPX6-'}${id}`;
}

export const OUR_SET_RE = /^BPX6?-[A-Z-]+$/;

/** "tcp", "udp", "sctp": as ipset and iptables spell it. */
export const lower = (p: Protocol) => p.toLowerCase();

export type Scheduler = IpvsScheduler;
/** The kernel modules ipvs mode wants: the core, the chosen scheduler's, and nf_conntrack for masquerading. */
export const schedulerModule = (s: Scheduler) => `ip_vs_${s}`;
