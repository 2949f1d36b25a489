// Planning benchmark. Run:
//
//   NODE_OPTIONS=--expose-gc npx vite-node bench/plan.ts
//
// (vite-node ships with vitest and runs TypeScript as is; --expose-gc makes
// the heap figures exact, without it they include garbage not yet collected.)
//
// 1. Plans a cluster of 10,000 services and 100,000 endpoints from scratch:
//    validation, checkout and plan; time and heap.
// 2. The cost of one endpoint change at that size (upsert of one slice,
//    checkout, incremental plan), against the same change in a cluster of
//    1,000 services measured in the same run. An incremental plan must cost
//    in proportion to what changed, so the ratio should be close to 1.
import { performance } from 'node:perf_hooks';
import type { KubeObject } from '../src/model/objects.js';
import { ClusterState } from '../src/model/state.js';
import { DEFAULT_VALIDATION } from '../src/model/types.js';
import { DEFAULT_PLANNER_LIMITS, Planner } from '../src/planner/planner.js';
import { EMPTY_ID_HINTS } from '../src/planner/types.js';

const ENDPOINTS_PER_SERVICE = 10;
const NODES = 50;
const CHANGES = 1000;

function serviceObject(i: number): KubeObject {
  const ip = `10.${96 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
  // One in ten is a NodePort, half of those a LoadBalancer with Local policy;
  // every nodePort and health-check port is distinct (up to 10,000 services).
  const kind = i % 20 === 0 ? 'LoadBalancer' : i % 10 === 0 ? 'NodePort' : 'ClusterIP';
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

function sliceObject(i: number, flip = -1): KubeObject {
  const endpoints = [];
  for (let e = 0; e < ENDPOINTS_PER_SERVICE; e++) {
    const n = (i * ENDPOINTS_PER_SERVICE + e) % NODES;
    const pod = i * ENDPOINTS_PER_SERVICE + e;
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

function heapMB(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed / 1e6;
}

interface Cluster {
  state: ClusterState;
  planner: Planner;
  /** Which endpoint of each service's slice is not ready now (-1: none). */
  flipped: Map<number, number>;
}

function fromScratch(services: number): { cluster: Cluster; ms: number; heap: number } {
  const problems: string[] = [];
  const services0: KubeObject[] = [];
  const slices0: KubeObject[] = [];
  for (let i = 0; i < services; i++) {
    services0.push(serviceObject(i));
    slices0.push(sliceObject(i));
  }
  const heapBefore = heapMB();
  const t0 = performance.now();
  const state = new ClusterState('node0', DEFAULT_VALIDATION, { rejected: (r) => problems.push(r.reason), warned: () => {} });
  const planner = new Planner({ nodeName: 'node0', nodePortAddresses: [], maglevTableSize: 16381, ...DEFAULT_PLANNER_LIMITS }, EMPTY_ID_HINTS);
  planner.setLocalAddresses(['172.18.0.10']);
  for (const o of services0) state.upsert('Service', key(o), o, 'bench');
  for (const o of slices0) state.upsert('EndpointSlice', key(o), o, 'bench');
  state.markSynced();
  const co = state.checkout();
  const res = planner.plan(state, co.services, { nodeChanged: co.nodeChanged });
  const ms = performance.now() - t0;
  if (problems.length > 0) throw new Error(`bench objects rejected: ${problems[0]}`);
  if (res.desired.services.size !== services) throw new Error(`planned ${res.desired.services.size} of ${services} services`);
  return { cluster: { state, planner, flipped: new Map() }, ms, heap: heapMB() - heapBefore };
}

interface ChangeCost {
  /** Median microseconds: slice upsert (validation), then checkout and incremental plan. */
  total: number;
  upsert: number;
  plan: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
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

function main(): void {
  if (!(globalThis as { gc?: unknown }).gc) console.log('(no --expose-gc: heap figures include uncollected garbage)');
  const small = fromScratch(1_000);
  const large = fromScratch(10_000);
  console.log(`from scratch, 1,000 services / 10,000 endpoints:    ${small.ms.toFixed(0)} ms, heap +${small.heap.toFixed(0)} MB`);
  console.log(`from scratch, 10,000 services / 100,000 endpoints:  ${large.ms.toFixed(0)} ms, heap +${large.heap.toFixed(0)} MB`);
  // Warm up both, then alternate one change here, one change there, so that
  // JIT state and the machine's noise weigh on both alike.
  const warm = [new ChangeTimer(small.cluster, 1_000), new ChangeTimer(large.cluster, 10_000)];
  for (let c = 0; c < CHANGES; c++) for (const t of warm) t.step();
  const timers = [new ChangeTimer(small.cluster, 1_000), new ChangeTimer(large.cluster, 10_000)] as const;
  for (let c = 0; c < CHANGES; c++) for (const t of timers) t.step();
  const [s, l] = [timers[0].result(), timers[1].result()];
  const show = (n: string, c: ChangeCost) =>
    console.log(`one endpoint change at ${n} services (median of ${CHANGES}): ${c.total.toFixed(1)} us = upsert ${c.upsert.toFixed(1)} us + checkout and plan ${c.plan.toFixed(1)} us`);
  show(' 1,000', s);
  show('10,000', l);
  console.log(`ratio 10,000 / 1,000: ${(l.total / s.total).toFixed(2)} (checkout and plan alone: ${(l.plan / s.plan).toFixed(2)}); 1.0 = independent of cluster size, 10 = proportional to it`);
}

main();
