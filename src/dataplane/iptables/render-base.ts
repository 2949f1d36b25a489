// The fixed chains: the jumps from the built-in chains, masquerading by mark,
// the filter chains that reject, drop and accept, and the tail of
// KUBE-SERVICES that sends node addresses to KUBE-NODEPORTS. Shaped like
// kube-proxy's iptables mode (pkg/proxy/iptables/proxier.go).
import type { IPFamily } from '../../model/types.js';
import type { DesiredDataplane } from '../../planner/types.js';
import {
  CHAIN_EXTERNAL_SERVICES, CHAIN_FIREWALL, CHAIN_FORWARD, CHAIN_MARK_MASQ, CHAIN_NODEPORTS, CHAIN_POSTROUTING,
  CHAIN_SERVICES, JUMP_MARK, masqueradeMark, type XtTable,
} from './names.js';
import { newOwned, type Owned, type XtConfig } from './objects.js';

/** A jump from a built-in chain into ours. */
export interface BuiltinJump {
  table: XtTable;
  chain: string;
  /** The rule text after "-A CHAIN ". */
  rule: string;
  target: string;
}

const NEW = '-m conntrack --ctstate NEW';
const comment = (text: string) => `-m comment --comment "${JUMP_MARK} ${text}"`;

/**
 * Where our chains hang from the built-in ones. kube-proxy's set, plus
 * KUBE-EXTERNAL-SERVICES in OUTPUT: the node's own connections to an
 * ExternalIP without endpoints are refused too, as in the nftables mode.
 */
export function builtinJumps(): BuiltinJump[] {
  const j = (table: XtTable, chain: string, target: string, text: string, match = ''): BuiltinJump =>
    ({ table, chain, target, rule: `${match ? `${match} ` : ''}${comment(text)} -j ${target}` });
  return [
    j('nat', 'PREROUTING', CHAIN_SERVICES, 'service portals'),
    j('nat', 'OUTPUT', CHAIN_SERVICES, 'service portals'),
    j('nat', 'POSTROUTING', CHAIN_POSTROUTING, 'postrouting rules'),
    j('filter', 'INPUT', CHAIN_FIREWALL, 'load balancer firewall', NEW),
    j('filter', 'INPUT', CHAIN_EXTERNAL_SERVICES, 'externally-visible service portals', NEW),
    j('filter', 'FORWARD', CHAIN_FIREWALL, 'load balancer firewall', NEW),
    j('filter', 'FORWARD', CHAIN_SERVICES, 'service portals', NEW),
    j('filter', 'FORWARD', CHAIN_EXTERNAL_SERVICES, 'externally-visible service portals', NEW),
    // After the verdicts: a packet nat did not DNAT and marked must still meet them.
    j('filter', 'FORWARD', CHAIN_FORWARD, 'forwarding rules'),
    j('filter', 'OUTPUT', CHAIN_FIREWALL, 'load balancer firewall', NEW),
    j('filter', 'OUTPUT', CHAIN_SERVICES, 'service portals', NEW),
    j('filter', 'OUTPUT', CHAIN_EXTERNAL_SERVICES, 'externally-visible service portals', NEW),
  ];
}

export function hostPrefix(family: IPFamily): string {
  return family === 'IPv4' ? '/32' : '/128';
}

export function renderBase(family: IPFamily, desired: DesiredDataplane, cfg: XtConfig): Owned {
  const o = newOwned();
  const mark = masqueradeMark(cfg.masqueradeBit);
  const nat = o.chains.nat;
  const filter = o.chains.filter;
  nat.set(CHAIN_MARK_MASQ, [`-j MARK --or-mark ${mark}`]);
  nat.set(CHAIN_POSTROUTING, [
    `-m mark ! --mark ${mark}/${mark} -j RETURN`,
    // The mark is cleared so a packet that is re-routed (e.g. by IPsec) is not masqueraded twice.
    `-j MARK --xor-mark ${mark}`,
    '-m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
  ]);
  // The index chains are declared here and filled from every service (see restore.ts).
  nat.set(CHAIN_SERVICES, []);
  nat.set(CHAIN_NODEPORTS, []);
  filter.set(CHAIN_SERVICES, []);
  filter.set(CHAIN_EXTERNAL_SERVICES, []);
  filter.set(CHAIN_FIREWALL, []);
  // A FORWARD policy of DROP (Docker sets one) must not stop service traffic.
  filter.set(CHAIN_FORWARD, [
    `-m comment --comment "kubernetes forwarding rules" -m mark --mark ${mark}/${mark} -j ACCEPT`,
    '-m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
  ]);
  // Last in nat KUBE-SERVICES, after every service's own rules: node addresses lead to the NodePorts.
  const tail: string[] = [];
  if (family === 'IPv4' && cfg.localhostNodePorts) tail.push('-d 127.0.0.0/8 -m comment --comment "kubernetes service nodeports on localhost" -j KUBE-NODEPORTS');
  for (const a of desired.nodePortAddresses[family]) {
    tail.push(`-d ${a}${hostPrefix(family)} -m comment --comment "kubernetes service nodeports" -j ${CHAIN_NODEPORTS}`);
  }
  o.index.nat.set(CHAIN_SERVICES, tail);
  return o;
}
