// What a rendered ruleset is made of, per owner: the table's own skeleton, or
// one planned service. The incremental sync diffs these per owner, so a
// change touches only what its service owns.
import type { NftFamily } from './names.js';

export interface Decl {
  kind: 'chain' | 'set' | 'map';
  /** "" for a regular chain; "{ type nat hook ... }" for a base chain; "{ type ... ; }" for sets and maps. */
  body: string;
}

export interface Owned {
  /** Declarations by name. */
  decls: Map<string, Decl>;
  /** Rules of each chain this owner declares, in order. */
  rules: Map<string, string[]>;
  /** Elements of shared maps and sets, keyed `${map} ${key}`, the value "" for set elements. */
  elements: Map<string, string>;
}

export function newOwned(): Owned {
  return { decls: new Map(), rules: new Map(), elements: new Map() };
}

export function elementKey(map: string, key: string): string {
  return `${map} ${key}`;
}

export function splitElementKey(k: string): [map: string, key: string] {
  const i = k.indexOf(' ');
  return [k.slice(0, i), k.slice(i + 1)];
}

/** Who needs to be told how to pick local pods: the pod CIDRs of each family (--cluster-cidr, detect-local-mode ClusterCIDR). */
export interface NftConfig {
  /** Pod CIDRs per nft family; empty: local traffic cannot be told apart (kube-proxy then does not masquerade ClusterIP traffic). */
  clusterCidrs: Readonly<Record<NftFamily, readonly string[]>>;
}

export function addChain(o: Owned, name: string, rules: string[], body = ''): void {
  o.decls.set(name, { kind: 'chain', body });
  o.rules.set(name, rules);
}
