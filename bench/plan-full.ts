// The planner alone, on bench/sync.ts's cluster (bench/cluster.ts: N
// ClusterIP services of one TCP port, one slice of E endpoints each, none
// local). No root, no lab: what sync.ts's "plan" figure is, repeated until
// it has a median. Run:
//
//   NODE_OPTIONS=--expose-gc npx vite-node bench/plan-full.ts [services...]     (default 10 1000 10000 30000; E=10)
//
// 1. Full plan: a new Planner (first plan, no ID hints) planning every
//    service of a model that holds N x E: checkout + plan, as sync.ts times
//    it. Median of RUNS, wall and CPU time, and the share of wall time spent
//    in garbage collection.
// 2. Everything planned again with nothing changed (all: true), CPU time.
// 3. Partial plan after one endpoint change (one endpoint of one slice
//    replaced by a new address): slice upsert, checkout, plan; median of
//    CHANGES, at every size of 1,000 and more.
// Printed with the load average, since the machine is shared.
import { loadavg } from 'node:os';
import { performance, PerformanceObserver } from 'node:perf_hooks';
import { endpointsOf, median, NAMESPACE, service, slice } from './cluster.js';
import { ClusterState } from '../src/model/state.js';
import { DEFAULT_VALIDATION } from '../src/model/types.js';
import { DEFAULT_PLANNER_LIMITS, Planner } from '../src/planner/planner.js';
import { EMPTY_ID_HINTS } from '../src/planner/types.js';

const E = Number(process.env.E ?? 10);
const SIZES = process.argv.length > 2 ? process.argv.slice(2).map(Number) : [10, 1_000, 10_000, 30_000];
const RUNS = Number(process.env.RUNS ?? 7);
const CHANGES = 300;

const gcs: { start: number; end: number }[] = [];
new PerformanceObserver((list) => {
  for (const g of list.getEntries()) gcs.push({ start: g.startTime, end: g.startTime + g.duration });
}).observe({ entryTypes: ['gc'] });
const gcMs = (t0: number, t1: number): number => gcs.reduce((s, g) => s + Math.max(0, Math.min(g.end, t1) - Math.max(g.start, t0)), 0);

function newPlanner(): Planner {
  return new Planner({ nodeName: 'node1', nodePortAddresses: [], maglevTableSize: 16381, ...DEFAULT_PLANNER_LIMITS }, EMPTY_ID_HINTS);
}

async function size(n: number): Promise<void> {
  const state = new ClusterState('node1', DEFAULT_VALIDATION, { rejected: (r) => { throw new Error(r.reason); }, warned: () => undefined });
  for (let i = 0; i < n; i++) {
    state.upsert('Service', `${NAMESPACE}/s${i}`, service(i), 'bench');
    state.upsert('EndpointSlice', `${NAMESPACE}/s${i}-1`, slice(i, endpointsOf(i, E)), 'bench');
  }
  state.markSynced();
  const wall: number[] = [];
  const cpu: number[] = [];
  const spans: [number, number][] = [];
  let planner = newPlanner();
  for (let r = 0; r < RUNS; r++) {
    planner = newPlanner();
    // The previous run's planner is garbage: collected here, not charged to this run.
    (globalThis as { gc?: () => void }).gc?.();
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const res = planner.plan(state, state.checkout().services, {});
    const t1 = performance.now();
    const c = process.cpuUsage(c0);
    if (res.desired.services.size !== n) throw new Error(`planned ${res.desired.services.size} of ${n}`);
    wall.push(t1 - t0);
    cpu.push((c.user + c.system) / 1000);
    spans.push([t0, t1]);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const gcShare = spans.map(([a, b]) => gcMs(a, b) / (b - a));
  const f = (x: number) => (x < 10 ? x.toFixed(3) : x.toFixed(1));
  console.log(`${String(n).padStart(6)} x ${E}: full plan ${f(median(wall))} ms median (cpu ${f(median(cpu))} ms, min ${f(Math.min(...wall))} ms, GC ${(100 * median(gcShare)).toFixed(0)}%, ${RUNS} runs)  load ${loadavg()[0]!.toFixed(2)}`);
  // Everything planned again with nothing changed (a node change, a periodic
  // full plan): every service is planned and compared with its previous plan.
  const again: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const c0 = process.cpuUsage();
    const res = planner.plan(state, [], { all: true });
    const c = process.cpuUsage(c0);
    if (res.changed.size !== 0) throw new Error(`a plan of nothing new changed ${res.changed.size}`);
    again.push((c.user + c.system) / 1000);
  }
  console.log(`${''.padStart(10)}  everything again, nothing changed: cpu ${f(median(again))} ms median`);
  if (n < 1_000) return;
  const change: number[] = [];
  const planOnly: number[] = [];
  for (let k = 0; k < CHANGES + 30; k++) {
    const i = (k * 7919) % n;
    const ips = endpointsOf(i, E);
    ips[0] = `10.250.${k & 255}.${1 + (k >> 8)}`;
    const t0 = performance.now();
    state.upsert('EndpointSlice', `${NAMESPACE}/s${i}-1`, slice(i, ips), 'bench');
    const co = state.checkout();
    const t1 = performance.now();
    const p = planner.plan(state, co.services);
    const t2 = performance.now();
    if (p.changed.size !== 1) throw new Error(`one endpoint change re-planned ${p.changed.size}`);
    if (k >= 30) {
      change.push((t2 - t0) * 1000);
      planOnly.push((t2 - t1) * 1000);
    }
  }
  console.log(`${''.padStart(10)}  one endpoint change: ${median(change).toFixed(1)} us median (plan alone ${median(planOnly).toFixed(1)} us, ${CHANGES} changes)`);
}

for (const n of SIZES) await size(n);
