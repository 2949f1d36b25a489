// The ipvs rows of `make bench`, and nftables and iptables next to them, all
// measured inside one guest of the kernel-in-VM harness (docs/vm.md): the
// host kernel has no IPVS, so this is the only place ipvs is measured. Run
// as root (also by bench/run.ts in a full run):
//
//   npx vite-node bench/vm-bench.ts [--kernel 6.1] [--budget SECONDS] [--lock-wait SECONDS]
//
// One boot of Debian's kernel (software emulation unless BPFPROXY_VM_KVM=1)
// runs bench/modes.ts with ipvs, nftables and iptables at GUEST_SIZES,
// bundled by esbuild into one file under .cache/ first: vite-node compiling
// the sources inside the guest took over 3 minutes under emulation (and once
// read a file someone was editing on the host, through the shared root); the
// bundle loads in seconds and is the tree as it was at the start. The
// guest prints each figure as a marked line on its console (BENCH_RESULTS=-,
// bench/results.ts), which this process picks out and appends to
// BENCH_RESULTS. Each row says the guest's kernel, and the report puts them
// in a table of their own: a guest under emulation runs userland about 10x
// slower than the host, so only ratios within the guest compare.
//
// The boot holds /tmp/bpfproxy-vm.lock (flock), as every guest on this
// machine does, so that two guests never share the 2 CPUs. When this host
// cannot boot a guest (no qemu, not enough memory, the kernel not fetchable),
// when the lock stays held, or in a QUICK run, one line says why, and a row
// says ipvs was not measured and why.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { record, ROW_MARKER, type BenchRow } from './results.js';
import { PACKAGE_ROOT } from '../src/util/paths.js';

const QUICK = process.env.QUICK === '1';
const argOf = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const KERNEL = argOf('--kernel') ?? '6.1';
/** The whole step, boot included (bench/run.ts gives it its share of the run's 20 minutes). */
const BUDGET_S = Number(argOf('--budget') ?? 420);
/** How long to wait for another engineer's guest to finish before giving up on this one. */
const LOCK_WAIT_S = Number(argOf('--lock-wait') ?? Math.min(120, Math.round(BUDGET_S / 4)));
const LOCK = '/tmp/bpfproxy-vm.lock';
/**
 * What fits the guest (measured in this guest, TCG, 2 December 2026): the
 * rule modes' full syncs at 1,000 x 10 take tens of seconds there, 10x the
 * host's; 10,000 would take many minutes per mode.
 */
const GUEST_SIZES = '100,1000';
const GUEST_ENV = {
  BENCH_MODES: 'ipvs,nftables,iptables',
  BENCH_SIZES: GUEST_SIZES,
  BENCH_FULL_BUDGET_S: '60',
  BENCH_CHANGE_BUDGET_S: '8',
  BENCH_CONNECT_PAIRS: '2',
  BENCH_CONNECTIONS: '50',
  BPFPROXY_VM_ACCEL: process.env.BPFPROXY_VM_KVM === '1' ? 'kvm' : 'tcg',
};

const out = (s: string) => process.stdout.write(s + '\n');

function notMeasured(why: string): void {
  out(`ipvs not measured: ${why}`);
  record({ measurement: 'full-sync', dataplane: 'ipvs', endpoints: 10, value: 0, unit: 'ms', notMeasured: why });
}

async function main(): Promise<void> {
  if (QUICK) return notMeasured(`QUICK run: one guest boot under software emulation costs minutes (make bench measures it in a Debian ${KERNEL} guest)`);
  if (process.getuid?.() !== 0) return notMeasured('not root: the guest bench builds a lab and programs its dataplanes');
  const t0 = performance.now();
  // Inside the repository (PACKAGE_ROOT is found from the file's own path, node_modules beside it).
  const bundle = join('.cache', 'bench', `vm-modes-${process.pid}.mjs`);
  mkdirSync(join(PACKAGE_ROOT, '.cache', 'bench'), { recursive: true });
  try {
    execFileSync(join(PACKAGE_ROOT, 'node_modules', '.bin', 'esbuild'), ['bench/modes.ts', '--bundle', '--platform=node', '--format=esm', '--target=node20',
      '--packages=external', `--outfile=${bundle}`, '--log-level=error'], { cwd: PACKAGE_ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  } catch {
    return notMeasured('bench/modes.ts could not be bundled for the guest (esbuild\'s message above)');
  }
  try {
    await guest(bundle, t0);
  } finally {
    rmSync(join(PACKAGE_ROOT, bundle), { force: true });
  }
}

async function guest(bundle: string, t0: number): Promise<void> {
  // The job inside: the guest's PATH and HOME come from the host, the rest is given here.
  const job = ['env', 'BENCH_RESULTS=-', ...Object.entries(GUEST_ENV).map(([k, v]) => `${k}=${v}`), 'node', bundle];
  // The guest's job gets the budget less the harness's start and the boot (about 60 s here, idle);
  // time spent waiting for the lock comes out of the run's slack, not out of the guest's share.
  const runS = Math.max(60, BUDGET_S - 60);
  const argv = ['-w', String(LOCK_WAIT_S), '-E', '75', LOCK, process.execPath, 'node_modules/vite-node/vite-node.mjs', 'test/vm/main.ts',
    'auto', '--kernel', KERNEL, '--timeout', String(runS), '--', ...job];
  out(`ipvs, nftables and iptables in a Debian ${KERNEL} guest at ${GUEST_SIZES} services x 10 (one boot, budget ${BUDGET_S} s, waits up to ${LOCK_WAIT_S} s for ${LOCK})`);
  const rows: BenchRow[] = [];
  let skipped: string | undefined;
  let pending = '';
  const onLine = (raw: string) => {
    const line = raw.replace(/\r$/, '');
    const at = line.indexOf(ROW_MARKER);
    if (at >= 0) {
      try {
        rows.push(JSON.parse(line.slice(at + ROW_MARKER.length)) as BenchRow);
        return;
      } catch {
        out(`(a row from the guest was cut on its console and is lost: ${line.slice(0, 80)}...)`);
        return;
      }
    }
    const skip = /VM tests skipped: (.*)$/.exec(line);
    if (skip) skipped = skip[1];
    out(line);
  };
  const code = await new Promise<number>((resolve) => {
    // A process group of its own: a stop (bench/run.ts's hard limit, ^C) ends flock, the harness and qemu together.
    const child = spawn('flock', argv, { cwd: PACKAGE_ROOT, stdio: ['ignore', 'pipe', 'inherit'], detached: true });
    // The guest's figures so far are still recorded when the group has ended (on 'close' below).
    const stop = () => {
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        // already gone
      }
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      const lines = (pending + chunk).split('\n');
      pending = lines.pop()!;
      lines.forEach(onLine);
    });
    child.on('close', (c) => {
      if (pending) onLine(pending);
      resolve(c ?? 1);
    });
  });
  const took = ((performance.now() - t0) / 1000).toFixed(0);
  for (const r of rows) record(r);
  if (code === 75) return notMeasured(`another guest held ${LOCK} for over ${LOCK_WAIT_S} s`);
  if (skipped) return notMeasured(`this host cannot boot a guest: ${skipped}`);
  const kernels = [...new Set(rows.map((r) => r.machine?.kernel).filter(Boolean))];
  out(`guest bench: ${rows.length} figures from kernel ${kernels.join(', ') || KERNEL} in ${took} s, exit ${code}`);
  // What the guest did not reach before its time ran out (or it failed) says so in the guest's table.
  const machine = rows.find((r) => r.machine)?.machine;
  if (machine) {
    for (const n of GUEST_SIZES.split(',').map(Number)) {
      for (const mode of GUEST_ENV.BENCH_MODES.split(',')) {
        if (rows.some((r) => r.measurement === 'full-sync' && r.dataplane === mode && r.services === n)) continue;
        record({ measurement: 'full-sync', dataplane: mode, services: n, endpoints: 10, value: 0, unit: 'ms', machine,
          notMeasured: code === 0 ? 'no figure from the guest' : `the guest bench ended first (exit ${code}${code === 124 ? ': its time budget ran out' : ''})` });
      }
    }
  }
  if (!rows.some((r) => r.dataplane === 'ipvs')) notMeasured(`the guest bench ended (exit ${code}) before ipvs's first figure`);
  if (code !== 0) process.exitCode = 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`vm bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
