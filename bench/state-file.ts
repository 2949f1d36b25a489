// The cost of the state file `bpfproxy status` reads (src/dataplane/state-file.ts,
// state-catalog.ts), at 30,000 services x 10 endpoints, against writing the
// same bytes alone (the I/O floor), in the same run. No root needed:
//
//   npx vite-node bench/state-file.ts          (SERVICES=N ENDPOINTS=E for other sizes)
//
// 1. synced(): what each sync pays inline (it only records; the write is later).
// 2. The catalog from nothing (a start): one whole pass, and its bytes.
// 3. A plan generation after one endpoint change, one renamed port, nothing
//    changed: the pass's time and the names it packed (issue 6: before, every
//    generation packed every service again, 220 ms at this size).
// 4. The writer as the proxy runs it (1 ms slices between turns): the longest
//    slice (wall and on this thread's CPU), the slices per write and their
//    sum, against the floor.
// 5. The rule modes' catalog, which keeps the whole plan (for `trace`).
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { encodeCatalog, IncrementalCatalog, NodeStateWriter, readNodeState } from '../src/dataplane/state-file.js';
import type { DesiredDataplane, PlannedService } from '../src/planner/types.js';
import { frontend, plannedBackend, plannedService } from '../test/helpers/planned.js';
import { threadCpuMs } from './change-latency.js';

const SERVICES = Number(process.env.SERVICES ?? 30_000);
const ENDPOINTS = Number(process.env.ENDPOINTS ?? 10);
const RUNS = 7;

const ip = (n: number, base: number) => `${base}.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;

function plan(): DesiredDataplane {
  const services = new Map<string, PlannedService>();
  let be = 1;
  for (let i = 1; i <= SERVICES; i++) {
    const s = plannedService({
      id: i, namespace: `ns${i % 50}`,
      frontends: [frontend('ClusterIP', ip(i, 10), 80)],
      backends: Array.from({ length: ENDPOINTS }, () => { const id = be++; return plannedBackend(id, ip(id, 11), 8080, { nodeName: `node-${id % 100}` }); }),
    });
    services.set(s.key, s);
  }
  return { generation: 1, services, healthChecks: new Map(), nodePortAddresses: { IPv4: [], IPv6: [] } };
}

import { median } from './stats.js';

function time(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
}

/** A new object for service `s` (the planner's way of saying it changed): one endpoint moved, or the port renamed. */
function changed(s: PlannedService, k: number, rename: boolean): PlannedService {
  const backends = s.internal.backends.slice();
  if (!rename) backends[0] = plannedBackend(10_000_000 + k, ip(k, 12), 8080, { nodeName: 'node-1' });
  const set = { backends, onEmpty: s.internal.onEmpty };
  return { ...s, internal: set, cluster: set, external: set, portName: rename ? `p${k}` : s.portName };
}

const dir = mkdtempSync(join(tmpdir(), 'bpx-state-bench-'));
try {
  const desired = plan();
  const live = desired.services as Map<string, PlannedService>;
  const keys = [...live.keys()];
  const path = join(dir, 'state.msgpack');
  const ok = { full: false, upserts: 1, deletes: 0, errors: [], unsupported: [] };

  // 1. Inline cost per sync.
  const w = new NodeStateWriter(path, { mode: 'bpf', reason: '--proxy-mode bpf', node: 'n', pinDir: '/p' }, { schedule: () => () => {} });
  const n = 10_000;
  const plans = Array.from({ length: n }, (_, i) => ({ ...desired, generation: i + 2 }));
  const inline = time(() => { for (const p of plans) w.synced(p, ok, 0); }) / n;

  // 2. From nothing, and the floor: the same bytes written alone.
  const first: number[] = [];
  const floor: number[] = [];
  let bytes = 0;
  for (let r = 0; r < RUNS; r++) {
    let cat: Buffer = Buffer.alloc(0);
    first.push(time(() => { cat = encodeCatalog(desired); }));
    bytes = cat.length;
    floor.push(time(() => {
      const fd = openSync(join(dir, 'floor'), 'w');
      writeSync(fd, cat);
      closeSync(fd);
    }));
  }

  // 3. One generation after a change, on a catalog that holds the plan before it.
  const c = new IncrementalCatalog();
  c.begin(desired);
  c.step(Infinity);
  const perGeneration = (what: 'endpoint' | 'rename' | 'nothing') => {
    const ms: number[] = [];
    const packed: number[] = [];
    for (let r = 0; r < 3 * RUNS; r++) {
      if (what !== 'nothing') {
        const key = keys[(r * 7919) % keys.length]!;
        live.set(key, changed(live.get(key)!, r, what === 'rename'));
      }
      const before = c.stats.encoded;
      ms.push(time(() => { c.begin({ ...desired, generation: 100 + r }); c.step(Infinity); }));
      packed.push(c.stats.encoded - before);
    }
    return { ms: median(ms), max: Math.max(...ms), packed: Math.max(...packed) };
  };
  const endpoint = perGeneration('endpoint');
  const rename = perGeneration('rename');
  const nothing = perGeneration('nothing');

  // 4. The writer in slices between turns, as the proxy runs it (first write: from nothing; then after one endpoint change each).
  // Wall time and this thread's CPU time per slice: on a loaded machine a slice is preempted, which is the machine's, not the slice's.
  const writes: { slices: number; sum: number; max: number; maxCpu: number }[] = [];
  for (let r = 0; r < RUNS; r++) {
    const slices: number[] = [];
    const cpus: number[] = [];
    let next: (() => void) | null = null;
    const ww = new NodeStateWriter(path, { mode: 'bpf', reason: '', node: '', pinDir: '' }, { minIntervalMs: 0, schedule: (_ms, fn) => { next = fn; return () => {}; } });
    // The slices, then the rename, which a big file gets on the threadpool (state-file.ts): the next write waits for it.
    const drive = async () => {
      slices.length = 0;
      cpus.length = 0;
      const writes = ww.stats.writes;
      for (let fn = next; fn; fn = next) {
        next = null;
        const cpu = threadCpuMs();
        slices.push(time(fn));
        cpus.push(threadCpuMs() - cpu);
      }
      for (let i = 0; i < 2000 && ww.stats.writes === writes; i++) await new Promise((r) => setTimeout(r, 1));
      return { slices: slices.length, sum: slices.reduce((a, b) => a + b, 0), max: Math.max(...slices), maxCpu: Math.max(...cpus) };
    };
    ww.synced(desired, ok, 0);
    const fromNothing = await drive();
    const key = keys[(r * 104_729) % keys.length]!;
    live.set(key, changed(live.get(key)!, 1000 + r, false));
    ww.synced({ ...desired, generation: 200 + r }, ok, 0);
    writes.push(await drive());
    if (r === RUNS - 1) console.log(`  (a write from nothing, as after a start: ${fromNothing.slices} slices, ${fromNothing.sum.toFixed(1)} ms in all, longest ${fromNothing.max.toFixed(2)} ms, ${fromNothing.maxCpu.toFixed(2)} ms of it on CPU)`);
    ww.dispose();
  }
  const readMs = time(() => readNodeState(path));

  // 5. The rule modes keep the plan.
  const ruleEnc: number[] = [];
  let ruleBytes = 0;
  for (let r = 0; r < 3; r++) ruleEnc.push(time(() => { ruleBytes = encodeCatalog(desired, { config: {} }).length; }));

  const f = median(floor);
  const sum = median(writes.map((x) => x.sum));
  console.log(`state file at ${SERVICES} services x ${ENDPOINTS} endpoints (median of ${RUNS}):`);
  console.log(`  synced() inline per sync:                   ${(inline * 1000).toFixed(2)} us`);
  console.log(`  catalog from nothing (a start):             ${median(first).toFixed(1)} ms, ${(bytes / 1e6).toFixed(2)} MB`);
  console.log(`  writing those bytes alone (floor):          ${f.toFixed(1)} ms`);
  console.log(`  a generation after one endpoint change:     ${endpoint.ms.toFixed(2)} ms (max ${endpoint.max.toFixed(2)}), ${endpoint.packed} service names packed`);
  console.log(`  a generation after one renamed port:        ${rename.ms.toFixed(2)} ms (max ${rename.max.toFixed(2)}), ${rename.packed} service names packed`);
  console.log(`  a generation with nothing changed:          ${nothing.ms.toFixed(2)} ms (max ${nothing.max.toFixed(2)}), ${nothing.packed} packed`);
  console.log(`  writer after one endpoint change, sliced:   ${median(writes.map((x) => x.slices))} slices, ${sum.toFixed(1)} ms in all (${(sum / f).toFixed(2)}x the floor), longest slice ${median(writes.map((x) => x.max)).toFixed(2)} ms, on CPU ${median(writes.map((x) => x.maxCpu)).toFixed(2)} ms (max of ${RUNS}: ${Math.max(...writes.map((x) => x.max)).toFixed(2)} ms, on CPU ${Math.max(...writes.map((x) => x.maxCpu)).toFixed(2)} ms)`);
  console.log(`  bpfproxy status reading it:                 ${readMs.toFixed(1)} ms`);
  console.log(`  rule modes, whole plan kept (not sliced):   ${median(ruleEnc).toFixed(1)} ms, ${(ruleBytes / 1e6).toFixed(2)} MB`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
