// What a rendered ipvs state is made of. Per planned service: its virtual
// servers (with their real servers), its ipset entries, the addresses it binds
// to kube-ipvs0, and its rules in the one per-service chain (BPX-CLUSTER-POLICY).
// The sync sums these over services (state.ts) and writes the difference.
import type { IPFamily, Protocol } from '../../model/types.js';
import type { Scheduler } from './names.js';

export interface RealServer {
  address: string;
  port: number;
  weight: number;
}

export interface VirtualServer {
  family: IPFamily;
  /** A protocol, or 'fwmark' for a virtual server keyed by the packet mark. */
  proto: Protocol | 'fwmark';
  /** Canonical address ("" for fwmark). */
  address: string;
  port: number;
  fwmark: number;
  scheduler: string;
  /** sessionAffinity ClientIP: the persistence timeout in seconds (-p). */
  persistence: number | null;
  /** Scheduler flags (-b), sorted. */
  flags: string[];
  /** Sorted by address, then port. */
  reals: RealServer[];
}

export interface ServiceParts {
  family: IPFamily;
  virtualServers: VirtualServer[];
  /** ipset entries as "SETNAME ENTRY" (the set name includes the family). */
  entries: string[];
  /** Addresses bound to kube-ipvs0. */
  addresses: string[];
  /** Rules this service adds to BPX-CLUSTER-POLICY (nat). */
  policyRules: string[];
}

/** kube-proxy's ipvs options with kube-proxy's meanings. */
export interface IpvsConfig {
  /** Pod CIDRs per family (--cluster-cidr): traffic from elsewhere to a ClusterIP is masqueraded. */
  clusterCidrs: Readonly<Record<IPFamily, readonly string[]>>;
  masqueradeAll: boolean;
  /** --iptables-masquerade-bit: 0-14 here (bit 15 is the drop mark, 16-31 the fwmarks). */
  masqueradeBit: number;
  scheduler: Scheduler;
}

/** "tcp 10.96.0.1 80" / "fwmark IPv6 65536": one virtual server's identity. */
export function vsKey(v: Pick<VirtualServer, 'family' | 'proto' | 'address' | 'port' | 'fwmark'>): string {
  return v.proto === 'fwmark' ? `fwmark ${v.family} ${v.fwmark}` : `${v.proto} ${v.address} ${v.port}`;
}

/** Same options and same real servers: nothing to write. */
export function sameVirtualServer(a: VirtualServer, b: VirtualServer): boolean {
  return sameOptions(a, b) && a.reals.length === b.reals.length &&
    a.reals.every((r, i) => r.address === b.reals[i]!.address && r.port === b.reals[i]!.port && r.weight === b.reals[i]!.weight);
}

export function sameOptions(a: VirtualServer, b: VirtualServer): boolean {
  return a.scheduler === b.scheduler && a.persistence === b.persistence && a.flags.join(',') === b.flags.join(',');
}
