// Names of everything bpfproxy puts in iptables. They are kube-proxy's
// (KUBE-SERVICES, KUBE-SVC-<hash>, ...) because those are the names operators
// know and their runbooks grep for; the price is that bpfproxy's iptables mode
// must not run beside kube-proxy's, exactly as two kube-proxies must not.
// bpfproxy owns only the chains below; the jumps it adds to the built-in
// chains carry a "bpfproxy" comment, so cleanup removes exactly those.
import { createHash } from 'node:crypto';
import type { IPFamily } from '../../model/types.js';
import type { PlannedBackend, PlannedService } from '../../planner/types.js';

export type XtTable = 'nat' | 'filter';
export const XT_TABLES: readonly XtTable[] = ['nat', 'filter'];

/** The built-in chains of each table we use, as the kernel has them before anyone adds rules. */
export const BUILTIN_CHAINS: Readonly<Record<XtTable, readonly string[]>> = {
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
};

// nat
export const CHAIN_SERVICES = 'KUBE-SERVICES';
export const CHAIN_NODEPORTS = 'KUBE-NODEPORTS';
export const CHAIN_POSTROUTING = 'KUBE-POSTROUTING';
export const CHAIN_MARK_MASQ = 'KUBE-MARK-MASQ';
// filter (KUBE-SERVICES again: kube-proxy has one in each table)
export const CHAIN_EXTERNAL_SERVICES = 'KUBE-EXTERNAL-SERVICES';
export const CHAIN_FIREWALL = 'KUBE-PROXY-FIREWALL';
export const CHAIN_FORWARD = 'KUBE-FORWARD';

/** The fixed chains of each table, rewritten by every full sync. */
export const FIXED_CHAINS: Readonly<Record<XtTable, readonly string[]>> = {
  nat: [CHAIN_SERVICES, CHAIN_NODEPORTS, CHAIN_POSTROUTING, CHAIN_MARK_MASQ],
  filter: [CHAIN_SERVICES, CHAIN_EXTERNAL_SERVICES, CHAIN_FIREWALL, CHAIN_FORWARD],
};

/** The chains every service contributes rules to: rewritten whole by every sync, partial or not. */
export const INDEX_CHAINS: Readonly<Record<XtTable, readonly string[]>> = {
  nat: [CHAIN_SERVICES, CHAIN_NODEPORTS],
  filter: [CHAIN_SERVICES, CHAIN_EXTERNAL_SERVICES, CHAIN_FIREWALL],
};

/** Per-service chains: kube-proxy's prefixes, then 16 base32 characters of a hash. */
export const SERVICE_CHAIN_RE = /^KUBE-(SVC|SVL|EXT|FW|SEP)-[A-Z2-7]{16}$/;

/** The word in the comment of every jump bpfproxy adds to a built-in chain. */
export const JUMP_MARK = 'bpfproxy';

/** kube-proxy's masquerade mark: bit --iptables-masquerade-bit (default 14) of the packet mark. */
export function masqueradeMark(bit: number): string {
  return `0x${(1 << bit >>> 0).toString(16)}`;
}

/** The restore program of each family. */
export function restoreCommand(f: IPFamily): string {
  return f === 'IPv4' ? 'iptables-restore' : 'ip6tables-restore';
}

export function saveCommand(f: IPFamily): string {
  return f === 'IPv4' ? 'iptables-save' : 'ip6tables-save';
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** 16 base32 characters of SHA-256 of `text`, as kube-proxy's portProtoHash. */
export function hash16(text: string): string {
  const d = createHash('sha256').update(text).digest();
  let out = '';
  let acc = 0;
  let bits = 0;
  for (let i = 0; out.length < 16; i++) {
    acc = ((acc << 8) | d[i]!) & 0xffff;
    bits += 8;
    while (bits >= 5 && out.length < 16) {
      bits -= 5;
      out += BASE32[(acc >>> bits) & 31];
    }
  }
  return out;
}

const hashes = new WeakMap<PlannedService, string>();

/** The service port's hash: its planned key (namespace/name:port/family) and protocol, as kube-proxy hashes "ns/name:port" + protocol. */
function serviceHash(s: PlannedService): string {
  let h = hashes.get(s);
  if (h === undefined) hashes.set(s, (h = hash16(`${s.key}${s.protocol.toLowerCase()}`)));
  return h;
}

/** The Cluster-policy set. A set that differs from it (Local policy, topology) gets KUBE-SVL-* (render-service.ts). */
export const svcChain = (s: PlannedService) => `KUBE-SVC-${serviceHash(s)}`;
/** NodePort, ExternalIP and LoadBalancer traffic: picks the set by where the packet comes from. */
export const extChain = (s: PlannedService) => `KUBE-EXT-${serviceHash(s)}`;
/** loadBalancerSourceRanges: in nat it lets allowed sources on to KUBE-EXT, in filter it drops the others. */
export const fwChain = (s: PlannedService) => `KUBE-FW-${serviceHash(s)}`;
/** One endpoint of one service. */
export const sepChain = (s: PlannedService, b: PlannedBackend) => `KUBE-SEP-${hash16(`${s.key}${s.protocol.toLowerCase()}${b.address}:${b.port}`)}`;

/** "ns/name:port" as kube-proxy writes it in comments ("ns/name" for an unnamed port). */
export function servicePortName(s: PlannedService): string {
  return s.portName ? `${s.namespace}/${s.name}:${s.portName}` : `${s.namespace}/${s.name}`;
}
