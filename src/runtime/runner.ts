// BoundedFrequencyRunner: runs an async function (the dataplane sync) in
// response to change notifications, with bounds on how often and how rarely.
// Modelled on kube-proxy's pkg/proxy/runner/bounded_frequency_runner.go.
//
// Guarantees (minInterval, maxInterval and retryInitial are constructor options):
//  1. The function never runs concurrently with itself.
//  2. It starts no sooner than minInterval after the previous run ended: a burst
//     of run() calls within that window coalesces into one run at its end.
//     minInterval 0 means "run on every change", coalesced per event-loop turn.
//  3. At least once every maxInterval there is a run with forceFull (measured
//     from the end of the last successful full run), even with no run() calls.
//     A run started because of this is flagged reason 'periodic': kube-proxy's
//     syncPeriod, which repairs whatever drifted in the datapath.
//  4. A run() when the last run ended more than minInterval ago starts the function
//     on the next turn of the event loop, not after a timer tick: calls made in
//     the same turn still coalesce, and a single endpoint change reaches the
//     datapath within a millisecond.
//  5. When the function fails (rejects, throws, or resolves {ok: false}), the next
//     run has forceFull (the datapath's state is no longer known) and starts after a
//     backoff: retryInitial, doubling on each consecutive failure up to maxInterval.
//     Nothing runs before the backoff ends, whatever run() says: a failing full sync
//     on every change would hammer the kernel, and the retry covers the changes.
//     A success resets the backoff.
//  6. run() calls made while the function is running schedule exactly one more run
//     after it (subject to 2 and 5).
//  7. stop() cancels the timers, waits for a running call to finish, and no run
//     starts afterwards; run() after stop() does nothing.
//  8. The first run has forceFull: nothing is known about the datapath yet.
// Nothing runs before start(); run() calls made before it are remembered.
import type { Logger } from '../util/log.js';
import { realClock, type Clock, type TimerHandle } from '../util/clock.js';

export type RunReason = 'change' | 'periodic' | 'retry';

export interface RunContext {
  reason: RunReason;
  /** Rebuild everything from the desired state (guarantees 3, 5, 8, or run({full: true})). */
  forceFull: boolean;
}

/** Resolving with nothing means success. */
export type RunOutcome = { ok: boolean } | void;

export interface RunnerOptions {
  /** For logs. */
  name: string;
  minIntervalMs: number;
  maxIntervalMs: number;
  /** First retry delay after a failure. Default 1 s. */
  retryInitialMs?: number;
  clock?: Clock;
  logger?: Logger;
  work: (ctx: RunContext) => Promise<RunOutcome>;
}

export const DEFAULT_RETRY_INITIAL_MS = 1000;

type State = 'new' | 'started' | 'stopped';

export class BoundedFrequencyRunner {
  private readonly name: string;
  private readonly minInterval: number;
  private readonly maxInterval: number;
  private readonly retryInitial: number;
  private readonly clock: Clock;
  private readonly logger: Logger | undefined;
  private readonly work: (ctx: RunContext) => Promise<RunOutcome>;

  private state: State = 'new';
  private running: Promise<void> | null = null;
  private timer: { handle: TimerHandle; due: number } | null = null;
  private changePending = false;
  private needFull = true;
  private failures = 0;
  private retryAt: number | null = null;
  private lastEnd: number | null = null;
  private lastFullEnd = 0;

  constructor(opts: RunnerOptions) {
    const { name } = opts;
    const retryInitial = opts.retryInitialMs ?? DEFAULT_RETRY_INITIAL_MS;
    if (!Number.isFinite(opts.minIntervalMs) || opts.minIntervalMs < 0) {
      throw new RangeError(`runner ${name}: minIntervalMs must be >= 0, got ${opts.minIntervalMs}`);
    }
    if (!Number.isFinite(opts.maxIntervalMs) || opts.maxIntervalMs <= 0 || opts.maxIntervalMs < opts.minIntervalMs) {
      throw new RangeError(`runner ${name}: maxIntervalMs must be > 0 and >= minIntervalMs (${opts.minIntervalMs}), got ${opts.maxIntervalMs}`);
    }
    if (!Number.isFinite(retryInitial) || retryInitial <= 0) {
      throw new RangeError(`runner ${name}: retryInitialMs must be > 0, got ${retryInitial}`);
    }
    this.name = name;
    this.minInterval = opts.minIntervalMs;
    this.maxInterval = opts.maxIntervalMs;
    this.retryInitial = Math.min(retryInitial, opts.maxIntervalMs);
    this.clock = opts.clock ?? realClock;
    this.logger = opts.logger;
    this.work = opts.work;
  }

  /** Arms the periodic timer and serves run() calls made so far. */
  start(): void {
    if (this.state !== 'new') throw new Error(`runner ${this.name}: start() called twice or after stop()`);
    this.state = 'started';
    this.lastFullEnd = this.clock.now();
    this.schedule();
  }

  /** Asks for a run as soon as the bounds allow. full: make that run a full one. */
  run(opts: { full?: boolean } = {}): void {
    if (this.state === 'stopped') return;
    this.changePending = true;
    if (opts.full) this.needFull = true;
    this.schedule();
  }

  /** Cancels timers and waits for a running call to finish. */
  async stop(): Promise<void> {
    this.state = 'stopped';
    this.cancelTimer();
    if (this.running) await this.running;
  }

  /** Consecutive failed runs; 0 after a success. */
  get consecutiveFailures(): number {
    return this.failures;
  }

  /** When the next run is due (clock time), or null when none is scheduled. */
  get nextRunAt(): number | null {
    return this.timer ? this.timer.due : null;
  }

  /** When the next run may start, given the time now (never before now). */
  private dueAt(now: number): number {
    let due: number;
    if (this.retryAt !== null) {
      due = this.retryAt;
    } else {
      due = this.lastFullEnd + this.maxInterval;
      if (this.changePending) due = Math.min(due, now);
    }
    if (this.lastEnd !== null) due = Math.max(due, this.lastEnd + this.minInterval);
    return Math.max(due, now);
  }

  private schedule(): void {
    if (this.state !== 'started' || this.running) return;
    const now = this.clock.now();
    const due = this.dueAt(now);
    // An earlier timer is kept: fire() checks again, and a burst of run() calls arms one timer.
    if (this.timer && this.timer.due <= due) return;
    this.cancelTimer();
    const handle = this.clock.setTimer(due - now, () => this.fire());
    this.timer = { handle, due };
  }

  private cancelTimer(): void {
    if (this.timer) this.clock.clearTimer(this.timer.handle);
    this.timer = null;
  }

  private fire(): void {
    this.timer = null;
    if (this.state !== 'started' || this.running) return;
    const now = this.clock.now();
    // Real timers can fire a little early (libuv computes due times from a cached loop time).
    if (this.dueAt(now) > now) {
      this.schedule();
      return;
    }
    let reason: RunReason;
    if (this.failures > 0) reason = 'retry';
    else if (now >= this.lastFullEnd + this.maxInterval) reason = 'periodic';
    else reason = 'change';
    const forceFull = this.needFull || reason === 'periodic';
    // Changes recorded up to here are covered by this run; later ones ask for another (guarantee 6).
    this.changePending = false;
    // Marked running before the work starts: a run() it makes synchronously must see it.
    let finished!: () => void;
    this.running = new Promise<void>((resolve) => { finished = resolve; });
    void this.execute({ reason, forceFull }).then(finished);
  }

  /** Never rejects: a failure of the work is a failed run. */
  private async execute(ctx: RunContext): Promise<void> {
    let ok: boolean;
    try {
      const outcome = await this.work(ctx);
      ok = outcome === undefined || outcome.ok;
      if (!ok) this.logger?.debug({ runner: this.name, reason: ctx.reason }, 'run reported failure');
    } catch (err) {
      ok = false;
      this.logger?.error({ runner: this.name, reason: ctx.reason, err }, 'run failed');
    }
    const end = this.clock.now();
    this.lastEnd = end;
    if (ok) {
      this.failures = 0;
      this.retryAt = null;
      if (ctx.forceFull) {
        this.needFull = false;
        this.lastFullEnd = end;
      }
    } else {
      this.failures++;
      this.needFull = true;
      const backoff = Math.min(this.retryInitial * 2 ** (this.failures - 1), this.maxInterval);
      this.retryAt = end + backoff;
      this.logger?.warn({ runner: this.name, failures: this.failures, retryInMs: backoff }, 'run failed; retrying with a full run');
    }
    this.running = null;
    this.schedule();
  }
}
