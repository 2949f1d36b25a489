// One Service -> its planned service ports (one per port and family), before
// IDs are assigned. Pure: the same inputs give the same drafts.
import type { IPFamily, ServiceInfo, ServicePortSpec, SliceInfo } from '../model/types.js';
import { familyOf, ipv4ToUint32 } from '../util/ip.js';
import { endpointsForPort } from './endpoints.js';
import { categorizeEndpoints, type NodeTopology, type PortEndpoint } from './topology.js';
import { hasExternalFrontends, type EmptyAction, type Frontend, type FrontendKind, type PlannedService } from './types.js';

export interface DraftSet {
  endpoints: PortEndpoint[];
  onEmpty: EmptyAction;
}

/** A PlannedService before IDs: its sets hold endpoints, and the planner adds the Maglev plan. */
export type DraftService = Omit<PlannedService, 'id' | 'internal' | 'external' | 'cluster' | 'maglev'> & {
  internal: DraftSet;
  external: DraftSet;
  cluster: DraftSet;
};

export interface ServicePlan {
  drafts: DraftService[];
  /** healthCheckNodePort, with its local endpoint count; null when the service has none. */
  health: { port: number; localEndpoints: number } | null;
}

export interface PlanContext {
  node: NodeTopology;
  nodePortAddresses: Readonly<Record<IPFamily, readonly string[]>>;
}

/** One flat string (join, not a template literal's rope of ConsStrings): it is kept as a Map key per planned service. */
export function plannedKey(serviceKey: string, portName: string, family: IPFamily): string {
  return [serviceKey, ':', portName, '/', family].join('');
}

/** Shared by every planned service without source ranges (all but LoadBalancers that set them). */
const NO_RANGES: string[] = Object.freeze([]) as unknown as string[];

/**
 * A frontend of an address of `family`. Service addresses are few (a
 * clusterIP per family, the odd external one), so their IPv4 number is read
 * here, without allocating, rather than stored per service in the model.
 */
function frontend(kind: FrontendKind, address: string, family: IPFamily, port: number): Frontend {
  return { kind, address, v4: family === 'IPv4' ? ipv4ToUint32(address) | 0 : 0, port };
}

function frontendsOf(svc: ServiceInfo, port: ServicePortSpec, family: IPFamily, clusterIP: string, ctx: PlanContext): Frontend[] {
  const out: Frontend[] = [frontend('ClusterIP', clusterIP, family, port.port)];
  if (port.nodePort > 0 && (svc.type === 'NodePort' || svc.type === 'LoadBalancer')) {
    for (const address of ctx.nodePortAddresses[family]) out.push(frontend('NodePort', address, family, port.nodePort));
  }
  for (const ip of svc.externalIPs) if (familyOf(ip) === family) out.push(frontend('ExternalIP', ip, family, port.port));
  if (svc.type === 'LoadBalancer') {
    for (const ip of svc.loadBalancerIPs) if (familyOf(ip) === family) out.push(frontend('LoadBalancer', ip, family, port.port));
  }
  return out;
}

function draftSet(endpoints: PortEndpoint[], hasAnyEndpoints: boolean): DraftSet {
  return { endpoints, onEmpty: hasAnyEndpoints ? 'drop' : 'reject' };
}

/** `b` itself, or `a` when both hold the same endpoints: PlannedService promises one object per distinct set. */
function shareSet(a: DraftSet, b: DraftSet): DraftSet {
  if (a.onEmpty !== b.onEmpty || a.endpoints.length !== b.endpoints.length) return b;
  return a.endpoints.every((ep, i) => ep === b.endpoints[i]) ? a : b;
}

/** An endpoint's address as a Set member: the IPv4 number, or the IPv6 words as text (rare). */
function addressIdentity(ep: PortEndpoint, family: IPFamily): number | string {
  if (family === 'IPv4') return ep.v4;
  const p = ep.packed;
  return `${p[ep.at]!},${p[ep.at + 1]!},${p[ep.at + 2]!},${p[ep.at + 3]!}`;
}

export function planService(svc: ServiceInfo, slices: readonly SliceInfo[], ctx: PlanContext): ServicePlan {
  const drafts: DraftService[] = [];
  if (svc.notProxied) return { drafts, health: null };

  const hasHealthCheck = svc.type === 'LoadBalancer' && svc.externalTrafficPolicy === 'Local' && svc.healthCheckNodePort > 0;
  // Local ready addresses per family, for the health check only: kube-proxy's
  // health server of each family counts the addresses its own proxier sees
  // (LocalReadyEndpoints), so a pod with an IPv4 and an IPv6 address counts once, not twice.
  const localReady = new Map<IPFamily, Set<number | string>>();
  svc.ipFamilies.forEach((family, fi) => {
    const clusterIP = svc.clusterIPs[fi];
    if (!clusterIP) return;
    for (const port of svc.ports) {
      // External and LB addresses of a family the service has no cluster IP
      // of are left out here; the model warned about them when it admitted the service.
      const frontends = frontendsOf(svc, port, family, clusterIP, ctx);
      const external = hasExternalFrontends(frontends);
      const eps = endpointsForPort(slices, family, port.name, port.protocol, ctx.node.name);
      if (hasHealthCheck) {
        let ready = localReady.get(family);
        if (!ready) localReady.set(family, (ready = new Set()));
        for (const ep of eps) if (ep.local && ep.ready) ready.add(addressIdentity(ep, family));
      }
      const cat = categorizeEndpoints(eps, svc, external, ctx.node);
      const internal = draftSet(svc.internalTrafficPolicy === 'Local' ? cat.local : cat.cluster, cat.hasAnyEndpoints);
      // Without external frontends only the internal set is ever used.
      const ext = external ? shareSet(internal, draftSet(svc.externalTrafficPolicy === 'Local' ? cat.local : cat.cluster, cat.hasAnyEndpoints)) : internal;
      const cluster = external ? shareSet(ext, shareSet(internal, draftSet(cat.cluster, cat.hasAnyEndpoints))) : internal;
      drafts.push({
        key: plannedKey(svc.key, port.name, family),
        namespace: svc.namespace,
        name: svc.name,
        portName: port.name,
        protocol: port.protocol,
        family,
        frontends,
        internal,
        external: ext,
        cluster,
        affinityTimeout: svc.sessionAffinityTimeout,
        sourceRanges: svc.type === 'LoadBalancer' && svc.loadBalancerSourceRanges.length > 0
          ? svc.loadBalancerSourceRanges.filter((c) => familyOf(c.split('/')[0]!) === family)
          : NO_RANGES,
        preserveSource: external && svc.externalTrafficPolicy === 'Local',
        topology: cat.topology,
      });
    }
  });
  const health = hasHealthCheck
    ? { port: svc.healthCheckNodePort, localEndpoints: Math.max(0, ...[...localReady.values()].map((a) => a.size)) }
    : null;
  return { drafts, health };
}
