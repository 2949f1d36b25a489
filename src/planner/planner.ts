// The planner: the cluster in force -> DesiredDataplane, incrementally. Only
// the services a checkout names are planned again, so a change costs in
// proportion to what changed. Stable IDs are assigned here, taking over the
// IDs an earlier run left in the datapath. A frontend two services claim
// (an externalIP on another one's port, say) stays with the one that had it
// first; the other is told and gets it when it is released.
import type { IPFamily, ServiceInfo } from '../model/types.js';
import { LABEL_ZONE } from '../model/types.js';
import type { ClusterView } from '../model/state.js';
import { familyOf, hostPort } from '../util/ip.js';
import { IdAllocator } from './ids.js';
import { DEFAULT_MAGLEV_M } from './maglev.js';
import { selectNodePortAddresses } from './nodeports.js';
import { planService, type DraftService, type DraftSet, type PlanContext } from './service.js';
import type { NodeTopology, PortEndpoint } from './topology.js';
import {
  frontendHintKey, hasExternalFrontends, type BackendSet, type DesiredDataplane, type HealthCheck, type IdHints, type PlannedBackend, type PlannedService,
} from './types.js';

export interface PlannerConfig {
  nodeName: string;
  /** --nodeport-addresses */
  nodePortAddresses: readonly string[];
  maglevTableSize: number;
  /** Largest service ID the dataplane can store. */
  maxServiceId: number;
  maxBackendId: number;
}

export interface PlanWarning {
  service: string;
  message: string;
}

export interface PlanResult {
  desired: DesiredDataplane;
  /** Planned-service keys added, changed or removed by this plan. */
  changed: Set<string>;
  warnings: PlanWarning[];
}

interface ServiceEntry {
  /** Planned-service keys of this service. */
  planned: string[];
  /** Backend-ID keys it holds a reference to (once per planned service and backend). */
  backendRefs: string[];
  /** Frontends it owns. */
  frontends: string[];
}

export const DEFAULT_PLANNER_LIMITS = { maxServiceId: 0x3fffffff, maxBackendId: 0xffffffff } as const;

export class Planner {
  private readonly services = new Map<string, PlannedService>();
  private readonly healthChecks = new Map<string, HealthCheck>();
  private readonly entries = new Map<string, ServiceEntry>();
  private readonly serviceIds: IdAllocator;
  private readonly backendIds: IdAllocator;
  /** frontend hint key -> planned-service key that owns it */
  private readonly frontendOwner = new Map<string, string>();
  /** frontend hint key -> services (ns/name) waiting for it */
  private readonly waiting = new Map<string, Set<string>>();
  private localAddresses: readonly string[] = [];
  private nodePortAddresses: Record<IPFamily, string[]> = { IPv4: [], IPv6: [] };
  private node: NodeTopology;
  private primaryIPs: string[] = [];
  private generation = 0;
  private planned = false;

  constructor(private readonly cfg: PlannerConfig, hints: IdHints) {
    this.serviceIds = new IdAllocator(cfg.maxServiceId, hints.services);
    this.backendIds = new IdAllocator(cfg.maxBackendId, hints.backends);
    this.node = { name: cfg.nodeName, zone: null };
  }

  /** The addresses on this node's interfaces. Returns true when NodePort addresses changed (plan everything). */
  setLocalAddresses(addrs: readonly string[]): boolean {
    this.localAddresses = [...addrs];
    return this.refreshNodePortAddresses();
  }

  /**
   * Plans the services named (or all of them), reading the cluster in force.
   * Everything is planned again when `all` is set or the own node changed.
   */
  plan(view: ClusterView, changed: Iterable<string>, opts: { all?: boolean; nodeChanged?: boolean } = {}): PlanResult {
    const warnings: PlanWarning[] = [];
    // Frontend conflicts by service: a service planned again (because the
    // holder let go later in this pass) drops its earlier complaints.
    const conflicts = new Map<string, PlanWarning[]>();
    const changedKeys = new Set<string>();
    let all = opts.all === true || !this.planned;
    if (opts.nodeChanged || all) {
      const zone = view.node?.labels[LABEL_ZONE] ?? null;
      const primary = nodeHostIPs(view.node?.addresses ?? []);
      const primaryChanged = primary.join(',') !== this.primaryIPs.join(',');
      this.primaryIPs = primary;
      if (zone !== this.node.zone) all = true;
      this.node = { name: this.cfg.nodeName, zone };
      if (this.refreshNodePortAddresses() || primaryChanged) all = true;
    }
    const work = new Set<string>(all ? [...this.entries.keys(), ...view.services.keys()] : changed);
    // Planning one service may release a frontend another is waiting for.
    while (work.size > 0) {
      const keys = [...work].sort();
      work.clear();
      for (const key of keys) {
        const released = this.planOne(key, view.services.get(key), view, changedKeys, conflicts);
        for (const fk of released) {
          for (const w of this.waiting.get(fk) ?? []) if (w !== key) work.add(w);
          this.waiting.delete(fk);
        }
      }
    }
    for (const list of conflicts.values()) warnings.push(...list);
    if (!this.planned) {
      this.planned = true;
      this.serviceIds.dropHints();
      this.backendIds.dropHints();
    }
    if (changedKeys.size > 0 || all) this.generation++;
    return {
      desired: { generation: this.generation, services: this.services, healthChecks: this.healthChecks, nodePortAddresses: this.nodePortAddresses },
      changed: changedKeys,
      warnings,
    };
  }

  private refreshNodePortAddresses(): boolean {
    const next = selectNodePortAddresses({ spec: this.cfg.nodePortAddresses, localAddresses: this.localAddresses, primaryIPs: this.primaryIPs });
    const same = next.IPv4.join() === this.nodePortAddresses.IPv4.join() && next.IPv6.join() === this.nodePortAddresses.IPv6.join();
    this.nodePortAddresses = next;
    return !same;
  }

  /** Plans one service (undefined: it is gone). Returns the frontends it released. */
  private planOne(
    key: string,
    svc: ServiceInfo | undefined,
    view: ClusterView,
    changed: Set<string>,
    conflicts: Map<string, PlanWarning[]>,
  ): string[] {
    const old = this.entries.get(key);
    conflicts.delete(key);
    const ctx: PlanContext = { node: this.node, nodePortAddresses: this.nodePortAddresses };
    const plan = svc ? planService(svc, view.slicesOf(key), ctx) : { drafts: [], health: null };

    const entry: ServiceEntry = { planned: [], backendRefs: [], frontends: [] };
    const oldFrontends = new Set(old?.frontends ?? []);
    for (const draft of plan.drafts) {
      const frontends = draft.frontends.filter((f) => {
        const fk = frontendHintKey(draft.protocol, f.address, f.port);
        const owner = this.frontendOwner.get(fk);
        if (owner && owner !== draft.key && !oldFrontends.has(fk)) {
          const message = `${f.kind} frontend ${hostPort(f.address, f.port)}/${draft.protocol} is already served by ${owner}; left out until it is free`;
          let list = conflicts.get(key);
          if (!list) conflicts.set(key, (list = []));
          list.push({ service: key, message });
          let w = this.waiting.get(fk);
          if (!w) this.waiting.set(fk, (w = new Set()));
          w.add(key);
          return false;
        }
        this.frontendOwner.set(fk, draft.key);
        entry.frontends.push(fk);
        return true;
      });
      // Kept out of every external frontend it asked for: nothing external to plan for.
      const planned = this.assign({ ...draft, frontends, preserveSource: draft.preserveSource && hasExternalFrontends(frontends) }, entry);
      const prev = this.services.get(draft.key);
      entry.planned.push(draft.key);
      // An unchanged plan keeps its object: dataplanes may cache by identity.
      if (prev && samePlan(prev, planned)) continue;
      this.services.set(draft.key, planned);
      changed.add(draft.key);
    }
    // Release what the old plan held and the new one does not (after
    // acquiring, so an unchanged backend keeps its ID).
    for (const k of old?.planned ?? []) {
      if (entry.planned.includes(k)) continue;
      this.services.delete(k);
      this.serviceIds.release(k);
      changed.add(k);
    }
    for (const b of old?.backendRefs ?? []) this.backendIds.release(b);
    const kept = new Set(entry.frontends);
    const released: string[] = [];
    for (const fk of old?.frontends ?? []) {
      if (!kept.has(fk) && old!.planned.includes(this.frontendOwner.get(fk) ?? '')) {
        this.frontendOwner.delete(fk);
        released.push(fk);
      }
    }
    if (entry.planned.length > 0) this.entries.set(key, entry);
    else this.entries.delete(key);

    const hc = svc && plan.health ? { namespace: svc.namespace, name: svc.name, port: plan.health.port, localEndpoints: plan.health.localEndpoints } : null;
    if (hc) this.healthChecks.set(key, hc);
    else this.healthChecks.delete(key);
    return released;
  }

  private assign(d: DraftService, entry: ServiceEntry): PlannedService {
    const hintKeys = d.frontends.map((f) => frontendHintKey(d.protocol, f.address, f.port));
    const existing = this.serviceIds.get(d.key);
    const id = existing ?? this.serviceIds.acquire(d.key, hintKeys);
    const backends = new Map<string, PlannedBackend>();
    const toSet = (s: DraftSet): BackendSet => ({
      onEmpty: s.onEmpty,
      backends: s.endpoints.map((ep) => this.backend(d, ep, backends, entry)),
    });
    const internal = toSet(d.internal);
    const external = d.external === d.internal ? internal : toSet(d.external);
    const cluster = d.cluster === d.internal ? internal : d.cluster === d.external ? external : toSet(d.cluster);
    return {
      key: d.key,
      namespace: d.namespace,
      name: d.name,
      portName: d.portName,
      protocol: d.protocol,
      family: d.family,
      id,
      frontends: d.frontends,
      internal,
      external,
      cluster,
      affinityTimeout: d.affinityTimeout,
      sourceRanges: d.sourceRanges,
      preserveSource: d.preserveSource,
      maglev: hasExternalFrontends(d.frontends) ? { m: this.cfg.maglevTableSize || DEFAULT_MAGLEV_M, backends: external.backends } : null,
      topology: d.topology,
    };
  }

  private backend(d: DraftService, ep: PortEndpoint, seen: Map<string, PlannedBackend>, entry: ServiceEntry): PlannedBackend {
    const key = frontendHintKey(d.protocol, ep.address, ep.port);
    let b = seen.get(key);
    if (!b) {
      const id = this.backendIds.acquire(key);
      entry.backendRefs.push(key);
      b = { id, address: ep.address, port: ep.port, nodeName: ep.nodeName, zone: ep.zone, local: ep.local, terminating: ep.terminating };
      seen.set(key, b);
    }
    return b;
  }
}

/**
 * The node's IPs as kube-proxy picks them (GetNodeHostIPs): the first
 * InternalIP, else the first ExternalIP, then the first address of the other
 * family in the same order. Other address types do not count.
 */
export function nodeHostIPs(addresses: readonly { type: string; address: string }[]): string[] {
  const ordered = [
    ...addresses.filter((a) => a.type === 'InternalIP'),
    ...addresses.filter((a) => a.type === 'ExternalIP'),
  ].map((a) => a.address);
  const first = ordered[0];
  if (first === undefined) return [];
  const other = ordered.find((ip) => familyOf(ip) !== familyOf(first));
  return other === undefined ? [first] : [first, other];
}

function samePlan(a: PlannedService, b: PlannedService): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
