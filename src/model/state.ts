// The cluster as the proxy sees it: the Services, EndpointSlices and own Node
// in force. Validation happens here. A rejected object keeps its last good
// version in force and touches nothing else. Conflicts between objects
// (a clusterIP or nodePort another Service already holds) are settled as the
// API server's allocators would: the holder keeps it. Objects listed at start
// are admitted oldest first (creationTimestamp, then name), so the outcome
// does not depend on listing order. Pure: no I/O, callbacks for reporting.
import { nodeFromObject } from './node.js';
import type { KubeObject, ObjectKind } from './objects.js';
import { serviceFromObject } from './service.js';
import { sliceFromObject } from './endpointslice.js';
import { ChangeTracker } from './tracker.js';
import { strideOf } from './packed-endpoints.js';
import type { NodeInfo, ServiceInfo, SliceInfo, ValidationConfig } from './types.js';

export interface Rejection {
  kind: ObjectKind;
  key: string;
  origin: string;
  reason: string;
  /** A last good version stays in force. */
  keptPrevious: boolean;
}

export interface Warning {
  kind: ObjectKind;
  key: string;
  origin: string;
  message: string;
}

export interface StateReporter {
  rejected(r: Rejection): void;
  warned(w: Warning): void;
}

export interface ClusterView {
  readonly services: ReadonlyMap<string, ServiceInfo>;
  slicesOf(serviceKey: string): SliceInfo[];
  readonly node: NodeInfo | null;
  /**
   * Endpoints times ports, summed over every slice in force: at least as
   * many as the backends a plan of everything holds. Lets the planner size
   * its tables once before a first plan (optional: a view without it gets
   * tables that grow as they fill).
   */
  readonly endpointPorts?: number;
}

export interface Checkout {
  /** Service keys whose service or endpoints changed. */
  services: Set<string>;
  /** The own Node changed (labels, addresses): everything is re-planned. */
  nodeChanged: boolean;
  serviceChanges: number;
  endpointChanges: number;
}

interface Candidate {
  info: ServiceInfo;
  origin: string;
}

export class ClusterState implements ClusterView {
  readonly services = new Map<string, ServiceInfo>();
  private readonly slices = new Map<string, SliceInfo>();
  /**
   * Slice keys per service: the key itself while a service has one slice (nearly
   * all do), a Set from the second on. A Set per service was 5.5 MB of heap at
   * 30,000 services (bench/heap-breakdown.ts).
   */
  private readonly slicesByService = new Map<string, string | Set<string>>();
  node: NodeInfo | null = null;
  /** ClusterView.endpointPorts, kept as slices come and go. */
  endpointPorts = 0;

  private readonly serviceTracker = new ChangeTracker<ServiceInfo>();
  private readonly sliceTracker = new ChangeTracker<SliceInfo>();
  private nodeChanged = false;

  // Who holds what, among services in force.
  private readonly clusterIPOwner = new Map<string, string>();
  private readonly nodePortOwner = new Map<number, string>();
  /** Valid services waiting for a clusterIP or port another one holds. */
  private readonly blocked = new Map<string, Candidate>();
  /** Before the initial lists are complete: admitted oldest first at markSynced(). */
  private initial: Map<string, Candidate> | null = new Map();

  constructor(
    private readonly nodeName: string,
    private readonly validation: ValidationConfig,
    private readonly report: StateReporter,
  ) {}

  // ---- input ----

  upsert(kind: ObjectKind, key: string, obj: KubeObject, origin: string): void {
    if (kind === 'Service') this.upsertService(key, obj, origin);
    else if (kind === 'EndpointSlice') this.upsertSlice(key, obj, origin);
    else this.upsertNode(key, obj, origin);
  }

  delete(kind: ObjectKind, key: string): void {
    if (kind === 'Service') {
      this.initial?.delete(key);
      this.blocked.delete(key);
      this.setService(key, undefined);
      this.retryBlocked();
    } else if (kind === 'EndpointSlice') {
      this.setSlice(key, undefined);
    } else if (key === this.nodeName && this.node) {
      this.node = null;
      this.nodeChanged = true;
    }
  }

  /** Every source delivered its initial list: admit the services listed so far, oldest first. */
  markSynced(): void {
    const initial = this.initial;
    if (!initial) return;
    this.initial = null;
    for (const c of [...initial.values()].sort(seniority)) this.admit(c);
  }

  // ---- output ----

  slicesOf(serviceKey: string): SliceInfo[] {
    const keys = this.slicesByService.get(serviceKey);
    if (!keys) return [];
    if (typeof keys === 'string') return [this.slices.get(keys)!];
    const out: SliceInfo[] = [];
    for (const k of keys) out.push(this.slices.get(k)!);
    return out;
  }

  get pendingServiceChanges(): number {
    return this.serviceTracker.size;
  }

  get pendingEndpointChanges(): number {
    return this.sliceTracker.size;
  }

  checkout(): Checkout {
    const services = new Set<string>();
    const svcChanges = this.serviceTracker.checkout();
    for (const key of svcChanges.keys()) services.add(key);
    const sliceChanges = this.sliceTracker.checkout();
    for (const c of sliceChanges.values()) {
      if (c.previous) services.add(c.previous.serviceKey);
      if (c.current) services.add(c.current.serviceKey);
    }
    const nodeChanged = this.nodeChanged;
    this.nodeChanged = false;
    return { services, nodeChanged, serviceChanges: svcChanges.size, endpointChanges: sliceChanges.size };
  }

  // ---- services ----

  private upsertService(key: string, obj: KubeObject, origin: string): void {
    const v = serviceFromObject(obj, this.validation);
    for (const w of v.ok ? v.warnings : []) this.report.warned({ kind: 'Service', key, origin, message: w });
    if (!v.ok) {
      // Before the initial lists are complete the last good version waits in `initial`.
      const kept = this.services.has(key) || (this.initial?.has(key) ?? false);
      this.report.rejected({ kind: 'Service', key, origin, reason: v.reason, keptPrevious: kept });
      return;
    }
    // One string for the key, not two: the source's (our Map key) and the record's.
    if (v.value.key === key) v.value.key = key;
    const c = { info: v.value, origin };
    if (this.initial) {
      this.initial.set(key, c);
      return;
    }
    this.blocked.delete(key);
    this.admit(c);
  }

  /** Puts a valid service in force unless it conflicts with one in force. */
  private admit(c: Candidate): void {
    const { info, origin } = c;
    const conflict = this.conflictOf(info);
    if (conflict) {
      this.blocked.set(info.key, c);
      this.report.rejected({ kind: 'Service', key: info.key, origin, reason: conflict, keptPrevious: this.services.has(info.key) });
      return;
    }
    const released = this.setService(info.key, info);
    if (released) this.retryBlocked();
  }

  private conflictOf(info: ServiceInfo): string | null {
    const problems: string[] = [];
    info.clusterIPs.forEach((ip, i) => {
      const owner = this.clusterIPOwner.get(ip);
      if (owner && owner !== info.key) {
        problems.push(`spec.clusterIPs[${i}]: Invalid value: "${ip}": provided IP is already allocated (to Service ${owner})`);
      }
    });
    info.ports.forEach((p, i) => {
      const owner = p.nodePort ? this.nodePortOwner.get(p.nodePort) : undefined;
      if (owner && owner !== info.key) {
        problems.push(`spec.ports[${i}].nodePort: Invalid value: ${p.nodePort}: provided port is already allocated (to Service ${owner})`);
      }
    });
    if (info.healthCheckNodePort) {
      const owner = this.nodePortOwner.get(info.healthCheckNodePort);
      if (owner && owner !== info.key) {
        problems.push(`spec.healthCheckNodePort: Invalid value: ${info.healthCheckNodePort}: provided port is already allocated (to Service ${owner})`);
      }
    }
    if (problems.length === 0) return null;
    return `Service ${info.key}: ${problems.join('; ')}`;
  }

  /** Returns true when the change released a clusterIP or port someone may be waiting for. */
  private setService(key: string, info: ServiceInfo | undefined): boolean {
    const old = this.services.get(key);
    let released = false;
    if (old) {
      for (const ip of old.clusterIPs) {
        if (this.clusterIPOwner.get(ip) === key && !info?.clusterIPs.includes(ip)) {
          this.clusterIPOwner.delete(ip);
          released = true;
        }
      }
      for (const port of portsHeld(old)) {
        if (this.nodePortOwner.get(port) === key && !(info && portsHeld(info).includes(port))) {
          this.nodePortOwner.delete(port);
          released = true;
        }
      }
    }
    if (info) {
      for (const ip of info.clusterIPs) this.clusterIPOwner.set(ip, key);
      for (const port of portsHeld(info)) this.nodePortOwner.set(port, key);
      this.services.set(key, info);
    } else {
      this.services.delete(key);
    }
    this.serviceTracker.update(key, old, info);
    return released;
  }

  private retryBlocked(): void {
    // In seniority order, as the allocators would have decided. Admitting a
    // waiting update can itself release what an earlier one in the order
    // waits for, so go round again until nothing more is released.
    for (let released = true; released; ) {
      released = false;
      for (const c of [...this.blocked.values()].sort(seniority)) {
        if (this.conflictOf(c.info)) continue;
        this.blocked.delete(c.info.key);
        if (this.setService(c.info.key, c.info)) released = true;
      }
    }
  }

  // ---- endpoint slices ----

  private upsertSlice(key: string, obj: KubeObject, origin: string): void {
    const v = sliceFromObject(obj);
    if (!v.ok) {
      this.report.rejected({ kind: 'EndpointSlice', key, origin, reason: v.reason, keptPrevious: this.slices.has(key) });
      return;
    }
    for (const w of v.warnings) this.report.warned({ kind: 'EndpointSlice', key, origin, message: w });
    const info = v.value;
    if (info) {
      // Shared strings rather than copies: the source's key, and the service's own key when it is known.
      if (info.key === key) info.key = key;
      const svc = this.services.get(info.serviceKey);
      if (svc) info.serviceKey = svc.key;
    }
    // null: a slice kube-proxy ignores on purpose (FQDN, no service label).
    this.setSlice(key, info ?? undefined);
  }

  private setSlice(key: string, info: SliceInfo | undefined): void {
    const old = this.slices.get(key);
    if (old) this.endpointPorts -= endpointPortsOf(old);
    if (info) this.endpointPorts += endpointPortsOf(info);
    if (old) {
      const keys = this.slicesByService.get(old.serviceKey);
      if (keys === key) this.slicesByService.delete(old.serviceKey);
      else if (typeof keys === 'object') {
        keys.delete(key);
        if (keys.size === 1) this.slicesByService.set(old.serviceKey, keys.values().next().value!);
      }
    }
    if (info) {
      this.slices.set(key, info);
      const keys = this.slicesByService.get(info.serviceKey);
      if (keys === undefined) this.slicesByService.set(info.serviceKey, key);
      else if (typeof keys === 'string') {
        if (keys !== key) this.slicesByService.set(info.serviceKey, new Set([keys, key]));
      } else keys.add(key);
    } else {
      this.slices.delete(key);
    }
    this.sliceTracker.update(key, old, info);
  }

  // ---- node ----

  private upsertNode(key: string, obj: KubeObject, origin: string): void {
    if (key !== this.nodeName) return;
    const v = nodeFromObject(obj);
    if (!v.ok) {
      this.report.rejected({ kind: 'Node', key, origin, reason: v.reason, keptPrevious: this.node !== null });
      return;
    }
    for (const w of v.warnings) this.report.warned({ kind: 'Node', key, origin, message: w });
    if (JSON.stringify(this.node) !== JSON.stringify(v.value)) {
      this.node = v.value;
      this.nodeChanged = true;
    }
  }
}

function portsHeld(s: ServiceInfo): number[] {
  const out = s.ports.map((p) => p.nodePort).filter((p) => p > 0);
  if (s.healthCheckNodePort) out.push(s.healthCheckNodePort);
  return out;
}

function seniority(a: Candidate, b: Candidate): number {
  const ta = a.info.creationTimestamp ?? '';
  const tb = b.info.creationTimestamp ?? '';
  if (ta !== tb) return ta < tb ? -1 : 1;
  return a.info.key < b.info.key ? -1 : a.info.key > b.info.key ? 1 : 0;
}

function endpointPortsOf(s: SliceInfo): number {
  return (s.packed.length / strideOf(s.family)) * s.ports.length;
}
