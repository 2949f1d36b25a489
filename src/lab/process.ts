// Processes the lab runs inside its namespaces: entered into a lab cgroup first
// (so cgroup programs see their sockets), then into the namespace with nsenter
// (`ip netns exec` would remount /sys and hide bpffs and cgroupfs).
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { constants } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { LabError } from './commands.js';
import { netnsPath } from './plan.js';

export interface Placement {
  netns: string;
  cgroup: string;
}

// sh writes its own pid (the pid that nsenter and then the command will keep
// through exec) into the cgroup before entering the namespace.
const ENTER = 'cg=$1; ns=$2; shift 2; echo $$ > "$cg/cgroup.procs" && exec nsenter --net="$ns" -- "$@"';

/** argv that runs `argv` in the placement's cgroup and network namespace. */
export function enterArgv(where: Placement, argv: readonly string[]): string[] {
  return ['/bin/sh', '-c', ENTER, 'bpx-enter', where.cgroup, netnsPath(where.netns), ...argv];
}

export interface ExitStatus {
  /** Exit code, or 128 + signal number when a signal ended the process. */
  code: number;
  signal: NodeJS.Signals | null;
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  stdio?: StdioOptions;
}

/** A process owned by a lab: stopped at teardown at the latest. */
export class LabProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves when the process has exited and its pipes are closed. */
  readonly exited: Promise<ExitStatus>;
  private status: ExitStatus | null = null;

  constructor(readonly label: string, where: Placement, argv: readonly string[], opts: SpawnOptions = {}) {
    const [file, ...args] = enterArgv(where, argv);
    // detached: its own process group, so a stop reaches whatever it forked.
    this.child = spawn(file as string, args, { detached: true, stdio: opts.stdio ?? 'pipe', env: opts.env ?? process.env });
    // A failed spawn (only /bin/sh missing can do that here) is reported as an
    // 'error' event, which would crash the process unheard.
    this.child.on('error', () => undefined);
    if (this.child.pid === undefined) throw new LabError(`lab: cannot start ${label}: spawn of /bin/sh failed`);
    this.pid = this.child.pid;
    // Writing to a process that has exited fails with EPIPE; its exit status says what happened.
    this.child.stdin?.on('error', () => undefined);
    this.exited = new Promise((resolve) => {
      this.child.once('close', (code, signal) => {
        this.status = { code: code ?? 128 + signalNumber(signal), signal };
        resolve(this.status);
      });
    });
  }

  get running(): boolean {
    return this.status === null;
  }

  /**
   * SIGTERM to the process group, SIGKILL after graceMs. Resolves with the exit
   * status, or null when even SIGKILL did not end it within graceMs (a task
   * stuck in the kernel): the lab's teardown then kills through the cgroup.
   */
  async stop(graceMs = 2_000): Promise<ExitStatus | null> {
    if (!this.running) return this.exited;
    this.signalGroup('SIGTERM');
    const ac = new AbortController();
    try {
      const first = await Promise.race([this.exited, sleep(graceMs, null, { signal: ac.signal })]);
      if (first) return first;
      this.signalGroup('SIGKILL');
      return await Promise.race([this.exited, sleep(graceMs, null, { signal: ac.signal })]);
    } finally {
      ac.abort();
    }
  }

  /** Waits up to ms for the process to exit by itself; null when it is still running. */
  async waitExit(ms: number): Promise<ExitStatus | null> {
    if (!this.running) return this.exited;
    const ac = new AbortController();
    try {
      return await Promise.race([this.exited, sleep(ms, null, { signal: ac.signal })]);
    } finally {
      ac.abort();
    }
  }

  /** For exit handlers: SIGKILL now, no waiting. */
  killSync(): void {
    if (this.running) this.signalGroup('SIGKILL');
  }

  private signalGroup(signal: NodeJS.Signals): void {
    try {
      process.kill(-this.pid, signal);
    } catch {
      // The group is gone already.
    }
  }
}

function signalNumber(signal: NodeJS.Signals | null): number {
  const n = signal ? (constants.signals as Record<string, number | undefined>)[signal] : undefined;
  return n ?? 0;
}
