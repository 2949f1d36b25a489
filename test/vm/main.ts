// The kernel-in-VM harness (docs/vm.md).
//
//   vite-node test/vm/main.ts check [--kernel 6.1,6.12]
//       Can this host boot a guest? Exits 0, or 3 with one line saying why not.
//   vite-node test/vm/main.ts auto [options]
//       check, then run when the host can (make test); one line and status 0 when it cannot.
//   vite-node test/vm/main.ts vng-smoke [--kernel K] [--vng PATH] [--kvm]
//       One short boot through vng (the last kernel given): the guest runs the
//       kernel asked for and its job's exit status comes back. Skipped, in one
//       line, without a vng.
//   vite-node test/vm/main.ts run [--kernel 6.1,6.12] [--batch full|ci] [--runner own|vng] [--vng PATH] [--kvm]
//                                 [--memory MiB] [--cpus N] [--boot-timeout S] [--timeout S] [[--] COMMAND...]
//       Boots each kernel once and runs COMMAND (default: the VM test batch)
//       in the repository, with BPFPROXY_VM set; exits with the first failing
//       status (124 timeout, 125 panic, 126 no status from the guest).
//
// Software emulation (TCG) always, unless --kvm (or BPFPROXY_VM_KVM=1) asks
// for KVM and /dev/kvm works: nested KVM on the CI machines exists but runs
// guests about 100x slower than TCG.
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../src/util/paths.js';
import { prepareKernel, type PreparedKernel } from './lib/cache.js';
import { guestEnv, type Job } from './lib/job.js';
import { defaultBios, QEMU, qemuArgs, type Accel } from './lib/qemu.js';
import { report, runGuest, type GuestResult, type Launch, type Limits } from './lib/runner.js';
import { findVng, vngArgs, vngCommand } from './lib/vng.js';
import { exec } from './lib/exec.js';
import { emulatorTextPokeOops } from './lib/status.js';

const GUEST_DIR = join(PACKAGE_ROOT, 'test', 'vm', 'guest');
export const DEFAULT_KERNELS = ['6.1', '6.12'];
const VITEST = ['node', 'node_modules/vitest/vitest.mjs', 'run', '--config', 'test/vm/vitest.guest.config.ts'];
/**
 * What each kernel runs, by batch. full (make test-vm): every file of the
 * guest config. ci (make test): the kernel checks and feature probes, the
 * socket-level ClusterIP file and the XDP/TC NodePort file on both kernels,
 * on 6.1 also the sock_diag path for dead UDP backends (6.1 has no
 * bpf_sock_destroy) and the ipvs mode end to end (IPVS exists only in a
 * guest), on 6.12 the nftables mode end to end (13 of 13 in 152 s of tests,
 * 197 s boot to power-off, on an idle machine). One boot per kernel pays
 * the guest's start and vitest's once. Times per file and the 15-minute budget: docs/vm.md (6.1's batch: 415 s on
 * an idle machine).
 */
const CI_FILES: Record<string, string[]> = {
  '6.1': ['test/vm/guest/', 'test/lab/clusterip.test.ts', 'test/lab/nodeport-xdp.test.ts', 'test/lab/udp-dead-backend.test.ts', 'test/lab/ipvs.test.ts'],
  default: ['test/vm/guest/', 'test/lab/clusterip.test.ts', 'test/lab/nodeport-xdp.test.ts', 'test/lab/nftables.test.ts'],
};
type Batch = (label: string) => string[];
const BATCHES: Record<string, Batch> = {
  full: () => VITEST,
  ci: (label) => [...VITEST, ...(CI_FILES[label] ?? CI_FILES.default!)],
};
const SKIP = 3;

interface Options {
  kernels: string[];
  runner: 'own' | 'vng';
  vng?: string;
  accel: Accel;
  memoryMiB: number;
  cpus: number;
  limits: Limits;
  /** The command for a kernel label. */
  command: Batch;
}

function parse(argv: string[]): { verb: string; opts: Options } {
  const [verb = 'run', ...rest] = argv;
  const opts: Options = {
    kernels: DEFAULT_KERNELS,
    runner: 'own',
    accel: process.env.BPFPROXY_VM_KVM === '1' ? 'kvm' : 'tcg',
    memoryMiB: 3072,
    cpus: 2,
    limits: { bootS: 180, runS: 900 },
    command: BATCHES.full!,
  };
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    const value = () => {
      const v = rest[++i];
      if (v === undefined) throw new Error(`vm: ${a} needs a value`);
      return v;
    };
    // vite-node swallows a `--`, so the command also starts at the first word that is not an option.
    if (a === '--' || !a.startsWith('--')) {
      const argv = rest.slice(a === '--' ? i + 1 : i);
      opts.command = () => argv;
      break;
    } else if (a === '--kernel') opts.kernels = value().split(',').filter(Boolean);
    else if (a === '--runner') {
      const r = value();
      if (r !== 'own' && r !== 'vng') throw new Error('vm: --runner is own or vng');
      opts.runner = r;
    } else if (a === '--vng') {
      opts.vng = value();
      opts.runner = 'vng';
    } else if (a === '--batch') {
      const b = BATCHES[value()];
      if (!b) throw new Error(`vm: --batch is ${Object.keys(BATCHES).join(' or ')}`);
      opts.command = b;
    } else if (a === '--kvm') opts.accel = 'kvm';
    else if (a === '--memory') opts.memoryMiB = Number(value());
    else if (a === '--cpus') opts.cpus = Number(value());
    else if (a === '--boot-timeout') opts.limits.bootS = Number(value());
    else if (a === '--timeout') opts.limits.runS = Number(value());
    else throw new Error(`vm: unknown argument ${a}`);
  }
  return { verb, opts };
}

/** Why KVM cannot be used, or null: only when asked, and only when /dev/kvm opens. */
function kvmProblem(): string | null {
  try {
    closeSync(openSync('/dev/kvm', 'r+'));
    return null;
  } catch (e) {
    return `--kvm asked for, but /dev/kvm cannot be opened (${(e as Error).message})`;
  }
}

function memAvailableMiB(): number {
  const m = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Math.floor(Number(m[1]) / 1024) : 0;
}

/** Why this host cannot boot a guest, or null. Fetches the kernels (that is the test of "fetchable"). */
async function hostProblem(opts: Options, log: (l: string) => void): Promise<string | null> {
  try {
    await exec([QEMU, '--version'], { timeoutMs: 10_000 });
  } catch {
    return `no ${QEMU} (apt-get install qemu-system-x86)`;
  }
  if (!existsSync('/bin/busybox')) return 'no /bin/busybox (apt-get install busybox-static)';
  const need = opts.memoryMiB + 1024;
  const avail = memAvailableMiB();
  if (avail < need) return `${avail} MiB of memory available, a guest needs ${need}`;
  if (opts.accel === 'kvm') {
    const why = kvmProblem();
    if (why) return why;
  }
  for (const k of opts.kernels) {
    try {
      await prepareKernel(k, log);
    } catch (first) {
      // Stale apt lists name a package the mirror has replaced: refresh them once, as root can.
      if (process.getuid?.() !== 0) return `kernel ${k} cannot be fetched: ${(first as Error).message.split('\n')[0]}`;
      try {
        await exec(['apt-get', 'update', '-qq'], { timeoutMs: 300_000 });
        await prepareKernel(k, log);
      } catch (e) {
        return `kernel ${k} cannot be fetched: ${(e as Error).message.split('\n')[0]}`;
      }
    }
  }
  return null;
}

function launcher(opts: Options, k: PreparedKernel): Launch {
  if (opts.runner === 'vng') {
    const vng = findVng(opts.vng);
    if (!vng) throw new Error('vm: --runner vng, but no vng on the PATH nor in ../shared/tools/virtme-ng (pip install virtme-ng, or --vng PATH)');
    // vng given pipes for stdout and stderr falls back to "limited redirection" and its guest sat
    // idle for minutes here (qemu at 20% of a CPU); given a file it ran through. So vng writes to a
    // file in the results directory, and tail follows it until vng exits.
    return (results) => ({
      file: 'sh',
      args: ['-c', 'log="$1/vng.log"; shift; : > "$log"; "$@" < /dev/null > "$log" 2>&1 & pid=$!; tail -n +1 -f --pid="$pid" "$log"; wait "$pid"', 'vng', results,
        ...vngCommand(vng), ...vngArgs({ bzImage: k.bzImage, resultsDir: results, runJob: join(GUEST_DIR, 'run-job.sh'), memoryMiB: opts.memoryMiB, cpus: opts.cpus, accel: opts.accel })],
    });
  }
  const bios = defaultBios();
  return (results) => ({
    file: QEMU,
    args: qemuArgs({ vmlinux: k.vmlinux, initramfs: k.initramfs, moduleDir: k.moduleDir, resultsDir: results, stage2: join(GUEST_DIR, 'stage2.sh'), memoryMiB: opts.memoryMiB, cpus: opts.cpus, accel: opts.accel, ...(bios ? { bios } : {}) }),
  });
}

const log = (l: string) => console.log(l);

/** Boots each kernel once with the command; the first failing status, or 0. */
async function runAll(opts: Options): Promise<number> {
  if (opts.accel === 'kvm') {
    const why = kvmProblem();
    if (why) throw new Error(`vm: ${why}`);
  }
  const results: Array<{ k: PreparedKernel; r: GuestResult }> = [];
  for (const label of opts.kernels) {
    const k = await prepareKernel(label, log);
    const job: Job = { cwd: PACKAGE_ROOT, env: guestEnv(k.kver, process.env, { BPFPROXY_VM_RUNNER: opts.runner }), argv: opts.command(label) };
    log(`vm: ${label}: booting ${k.kver} (${opts.runner} runner, ${opts.accel}, ${opts.cpus} CPUs, ${opts.memoryMiB} MiB): ${job.argv.join(' ')}`);
    let r = await runGuest(launcher(opts, k), job, opts.limits, { echo: (s) => process.stdout.write(s) });
    // A kernel that panics before the job's marker ran none of the project's code (seen once under TCG:
    // 6.12 oopsed on an int3 at 5 s), and an int3 oops of the emulator's text-patching race
    // (emulatorTextPokeOops) is not the project's either: boot it once more, and say so. A second
    // panic, or any other panic after the marker, fails.
    if (r.outcome.kind === 'panic' && (r.bootSeconds === null || emulatorTextPokeOops(r.console))) {
      log(r.bootSeconds === null
        ? `vm: ${label}: the guest panicked while booting, before the job started: booting once more`
        : `vm: ${label}: the guest kernel oopsed on an int3 left by its own text patching (software emulation's race, not the job's: ${r.outcome.line}); the whole job runs once more`);
      r = await runGuest(launcher(opts, k), job, opts.limits, { echo: (s) => process.stdout.write(s) });
    }
    log(report(`${label} (${k.kver})`, r, opts.limits));
    results.push({ k, r });
  }
  log('vm: summary');
  for (const { k, r } of results) log(`vm:   ${k.label.padEnd(5)} ${k.kver.padEnd(24)} exit ${String(r.code).padStart(3)}  ${r.seconds.toFixed(1).padStart(6)} s (root after ${r.bootSeconds?.toFixed(1) ?? '-'} s)`);
  return results.find(({ r }) => r.code !== 0)?.r.code ?? 0;
}

/** The exit status vng-smoke's guest returns when it runs the kernel it was given. */
const SMOKE_STATUS = 3;

async function vngSmoke(opts: Options): Promise<number> {
  const vng = findVng(opts.vng);
  if (!vng) {
    log('vng smoke test skipped: no vng on the PATH nor in ../shared/tools/virtme-ng (pip install virtme-ng, or --vng PATH)');
    return 0;
  }
  const kernel = opts.kernels[opts.kernels.length - 1]!;
  const code = await runAll({
    ...opts,
    kernels: [kernel],
    runner: 'vng',
    vng,
    // vng's shell init (udevd, systemd-tmpfiles, ...) takes about 33 s under TCG on an idle machine,
    // 275 s on this loaded one, and over 600 s beside two other guests.
    limits: { bootS: Math.max(opts.limits.bootS, 900), runS: 300, markerEndsBoot: false },
    command: () => ['sh', '-c', `uname -r; test "$(uname -r)" = "$BPFPROXY_VM" && grep -q ' /sys/fs/bpf bpf ' /proc/mounts && exit ${SMOKE_STATUS}`],
  });
  if (code !== SMOKE_STATUS) {
    log(`vm: vng smoke test failed: the guest's status came back as ${code}, expected ${SMOKE_STATUS} (the job exits ${SMOKE_STATUS} when it runs kernel ${kernel} with bpffs mounted)`);
    return code === 0 ? 1 : code;
  }
  log(`vm: vng smoke test passed (${vng}): kernel ${kernel} booted and status ${SMOKE_STATUS} came back`);
  return 0;
}

async function main(): Promise<number> {
  const { verb, opts } = parse(process.argv.slice(2).filter((a, i) => !(i === 0 && a === '--')));
  switch (verb) {
    case 'check':
    case 'auto': {
      const why = await hostProblem(opts, log);
      if (why) {
        log(`VM tests skipped: ${why}`);
        return verb === 'check' ? SKIP : 0;
      }
      if (verb === 'check') return 0;
      const t0 = Date.now();
      // Not the vng smoke test: it costs one more boot of minutes under TCG (make test-vm runs it).
      const code = await runAll(opts);
      log(`vm: ${((Date.now() - t0) / 1000).toFixed(0)} s in all`);
      return code;
    }
    case 'run':
      return runAll(opts);
    case 'vng-smoke':
      return vngSmoke(opts);
    default:
      throw new Error(`vm: unknown command ${verb} (check, auto, run, vng-smoke)`);
  }
}

main().then((code) => process.exit(code), (e: unknown) => {
  console.error((e as Error).message);
  process.exit(1);
});
