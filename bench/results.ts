// One line of JSON per measured figure, so that `bench/report.ts` can build
// bench/results/latest.md and the charts from a whole `make bench` run. Every
// bench still prints its own lines as it goes (the progress an operator
// watches); this is the same figure in a form the report can read.
//
// BENCH_RESULTS names the file (the Makefile empties it at the start of a run);
// without it the figures are only printed.
import { appendFileSync } from 'node:fs';

export interface BenchRow {
  /** Which table of the report the row belongs to (e.g. "full-sync"). */
  measurement: string;
  /** The dataplane or side measured: "bpf", "nftables", "iptables", "direct", ... */
  dataplane: string;
  /** Number of services present (the x axis of the charts), when the measurement has one. */
  services?: number;
  /** Endpoints per service, when it matters. */
  endpoints?: number;
  /** Another parameter of the row (a packet path, a Maglev table size), shown in the table. */
  variant?: string;
  value: number;
  unit: string;
  /** The baseline measured in the same run, and the median and spread of the per-pair ratios against it. */
  baseline?: { name: string; value: number; ratio: number; min?: number; max?: number; pairs?: number; better: 'lower' | 'higher' | 'closer' };
  /** Percentiles or counts that go with the value. */
  extra?: Record<string, number | string>;
  /** The project's target for this figure and whether it was met. */
  target?: { text: string; met: boolean };
}

export function record(row: BenchRow): void {
  const file = process.env.BENCH_RESULTS;
  if (!file) return;
  appendFileSync(file, JSON.stringify(row) + '\n');
}

/** Per-pair ratios as the baseline field wants them: median, min, max, count. */
export function ratioStats(ratios: readonly number[]): { ratio: number; min: number; max: number; pairs: number } {
  const s = [...ratios].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { ratio: median, min: s[0]!, max: s[s.length - 1]!, pairs: s.length };
}
