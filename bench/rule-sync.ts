// What the rule-mode sync benches (iptables.ts, nftables.ts) share, so their
// numbers compare: the same N services, the same three measurements (a full
// sync, a full resync of the loaded tables, five partial syncs that each add
// one endpoint to one service), and the tools run in a lab node's namespace.
import type { Dataplane, SyncResult } from '../src/dataplane/types.js';
import type { Lab } from '../src/lab/lab.js';
import { LAB_TIME_SCALE } from '../src/lab/time-scale.js';
import type { DesiredDataplane, PlannedService } from '../src/planner/types.js';
import { frontend, plannedBackend, plannedService } from '../test/helpers/planned.js';
import { median } from './stats.js';

/** N ClusterIP services on 10.96.0.0/16, one endpoint each. */
export function services(n: number): Map<string, PlannedService> {
  const m = new Map<string, PlannedService>();
  for (let i = 0; i < n; i++) {
    const ip = `10.96.${i >> 8}.${i & 255}`;
    const s = plannedService({ id: i + 1, frontends: [frontend('ClusterIP', ip, 80)], backends: [plannedBackend(i + 1, `10.244.${(i >> 8) & 255}.${(i & 255) || 1}`)] });
    m.set(s.key, s);
  }
  return m;
}

const desired = (svcs: Map<string, PlannedService>, generation: number): DesiredDataplane =>
  ({ generation, services: svcs, healthChecks: new Map(), nodePortAddresses: { IPv4: ['172.18.0.11'], IPv6: [] } });

/**
 * Runs argv in the namespace; a failure is an answer with its message, as the
 * dataplanes' runners expect. A tool still running after timeoutMs (real
 * milliseconds: the lab's time scale is undone) is killed, so a bench's time
 * budget ends the tool rather than waiting for it.
 */
export async function runIn(lab: Lab, netns: string, argv: string[], input: string | undefined, timeoutMs = 120_000): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  try {
    const r = await lab.exec(netns, argv, { input, timeoutMs: Math.max(1, Math.round(timeoutMs / LAB_TIME_SCALE)) });
    return { ok: true, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    return { ok: false, stdout: '', stderr: (err as Error).message };
  }
}

export interface SyncCosts {
  /** The first full sync's result, and its time. */
  full: SyncResult;
  fullMs: number;
  /** The periodic full resync on loaded tables. */
  refullMs: number;
  /** Median of five partial syncs, each adding one endpoint to one service. */
  partialMedianMs: number;
}

/** The three measurements on `dp`, which starts from empty tables; `svcs` is changed in place. */
export async function measureSyncs(dp: Dataplane, svcs: Map<string, PlannedService>, checkFull = false): Promise<SyncCosts> {
  let t = performance.now();
  const full = await dp.sync(desired(svcs, 1), { full: true, changed: new Set() });
  const fullMs = performance.now() - t;
  if (checkFull && full.errors.length) throw new Error(JSON.stringify(full.errors));
  t = performance.now();
  await dp.sync(desired(svcs, 2), { full: true, changed: new Set() });
  const refullMs = performance.now() - t;
  const partial: number[] = [];
  for (let k = 0; k < 5; k++) {
    const key = [...svcs.keys()][k * 7]!;
    const old = svcs.get(key)!;
    const changed = { ...old, internal: { ...old.internal, backends: [...old.internal.backends, plannedBackend(900_000 + k, `10.244.250.${k + 1}`)] } };
    changed.external = changed.internal;
    changed.cluster = changed.internal;
    svcs.set(key, changed);
    t = performance.now();
    const r = await dp.sync(desired(svcs, 3 + k), { full: false, changed: new Set([key]) });
    partial.push(performance.now() - t);
    if (r.errors.length) throw new Error(JSON.stringify(r.errors));
  }
  return { full, fullMs, refullMs, partialMedianMs: median(partial) };
}
