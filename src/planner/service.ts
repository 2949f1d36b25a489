// One Service -> its planned service ports (one per port and family), before
// IDs are assigned. Deterministic: the same inputs give the same drafts.
//
// A draft is handed out one service port at a time, and its endpoint sets
// are rows of reused scratch (PortEndpoints, Selection) that the next draft
// overwrites: the planner turns each into a PlannedService before asking for
// the next. A full plan thus makes no object per endpoint besides the
// PlannedBackend it keeps.
import type { IPFamily, ServiceInfo, ServicePortSpec, SliceInfo } from '../model/types.js';
import { familyOf, ipv4ToUint32 } from '../util/ip.js';
import { PortEndpoints } from './endpoints.js';
import { Categorizer, type NodeTopology, type Selection } from './topology.js';
import { hasExternalFrontends, type EmptyAction, type Frontend, type FrontendKind, type PlannedService } from './types.js';

/** One endpoint set of a draft: rows of the drafting ServicePlanner's `endpoints`. */
export interface DraftSet {
  rows: Selection;
  onEmpty: EmptyAction;
}

/**
 * A PlannedService before IDs: its sets hold endpoint rows, and the planner
 * adds the Maglev plan. internal, external and cluster are the same DraftSet
 * when they hold the same rows (PlannedService promises one object per distinct set).
 */
export type DraftService = Omit<PlannedService, 'id' | 'internal' | 'external' | 'cluster' | 'maglev'> & {
  internal: DraftSet;
  external: DraftSet;
  cluster: DraftSet;
};

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

/** Drafts the service ports of one Service at a time: begin(), then next() until null, then health(). */
export class ServicePlanner {
  /** The endpoint rows the current draft's sets refer to. */
  readonly endpoints = new PortEndpoints();
  private readonly categorizer = new Categorizer();
  /** The three sets of the current draft (the same object where they share). */
  private readonly sets: [DraftSet, DraftSet, DraftSet] = [
    { rows: this.categorizer.cluster, onEmpty: 'reject' },
    { rows: this.categorizer.cluster, onEmpty: 'reject' },
    { rows: this.categorizer.cluster, onEmpty: 'reject' },
  ];
  private svc: ServiceInfo | null = null;
  private slices: readonly SliceInfo[] = [];
  private ctx: PlanContext | null = null;
  private fi = 0;
  private pi = 0;
  private hasHealthCheck = false;
  /**
   * Local ready addresses per family, for the health check only: kube-proxy's
   * health server of each family counts the addresses its own proxier sees
   * (LocalReadyEndpoints), so a pod with an IPv4 and an IPv6 address counts once, not twice.
   */
  private localReady = new Map<IPFamily, Set<number | string>>();

  begin(svc: ServiceInfo, slices: readonly SliceInfo[], ctx: PlanContext): void {
    this.svc = svc.notProxied ? null : svc;
    this.slices = slices;
    this.ctx = ctx;
    this.fi = 0;
    this.pi = 0;
    this.hasHealthCheck = svc.type === 'LoadBalancer' && svc.externalTrafficPolicy === 'Local' && svc.healthCheckNodePort > 0;
    if (this.hasHealthCheck) this.localReady = new Map();
  }

  /** The next service port's draft, null after the last. Its sets are valid until the next call. */
  next(): DraftService | null {
    const svc = this.svc;
    const ctx = this.ctx!;
    if (!svc) return null;
    for (; this.fi < svc.ipFamilies.length; this.fi++, this.pi = 0) {
      const family = svc.ipFamilies[this.fi]!;
      const clusterIP = svc.clusterIPs[this.fi];
      if (!clusterIP || this.pi >= svc.ports.length) continue;
      return this.draft(svc, svc.ports[this.pi++]!, family, clusterIP, ctx);
    }
    this.slices = [];
    return null;
  }

  /** healthCheckNodePort, with its local endpoint count (after the last draft); null when the service has none. */
  health(): { port: number; localEndpoints: number } | null {
    const svc = this.svc;
    if (!svc || !this.hasHealthCheck) return null;
    let localEndpoints = 0;
    for (const ready of this.localReady.values()) localEndpoints = Math.max(localEndpoints, ready.size);
    return { port: svc.healthCheckNodePort, localEndpoints };
  }

  private draft(svc: ServiceInfo, port: ServicePortSpec, family: IPFamily, clusterIP: string, ctx: PlanContext): DraftService {
    // External and LB addresses of a family the service has no cluster IP
    // of are left out here; the model warned about them when it admitted the service.
    const frontends = frontendsOf(svc, port, family, clusterIP, ctx);
    const external = hasExternalFrontends(frontends);
    const eps = this.endpoints;
    eps.fill(this.slices, family, port.name, port.protocol, ctx.node.name);
    if (this.hasHealthCheck) this.countLocalReady(family);
    const cat = this.categorizer.categorize(eps, svc, external, ctx.node);
    const onEmpty: EmptyAction = cat.hasAnyEndpoints ? 'drop' : 'reject';
    const [internal, ext, cluster] = this.sets;
    internal.rows = svc.internalTrafficPolicy === 'Local' ? cat.local : cat.cluster;
    internal.onEmpty = onEmpty;
    let externalSet = internal;
    let clusterSet = internal;
    // Without external frontends only the internal set is ever used.
    if (external) {
      const extRows = svc.externalTrafficPolicy === 'Local' ? cat.local : cat.cluster;
      if (!extRows.sameAs(internal.rows)) {
        ext.rows = extRows;
        ext.onEmpty = onEmpty;
        externalSet = ext;
      }
      if (cat.cluster.sameAs(externalSet.rows)) clusterSet = externalSet;
      else if (!cat.cluster.sameAs(internal.rows)) {
        cluster.rows = cat.cluster;
        cluster.onEmpty = onEmpty;
        clusterSet = cluster;
      }
    }
    return {
      key: plannedKey(svc.key, port.name, family),
      namespace: svc.namespace,
      name: svc.name,
      portName: port.name,
      protocol: port.protocol,
      family,
      frontends,
      internal,
      external: externalSet,
      cluster: clusterSet,
      affinityTimeout: svc.sessionAffinityTimeout,
      sourceRanges: svc.type === 'LoadBalancer' && svc.loadBalancerSourceRanges.length > 0
        ? svc.loadBalancerSourceRanges.filter((c) => familyOf(c.split('/')[0]!) === family)
        : NO_RANGES,
      preserveSource: external && svc.externalTrafficPolicy === 'Local',
      topology: cat.topology,
    };
  }

  private countLocalReady(family: IPFamily): void {
    let ready = this.localReady.get(family);
    if (!ready) this.localReady.set(family, (ready = new Set()));
    const eps = this.endpoints;
    for (let i = 0; i < eps.count; i++) {
      if (!eps.local(i) || !eps.ready(i)) continue;
      // The IPv4 number, or the IPv6 words as text (rare).
      if (family === 'IPv4') ready.add(eps.v4[i]!);
      else {
        const p = eps.packed[i]!;
        const at = eps.at[i]!;
        ready.add(`${p[at]!},${p[at + 1]!},${p[at + 2]!},${p[at + 3]!}`);
      }
    }
  }
}
