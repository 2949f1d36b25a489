// The table's skeleton: the verdict maps keyed by frontend, the hooks that
// consult them, masquerading and rejection. Shaped like kube-proxy's nftables
// mode (pkg/proxy/nftables/proxier.go), with one difference in where "no
// endpoints" is decided, see render-service.ts.
import type { IPFamily } from '../../model/types.js';
import type { DesiredDataplane } from '../../planner/types.js';
import {
  CHAIN_ENDPOINTS_CHECK, CHAIN_FIREWALL_CHECK, CHAIN_MARK_MASQ, CHAIN_MASQUERADING, CHAIN_REJECT, CHAIN_SERVICES,
  MAP_FIREWALL_IPS, MAP_NO_ENDPOINT_NODEPORTS, MAP_NO_ENDPOINT_SERVICES, MAP_SERVICE_IPS, MAP_SERVICE_NODEPORTS,
  MASQ_MARK, SET_NODEPORT_IPS, addrType, type NftFamily,
} from './names.js';
import { addChain, elementKey, newOwned, type Owned } from './objects.js';

const IP_PROTO_PORT = (f: NftFamily) => `${addrType(f)} . inet_proto . inet_service`;

function baseChain(type: 'nat' | 'filter', hook: string, priority: number): string {
  return `{ type ${type} hook ${hook} priority ${priority} ; policy accept ; }`;
}

export function renderBase(family: NftFamily, desired: DesiredDataplane): Owned {
  const o = newOwned();
  const ip = family;
  const decl = (name: string, kind: 'set' | 'map', body: string) => o.decls.set(name, { kind, body });
  decl(MAP_SERVICE_IPS, 'map', `{ type ${IP_PROTO_PORT(family)} : verdict ; }`);
  decl(MAP_SERVICE_NODEPORTS, 'map', '{ type inet_proto . inet_service : verdict ; }');
  decl(SET_NODEPORT_IPS, 'set', `{ type ${addrType(family)} ; }`);
  decl(MAP_NO_ENDPOINT_SERVICES, 'map', `{ type ${IP_PROTO_PORT(family)} : verdict ; }`);
  decl(MAP_NO_ENDPOINT_NODEPORTS, 'map', '{ type inet_proto . inet_service : verdict ; }');
  decl(MAP_FIREWALL_IPS, 'map', `{ type ${IP_PROTO_PORT(family)} : verdict ; }`);
  const v: IPFamily = family === 'ip' ? 'IPv4' : 'IPv6';
  for (const a of desired.nodePortAddresses[v]) o.elements.set(elementKey(SET_NODEPORT_IPS, a), '');

  // Helper chains first: base chains refer to them.
  addChain(o, CHAIN_MARK_MASQ, [`meta mark set meta mark | ${MASQ_MARK}`]);
  addChain(o, CHAIN_MASQUERADING, [
    `meta mark & ${MASQ_MARK} == 0 return`,
    `meta mark set meta mark ^ ${MASQ_MARK}`,
    'masquerade fully-random',
  ]);
  addChain(o, CHAIN_REJECT, ['reject']);
  addChain(o, CHAIN_SERVICES, [
    `${ip} daddr . meta l4proto . th dport vmap @${MAP_SERVICE_IPS}`,
    `${ip} daddr @${SET_NODEPORT_IPS} meta l4proto . th dport vmap @${MAP_SERVICE_NODEPORTS}`,
  ]);
  addChain(o, CHAIN_FIREWALL_CHECK, [`${ip} daddr . meta l4proto . th dport vmap @${MAP_FIREWALL_IPS}`]);
  // Reached only by packets that were not DNATed: a service whose set for
  // this packet is empty with "reject" (no endpoints at all).
  addChain(o, CHAIN_ENDPOINTS_CHECK, [
    `${ip} daddr . meta l4proto . th dport vmap @${MAP_NO_ENDPOINT_SERVICES}`,
    `${ip} daddr @${SET_NODEPORT_IPS} meta l4proto . th dport vmap @${MAP_NO_ENDPOINT_NODEPORTS}`,
  ]);

  // Source ranges are checked before DNAT (priority dstnat - 10), as kube-proxy does.
  addChain(o, 'filter-prerouting', [`ct state new jump ${CHAIN_FIREWALL_CHECK}`], baseChain('filter', 'prerouting', -110));
  addChain(o, 'filter-output-pre-dnat', [`ct state new jump ${CHAIN_FIREWALL_CHECK}`], baseChain('filter', 'output', -110));
  addChain(o, 'nat-prerouting', [`jump ${CHAIN_SERVICES}`], baseChain('nat', 'prerouting', -100));
  addChain(o, 'nat-output', [`jump ${CHAIN_SERVICES}`], baseChain('nat', 'output', -100));
  // After DNAT: what still goes to a frontend found no endpoint. `ct state new`
  // holds for every datagram of a UDP flow that was never answered.
  addChain(o, 'filter-input', [`ct state new jump ${CHAIN_ENDPOINTS_CHECK}`], baseChain('filter', 'input', 0));
  addChain(o, 'filter-forward', [`ct state new jump ${CHAIN_ENDPOINTS_CHECK}`], baseChain('filter', 'forward', 0));
  addChain(o, 'filter-output', [`ct state new jump ${CHAIN_ENDPOINTS_CHECK}`], baseChain('filter', 'output', 0));
  addChain(o, 'nat-postrouting', [`jump ${CHAIN_MASQUERADING}`], baseChain('nat', 'postrouting', 100));
  return o;
}
