// Maglev, the planner's table builder (src/planner/maglev.ts): the time to
// build one table for M = 16381 and 65521 with 10, 100 and 1,000 backends, and
// the share of flows that move when one backend is removed or added, next to
// the ideal 1/N. Flows hash uniformly over the slots, so the share of slots
// whose backend changes is the share of flows that move. Pure: no root needed.
// Run: npx vite-node bench/maglev.ts   (QUICK=1: fewer repetitions)
import { performance } from 'node:perf_hooks';
import { median, quantile } from './cluster.js';
import { record } from './results.js';
import { maglevTable } from '../src/planner/maglev.js';

const QUICK = process.env.QUICK === '1';
const SIZES = [16381, 65521];
const BACKENDS = [10, 100, 1000];
const REPEAT = QUICK ? 5 : 15;

const keysOf = (n: number, from = 0): string[] => Array.from({ length: n }, (_, i) => `10.244.${((from + i) >> 8) & 255}.${(from + i) & 255}/8080`);

/** Share of slots whose backend differs between two tables over their own key lists. */
function moved(a: Uint32Array, ka: readonly string[], b: Uint32Array, kb: readonly string[]): number {
  let n = 0;
  for (let s = 0; s < a.length; s++) if (ka[a[s]!] !== kb[b[s]!]) n++;
  return n / a.length;
}

const out = (s: string) => process.stdout.write(s + '\n');
out(`Maglev (src/planner/maglev.ts): build time, median of ${REPEAT}; flows moved when one backend goes or comes, against the ideal 1/N`);
out(`${'M'.padStart(6)} ${'N'.padStart(5)} ${'build ms'.padStart(9)} ${'p90'.padStart(7)}   ${'removed'.padStart(8)} ${'added'.padStart(8)} ${'ideal 1/N'.padStart(9)}`);
for (const m of SIZES) {
  for (const n of BACKENDS) {
    const keys = keysOf(n);
    maglevTable(keys, m); // compiled before it is timed
    const times: number[] = [];
    for (let r = 0; r < REPEAT; r++) {
      const t = performance.now();
      maglevTable(keys, m);
      times.push(performance.now() - t);
    }
    const base = maglevTable(keys, m);
    // Remove the backend in the middle of the sorted order, add one that sorts after all.
    const less = keys.filter((_, i) => i !== n >> 1);
    const more = [...keys, ...keysOf(1, n)];
    const removed = moved(base, keys, maglevTable(less, m), less);
    const added = moved(base, keys, maglevTable(more, m), more);
    const ideal = 1 / n;
    out(`${String(m).padStart(6)} ${String(n).padStart(5)} ${median(times).toFixed(2).padStart(9)} ${quantile(times, 0.9).toFixed(2).padStart(7)}   ${(removed * 100).toFixed(2).padStart(7)}% ${(added * 100).toFixed(2).padStart(7)}% ${(ideal * 100).toFixed(2).padStart(8)}%`);
    record({ measurement: 'maglev-build', dataplane: 'bpf', variant: `M=${m}, N=${n}`, value: median(times), unit: 'ms', extra: { p90: quantile(times, 0.9), repeats: REPEAT } });
    record({ measurement: 'maglev-move', dataplane: 'backend removed', variant: `M=${m}, N=${n}`, value: removed * 100, unit: '%', baseline: { name: 'ideal 1/N', value: ideal * 100, ratio: removed / ideal, better: 'closer' } });
    record({ measurement: 'maglev-move', dataplane: 'backend added', variant: `M=${m}, N=${n}`, value: added * 100, unit: '%', baseline: { name: 'ideal 1/N', value: ideal * 100, ratio: added / ideal, better: 'closer' } });
  }
}
