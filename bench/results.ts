// One line of JSON per measured figure, so that `bench/report.ts` can build
// bench/results/latest.md and the charts from a whole `make bench` run. Every
// bench still prints its own lines as it goes (the progress an operator
// watches); this is the same figure in a form the report can read.
//
// BENCH_RESULTS names the file (the Makefile empties it at the start of a run);
// without it the figures are only printed. BENCH_RESULTS=- writes each row to
// stdout after the ROW_MARKER instead: a bench inside a VM guest has no
// writable file the host reads, only its console (bench/vm-bench.ts picks the
// rows out of it).
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
  /** value is a lower bound: the measurement ran out of its time budget there ("over budget at N"). */
  overBudget?: boolean;
  /** Not measured, and why (value is meaningless): a size a mode cannot reach inside the run's time plan, a kernel without it. */
  notMeasured?: string;
  /** Set when the row was measured in a VM guest: its kernel, and how the guest ran. Rows without it come from the host. */
  machine?: { kernel: string; vm: string };
}

/** What marks a row on a guest's console (BENCH_RESULTS=-). */
export const ROW_MARKER = 'BPFPROXY-BENCH-ROW ';

/** In a guest of the kernel-in-VM harness (docs/vm.md), BPFPROXY_VM names the kernel. */
function where(): BenchRow['machine'] {
  const kernel = process.env.BPFPROXY_VM;
  return kernel ? { kernel, vm: process.env.BPFPROXY_VM_ACCEL === 'kvm' ? 'qemu, KVM' : 'qemu, software emulation (TCG)' } : undefined;
}

export function record(row: BenchRow): void {
  const file = process.env.BENCH_RESULTS;
  if (!file) return;
  const machine = row.machine ?? where();
  const line = JSON.stringify(machine ? { ...row, machine } : row);
  if (file === '-') process.stdout.write(`${ROW_MARKER}${line}\n`);
  else appendFileSync(file, line + '\n');
}

/** Per-pair ratios as the baseline field wants them: median, min, max, count (stats.ts, where it is defined for every bench). */
export { ratioStats } from './stats.js';
