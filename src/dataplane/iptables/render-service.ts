// One planned service -> the chains it owns and the rules it adds to the index
// chains, split by kind of frontend. The path of a new connection (nat table):
//   KUBE-SERVICES (-d VIP -p PROTO --dport PORT) or KUBE-NODEPORTS (-p PROTO --dport NODEPORT)
//     -> KUBE-FW-*   LoadBalancer IPs with source ranges: allowed sources go on
//     -> KUBE-EXT-*  NodePort, ExternalIP, LoadBalancer: pick the set by source, masquerade per policy
//     -> KUBE-SVC-*  the Cluster-policy set (ClusterIP: masquerade from outside the pod network)
//        KUBE-SVL-*  a set that differs from it (Local policy, topology)
//     -> KUBE-SEP-*  one endpoint: hairpin masquerade, affinity, DNAT
// Endpoint choice is kube-proxy's: rule i of N matches with probability
// 1/(N-i) (`statistic --mode random`), the last always, so each gets 1/N;
// ClientIP affinity is a `recent` list per endpoint, checked first.
//
// A packet that finds an empty set leaves nat un-DNATed, still addressed to
// the frontend, and the filter table decides: REJECT (no endpoints at all) in
// KUBE-SERVICES / KUBE-EXTERNAL-SERVICES, DROP for a Local policy without
// local endpoints, DROP in KUBE-PROXY-FIREWALL for sources outside the ranges.
// A DNATed packet no longer matches those rules: they see the endpoint.
import type { IPFamily } from '../../model/types.js';
import type { BackendSet, PlannedBackend, PlannedService } from '../../planner/types.js';
import { familyOf } from '../../util/ip.js';
import {
  CHAIN_EXTERNAL_SERVICES, CHAIN_FIREWALL, CHAIN_MARK_MASQ, CHAIN_NODEPORTS, CHAIN_SERVICES,
  extChain, fwChain, hash16, sepChain, servicePortName, svcChain, type XtTable,
} from './names.js';
import { addIndexRule, newOwned, type Owned, type XtConfig } from './objects.js';
import { hostPrefix } from './render-base.js';

function sameSet(a: BackendSet, b: BackendSet): boolean {
  if (a === b) return true;
  if (a.onEmpty !== b.onEmpty || a.backends.length !== b.backends.length) return false;
  return a.backends.every((x, i) => x.address === b.backends[i]!.address && x.port === b.backends[i]!.port);
}

const proto = (s: PlannedService) => s.protocol.toLowerCase();
/** "-p tcp -m tcp --dport 80", as iptables-save writes it. */
const portMatch = (s: PlannedService, port: number) => `-p ${proto(s)} -m ${proto(s)} --dport ${port}`;
const comment = (text: string) => `-m comment --comment "${text}"`;
const host = (family: IPFamily, a: string) => `${a}${hostPrefix(family)}`;
const dnatTarget = (family: IPFamily, b: PlannedBackend) => (family === 'IPv4' ? `${b.address}:${b.port}` : `[${b.address}]:${b.port}`);
const mask = (family: IPFamily) => (family === 'IPv4' ? '255.255.255.255' : 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff');
const rejectWith = (family: IPFamily) => (family === 'IPv4' ? 'icmp-port-unreachable' : 'icmp6-port-unreachable');

/** kube-proxy's probability text: ten decimals. */
function probability(n: number): string {
  return (1 / n).toFixed(10);
}

/** The chain for each set this service uses: the cluster set is KUBE-SVC, another set KUBE-SVL. */
class SetChains {
  private readonly names: [BackendSet, string][] = [];
  constructor(private readonly s: PlannedService) {
    this.names.push([s.cluster, svcChain(s)]);
  }
  name(set: BackendSet): string {
    for (const [x, n] of this.names) if (sameSet(x, set)) return n;
    const n = `KUBE-SVL-${this.names.length === 1 ? svcChain(this.s).slice(9) : hash16(`${svcChain(this.s)}/${this.names.length}`)}`;
    this.names.push([set, n]);
    return n;
  }
}

/** The rules that pick an endpoint of `set`: affinity first, then the statistic ladder. */
function selectionRules(s: PlannedService, set: BackendSet): string[] {
  const n = set.backends.length;
  const rules: string[] = [];
  const name = servicePortName(s);
  if (s.affinityTimeout !== null) {
    for (const b of set.backends) {
      const sep = sepChain(s, b);
      rules.push(`${comment(`${name} -> ${dnatTarget(s.family, b)}`)} -m recent --rcheck --seconds ${s.affinityTimeout} --reap --name ${sep} --mask ${mask(s.family)} --rsource -j ${sep}`);
    }
  }
  set.backends.forEach((b, i) => {
    const c = comment(`${name} -> ${dnatTarget(s.family, b)}`);
    rules.push(i < n - 1 ? `${c} -m statistic --mode random --probability ${probability(n - i)} -j ${sepChain(s, b)}` : `${c} -j ${sepChain(s, b)}`);
  });
  return rules;
}

function renderEndpoints(o: Owned, s: PlannedService): void {
  for (const set of [s.internal, s.external, s.cluster]) {
    for (const b of set.backends) {
      const chain = sepChain(s, b);
      if (o.chains.nat.has(chain)) continue;
      const c = comment(servicePortName(s));
      const affinity = s.affinityTimeout !== null ? ` -m recent --set --name ${chain} --mask ${mask(s.family)} --rsource` : '';
      o.chains.nat.set(chain, [
        `-s ${host(s.family, b.address)} ${c} -j ${CHAIN_MARK_MASQ}`, // hairpin: the endpoint reaches itself
        `-p ${proto(s)} ${c}${affinity} -m ${proto(s)} -j DNAT --to-destination ${dnatTarget(s.family, b)}`,
      ]);
    }
  }
}

function ensureChain(o: Owned, table: XtTable, name: string, rules: () => string[]): void {
  if (!o.chains[table].has(name)) o.chains[table].set(name, rules());
}

/** The filter rule for traffic to `f` that nat left un-DNATed because its set was empty. */
function emptyVerdict(family: IPFamily, set: BackendSet): string {
  return set.onEmpty === 'reject' ? `-j REJECT --reject-with ${rejectWith(family)}` : '-j DROP';
}

const rejects = (...sets: BackendSet[]) => sets.some((x) => x.backends.length === 0 && x.onEmpty === 'reject');

function renderClusterIPs(o: Owned, s: PlannedService, sets: SetChains, cfg: XtConfig): void {
  const f = s.family;
  const chain = sets.name(s.internal);
  const cidr = cfg.clusterCidrs[f][0];
  const masq: string[] = [];
  const empty = s.internal.backends.length === 0;
  for (const fe of s.frontends) {
    if (fe.kind !== 'ClusterIP') continue;
    const match = `-d ${host(f, fe.address)} ${portMatch(s, fe.port)}`;
    if (empty) {
      // No jump (so no masquerade mark either, which KUBE-FORWARD would accept): the filter verdict below sees it.
      const why = s.internal.onEmpty === 'reject' ? 'has no endpoints' : 'has no local endpoints';
      addIndexRule(o, 'filter', CHAIN_SERVICES, `-d ${host(f, fe.address)} -p ${proto(s)} ${comment(`${servicePortName(s)} ${why}`)} -m ${proto(s)} --dport ${fe.port} ${emptyVerdict(f, s.internal)}`);
      continue;
    }
    addIndexRule(o, 'nat', CHAIN_SERVICES, `-d ${host(f, fe.address)} -p ${proto(s)} ${comment(`${servicePortName(s)} cluster IP`)} -m ${proto(s)} --dport ${fe.port} -j ${chain}`);
    // From outside the pod network (or always, --masquerade-all): replies must come back through this node.
    if (cfg.masqueradeAll) masq.push(`${match} ${comment(`${servicePortName(s)} cluster IP`)} -j ${CHAIN_MARK_MASQ}`);
    else if (cidr) masq.push(`! -s ${cidr} ${match} ${comment(`${servicePortName(s)} cluster IP`)} -j ${CHAIN_MARK_MASQ}`);
  }
  // The masquerade rules of the ClusterIPs go first in the chain, before the endpoint ladder.
  if (!empty) o.chains.nat.set(chain, [...masq, ...selectionRules(s, s.internal)]);
}

/** NodePort, ExternalIP and LoadBalancer frontends. */
function renderExternal(o: Owned, s: PlannedService, sets: SetChains, cfg: XtConfig): void {
  const f = s.family;
  const external = s.frontends.filter((fe) => fe.kind !== 'ClusterIP');
  if (external.length === 0) return;
  const reject = rejects(s.external, s.cluster);
  const toCluster = sets.name(s.cluster);
  const toExternal = sets.name(s.external);
  // No endpoints at all: no KUBE-EXT (and no masquerade mark); the filter verdict below sees the packet.
  if (!reject) {
    ensureChain(o, 'nat', toCluster, () => selectionRules(s, s.cluster));
    ensureChain(o, 'nat', toExternal, () => selectionRules(s, s.external));
  }
  const cidr = cfg.clusterCidrs[f][0];
  const name = servicePortName(s);
  const rules: string[] = [];
  // Cluster policy: the endpoint may be on another node, so replies must come back here.
  if (!s.preserveSource) rules.push(`${comment(`masquerade traffic for ${name} external destinations`)} -j ${CHAIN_MARK_MASQ}`);
  // This node's pods and the node itself use the cluster set whatever the external policy.
  if (toCluster !== toExternal && cidr) rules.push(`-s ${cidr} ${comment(`pod traffic for ${name} external destinations`)} -j ${toCluster}`);
  if (s.preserveSource) rules.push(`${comment(`masquerade LOCAL traffic for ${name} external destinations`)} -m addrtype --src-type LOCAL -j ${CHAIN_MARK_MASQ}`);
  if (toCluster !== toExternal) rules.push(`${comment(`route LOCAL traffic for ${name} external destinations`)} -m addrtype --src-type LOCAL -j ${toCluster}`);
  rules.push(`-j ${toExternal}`);
  if (!reject) o.chains.nat.set(extChain(s), rules);

  const verdict = reject ? `-j REJECT --reject-with ${rejectWith(f)}` : s.external.backends.length === 0 ? '-j DROP' : null;
  const why = reject ? 'has no endpoints' : 'has no local endpoints';
  const ranges = sourceRanges(s);
  for (const fe of external) {
    const kind = fe.kind === 'NodePort' ? 'nodePort' : fe.kind === 'ExternalIP' ? 'external IP' : 'loadbalancer IP';
    const c = comment(`${name} ${kind}`);
    if (reject) {
      // Nothing to reach in nat: the packet stays addressed to the frontend and meets the REJECT below.
    } else if (fe.kind === 'NodePort') {
      // One rule per port: KUBE-NODEPORTS is reached only for node addresses (render-base.ts).
      const rule = `-p ${proto(s)} ${c} -m ${proto(s)} --dport ${fe.port} -j ${extChain(s)}`;
      if (!o.index.nat.get(CHAIN_NODEPORTS)?.includes(rule)) addIndexRule(o, 'nat', CHAIN_NODEPORTS, rule);
    } else {
      const target = fe.kind === 'LoadBalancer' && ranges.length > 0 ? fwChain(s) : extChain(s);
      addIndexRule(o, 'nat', CHAIN_SERVICES, `-d ${host(f, fe.address)} -p ${proto(s)} ${c} -m ${proto(s)} --dport ${fe.port} -j ${target}`);
    }
    if (verdict) {
      addIndexRule(o, 'filter', CHAIN_EXTERNAL_SERVICES, `-d ${host(f, fe.address)} -p ${proto(s)} ${comment(`${name} ${why}`)} -m ${proto(s)} --dport ${fe.port} ${verdict}`);
    }
  }
}

function sourceRanges(s: PlannedService): string[] {
  return s.sourceRanges.filter((r) => familyOf(r.slice(0, r.indexOf('/'))) === s.family);
}

/**
 * loadBalancerSourceRanges, LoadBalancer frontends only. nat KUBE-FW-* lets
 * allowed sources on to KUBE-EXT-*; filter KUBE-FW-* (from KUBE-PROXY-FIREWALL,
 * seeing only packets nat did not DNAT) lets allowed sources on to the
 * no-endpoint verdicts and drops the rest.
 */
function renderSourceRanges(o: Owned, s: PlannedService): void {
  const ranges = sourceRanges(s);
  const lbs = s.frontends.filter((fe) => fe.kind === 'LoadBalancer');
  if (ranges.length === 0 || lbs.length === 0) return;
  const name = servicePortName(s);
  const c = comment(`${name} loadbalancer IP`);
  if (o.chains.nat.has(extChain(s))) o.chains.nat.set(fwChain(s), ranges.map((r) => `-s ${r} ${c} -j ${extChain(s)}`));
  o.chains.filter.set(fwChain(s), [...ranges.map((r) => `-s ${r} ${c} -j RETURN`), `${comment(`${name} traffic not accepted by ${fwChain(s)}`)} -j DROP`]);
  for (const fe of lbs) {
    addIndexRule(o, 'filter', CHAIN_FIREWALL, `-d ${host(s.family, fe.address)} -p ${proto(s)} ${c} -m ${proto(s)} --dport ${fe.port} -j ${fwChain(s)}`);
  }
}

export function renderService(s: PlannedService, cfg: XtConfig): Owned {
  const o = newOwned();
  const sets = new SetChains(s);
  renderEndpoints(o, s);
  renderClusterIPs(o, s, sets, cfg);
  renderExternal(o, s, sets, cfg);
  renderSourceRanges(o, s);
  return o;
}

