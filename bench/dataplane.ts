// The bpf dataplane's own cost, next to the kernel's cost for the same
// entries, measured in the same run. Run as root:
//
//   [QUICK=1] npx vite-node bench/dataplane.ts
//
// For 10,000 x 1, 10,000 x 10 and 30,000 x 10 (services x endpoints; QUICK=1:
// 10,000 x 10; SIZES=30000x10 one size):
// 1. Full sync from empty maps (encode, diff, admission, batch writes), against
//    the batch syscalls alone: the very batches the sync passed to
//    bpf_map_update_batch (seen through BpfMap.tap in the first pair's sync,
//    copied after it), replayed in the same order, one syscall each, into the empty maps
//    of a fresh load, timed alone: the floor for any control plane.
//    Alternated in pairs (A B, B A, ...); the median of the per-pair ratios
//    and its spread are printed, and where the sync's time went (encode,
//    diff, the JavaScript around the writes, the writes themselves), and
//    how many pages the sync touched for the first time (minor faults: on
//    this machine each costs more than writing a hundred map entries).
// 2. Periodic full resync with nothing changed (dump + compare + diff),
//    against dumping the same maps (bpf_map_lookup_batch) alone.
// 3. Resident memory and heap after the syncs.
// (One endpoint change, event to dataplane, is bench/modes.ts's figure.)
// Nothing is attached: the object is loaded with its programs attached to a
// cgroup this bench creates (empty: no process in it) and removes, pins go to
// a bpffs directory of its own.
import { mkdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ratioStats, record } from './results.js';
import { BpfDataplane } from '../src/dataplane/bpf/dataplane.js';
import { BpfMap as BpfMapClass } from '../src/dataplane/bpf/map.js';
import { TableSync, type SyncTimings } from '../src/dataplane/bpf/sync.js';
import { cleanupPins } from '../src/dataplane/bpf/loader.js';
import type { BpfMap } from '../src/dataplane/bpf/map.js';
import { cgroup2Mount } from '../src/lab/host.js';
import type { DesiredDataplane, PlannedService } from '../src/planner/types.js';
import { frontend, plannedBackend, plannedService } from '../test/helpers/planned.js';
import { silentLogger } from '../src/util/log.js';
import { median } from './stats.js';

const QUICK = process.env.QUICK === '1';
/** SIZES=30000x10,10000x1 picks sizes (a profile of one size); QUICK=1: 10,000 x 10 only. */
const SIZES: [number, number][] = process.env.SIZES
  ? process.env.SIZES.split(',').map((s) => s.split('x').map(Number) as [number, number])
  : QUICK ? [[10_000, 10]] : [[10_000, 1], [10_000, 10], [30_000, 10]];
/** Each pair loads the object three times and fills the maps twice: at 30,000 x 10 seconds each (make bench's time plan, bench/run.ts). */
const PAIRS = 3;

const tag = `bpfproxy-bench-${process.pid}`;
const cgroup = join(cgroup2Mount(), tag);

function ip(n: number, base: number): string {
  return `${base}.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
}

function service(i: number, e: number, gen = 0): PlannedService {
  const backends = Array.from({ length: e }, (_, j) => plannedBackend(i * e + j + 1 + gen * 10_000_000, ip(i * e + j + 1 + gen * 10_000_000, 11), 8080, { nodeName: 'other' }));
  return plannedService({ id: i + 1, backends, namespace: 'bench', frontends: [frontend('ClusterIP', ip(i, 10), 80)] });
}

function desired(services: PlannedService[]): DesiredDataplane {
  return { generation: 1, services: new Map(services.map((s) => [s.key, s])), healthChecks: new Map(), nodePortAddresses: { IPv4: [], IPv6: [] } };
}

/** Issue 6's targets: 10,000 x 1 under 100 ms; with 10 endpoints, within 2x of the kernel's own batch syscalls. */
const mapWriteTarget = (e: number, syncMs: number, ratio: number) =>
  (e === 1 ? { text: 'under 100 ms', met: syncMs < 100 } : { text: 'within 2x of the batch syscalls', met: ratio <= 2 });
const ms = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(0));

function open(pinDir: string, n: number, e: number): BpfDataplane {
  const sizes = { frontends: Math.max(65536, n * 2), backendSets: Math.max(262144, n * (e + 1) * 2), backends: Math.max(262144, n * e * 2) };
  return BpfDataplane.open({ pinDir, cgroupRoot: cgroup, mapSizes: sizes, log: silentLogger() });
}

/** Dumps the LB maps' contents: what the kernel holds after a sync. */
function contents(dp: BpfDataplane): { map: BpfMap; keys: Uint32Array; values: Uint32Array; count: number }[] {
  const m = dp.maps;
  return [m.be, m.member, m.set, m.fe].map((map) => ({ map, ...map.dumpWords(map.capacity) }));
}

const FULL = (changed = new Set<string>()) => ({ full: true, changed });

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stdout.write('bench/dataplane.ts needs root: it loads BPF programs and pins maps\n');
    process.exitCode = 1;
    return;
  }
  mkdirSync(cgroup, { recursive: true });
  try {
    for (const [n, e] of SIZES) {
      const services = Array.from({ length: n }, (_, i) => service(i, e));
      const want = desired(services);
      const fullRatios: number[] = [];
      let syncMs: number[] = [];
      let kernelMs: number[] = [];
      let entries = 0;
      let rss = 0;
      let heap = 0;
      let resync: number[] = [];
      let dumpOnly: number[] = [];
      /** The batches the first sync wrote (copies), replayed by the kernel side. */
      let batches: { map: string; keys: Uint8Array; values: Uint8Array; n: number }[] = [];
      const phases: SyncTimings[] = [];
      /** Minor page faults per timed sync: first touches of fresh memory, 70-95 us each here (docs/findings.md). */
      const faults: number[] = [];
      for (let p = 0; p < PAIRS; p++) {
        const order = p % 2 === 0 ? ['ours', 'kernel'] : ['kernel', 'ours'];
        let ours = 0;
        let kernel = 0;
        for (const side of order) {
          const pinDir = `/sys/fs/bpf/${tag}-${side}`;
          const dp = open(pinDir, n, e);
          try {
            if (side === 'ours') {
              global.gc?.();
              const taped: typeof batches = [];
              // The tap keeps views of the batches (the sync leaves them alone until the next one) and copies them
              // after the timed sync, so the first pair's sync does not also pay for copying what it wrote.
              if (p === 0) BpfMapClass.tap = (map, k, v, count) => taped.push({ map: map.name, keys: k.subarray(0, count * map.keySize), values: v.subarray(0, count * map.valueSize), n: count });
              const f0 = process.resourceUsage().minorPageFault;
              const t = performance.now();
              const r = await dp.sync(want, FULL());
              ours = performance.now() - t;
              faults.push(process.resourceUsage().minorPageFault - f0);
              BpfMapClass.tap = null;
              if (p === 0) batches = taped.map((b) => ({ ...b, keys: b.keys.slice(), values: b.values.slice() }));
              phases.push({ ...TableSync.last! });
              if (r.errors.length > 0) throw new Error(r.errors[0]!.message);
              entries = r.upserts;
              if (p === 0) {
                // Resync with nothing changed, and the dump alone, alternated.
                for (let k = 0; k < 5; k++) {
                  let t0 = performance.now();
                  const rr = await dp.sync(want, FULL());
                  resync.push(performance.now() - t0);
                  if (rr.upserts + rr.deletes !== 0) throw new Error('a resync with nothing changed wrote something');
                  t0 = performance.now();
                  contents(dp);
                  dumpOnly.push(performance.now() - t0);
                }
                global.gc?.();
                rss = process.memoryUsage().rss;
                heap = process.memoryUsage().heapUsed;
              }
            } else {
              // The same batches, in the same order, by the batch syscalls alone into the empty maps of a fresh load.
              const m = dp.maps;
              const byName = new Map([m.be, m.member, m.set, m.fe].map((x) => [x.name, x]));
              const t = performance.now();
              for (const b of batches) {
                if (byName.get(b.map)!.write(b.keys, b.values, b.n).length > 0) throw new Error(`raw write to ${b.map} failed`);
              }
              kernel = performance.now() - t;
            }
          } finally {
            await dp.dispose();
            cleanupPins(pinDir);
          }
        }
        syncMs.push(ours);
        kernelMs.push(kernel);
        fullRatios.push(ours / kernel);
      }
      const spread = `${Math.min(...fullRatios).toFixed(2)}..${Math.max(...fullRatios).toFixed(2)}`;
      process.stdout.write(`\n${n} services x ${e} endpoints (${entries} map entries)\n`);
      process.stdout.write(`  full sync from empty        ${ms(median(syncMs)).padStart(7)} ms   batch syscalls alone ${ms(median(kernelMs)).padStart(7)} ms   ratio ${median(fullRatios).toFixed(2)} (${spread}, ${PAIRS} pairs)\n`);
      const ph = (k: keyof SyncTimings) => ms(median(phases.map((x) => x[k])));
      const jsAroundWrites = ms(median(phases.map((x) => x.upsert + x.prune - x.kernel)));
      process.stdout.write(`    of which: encode ${ph('encode')} ms, diff + admission ${ph('diff')} ms, JavaScript around the writes ${jsAroundWrites} ms, ` +
        `the batch syscalls in the sync ${ph('kernel')} ms, dump of the empty maps ${ph('reload')} ms (medians; ${batches.length} batches replayed); ` +
        `${median(faults)} page faults\n`);
      process.stdout.write(`  resync, nothing changed     ${ms(median(resync)).padStart(7)} ms   dump alone           ${ms(median(dumpOnly)).padStart(7)} ms   ratio ${(median(resync) / median(dumpOnly)).toFixed(2)}\n`);
      process.stdout.write(`  memory after the syncs      rss ${(rss / 1e6).toFixed(0)} MB, heap ${(heap / 1e6).toFixed(0)} MB (this process holds the desired plan objects too)\n`);
      const fr = ratioStats(fullRatios);
      record({ measurement: 'map-write', dataplane: 'bpf', services: n, endpoints: e, value: median(syncMs), unit: 'ms', extra: { entries },
        baseline: { name: 'batch syscalls alone', value: median(kernelMs), ...fr, better: 'closer' }, target: mapWriteTarget(e, median(syncMs), fr.ratio) });
      record({ measurement: 'resync', dataplane: 'bpf', services: n, endpoints: e, value: median(resync), unit: 'ms',
        baseline: { name: 'dump alone', value: median(dumpOnly), ratio: median(resync) / median(dumpOnly), better: 'closer' } });
      syncMs = []; kernelMs = []; resync = []; dumpOnly = [];
    }
  } finally {
    for (const s of ['ours', 'kernel']) cleanupPins(`/sys/fs/bpf/${tag}-${s}`);
    rmdirSync(cgroup);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
