// One planned service -> the chains, sets and map elements it owns, split by
// kind of frontend. The path of a new connection:
//   services (vmap on daddr . proto . port, or on proto . port for node addresses)
//     -> service-*  (ClusterIP: masquerade from outside the cluster, pick from the internal set)
//     -> external-* (NodePort, ExternalIP, LoadBalancer: pick the set by source, masquerade per policy)
//        -> cluster-* / local-* when those sets differ from the internal one
//     -> endpoint-* (hairpin masquerade, affinity, DNAT)
//
// Endpoint choice: kube-proxy writes `numgen random mod N vmap { ... }`; nft
// 1.0.6 loads an anonymous vmap per chain in superlinear time
// (docs/findings.md), so each endpoint gets a plain rule instead, with the
// probabilities of kube-proxy's iptables mode: rule i matches with 1/(N-i)
// (`numgen random mod (N-i) 0`), the last one always. Every endpoint ends
// up with 1/N.
//
// An empty set: "drop" (a Local policy without local endpoints) drops in the
// chain itself, so the verdict follows the set chosen for this packet's source;
// "reject" (no endpoints at all) leaves the packet un-DNATed, and the
// no-endpoint maps, consulted after DNAT in the filter hooks, reject it
// (reject is not allowed in nat chains).
import type { BackendSet, Frontend, PlannedBackend, PlannedService } from '../../planner/types.js';
import { familyOf } from '../../util/ip.js';
import {
  CHAIN_MARK_MASQ, CHAIN_REJECT, MAP_FIREWALL_IPS, MAP_NO_ENDPOINT_NODEPORTS, MAP_NO_ENDPOINT_SERVICES,
  MAP_SERVICE_IPS, MAP_SERVICE_NODEPORTS, addrType, affinitySet, clusterChain, endpointChain, externalChain,
  firewallChain, localChain, nftFamily, nftProto, serviceChain, type NftFamily,
} from './names.js';
import { addChain, elementKey, newOwned, type NftConfig, type Owned } from './objects.js';

function sameSet(a: BackendSet, b: BackendSet): boolean {
  if (a === b) return true;
  if (a.onEmpty !== b.onEmpty || a.backends.length !== b.backends.length) return false;
  return a.backends.every((x, i) => x.address === b.backends[i]!.address && x.port === b.backends[i]!.port);
}

function dnatTarget(family: NftFamily, b: PlannedBackend): string {
  return family === 'ip' ? `${b.address}:${b.port}` : `[${b.address}]:${b.port}`;
}

function anonSet(items: readonly string[]): string {
  return items.length === 1 ? items[0]! : `{ ${items.join(', ')} }`;
}

/** The rules that pick an endpoint of `set` for a new connection. */
function selectionRules(s: PlannedService, family: NftFamily, set: BackendSet): string[] {
  const n = set.backends.length;
  if (n === 0) return set.onEmpty === 'drop' ? ['drop'] : [];
  const rules: string[] = [];
  if (s.affinityTimeout !== null) {
    for (const b of set.backends) rules.push(`${family} saddr @${affinitySet(s, b)} goto ${endpointChain(s, b)}`);
  }
  set.backends.forEach((b, i) => {
    rules.push(i < n - 1 ? `numgen random mod ${n - i} 0 goto ${endpointChain(s, b)}` : `goto ${endpointChain(s, b)}`);
  });
  return rules;
}

function renderEndpoints(o: Owned, s: PlannedService, family: NftFamily): void {
  const seen = new Set<string>();
  for (const set of [s.internal, s.external, s.cluster]) {
    for (const b of set.backends) {
      const chain = endpointChain(s, b);
      if (seen.has(chain)) continue;
      seen.add(chain);
      const rules = [`${family} saddr ${b.address} jump ${CHAIN_MARK_MASQ}`]; // hairpin: the endpoint reaches itself
      if (s.affinityTimeout !== null) {
        const aff = affinitySet(s, b);
        // The timeout lives in the rule, not the set, so a new timeout is a rule change and the set keeps its entries.
        o.decls.set(aff, { kind: 'set', body: `{ type ${addrType(family)} ; flags dynamic,timeout ; }` });
        rules.push(`update @${aff} { ${family} saddr timeout ${s.affinityTimeout}s }`);
      }
      rules.push(`meta l4proto ${nftProto(s)} dnat to ${dnatTarget(family, b)}`);
      addChain(o, chain, rules);
    }
  }
}

const frontendKey = (s: PlannedService, f: Frontend) => `${f.address} . ${nftProto(s)} . ${f.port}`;

function rejects(...sets: BackendSet[]): boolean {
  return sets.some((x) => x.backends.length === 0 && x.onEmpty === 'reject');
}

/** ClusterIP frontends: the service chain, which also serves external frontends whose set is the internal one. */
function renderClusterIPs(o: Owned, s: PlannedService, family: NftFamily, cfg: NftConfig): void {
  const cidrs = cfg.clusterCidrs[family];
  const rules: string[] = [];
  for (const f of s.frontends) {
    if (f.kind !== 'ClusterIP') continue;
    // Traffic from outside the pod network to a ClusterIP is masqueraded, so replies come back through this node.
    if (cidrs.length > 0) rules.push(`${family} daddr ${f.address} ${family} saddr != ${anonSet(cidrs)} jump ${CHAIN_MARK_MASQ}`);
    o.elements.set(elementKey(MAP_SERVICE_IPS, frontendKey(s, f)), `goto ${serviceChain(s)}`);
    if (rejects(s.internal)) o.elements.set(elementKey(MAP_NO_ENDPOINT_SERVICES, frontendKey(s, f)), `goto ${CHAIN_REJECT}`);
  }
  addChain(o, serviceChain(s), [...rules, ...selectionRules(s, family, s.internal)]);
}

/** The chain that picks from `set`: the service chain when the set is the internal one. */
function setChain(o: Owned, s: PlannedService, family: NftFamily, set: BackendSet, name: string): string {
  if (sameSet(set, s.internal)) return serviceChain(s);
  if (!o.decls.has(name)) addChain(o, name, selectionRules(s, family, set));
  return name;
}

/** NodePort, ExternalIP and LoadBalancer frontends. */
function renderExternal(o: Owned, s: PlannedService, family: NftFamily, cfg: NftConfig): void {
  const external = s.frontends.filter((f) => f.kind !== 'ClusterIP');
  if (external.length === 0) return;
  if (!o.decls.has(serviceChain(s))) addChain(o, serviceChain(s), selectionRules(s, family, s.internal));
  const toCluster = setChain(o, s, family, s.cluster, clusterChain(s));
  const toExternal = sameSet(s.external, s.cluster) ? toCluster : setChain(o, s, family, s.external, localChain(s));
  const cidrs = cfg.clusterCidrs[family];
  const rules: string[] = [];
  // Cluster policy: the endpoint may be on another node, so replies must come back here.
  if (!s.preserveSource) rules.push(`jump ${CHAIN_MARK_MASQ}`);
  // This node's pods and the node itself use the cluster set whatever the external policy.
  if (toCluster !== toExternal && cidrs.length > 0) rules.push(`${family} saddr ${anonSet(cidrs)} goto ${toCluster}`);
  if (s.preserveSource) rules.push(`fib saddr type local jump ${CHAIN_MARK_MASQ}`);
  if (toCluster !== toExternal) rules.push(`fib saddr type local goto ${toCluster}`);
  rules.push(`goto ${toExternal}`);
  addChain(o, externalChain(s), rules);

  const reject = rejects(s.external, s.cluster);
  for (const f of external) {
    if (f.kind === 'NodePort') {
      const k = `${nftProto(s)} . ${f.port}`;
      o.elements.set(elementKey(MAP_SERVICE_NODEPORTS, k), `goto ${externalChain(s)}`);
      if (reject) o.elements.set(elementKey(MAP_NO_ENDPOINT_NODEPORTS, k), `goto ${CHAIN_REJECT}`);
      continue;
    }
    o.elements.set(elementKey(MAP_SERVICE_IPS, frontendKey(s, f)), `goto ${externalChain(s)}`);
    if (reject) o.elements.set(elementKey(MAP_NO_ENDPOINT_SERVICES, frontendKey(s, f)), `goto ${CHAIN_REJECT}`);
  }
}

/** loadBalancerSourceRanges: LoadBalancer frontends only, checked before DNAT. */
function renderSourceRanges(o: Owned, s: PlannedService, family: NftFamily): void {
  const v = family === 'ip' ? 'IPv4' : 'IPv6';
  const ranges = s.sourceRanges.filter((r) => familyOf(r.slice(0, r.indexOf('/'))) === v);
  const lbs = s.frontends.filter((f) => f.kind === 'LoadBalancer');
  if (ranges.length === 0 || lbs.length === 0) return;
  addChain(o, firewallChain(s), [`${family} saddr ${anonSet(ranges)} return`, 'drop']);
  for (const f of lbs) o.elements.set(elementKey(MAP_FIREWALL_IPS, frontendKey(s, f)), `goto ${firewallChain(s)}`);
}

export function renderService(s: PlannedService, cfg: NftConfig): Owned {
  const family = nftFamily(s.family);
  const o = newOwned();
  renderEndpoints(o, s, family);
  renderClusterIPs(o, s, family, cfg);
  renderExternal(o, s, family, cfg);
  renderSourceRanges(o, s, family);
  return o;
}
