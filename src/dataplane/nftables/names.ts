// Names of everything bpfproxy puts in its nftables tables. Chains are named
// as kube-proxy's nftables mode names them (a hash for uniqueness, then a
// readable "namespace/name/proto/port"), so an operator who knows kube-proxy's
// ruleset can read ours.
import { createHash } from 'node:crypto';
import type { IPFamily } from '../../model/types.js';
import type { PlannedBackend, PlannedService } from '../../planner/types.js';

/** One table per family, both called bpfproxy. */
export const TABLE = 'bpfproxy';
export type NftFamily = 'ip' | 'ip6';
export const NFT_FAMILIES: readonly NftFamily[] = ['ip', 'ip6'];

export function nftFamily(f: IPFamily): NftFamily {
  return f === 'IPv4' ? 'ip' : 'ip6';
}

/** The payload keyword for addresses of the family: `ip saddr`, `ip6 daddr`. */
export function addrKeyword(f: NftFamily): string {
  return f;
}

export function addrType(f: NftFamily): string {
  return f === 'ip' ? 'ipv4_addr' : 'ipv6_addr';
}

/** kube-proxy's default masquerade bit (--iptables-masquerade-bit 14). */
export const MASQ_MARK = '0x00004000';

// Tables-wide objects.
export const MAP_SERVICE_IPS = 'service-ips';
export const MAP_SERVICE_NODEPORTS = 'service-nodeports';
export const SET_NODEPORT_IPS = 'nodeport-ips';
export const MAP_NO_ENDPOINT_SERVICES = 'no-endpoint-services';
export const MAP_NO_ENDPOINT_NODEPORTS = 'no-endpoint-nodeports';
export const MAP_FIREWALL_IPS = 'firewall-ips';
export const CHAIN_SERVICES = 'services';
export const CHAIN_MARK_MASQ = 'mark-for-masquerade';
export const CHAIN_MASQUERADING = 'masquerading';
export const CHAIN_REJECT = 'reject-chain';
export const CHAIN_FIREWALL_CHECK = 'firewall-check';
export const CHAIN_ENDPOINTS_CHECK = 'endpoints-check';

/** "tcp", "udp", "sctp": as nft spells the protocol. */
export function nftProto(s: PlannedService): string {
  return s.protocol.toLowerCase();
}

/** The readable part: "ns/name/proto/portName" ("_" for an unnamed port). Port names are DNS labels, legal in nft identifiers. */
function readable(s: PlannedService): string {
  return `${s.namespace}/${s.name}/${nftProto(s)}/${s.portName || '_'}`;
}

const hashes = new WeakMap<PlannedService, string>();

/** 8 base32 characters of SHA-256 of the planned-service key, as kube-proxy hashes its chain names. */
function hashOf(s: PlannedService): string {
  let h = hashes.get(s);
  if (h === undefined) {
    const d = createHash('sha256').update(s.key).digest();
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
    let bits = 0;
    let acc = 0;
    h = '';
    for (let i = 0; h.length < 8; i++) {
      acc = (acc << 8) | d[i]!;
      bits += 8;
      while (bits >= 5 && h.length < 8) {
        bits -= 5;
        h += alphabet[(acc >>> bits) & 31];
      }
    }
    hashes.set(s, h);
  }
  return h;
}

function chain(prefix: string, s: PlannedService): string {
  return `${prefix}-${hashOf(s)}-${readable(s)}`;
}

/** ClusterIP traffic: the internal set, masquerading traffic from outside the cluster. */
export const serviceChain = (s: PlannedService) => chain('service', s);
/** NodePort, ExternalIP and LoadBalancer traffic: picks the set by where the packet comes from. */
export const externalChain = (s: PlannedService) => chain('external', s);
/** The cluster set, when it differs from the internal one. */
export const clusterChain = (s: PlannedService) => chain('cluster', s);
/** The external set, when it differs from the others (externalTrafficPolicy: Local). */
export const localChain = (s: PlannedService) => chain('local', s);
/** loadBalancerSourceRanges. */
export const firewallChain = (s: PlannedService) => chain('firewall', s);

/** nft identifiers allow no ':', so IPv6 addresses are written with '.' (fd00.244.2..30). */
function backendPart(b: PlannedBackend): string {
  return `${b.address.replaceAll(':', '.')}/${b.port}`;
}

export const endpointChain = (s: PlannedService, b: PlannedBackend) => `endpoint-${hashOf(s)}-${readable(s)}__${backendPart(b)}`;
export const affinitySet = (s: PlannedService, b: PlannedBackend) => `affinity-${hashOf(s)}-${readable(s)}__${backendPart(b)}`;
