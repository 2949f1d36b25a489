// One planned service -> its virtual servers, ipset entries, kube-ipvs0
// addresses and BPX-CLUSTER-POLICY rules, shaped like kube-proxy's ipvs mode:
// a virtual server per frontend (ClusterIP, externalIPs, LoadBalancer ingress,
// NodePort on each node address) with the frontend's set as real servers, and
// the frontend in the ipsets the fixed rules (render-base.ts) match on for
// masquerading, NodePorts, the Local policy and source ranges.
//
// Where we differ from kube-proxy, and why:
// - A frontend whose set is empty gets no virtual server but an entry in
//   BPX-NO-ENDPOINTS (REJECT) or BPX-NO-LOCAL-ENDPOINTS (DROP, a Local policy
//   without local endpoints), answered by the filter table: kube-proxy leaves
//   an empty virtual server, which IPVS answers with ICMP port unreachable
//   whatever the policy, so a Local-policy NodePort without local endpoints
//   would refuse where the other modes drop.
// - This node and its pods reach external frontends through the cluster set
//   whatever the external policy (as kube-proxy's iptables and nftables modes
//   do). One virtual server cannot pick real servers by source, so such
//   traffic is marked in BPX-CLUSTER-POLICY with the service's fwmark and
//   meets a fwmark virtual server holding the cluster set; IPVS looks up
//   fwmark services before address ones. IPVS compares the whole mark, and
//   the masquerade bit may be set too, so there are two: M and M|masquerade.
import type { BackendSet, PlannedBackend, PlannedService } from '../../planner/types.js';
import { compareIP, familyOf, parseCidr } from '../../util/ip.js';
import { fwmarkOf, hex, lower, nodePortSet, servicePortName, setName, SETS, type SetId } from './names.js';
import type { IpvsConfig, RealServer, ServiceParts, VirtualServer } from './objects.js';

function sameBackends(a: BackendSet, b: BackendSet): boolean {
  return a === b || (a.backends.length === b.backends.length && a.backends.every((x, i) => x.address === b.backends[i]!.address && x.port === b.backends[i]!.port));
}

/** A CIDR as ipset lists it: the network address, without a host-length prefix. */
export function ipsetNet(cidr: string): string {
  const c = parseCidr(cidr)!;
  return c.prefix === (c.family === 'IPv4' ? 32 : 128) ? c.text.slice(0, c.text.indexOf('/')) : c.text;
}

export function realServers(backends: readonly PlannedBackend[]): RealServer[] {
  return backends.map((b) => ({ address: b.address, port: b.port, weight: 1 }))
    .sort((x, y) => compareIP(x.address, y.address) || x.port - y.port);
}

/**
 * mh gets kube-proxy's flags: fall back to another real server when the
 * chosen one is unavailable, and hash the source port too. sh gets
 * sh-fallback (kube-proxy sets none): a real server draining at weight 0
 * (graceful.ts) is unavailable, and without the fallback every new
 * connection of a client hashed to it is refused (ICMP port unreachable)
 * until it is deleted; seen in the 6.1 guest. The flag changes nothing
 * while the hashed server is available.
 */
export function schedulerFlags(scheduler: string): string[] {
  if (scheduler === 'mh') return ['mh-fallback', 'mh-port'];
  return scheduler === 'sh' ? ['sh-fallback'] : [];
}

export function renderService(s: PlannedService, cfg: IpvsConfig): ServiceParts {
  const f = s.family;
  const proto = lower(s.protocol);
  const entries = new Set<string>();
  const add = (id: SetId, entry: string) => entries.add(`${setName(f, id)} ${entry}`);
  const addresses = new Set<string>();
  const virtualServers: VirtualServer[] = [];
  const policyRules: string[] = [];
  const vs = (set: BackendSet, fields: Pick<VirtualServer, 'proto' | 'address' | 'port' | 'fwmark'>): VirtualServer => ({
    family: f, ...fields, scheduler: cfg.scheduler, persistence: s.affinityTimeout, flags: schedulerFlags(cfg.scheduler), reals: realServers(set.backends),
  });
  const ranges = s.sourceRanges.filter((r) => familyOf(r.slice(0, r.indexOf('/'))) === f);
  // Without cluster endpoints the local traffic meets the external set's answer like everyone else.
  const splitCluster = !sameBackends(s.cluster, s.external) && s.cluster.backends.length > 0;
  const name = servicePortName(s);

  for (const fe of s.frontends) {
    const ipPort = `${fe.address},${proto}:${fe.port}`;
    const set = fe.kind === 'ClusterIP' ? s.internal : s.external;
    switch (fe.kind) {
      case 'ClusterIP':
        add(SETS.clusterIP, ipPort);
        addresses.add(fe.address);
        break;
      case 'ExternalIP':
        add(s.preserveSource ? SETS.externalIPLocal : SETS.externalIP, ipPort);
        addresses.add(fe.address);
        break;
      case 'LoadBalancer':
        add(SETS.loadBalancer, ipPort);
        if (s.preserveSource) add(SETS.loadBalancerLocal, ipPort);
        if (ranges.length > 0) {
          add(SETS.loadBalancerFW, ipPort);
          for (const r of ranges) add(SETS.loadBalancerSourceCIDR, `${ipPort},${ipsetNet(r)}`);
        }
        addresses.add(fe.address);
        break;
      case 'NodePort':
        add(nodePortSet(s.protocol, false), String(fe.port));
        if (s.preserveSource) add(nodePortSet(s.protocol, true), String(fe.port));
        break;
    }
    if (set.backends.length === 0) add(set.onEmpty === 'reject' ? SETS.noEndpoints : SETS.noLocalEndpoints, ipPort);
    else virtualServers.push(vs(set, { proto: s.protocol, address: fe.address, port: fe.port, fwmark: 0 }));
    if (fe.kind !== 'ClusterIP' && splitCluster) {
      const host = `${fe.address}/${f === 'IPv4' ? 32 : 128}`;
      policyRules.push(`-d ${host} -p ${proto} -m comment --comment "${name} cluster policy" -m ${proto} --dport ${fe.port} -j MARK --or-mark ${hex(fwmarkOf(s.id))}`);
    }
  }
  if (policyRules.length > 0) {
    const mark = fwmarkOf(s.id);
    for (const m of [mark, (mark | (1 << cfg.masqueradeBit)) >>> 0]) virtualServers.push(vs(s.cluster, { proto: 'fwmark', address: '', port: 0, fwmark: m }));
  }
  // Hairpin: an endpoint that reaches itself through the service is masqueraded (BPX-POSTROUTING).
  for (const set of [s.internal, s.external, s.cluster]) {
    for (const b of set.backends) add(SETS.loopBack, `${b.address},${proto}:${b.port},${b.address}`);
  }
  return { family: f, virtualServers, entries: [...entries], addresses: [...addresses], policyRules };
}
