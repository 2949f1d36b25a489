// Runs one guest to completion: the project's own qemu runner or vng, each
// bounded by a boot timeout (until stage 2's marker) and a run timeout, with
// the console streamed to the host and its tail kept for failure reports.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jobScript, type Job } from './job.js';
import { consoleTail, decideOutcome, describeOutcome, exitCode, MARKERS, type Outcome } from './status.js';

export interface Limits {
  bootS: number;
  runS: number;
  /**
   * Whether the boot limit ends at stage 2's marker. vng's console reaches the
   * host in blocks, so the marker can arrive at the very end: for it the two
   * limits add up to one (measured: the whole job's output came at power-off).
   */
  markerEndsBoot?: boolean;
}

export interface GuestResult {
  outcome: Outcome;
  code: number;
  /** Wall time from spawning qemu to its exit. */
  seconds: number;
  /** Seconds until stage 2 printed its marker, or null. */
  bootSeconds: number | null;
  console: string;
}

/** How to start the guest once the results directory exists. */
export type Launch = (resultsDir: string) => { file: string; args: string[] };

const KEEP_CONSOLE = 1 << 20;

export async function runGuest(launch: Launch, job: Job, limits: Limits, opts: { echo: (chunk: string) => void }): Promise<GuestResult> {
  const results = mkdtempSync(join(tmpdir(), 'bpfproxy-vm-results-'));
  try {
    writeFileSync(join(results, 'job.sh'), jobScript(job), { mode: 0o755 });
    const { file, args } = launch(results);
    const t0 = Date.now();
    let bootSeconds: number | null = null;
    let consoleText = '';
    let timedOut: 'boot' | 'run' | null = null;
    // Its own process group: vng runs qemu as a child, and a timeout must stop both.
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const kill = () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // Already gone.
      }
    };
    // The guest is in its own process group, out of reach of the terminal's ^C: stop it with us.
    const onExit = () => kill();
    const onSignal = (sig: NodeJS.Signals) => {
      kill();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    };
    process.once('exit', onExit);
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const split = limits.markerEndsBoot !== false;
    let timer = setTimeout(() => { timedOut = split ? 'boot' : 'run'; kill(); }, (split ? limits.bootS : limits.bootS + limits.runS) * 1000);
    const onData = (buf: Buffer) => {
      const s = buf.toString('utf8');
      opts.echo(s);
      consoleText = (consoleText + s).slice(-KEEP_CONSOLE);
      if (bootSeconds === null && consoleText.includes(MARKERS.started)) {
        bootSeconds = (Date.now() - t0) / 1000;
        if (split) {
          clearTimeout(timer);
          timer = setTimeout(() => { timedOut = 'run'; kill(); }, limits.runS * 1000);
        }
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const spawnError = await new Promise<Error | null>((resolve) => {
      child.once('error', (e) => resolve(e));
      child.once('close', () => resolve(null));
    });
    clearTimeout(timer);
    process.removeListener('exit', onExit);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    if (spawnError) throw new Error(`vm: cannot start ${file}: ${spawnError.message}`);
    let statusFile: string | null = null;
    try {
      statusFile = readFileSync(join(results, 'status'), 'utf8');
    } catch {
      // No status: decideOutcome says why from the console.
    }
    const outcome = decideOutcome({ statusFile, console: consoleText, timedOut });
    return { outcome, code: exitCode(outcome), seconds: (Date.now() - t0) / 1000, bootSeconds, console: consoleText };
  } finally {
    rmSync(results, { recursive: true, force: true });
  }
}

/** One line for the log, plus the console tail when the guest failed to report. */
export function report(label: string, r: GuestResult, limits: Limits): string {
  const head = `vm: ${label}: ${describeOutcome(r.outcome, limits)} (${r.seconds.toFixed(1)} s, reached its root after ${r.bootSeconds === null ? '-' : r.bootSeconds.toFixed(1)} s)`;
  return r.outcome.kind === 'exited' ? head : `${head}\n--- console tail ---\n${consoleTail(r.console)}\n---`;
}
