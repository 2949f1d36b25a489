// What a rendered iptables state is made of, per owner (the fixed chains, or
// one planned service): the chains it owns whole, and the rules it adds to
// the index chains every service shares (KUBE-SERVICES, KUBE-NODEPORTS, ...).
// An incremental sync rewrites the changed owners' chains and the index chains.
import type { IPFamily } from '../../model/types.js';
import type { XtTable } from './names.js';

export interface Owned {
  /** Chains this owner declares, by table: name -> rules (the text after "-A NAME "). */
  chains: Record<XtTable, Map<string, string[]>>;
  /** Rules this owner adds to index chains, by table and chain. */
  index: Record<XtTable, Map<string, string[]>>;
}

export function newOwned(): Owned {
  return { chains: { nat: new Map(), filter: new Map() }, index: { nat: new Map(), filter: new Map() } };
}

export function addIndexRule(o: Owned, table: XtTable, chain: string, rule: string): void {
  let list = o.index[table].get(chain);
  if (!list) o.index[table].set(chain, (list = []));
  list.push(rule);
}

/** kube-proxy's iptables options, with kube-proxy's meanings. */
export interface XtConfig {
  /** Pod CIDRs per family (--cluster-cidr): traffic from elsewhere to a ClusterIP is masqueraded. */
  clusterCidrs: Readonly<Record<IPFamily, readonly string[]>>;
  /** --masquerade-all: masquerade every connection to a ClusterIP. */
  masqueradeAll: boolean;
  /** --iptables-masquerade-bit (0-31, default 14): the packet-mark bit that asks KUBE-POSTROUTING to masquerade. */
  masqueradeBit: number;
  /**
   * --iptables-localhost-nodeports, and NodePorts served on every local address:
   * NodePorts also answer on 127.0.0.0/8 (IPv4 only; needs route_localnet, which the mode sets).
   */
  localhostNodePorts: boolean;
}

export const DEFAULT_MASQUERADE_BIT = 14;

export function sameOwned(a: Owned, b: Owned): boolean {
  for (const part of ['chains', 'index'] as const) {
    for (const t of ['nat', 'filter'] as const) {
      const x = a[part][t];
      const y = b[part][t];
      if (x.size !== y.size) return false;
      for (const [k, r] of x) {
        const o = y.get(k);
        if (!o || o.length !== r.length || o.some((v, i) => v !== r[i])) return false;
      }
    }
  }
  return true;
}
