// Long-lived watchers of the node's network namespace, used as triggers by
// the local redirect (local-redirect.ts): `ip monitor` for links, addresses,
// routes and neighbours (bridge forwarding entries arrive as neighbour
// events too), `nft monitor` for the netfilter ruleset (iptables-nft goes
// through nftables, so its rules show there as well).
//
// Measured on iproute2 6.1 (Debian 12): `ip -json monitor` ignores -json
// and prints text, so the lines are parsed minimally: `ip monitor label`
// prefixes each event with its kind ([LINK], [ADDR], [ROUTE], [NEIGH]) and
// continuation lines start with blanks. Neither monitor sees what happens
// in another namespace: GRO or an XDP program switched on in a pod changes
// whether its veth takes redirected frames without any event here, and
// legacy iptables has no events at all (local-redirect.ts covers both).
import { spawn as nodeSpawn } from 'node:child_process';
import type { Socket } from 'node:net';
import type { Clock, TimerHandle } from '../../util/clock.js';
import type { Logger } from '../../util/log.js';
import { UNUSABLE_NEIGH_STATES } from './local-endpoints.js';

/** The part of a ChildProcess a watch uses, so tests can hand it a fake. */
export interface WatchedChild {
  stdout: { on(ev: 'data', fn: (chunk: Buffer | string) => void): unknown } | null;
  on(ev: 'exit', fn: (code: number | null, signal: string | null) => void): unknown;
  on(ev: 'error', fn: (err: Error) => void): unknown;
  kill(signal?: NodeJS.Signals): boolean;
}

export type Spawn = (argv: readonly string[]) => WatchedChild;

const spawnReal: Spawn = (argv) => {
  const child = nodeSpawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'ignore'] });
  // A watch never keeps the proxy alive: its owner stops it on dispose.
  child.unref();
  (child.stdout as Socket | null)?.unref();
  return child;
};

export const IP_MONITOR_ARGV = ['ip', 'monitor', 'label', 'link', 'address', 'route', 'neigh'] as const;
export const NFT_MONITOR_ARGV = ['nft', 'monitor'] as const;

/** Restart delays after the child dies: doubling from the first to the last. */
export const RESTART_BACKOFF_MS = { first: 1000, max: 60_000 } as const;
/** A child that ran this long before dying starts the backoff over. */
const STABLE_MS = 60_000;

export interface ChildWatchOptions {
  argv: readonly string[];
  /** Called with each complete line the child prints. */
  onLine: (line: string) => void;
  /** Called when the child was started again after dying: events may have been missed meanwhile. */
  onRestart: () => void;
  log: Logger;
  clock: Clock;
  spawn?: Spawn;
}

/**
 * Keeps one child running and hands its output on, line by line. A child
 * that dies is started again after a backoff; a tool that is not installed
 * is not. Each is logged once, not at every restart.
 */
export class ChildWatch {
  private child: WatchedChild | null = null;
  private restartTimer: TimerHandle | null = null;
  private backoff: number = RESTART_BACKOFF_MS.first;
  private startedAt = 0;
  private stopped = true;
  private loggedDeath = false;
  /** The tool is not installed: never started again. */
  private missing = false;
  private buffered = '';
  /** How many times the child was started: for tests and the log. */
  starts = 0;

  constructor(private readonly o: ChildWatchOptions) {}

  get running(): boolean {
    return this.child !== null;
  }

  start(): void {
    if (!this.stopped || this.missing) return;
    this.stopped = false;
    this.launch();
  }

  /** Kills the child; nothing is started again until start(). */
  stop(): void {
    this.stopped = true;
    if (this.restartTimer) this.o.clock.clearTimer(this.restartTimer);
    this.restartTimer = null;
    const c = this.child;
    this.child = null;
    c?.kill('SIGTERM');
  }

  private launch(): void {
    this.restartTimer = null;
    if (this.stopped) return;
    const name = this.o.argv.join(' ');
    let child: WatchedChild;
    try {
      child = (this.o.spawn ?? spawnReal)(this.o.argv);
    } catch (err) {
      this.died(name, err as Error);
      return;
    }
    this.child = child;
    this.buffered = '';
    this.startedAt = this.o.clock.now();
    if (this.starts++ > 0) this.o.onRestart();
    child.stdout?.on('data', (chunk) => {
      if (this.child !== child) return;
      const lines = (this.buffered + chunk.toString()).split('\n');
      this.buffered = lines.pop() ?? '';
      for (const l of lines) this.o.onLine(l);
    });
    // 'error' (spawn failed: ENOENT, EACCES) and 'exit' may both come: the first one counts.
    const gone = (why: Error) => {
      if (this.child !== child) return;
      this.child = null;
      this.died(name, why);
    };
    child.on('error', gone);
    child.on('exit', (code, signal) => gone(new Error(signal ? `killed by ${signal}` : `exited with code ${code}`)));
  }

  private died(name: string, err: Error): void {
    if (this.stopped) return;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      this.o.log.info({ command: name }, `${this.o.argv[0]} is not installed: changes it would report are seen by the periodic refresh only`);
      this.stopped = this.missing = true;
      return;
    }
    if (this.o.clock.now() - this.startedAt >= STABLE_MS) this.backoff = RESTART_BACKOFF_MS.first;
    if (!this.loggedDeath) this.o.log.warn({ command: name, err: err.message, restartInMs: this.backoff }, 'a network watch of the local redirect stopped: restarting it with backoff (logged once; the periodic refresh covers the gap)');
    this.loggedDeath = true;
    this.restartTimer = this.o.clock.setTimer(this.backoff, () => this.launch());
    this.backoff = Math.min(this.backoff * 2, RESTART_BACKOFF_MS.max);
  }
}

// ---- What a line of `ip monitor label` says ----------------------------------

export type IpMonitorEvent =
  | { kind: 'link' | 'addr' | 'route' }
  /** An IP neighbour: `lladdr` is absent while unresolved; `state` is the kernel's NUD state (REACHABLE, STALE, FAILED, ...). */
  | { kind: 'neigh'; address: string; dev: string; lladdr: string | null; state: string; deleted: boolean }
  /** A bridge forwarding entry (AF_BRIDGE neighbour): a MAC on a port. */
  | { kind: 'fdb'; mac: string; port: string; deleted: boolean };

/** One line of `ip monitor label ...`; null for continuation lines and kinds not asked for. */
export function parseIpMonitorLine(line: string): IpMonitorEvent | null {
  const m = /^\[(LINK|ADDR|ROUTE|NEIGH)\](.*)$/.exec(line);
  if (!m) return null;
  if (m[1] === 'LINK') return { kind: 'link' };
  if (m[1] === 'ADDR') return { kind: 'addr' };
  if (m[1] === 'ROUTE') return { kind: 'route' };
  const words = m[2]!.trim().split(/\s+/);
  const deleted = words[0] === 'Deleted';
  if (deleted) words.shift();
  const after = (w: string) => { const i = words.indexOf(w); return i >= 0 && i + 1 < words.length ? words[i + 1]! : null; };
  const lladdr = after('lladdr')?.toLowerCase() ?? null;
  if (words[0] === 'dev') return lladdr ? { kind: 'fdb', mac: lladdr, port: words[1] ?? '', deleted } : null;
  if (words[0] === 'miss' || words[0] === undefined) return null;
  return { kind: 'neigh', address: words[0], dev: after('dev') ?? '', lladdr, state: words[words.length - 1] ?? '', deleted };
}

/** Whether a line of `nft monitor` changes a table, chain or rule (set elements and generation notes do not move the gate). */
export function isNftRulesetChange(line: string): boolean {
  return /^(add|delete|replace|flush|destroy) (table|chain|rule|ruleset)\b/.test(line);
}

/** What the local redirect holds, as far as deciding whether an event can change it. */
export interface RedirectView {
  /** Whether this (canonical) address is a local backend. */
  isBackend(address: string): boolean;
  /** The pod MAC in this backend's entry; undefined when it has none. */
  writtenMac(address: string): string | undefined;
  /** Whether some entry holds this pod MAC. */
  writesMac(mac: string): boolean;
  /** Whether some local backend has no entry (a new neighbour or bridge entry may resolve it). */
  anyUnresolved(): boolean;
}

/**
 * Whether an event can change an entry. Links, addresses and routes change
 * rarely (pods come and go): always. Neighbours change state all the time
 * on a busy node (REACHABLE, STALE, DELAY, PROBE: tens a second with
 * hundreds of pods): only a local backend's, and only when its MAC or its
 * usability changes or it has no entry yet. Bridge entries: a MAC in an
 * entry (it moved or left), or any new one while a backend waits for one.
 */
export function monitorEventMatters(ev: IpMonitorEvent, v: RedirectView): boolean {
  switch (ev.kind) {
    case 'link':
    case 'addr':
    case 'route':
      return true;
    case 'neigh': {
      if (!v.isBackend(ev.address)) return false;
      const mac = v.writtenMac(ev.address);
      return ev.deleted || mac === undefined || ev.lladdr !== mac || UNUSABLE_NEIGH_STATES.has(ev.state);
    }
    case 'fdb':
      return v.writesMac(ev.mac) || (!ev.deleted && v.anyUnresolved());
  }
}
