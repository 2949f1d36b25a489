// The iptables rules of the ipvs mode: a fixed set of chains that match on
// the ipsets (so their number does not grow with the cluster), shaped like
// kube-proxy's ipvs mode (pkg/proxy/ipvs): what to masquerade, NodePorts,
// the Local policy, source ranges; plus the per-service BPX-CLUSTER-POLICY
// rules (render-service.ts) and the filter verdicts for empty sets.
//
// Where the hooks meet IPVS, which decides what these rules can do:
//   from a pod or the network: nat PREROUTING (marks) -> filter INPUT (our
//     verdicts, before IPVS: IPVS's LOCAL_IN hook runs at priority 99) ->
//     IPVS picks a real server -> nat POSTROUTING (masquerade by mark);
//   from the node: nat OUTPUT (marks) -> IPVS (LOCAL_OUT, priority -99) ->
//     filter OUTPUT (our verdicts) -> nat POSTROUTING.
// So every decision is a mark set in nat before IPVS, and the drops and
// rejects are in filter, where IPVS has not DNATed the packet yet (INPUT) or
// did not because no virtual server exists for it (OUTPUT).
import type { IPFamily } from '../../model/types.js';
import {
  CHAIN_CLUSTER_POLICY, CHAIN_FILTER, CHAIN_FIREWALL, CHAIN_FORWARD, CHAIN_LOAD_BALANCER, CHAIN_MARK_DROP, CHAIN_MARK_MASQ,
  CHAIN_NODE_PORT, CHAIN_POSTROUTING, CHAIN_SERVICES, DROP_BIT, FWMARK_MASK, hex, JUMP_MARK, nodePortSet, setName, SETS, type SetId, type XtTable,
} from './names.js';
import type { IpvsConfig } from './objects.js';

/** A jump from a built-in chain into ours: the rule text after "-A CHAIN ". */
export interface BuiltinJump {
  table: XtTable;
  chain: string;
  rule: string;
}

export interface XtRender {
  chains: Record<XtTable, Map<string, string[]>>;
  jumps: BuiltinJump[];
}

const comment = (text: string) => `-m comment --comment "${text}"`;

export function builtinJumps(): BuiltinJump[] {
  const j = (table: XtTable, chain: string, target: string, text: string, match = ''): BuiltinJump =>
    ({ table, chain, rule: `${match ? `${match} ` : ''}${comment(`${JUMP_MARK} ${text}`)} -j ${target}` });
  const NEW = '-m conntrack --ctstate NEW';
  return [
    j('nat', 'PREROUTING', CHAIN_SERVICES, 'service portals'),
    j('nat', 'OUTPUT', CHAIN_SERVICES, 'service portals'),
    j('nat', 'POSTROUTING', CHAIN_POSTROUTING, 'postrouting rules'),
    j('filter', 'INPUT', CHAIN_FILTER, 'service verdicts', NEW),
    j('filter', 'OUTPUT', CHAIN_FILTER, 'service verdicts', NEW),
    j('filter', 'FORWARD', CHAIN_FORWARD, 'forwarding rules'),
  ];
}

/** The nat and filter chains of one family; `policyRules`: BPX-CLUSTER-POLICY's, every service's in key order. */
export function renderChains(family: IPFamily, cfg: IpvsConfig, policyRules: readonly string[]): XtRender {
  const set = (id: SetId, dirs: string) => `-m set --match-set ${setName(family, id)} ${dirs}`;
  const masq = hex(1 << cfg.masqueradeBit);
  const drop = hex(1 << DROP_BIT);
  const cidr = cfg.clusterCidrs[family][0];
  const LOCAL_SRC = '-m addrtype --src-type LOCAL';
  const nat = new Map<string, string[]>();
  const filter = new Map<string, string[]>();

  nat.set(CHAIN_MARK_MASQ, [`-j MARK --or-mark ${masq}`]);
  nat.set(CHAIN_MARK_DROP, [`-j MARK --or-mark ${drop}`]);
  nat.set(CHAIN_POSTROUTING, [
    `${comment('Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose')} ${set(SETS.loopBack, 'dst,dst,src')} -j MASQUERADE`,
    `-m mark ! --mark ${masq}/${masq} -j RETURN`,
    // Cleared so a packet that is re-routed (IPsec) is not masqueraded twice.
    `-j MARK --xor-mark ${masq}`,
    `${comment('kubernetes service traffic requiring SNAT')} -j MASQUERADE --random-fully`,
  ]);
  const clusterMasq = cfg.masqueradeAll
    ? [`${comment('Kubernetes service cluster ip + port for masquerade purpose')} ${set(SETS.clusterIP, 'dst,dst')} -j ${CHAIN_MARK_MASQ}`]
    : cidr ? [`! -s ${cidr} ${comment('Kubernetes service cluster ip + port for masquerade purpose')} ${set(SETS.clusterIP, 'dst,dst')} -j ${CHAIN_MARK_MASQ}`] : [];
  nat.set(CHAIN_SERVICES, [
    `${comment('Kubernetes service lb portal')} ${set(SETS.loadBalancer, 'dst,dst')} -j ${CHAIN_LOAD_BALANCER}`,
    ...clusterMasq,
    `${comment('Kubernetes service external ip + port for masquerade and filter purpose')} ${set(SETS.externalIP, 'dst,dst')} -j ${CHAIN_MARK_MASQ}`,
    `${LOCAL_SRC} ${comment('Kubernetes service external ip + port with local policy, from this node')} ${set(SETS.externalIPLocal, 'dst,dst')} -j ${CHAIN_MARK_MASQ}`,
    // This node and its pods reach external frontends through the cluster set (render-service.ts).
    ...(cidr ? [`-s ${cidr} -j ${CHAIN_CLUSTER_POLICY}`] : []),
    `${LOCAL_SRC} -j ${CHAIN_CLUSTER_POLICY}`,
    `${set(SETS.clusterIP, 'dst,dst')} -j ACCEPT`,
    `${set(SETS.loadBalancer, 'dst,dst')} -j ACCEPT`,
    `${set(SETS.externalIP, 'dst,dst')} -j ACCEPT`,
    `${set(SETS.externalIPLocal, 'dst,dst')} -j ACCEPT`,
    // After the ACCEPTs: a virtual address on kube-ipvs0 is LOCAL too, and its ports are not NodePorts.
    `-m addrtype --dst-type LOCAL -j ${CHAIN_NODE_PORT}`,
  ]);
  nat.set(CHAIN_LOAD_BALANCER, [
    `${set(SETS.loadBalancerFW, 'dst,dst')} -j ${CHAIN_FIREWALL}`,
    `${LOCAL_SRC} -j ${CHAIN_MARK_MASQ}`,
    `${set(SETS.loadBalancerLocal, 'dst,dst')} -j RETURN`,
    `-j ${CHAIN_MARK_MASQ}`,
  ]);
  nat.set(CHAIN_FIREWALL, [
    `${set(SETS.loadBalancerSourceCIDR, 'dst,dst,src')} -j RETURN`,
    `-j ${CHAIN_MARK_DROP}`,
  ]);
  nat.set(CHAIN_NODE_PORT, (['TCP', 'UDP', 'SCTP'] as const).flatMap((p) => {
    const l = p.toLowerCase();
    return [
      `-p ${l} ${LOCAL_SRC} ${set(nodePortSet(p, true), 'dst')} -j ${CHAIN_MARK_MASQ}`,
      `-p ${l} ${comment(`Kubernetes nodeport ${l} port with externalTrafficPolicy=local`)} ${set(nodePortSet(p, true), 'dst')} -j RETURN`,
      `-p ${l} ${comment(`Kubernetes nodeport ${l} port for masquerade purpose`)} ${set(nodePortSet(p, false), 'dst')} -j ${CHAIN_MARK_MASQ}`,
    ];
  }));
  nat.set(CHAIN_CLUSTER_POLICY, [...policyRules]);

  const unmarked = `-m mark --mark 0x0/${hex(FWMARK_MASK)}`;
  filter.set(CHAIN_FILTER, [
    `-m mark --mark ${drop}/${drop} -j DROP`,
    `${unmarked} ${comment('Kubernetes service has no endpoints')} ${set(SETS.noEndpoints, 'dst,dst')} -j REJECT --reject-with ${family === 'IPv4' ? 'icmp-port-unreachable' : 'icmp6-port-unreachable'}`,
    `${unmarked} ${comment('Kubernetes service has no local endpoints')} ${set(SETS.noLocalEndpoints, 'dst,dst')} -j DROP`,
  ]);
  // A FORWARD policy of DROP (Docker sets one) must not stop service traffic.
  filter.set(CHAIN_FORWARD, [
    `${comment('kubernetes forwarding rules')} -m mark --mark ${masq}/${masq} -j ACCEPT`,
    `${comment('kubernetes forwarding conntrack rule')} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
  ]);
  return { chains: { nat, filter }, jumps: builtinJumps() };
}
