// Planning benchmark. Run:
//
//   NODE_OPTIONS=--expose-gc npx vite-node bench/plan.ts
//
// (vite-node ships with vitest and runs TypeScript as is; --expose-gc makes
// the heap figures exact, without it they include garbage not yet collected.)
//
// 1. Plans clusters from scratch (1,000 x 10, 10,000 x 1, 10,000 x 10 and
//    30,000 x 10 services x endpoints; QUICK=1: 1,000 x 10 and 10,000 x 10): validation, then checkout and plan,
//    each in wall and CPU time (CPU time is the steadier figure on a shared
//    machine), the share of the plan's wall time spent in garbage
//    collection, and the memory each leaves behind: the model's heap, the
//    planner's heap and the planner's typed arrays (ArrayBuffers are not in
//    heapUsed, but they are memory all the same).
// 2. The cost of one endpoint change at that size (upsert of one slice,
//    checkout, incremental plan), against the same change in a cluster of
//    1,000 services measured in the same run. An incremental plan must cost
//    in proportion to what changed, so the ratio should be close to 1.
import { performance, PerformanceObserver } from 'node:perf_hooks';
import { record } from './results.js';
import { median } from './stats.js';
import type { KubeObject } from '../src/model/objects.js';
import { ClusterState } from '../src/model/state.js';
import { DEFAULT_VALIDATION } from '../src/model/types.js';
import { DEFAULT_PLANNER_LIMITS, Planner } from '../src/planner/planner.js';
import { EMPTY_ID_HINTS } from '../src/planner/types.js';

const QUICK = process.env.QUICK === '1';
const ENDPOINTS_PER_SERVICE = 10;
const NODES = 50;
const CHANGES = QUICK ? 300 : 1000;
/** nodePorts and health-check ports are distinct for the first 10,000 services; the rest are ClusterIP. */
const EXTERNAL_SERVICES = 10_000;

/** Every garbage collection of the run, to charge each phase its share. */
const gcs: { start: number; end: number }[] = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcs.push({ start: e.startTime, end: e.startTime + e.duration });
}).observe({ entryTypes: ['gc'] });

/** Milliseconds of garbage collection between t0 and t1 (entries arrive on a later timer turn: wait for one first). */
function gcMs(t0: number, t1: number): number {
  let ms = 0;
  for (const g of gcs) ms += Math.max(0, Math.min(g.end, t1) - Math.max(g.start, t0));
  return ms;
}

function serviceObject(i: number): KubeObject {
  const ip = `10.${96 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
  // One in ten is a NodePort, half of those a LoadBalancer with Local policy;
  // every nodePort and health-check port is distinct (up to 10,000 services).
  const kind = i >= EXTERNAL_SERVICES ? 'ClusterIP' : i % 20 === 0 ? 'LoadBalancer' : i % 10 === 0 ? 'NodePort' : 'ClusterIP';
  const port = { name: 'http', port: 80, targetPort: 8080, ...(kind === 'ClusterIP' ? {} : { nodePort: 30000 + i / 10 }) };
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: `svc-${i}`, namespace: `ns-${i % 100}`, creationTimestamp: '2024-01-01T00:00:00Z' },
    spec: {
      type: kind,
      clusterIP: ip,
      ports: [port],
      ...(kind === 'LoadBalancer' ? { externalTrafficPolicy: 'Local', healthCheckNodePort: 31000 + i / 20 } : {}),
    },
    ...(kind === 'LoadBalancer' ? { status: { loadBalancer: { ingress: [{ ip: `192.${(i >> 8) & 255}.${i & 255}.1` }] } } } : {}),
  };
}

function sliceObject(i: number, flip = -1, perService = ENDPOINTS_PER_SERVICE): KubeObject {
  const endpoints = [];
  for (let e = 0; e < perService; e++) {
    const n = (i * perService + e) % NODES;
    const pod = i * perService + e;
    endpoints.push({
      addresses: [`10.${128 + (pod >> 16)}.${(pod >> 8) & 255}.${pod & 255}`],
      nodeName: `node${n}`,
      conditions: { ready: e !== flip },
    });
  }
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `svc-${i}-abcde`, namespace: `ns-${i % 100}`, labels: { 'kubernetes.io/service-name': `svc-${i}` } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints,
  };
}

const key = (o: KubeObject) => `${o.metadata!.namespace}/${o.metadata!.name}`;

/** MB of JavaScript heap, and of typed-array storage (ArrayBuffers live outside the heap, but they are memory all the same). */
function memoryMB(): { heap: number; buffers: number } {
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  return { heap: m.heapUsed / 1e6, buffers: m.arrayBuffers / 1e6 };
}

interface Cluster {
  state: ClusterState;
  planner: Planner;
  /** Which endpoint of each service's slice is not ready now (-1: none). */
  flipped: Map<number, number>;
}

interface Scratch {
  cluster: Cluster;
  /** Milliseconds: upserts and markSynced (validation), then checkout and plan, each wall and CPU time. */
  validateMs: number;
  validateCpuMs: number;
  planMs: number;
  /** CPU milliseconds of this process (every thread) during the plan: steadier than wall time on a busy machine. */
  planCpuMs: number;
  planT0: number;
  planT1: number;
  /** MB left on the heap by the model (state), then by the planner and its plan, and in typed arrays by the planner. */
  modelHeap: number;
  planHeap: number;
  planBuffers: number;
}

function fromScratch(services: number, perService = ENDPOINTS_PER_SERVICE): Scratch {
  const problems: string[] = [];
  const services0: KubeObject[] = [];
  const slices0: KubeObject[] = [];
  for (let i = 0; i < services; i++) {
    services0.push(serviceObject(i));
    slices0.push(sliceObject(i, -1, perService));
  }
  const before = memoryMB();
  const vcpu0 = process.cpuUsage();
  const t0 = performance.now();
  const state = new ClusterState('node0', DEFAULT_VALIDATION, { rejected: (r) => problems.push(r.reason), warned: () => {} });
  for (const o of services0) state.upsert('Service', key(o), o, 'bench');
  for (const o of slices0) state.upsert('EndpointSlice', key(o), o, 'bench');
  state.markSynced();
  const t1 = performance.now();
  const vcpu = process.cpuUsage(vcpu0);
  const model = memoryMB();
  const t2 = performance.now();
  const cpu0 = process.cpuUsage();
  const planner = new Planner({ nodeName: 'node0', nodePortAddresses: [], maglevTableSize: 16381, ...DEFAULT_PLANNER_LIMITS }, EMPTY_ID_HINTS);
  planner.setLocalAddresses(['172.18.0.10']);
  const co = state.checkout();
  const res = planner.plan(state, co.services, { nodeChanged: co.nodeChanged });
  const t3 = performance.now();
  const cpu = process.cpuUsage(cpu0);
  const after = memoryMB();
  if (problems.length > 0) throw new Error(`bench objects rejected: ${problems[0]}`);
  if (res.desired.services.size !== services) throw new Error(`planned ${res.desired.services.size} of ${services} services`);
  return {
    cluster: { state, planner, flipped: new Map() },
    validateMs: t1 - t0,
    validateCpuMs: (vcpu.user + vcpu.system) / 1000,
    planMs: t3 - t2,
    planCpuMs: (cpu.user + cpu.system) / 1000,
    planT0: t2,
    planT1: t3,
    modelHeap: model.heap - before.heap,
    planHeap: after.heap - model.heap,
    planBuffers: after.buffers - model.buffers,
  };
}

async function report(label: string, services: number, perService: number): Promise<Scratch> {
  const r = fromScratch(services, perService);
  await new Promise((resolve) => setTimeout(resolve, 50));
  const gc = gcMs(r.planT0, r.planT1);
  console.log(
    `from scratch, ${label}: validate ${r.validateMs.toFixed(0)} ms (cpu ${r.validateCpuMs.toFixed(0)} ms), checkout and plan ${r.planMs.toFixed(0)} ms ` +
      `(cpu ${r.planCpuMs.toFixed(0)} ms, GC ${((100 * gc) / r.planMs).toFixed(0)}%); heap: model +${r.modelHeap.toFixed(0)} MB, planner +${r.planHeap.toFixed(0)} MB (+${r.planBuffers.toFixed(0)} MB typed arrays)`,
  );
  record({ measurement: 'plan', dataplane: 'planner', services, endpoints: perService, variant: 'full plan from scratch', value: r.planMs, unit: 'ms',
    extra: { 'validate ms': r.validateMs, 'GC %': (100 * gc) / r.planMs, 'planner heap MB': r.planHeap } });
  return r;
}

interface ChangeCost {
  /** Median microseconds: slice upsert (validation), then checkout and incremental plan. */
  total: number;
  upsert: number;
  plan: number;
}

class ChangeTimer {
  private readonly samples = { upsert: [] as number[], plan: [] as number[], total: [] as number[] };
  private c = 0;

  constructor(private readonly cluster: Cluster, private readonly services: number) {
    if (services > 10_000) throw new Error('nodePorts run out above 10,000 services');
  }

  /** Flips one endpoint of one service's slice, checks out and plans. */
  step(): void {
    const { state, planner, flipped } = this.cluster;
    const i = (this.c++ * 7919) % this.services;
    // Another endpoint than last time, so that every upsert is a change.
    const flip = ((flipped.get(i) ?? -1) + 1) % ENDPOINTS_PER_SERVICE;
    flipped.set(i, flip);
    const slice = sliceObject(i, flip);
    const t0 = performance.now();
    state.upsert('EndpointSlice', key(slice), slice, 'bench');
    const t1 = performance.now();
    const co = state.checkout();
    const res = planner.plan(state, co.services, { nodeChanged: co.nodeChanged });
    const t2 = performance.now();
    this.samples.upsert.push((t1 - t0) * 1000);
    this.samples.plan.push((t2 - t1) * 1000);
    this.samples.total.push((t2 - t0) * 1000);
    if (res.changed.size !== 1) throw new Error(`one endpoint change re-planned ${res.changed.size} services`);
  }

  result(): ChangeCost {
    return { total: median(this.samples.total), upsert: median(this.samples.upsert), plan: median(this.samples.plan) };
  }
}

async function main(): Promise<void> {
  if (!(globalThis as { gc?: unknown }).gc) console.log('(no --expose-gc: heap figures include uncollected garbage)');
  // Warm-up (the first plan compiles the code), not recorded.
  fromScratch(1_000, 10);
  if (!QUICK) {
    await report('10,000 services x  1 endpoint ', 10_000, 1);
    // The largest: its heap is the figure to watch; dropped before the change timers run.
    await report('30,000 services x 10 endpoints', 30_000, 10);
  }
  const small = await report(' 1,000 services x 10 endpoints', 1_000, 10);
  const large = await report('10,000 services x 10 endpoints', 10_000, 10);
  // Warm up both, then alternate one change here, one change there, so that
  // JIT state and the machine's noise weigh on both alike.
  const warm = [new ChangeTimer(small.cluster, 1_000), new ChangeTimer(large.cluster, 10_000)];
  for (let c = 0; c < CHANGES; c++) for (const t of warm) t.step();
  const timers = [new ChangeTimer(small.cluster, 1_000), new ChangeTimer(large.cluster, 10_000)] as const;
  for (let c = 0; c < CHANGES; c++) for (const t of timers) t.step();
  const [s, l] = [timers[0].result(), timers[1].result()];
  const show = (n: string, c: ChangeCost) =>
    console.log(`one endpoint change at ${n} services (median of ${CHANGES}): ${c.total.toFixed(1)} us = upsert ${c.upsert.toFixed(1)} us + checkout and plan ${c.plan.toFixed(1)} us`);
  for (const [n, c] of [[1_000, s], [10_000, l]] as const) {
    record({ measurement: 'plan', dataplane: 'planner', services: n, endpoints: ENDPOINTS_PER_SERVICE, variant: 'one endpoint change', value: c.total / 1000, unit: 'ms',
      extra: { 'upsert us': c.upsert, 'checkout and plan us': c.plan } });
  }
  show(' 1,000', s);
  show('10,000', l);
  console.log(`ratio 10,000 / 1,000: ${(l.total / s.total).toFixed(2)} (checkout and plan alone: ${(l.plan / s.plan).toFixed(2)}); 1.0 = independent of cluster size, 10 = proportional to it`);
}

await main();
