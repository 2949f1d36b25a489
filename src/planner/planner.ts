// The planner: the cluster in force -> DesiredDataplane, incrementally. Only
// the services a checkout names are planned again, so a change costs in
// proportion to what changed. Stable IDs are assigned here, taking over the
// IDs an earlier run left in the datapath. A frontend two services claim
// (an externalIP on another one's port, say) stays with the one that had it
// first; the other is told and gets it when it is released. Frontends and
// backends are identified by binary keys (address-key.ts) in typed-array
// tables, built from the addresses the model parsed: a plan builds no
// string per endpoint and parses no endpoint address.
import type { IPFamily, ServiceInfo } from '../model/types.js';
import { LABEL_ZONE } from '../model/types.js';
import type { ClusterView } from '../model/state.js';
import { plainEqual } from '../util/equal.js';
import { FlatIndex } from '../util/flat-index.js';
import { familyOf, hostPort } from '../util/ip.js';
import { packedAddress } from '../model/packed-endpoints.js';
import { KEY_WORDS, writeAddressKey, writePackedKey } from './address-key.js';
import { CompactBackend, CompactBackend6 } from './backend.js';
import { IdAllocator, IdPool } from './ids.js';
import { DEFAULT_MAGLEV_M } from '../util/maglev-size.js';
import { selectNodePortAddresses } from './nodeports.js';
import { ServicePlanner, type DraftService, type DraftSet, type PlanContext } from './service.js';
import type { NodeTopology } from './topology.js';
import {
  hasExternalFrontends, type BackendSet, type DesiredDataplane, type Frontend, type HealthCheck, type IdHints, type PlannedBackend, type PlannedService,
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

/**
 * What the planner keeps per service besides its planned services. Each
 * planned service holds a reference on the backend ID of each of its
 * distinct backends (IdAllocator); they are released through its
 * PlannedService, by key, rather than remembered here: a list of slots per
 * service was 4 MB at 30,000 x 10, and releasing happens only on a change.
 */
interface ServiceEntry {
  /** Planned-service keys of this service. */
  planned: string[];
  /** Slots of the frontends it owns, in `frontendIndex`. */
  frontendSlots: number[];
}

const NO_PLANS: (PlannedService | undefined)[] = [];
const NO_KEYS: readonly string[] = Object.freeze([]);
/** Shared by every service that owns no frontend: never written to (entries are replaced, not edited). */
const NO_SLOTS: number[] = Object.freeze([]) as unknown as number[];

export const DEFAULT_PLANNER_LIMITS = { maxServiceId: 0x3fffffff, maxBackendId: 0xffffffff } as const;

export class Planner {
  private readonly services = new Map<string, PlannedService>();
  private readonly healthChecks = new Map<string, HealthCheck>();
  private readonly entries = new Map<string, ServiceEntry>();
  private readonly serviceIds: IdPool;
  private readonly backendIds: IdAllocator;
  /** Until the first plan: the IDs an earlier run left, by frontend. */
  private frontendHints: IdHints['frontends'] | null;
  /**
   * Frontends planned, by binary key (address-key.ts). Per slot: the
   * planned-service key that owns it, and the services (ns/name) waiting for it.
   */
  private readonly frontendIndex = new FlatIndex(KEY_WORDS, 1024);
  private readonly frontendOwner: (string | undefined)[] = [];
  private readonly frontendWaiters: (Set<string> | undefined)[] = [];
  /** Scratch: the backends released so far of one planned service. */
  private readonly releasing = new Set<PlannedBackend>();
  /** Scratch: one frontend or backend key. */
  private readonly key = new Uint32Array(KEY_WORDS);
  /** Drafts each service's ports into reused scratch. */
  private readonly drafter = new ServicePlanner();
  /** Scratch: the backend made for each endpoint row of the current draft, so that its sets share it. */
  private readonly rowBackends: (PlannedBackend | null)[] = [];
  /** Scratch: one service's planned-service keys and frontend slots, while it is planned. */
  private readonly scratchPlanned: string[] = [];
  private readonly scratchSlots: number[] = [];
  private localAddresses: readonly string[] = [];
  private nodePortAddresses: Record<IPFamily, string[]> = { IPv4: [], IPv6: [] };
  private node: NodeTopology;
  private primaryIPs: string[] = [];
  private generation = 0;
  private planned = false;

  constructor(private readonly cfg: PlannerConfig, hints: IdHints) {
    this.serviceIds = new IdPool(cfg.maxServiceId, hints.frontends.highestAtMost(cfg.maxServiceId), () => [...this.services.values()].map((s) => s.id));
    this.backendIds = new IdAllocator(cfg.maxBackendId, hints.backends);
    this.frontendHints = hints.frontends;
    this.node = { name: cfg.nodeName, zone: null };
  }

  /** Backends (address, port, protocol) holding an ID: every one some planned service uses. */
  get backendIdsInUse(): number {
    return this.backendIds.size;
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
    if (!this.planned && view.endpointPorts !== undefined) this.reserveFor(view.services.size, view.endpointPorts);
    const ctx: PlanContext = { node: this.node, nodePortAddresses: this.nodePortAddresses };
    // Everything: the services in force and those planned before (a Set of both was a tenth of a full plan at 30,000).
    let keys: string[];
    if (all) {
      keys = [...view.services.keys()];
      for (const k of this.entries.keys()) if (!view.services.has(k)) keys.push(k);
    } else {
      keys = [...new Set(changed)];
    }
    keys.sort();
    // Planning one service may release a frontend another is waiting for.
    const work = new Set<string>();
    while (keys.length > 0) {
      for (const key of keys) this.planOne(key, view.services.get(key), view, ctx, changedKeys, conflicts, work);
      keys = [...work].sort();
      work.clear();
    }
    // The scratch refers to slices and backends the next plan may not: let them go.
    this.drafter.endpoints.clear();
    this.rowBackends.length = 0;
    for (const list of conflicts.values()) warnings.push(...list);
    if (!this.planned) {
      this.planned = true;
      this.frontendHints = null;
      this.backendIds.dropHints();
    }
    if (changedKeys.size > 0 || all) this.generation++;
    return {
      desired: { generation: this.generation, services: this.services, healthChecks: this.healthChecks, nodePortAddresses: this.nodePortAddresses },
      changed: changedKeys,
      warnings,
    };
  }

  /**
   * Before the first plan, which plans everything: sizes the ID tables for
   * what is coming (at most one backend per endpoint and slice port, a
   * frontend per service at least), so that they are not rehashed again and
   * again as they fill (a tenth of a full plan at 30,000 x 10). A table
   * reserved for n keys is the size doubling would have grown it to.
   */
  private reserveFor(services: number, endpointPorts: number): void {
    this.backendIds.reserve(endpointPorts);
    this.frontendIndex.reserve(services);
  }

  private refreshNodePortAddresses(): boolean {
    const next = selectNodePortAddresses({ spec: this.cfg.nodePortAddresses, localAddresses: this.localAddresses, primaryIPs: this.primaryIPs });
    const same = next.IPv4.join() === this.nodePortAddresses.IPv4.join() && next.IPv6.join() === this.nodePortAddresses.IPv6.join();
    this.nodePortAddresses = next;
    return !same;
  }

  /** Plans one service (undefined: it is gone). Services waiting for a frontend it released go into `wake`. */
  private planOne(
    key: string,
    svc: ServiceInfo | undefined,
    view: ClusterView,
    ctx: PlanContext,
    changed: Set<string>,
    conflicts: Map<string, PlanWarning[]>,
    wake: Set<string>,
  ): void {
    const old = this.entries.get(key);
    if (conflicts.size > 0) conflicts.delete(key);
    // Built in scratch, copied out at their exact length below.
    const planned = this.scratchPlanned;
    const frontendSlots = this.scratchSlots;
    planned.length = 0;
    frontendSlots.length = 0;
    // The old plans, before the new ones replace them: their backend references are released below.
    const oldPlans = old ? old.planned.map((k) => this.services.get(k)) : NO_PLANS;
    const oldFrontends = old?.frontendSlots ?? NO_SLOTS;
    const drafter = this.drafter;
    if (svc) drafter.begin(svc, view.slicesOf(key), ctx);
    for (let draft = svc ? drafter.next() : null; draft; draft = drafter.next()) {
      // The draft's own list when nothing is left out; a copy of the kept ones from the first left out.
      let kept: Frontend[] | null = null;
      for (let i = 0; i < draft.frontends.length; i++) {
        const f = draft.frontends[i]!;
        // One probe for both cases: a frontend no one has is added here (and an owned one is found).
        this.frontendKey(draft, f);
        const slot = this.frontendIndex.insert(this.key, 0);
        const owner = this.frontendOwner[slot];
        if (owner && owner !== draft.key && !oldFrontends.includes(slot)) {
          const message = `${f.kind} frontend ${hostPort(f.address, f.port)}/${draft.protocol} is already served by ${owner}; left out until it is free`;
          let list = conflicts.get(key);
          if (!list) conflicts.set(key, (list = []));
          list.push({ service: key, message });
          let w = this.frontendWaiters[slot];
          if (!w) this.frontendWaiters[slot] = w = new Set();
          w.add(key);
          kept ??= draft.frontends.slice(0, i);
          continue;
        }
        this.frontendOwner[slot] = draft.key;
        frontendSlots.push(slot);
        kept?.push(f);
      }
      const frontends = kept ?? draft.frontends;
      // Kept out of every external frontend it asked for: nothing external to plan for.
      const prev = this.services.get(draft.key);
      const next = this.assign(draft, prev, frontends, draft.preserveSource && hasExternalFrontends(frontends));
      planned.push(draft.key);
      // An unchanged plan keeps its object: dataplanes may cache by identity.
      if (prev && samePlan(prev, next)) continue;
      this.services.set(draft.key, next);
      changed.add(draft.key);
    }
    // Release what the old plan held and the new one does not (after
    // acquiring, so an unchanged backend keeps its ID).
    for (const k of old?.planned ?? NO_KEYS) {
      if (planned.includes(k)) continue;
      const gone = this.services.get(k);
      if (gone) this.serviceIds.free(gone.id);
      this.services.delete(k);
      changed.add(k);
    }
    for (const p of oldPlans) if (p) this.releaseBackends(p);
    for (const slot of oldFrontends) {
      const owner = this.frontendOwner[slot];
      if (frontendSlots.includes(slot) || owner === undefined || !old!.planned.includes(owner)) continue;
      for (const w of this.frontendWaiters[slot] ?? []) if (w !== key) wake.add(w);
      this.frontendOwner[slot] = undefined;
      this.frontendWaiters[slot] = undefined;
      this.frontendIndex.removeSlot(slot);
    }
    // Copied out at their exact length: arrays grown by push keep spare
    // capacity (16 elements for the first push), per service.
    if (planned.length > 0) this.entries.set(key, { planned: planned.slice(), frontendSlots: frontendSlots.length > 0 ? frontendSlots.slice() : NO_SLOTS });
    else if (old) this.entries.delete(key);

    const health = svc ? drafter.health() : null;
    const hc = svc && health ? { namespace: svc.namespace, name: svc.name, port: health.port, localEndpoints: health.localEndpoints } : null;
    if (hc) this.healthChecks.set(key, hc);
    else if (this.healthChecks.size > 0) this.healthChecks.delete(key);
  }

  /** Writes the frontend's key into `this.key`. */
  private frontendKey(d: DraftService, f: Frontend): void {
    writeAddressKey(this.key, 0, d.protocol, d.family, f.v4, f.address, f.port);
  }

  private assign(d: DraftService, prev: PlannedService | undefined, frontends: Frontend[], preserveSource: boolean): PlannedService {
    const id = prev?.id ?? this.newServiceId(d, frontends);
    // No backend made yet for any row of this draft.
    const made = this.rowBackends;
    for (let i = 0; i < this.drafter.endpoints.count; i++) made[i] = null;
    const internal = this.toSet(d, d.internal);
    const external = d.external === d.internal ? internal : this.toSet(d, d.external);
    const cluster = d.cluster === d.internal ? internal : d.cluster === d.external ? external : this.toSet(d, d.cluster);
    return {
      key: d.key,
      namespace: d.namespace,
      name: d.name,
      portName: d.portName,
      protocol: d.protocol,
      family: d.family,
      id,
      frontends,
      internal,
      external,
      cluster,
      affinityTimeout: d.affinityTimeout,
      sourceRanges: d.sourceRanges,
      preserveSource,
      maglev: hasExternalFrontends(frontends) ? { m: this.cfg.maglevTableSize || DEFAULT_MAGLEV_M, backends: external.backends } : null,
      topology: d.topology,
    };
  }

  /** The set's backends, in row (address) order, at their exact length. */
  private toSet(d: DraftService, s: DraftSet): BackendSet {
    const n = s.rows.n;
    const backends = new Array<PlannedBackend>(n);
    for (let i = 0; i < n; i++) backends[i] = this.backend(d, s.rows.rows[i]!);
    return { onEmpty: s.onEmpty, backends };
  }

  /** A new planned service's ID: the one an earlier run gave the first of its frontends that had one free, else a fresh one. */
  private newServiceId(d: DraftService, frontends: readonly Frontend[]): number {
    if (this.frontendHints) {
      for (const f of frontends) {
        this.frontendKey(d, f);
        const hinted = this.frontendHints.find(this.key, 0);
        if (this.serviceIds.claim(hinted)) return hinted;
      }
    }
    return this.serviceIds.allocate();
  }

  /** The PlannedBackend of the draft's endpoint row, made once per draft (sets share it) with a reference on its ID. */
  private backend(d: DraftService, row: number): PlannedBackend {
    const made = this.rowBackends[row];
    if (made) return made;
    const eps = this.drafter.endpoints;
    const packed = eps.packed[row]!;
    const at = eps.at[row]!;
    const port = eps.port[row]!;
    writePackedKey(this.key, 0, d.protocol, d.family, packed, at, port);
    const id = this.backendIds.idAt(this.backendIds.acquire(this.key, 0));
    const b = d.family === 'IPv4'
      ? new CompactBackend(id, eps.v4[row]!, port, eps.local(row), eps.terminating(row), eps.place[row]!)
      : new CompactBackend6(id, port, eps.local(row), eps.terminating(row), eps.place[row]!, packedAddress(packed, at, 'IPv6'));
    this.rowBackends[row] = b;
    return b;
  }

  /** Drops the references `p` holds: one per distinct backend of its sets (they share backend objects). */
  private releaseBackends(p: PlannedService): void {
    const seen = this.releasing;
    seen.clear();
    for (const set of [p.internal, p.external, p.cluster]) {
      for (const b of set.backends) {
        if (seen.has(b)) continue;
        seen.add(b);
        writeAddressKey(this.key, 0, p.protocol, p.family, b.v4, p.family === 'IPv4' ? '' : b.address, b.port);
        this.backendIds.releaseKey(this.key, 0);
      }
    }
    seen.clear();
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
  return plainEqual(a, b);
}
