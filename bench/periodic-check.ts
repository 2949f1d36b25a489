// The periodic resync's hold on the event loop (issue 6), before and after
// the dumps moved to a worker thread:
// - before: the periodic full sync as it ran until now (reload() in line):
//   its wall time is how long an endpoint change arriving meanwhile waits;
// - after: the periodic sync (a partial one, and the check in the
//   background, TableSync.verify()): the sync's own time, and while the check
//   runs, endpoint changes (one service's backends, a partial sync every
//   CHANGE_EVERY_MS) timed from the call to the end of their sync, and the
//   event loop's longest stall (a 1 ms ticker's largest gap).
// Nothing is attached: the programs are attached to a cgroup this bench
// creates (empty: no process in it) and removes; pins go to a bpffs
// directory of its own. SIZES=30000x10 picks the sizes (default 10000x10).
import { mkdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { BpfDataplane } from '../src/dataplane/bpf/dataplane.js';
import { cleanupPins } from '../src/dataplane/bpf/loader.js';
import { cgroup2Mount } from '../src/lab/host.js';
import type { DesiredDataplane, PlannedService } from '../src/planner/types.js';
import { silentLogger } from '../src/util/log.js';
import { frontend, plannedBackend, plannedService } from '../test/helpers/planned.js';
import { quantile } from './stats.js';

const SIZES: [number, number][] = (process.env.SIZES ?? '10000x10').split(',').map((s) => s.split('x').map(Number) as [number, number]);
const ROUNDS = 3;
const CHANGE_EVERY_MS = 2;
const tag = `bpfproxy-bench-periodic-${process.pid}`;
const cgroup = join(cgroup2Mount(), tag);

const ip = (n: number, base: number) => `${base}.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
function service(i: number, e: number, gen = 0): PlannedService {
  const backends = Array.from({ length: e }, (_, j) => {
    const id = i * e + j + 1 + gen * 10_000_000;
    return plannedBackend(id, ip(id, 11), 8080, { nodeName: 'other' });
  });
  return plannedService({ id: i + 1, backends, namespace: 'bench', frontends: [frontend('ClusterIP', ip(i, 10), 80)] });
}
const desired = (services: Iterable<PlannedService>): DesiredDataplane =>
  ({ generation: 1, services: new Map([...services].map((s) => [s.key, s])), healthChecks: new Map(), nodePortAddresses: { IPv4: [], IPv6: [] } });
const pct = (xs: number[], p: number) => (xs.length === 0 ? 0 : quantile(xs, p));
const f = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(0));

/** Runs `work` with a 1 ms ticker beside it: the largest gap between ticks is the loop's longest stall. */
async function stalls<T>(work: () => Promise<T>): Promise<{ value: T; maxGapMs: number }> {
  let last = performance.now();
  let maxGap = 0;
  const t = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
  }, 1);
  try {
    const value = await work();
    maxGap = Math.max(maxGap, performance.now() - last);
    return { value, maxGapMs: maxGap };
  } finally {
    clearInterval(t);
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stdout.write('bench/periodic-check.ts needs root: it loads BPF programs and pins maps\n');
    process.exitCode = 1;
    return;
  }
  mkdirSync(cgroup, { recursive: true });
  try {
    for (const [n, e] of SIZES) {
      const pinDir = `/sys/fs/bpf/${tag}-${n}`;
      const sizes = { frontends: Math.max(65536, n * 2), backendSets: Math.max(262144, n * (e + 1) * 2), backends: Math.max(262144, n * e * 2) };
      const dp = BpfDataplane.open({ pinDir, cgroupRoot: cgroup, mapSizes: sizes, log: silentLogger() });
      try {
        // One desired state, changed in place as the planner's is (no copy per change).
        const services = new Map(Array.from({ length: n }, (_, i) => service(i, e)).map((x) => [x.key, x]));
        const want: DesiredDataplane = { ...desired([]), services };
        await dp.sync(want, { full: true, changed: new Set() });
        let gen = 1;
        /** One endpoint change: service i gets a new set of backends, a partial sync. */
        const change = async (i: number) => {
          // The plan is the planner's work, not the dataplane's: made before the clock starts.
          const s = service(i, e, gen++);
          services.set(s.key, s);
          const t0 = performance.now();
          await dp.sync(want, { full: false, changed: new Set([s.key]) });
          return performance.now() - t0;
        };
        const before: number[] = [];
        const beforeGap: number[] = [];
        const after: number[] = [];
        const afterGap: number[] = [];
        const verifyMs: number[] = [];
        const alone: number[] = [];
        const changes: number[] = [];
        for (let r = 0; r < ROUNDS; r++) {
          const inLine = await stalls(async () => {
            const t0 = performance.now();
            await dp.sync(want, { full: true, changed: new Set() });
            return performance.now() - t0;
          });
          before.push(inLine.value);
          beforeGap.push(inLine.maxGapMs);

          const t0 = performance.now();
          await dp.sync(want, { full: true, changed: new Set(), periodic: true });
          after.push(performance.now() - t0);
          // The check alone, nothing else on the loop.
          alone.push((await stalls(() => dp.verify())).maxGapMs);
          const bg = await stalls(async () => {
            const v0 = performance.now();
            const check = dp.verify();
            let done = false;
            void check.finally(() => { done = true; });
            // Endpoint changes while the check runs, each awaited, CHANGE_EVERY_MS apart.
            for (let k = 0; !done; k++) {
              changes.push(await change((k * 7919 + r * 31) % n));
              await new Promise((res) => setTimeout(res, CHANGE_EVERY_MS));
            }
            const res = await check;
            verifyMs.push(performance.now() - v0);
            return res;
          });
          afterGap.push(bg.maxGapMs);
          if (bg.value.drift.length > 0) throw new Error(`drift found: ${bg.value.drift.join(', ')}`);
        }
        process.stdout.write(
          `${n} x ${e}: periodic full sync in line ${before.map(f).join('/')} ms (loop stall ${beforeGap.map(f).join('/')} ms); ` +
          `now: periodic sync ${after.map(f).join('/')} ms + background check ${verifyMs.map(f).join('/')} ms wall, ` +
          `loop stall during it ${afterGap.map(f).join('/')} ms (the check alone: ${alone.map(f).join('/')} ms); ${changes.length} endpoint changes during the checks: ` +
          `p50 ${f(pct(changes, 0.5))} ms, p99 ${f(pct(changes, 0.99))} ms, max ${f(Math.max(...changes))} ms\n`,
        );
      } finally {
        await dp.dispose();
        cleanupPins(pinDir);
      }
    }
  } finally {
    rmdirSync(cgroup);
  }
}

await main();
