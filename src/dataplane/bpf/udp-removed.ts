// What both ways of moving connected UDP sockets off removed backends share
// (sock-destroy.ts chooses the way): which (service, backend) pairs a sync
// removed, which network namespaces hold the sockets to look at, and what a
// run reports.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { PlannedBackend, PlannedService } from '../../planner/types.js';

/** A backend a sync took out of a UDP service. */
export interface RemovedBackend {
  svcId: number;
  svcKey: string;
  backend: PlannedBackend;
  family: 'IPv4' | 'IPv6';
}

export interface DestroyReport {
  /** Sockets destroyed. */
  destroyed: number;
  /** Sockets that matched but the kernel refused to destroy, with its errno. */
  failed: number;
  /** Network namespaces visited. */
  namespaces: number;
  /** Namespaces that could not be visited (gone meanwhile, or an error), with why. */
  skipped: string[];
}

/** The backends the socket hooks could have sent a connection to: ClusterIP (internal) and external frontends reached from this node (cluster). */
function hookBackends(svc: PlannedService): PlannedBackend[] {
  return svc.cluster === svc.internal ? svc.internal.backends : [...svc.internal.backends, ...svc.cluster.backends];
}

/** The UDP services among `keys`, as `applied` has them: what removedUdpBackends compares against. */
export function udpServices(applied: ReadonlyMap<string, PlannedService>, keys: Iterable<string>): Map<string, PlannedService> {
  const out = new Map<string, PlannedService>();
  for (const key of keys) {
    const svc = applied.get(key);
    if (svc?.protocol === 'UDP') out.set(key, svc);
  }
  return out;
}

/**
 * The UDP backends each of `keys` had in `before` and no longer has in
 * `after` (all of them when the service is gone). Pure. A service whose
 * sync failed keeps its old plan in `after`, so it removes nothing.
 */
export function removedUdpBackends(before: ReadonlyMap<string, PlannedService>, after: ReadonlyMap<string, PlannedService>, keys: Iterable<string>): RemovedBackend[] {
  const out: RemovedBackend[] = [];
  for (const key of keys) {
    const old = before.get(key);
    if (!old || old.protocol !== 'UDP') continue;
    const now = after.get(key);
    if (now === old) continue; // unchanged: the planner reuses the object
    const live = new Set<number>(now && now.id === old.id ? hookBackends(now).map((b) => b.id) : []);
    const seen = new Set<number>();
    for (const b of hookBackends(old)) {
      if (live.has(b.id) || seen.has(b.id)) continue;
      seen.add(b.id);
      out.push({ svcId: old.id, svcKey: key, backend: b, family: old.family });
    }
  }
  return out;
}

/**
 * The network namespaces to visit: "" (the proxy's own) and one
 * /proc/PID/ns/net path per other namespace a process of the cgroup tree is
 * in. Processes come and go while this reads: one that is gone is skipped.
 */
export function namespacesToVisit(cgroupRoot: string): string[] {
  const own = nsId('/proc/self/ns/net');
  const seen = new Set<string>(own ? [own] : []);
  const out = [''];
  const walk = (dir: string) => {
    let procs: string[] = [];
    try {
      procs = readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n');
    } catch {
      return; // removed meanwhile
    }
    for (const pid of procs) {
      if (!pid) continue;
      const path = `/proc/${pid}/ns/net`;
      const id = nsId(path);
      if (!id || seen.has(id)) continue;
      seen.add(id);
      out.push(path);
    }
    let children: string[] = [];
    try {
      children = readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
    } catch {
      return;
    }
    for (const c of children) walk(join(dir, c));
  };
  walk(cgroupRoot);
  return out;
}

function nsId(path: string): string | null {
  try {
    const st = statSync(path);
    return `${st.dev}:${st.ino}`;
  } catch {
    return null;
  }
}
