// Runs an asynchronous refresh after bursts of events, never two at once.
// Guarantees:
// 1. A request is followed by a run that starts after it: within delayMs of
//    the first request of a burst when nothing runs, or its delay after the
//    run in progress ends when one does.
// 2. Requests made while a run is waiting (debounce) or in progress are
//    coalesced into one further run, however many there are.
// 3. The first request of a burst starts the window; later ones do not push
//    it back, so a steady stream of events still gets a run every window.
// 4. A request with a shorter delay (an endpoint change: 0) brings the
//    waiting run forward.
// 5. After stop(), nothing runs again; idle() resolves once nothing is
//    waiting or running.
// 6. Runs asked for with a delay (events) start at least minIntervalMs
//    after the previous run started, so a node whose routes or neighbours
//    churn costs at most one read per interval; a delay of 0 (the local
//    backends changed) is not held back.
// The clock is injected (src/util/clock.ts), so the tests run without sleeping.
import type { Clock, TimerHandle } from '../../util/clock.js';

export class RefreshScheduler {
  private timer: { handle: TimerHandle; due: number } | null = null;
  private running: Promise<void> | null = null;
  /** A request arrived while running: run again after, with this delay. */
  private again: number | null = null;
  private stopped = false;
  private lastStart = -Infinity;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly run: () => Promise<void>, private readonly clock: Clock, private readonly debounceMs: number, private readonly minIntervalMs = 0) {}

  request(delayMs = this.debounceMs): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = this.again === null ? delayMs : Math.min(this.again, delayMs);
      return;
    }
    const now = this.clock.now();
    const due = delayMs <= 0 ? now : Math.max(now + delayMs, this.lastStart + this.minIntervalMs);
    if (this.timer && this.timer.due <= due) return;
    if (this.timer) this.clock.clearTimer(this.timer.handle);
    this.timer = { handle: this.clock.setTimer(due - now, () => this.fire()), due };
  }

  /** Resolves when no run is waiting or in progress. */
  idle(): Promise<void> {
    if (!this.timer && !this.running) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) this.clock.clearTimer(this.timer.handle);
    this.timer = null;
    this.again = null;
    if (!this.running) this.wakeIdle();
  }

  private fire(): void {
    this.timer = null;
    if (this.stopped) return;
    this.lastStart = this.clock.now();
    // run() reports its own failures; a rejection here must not stop later runs.
    this.running = this.run().catch(() => undefined).then(() => {
      this.running = null;
      const again = this.again;
      this.again = null;
      if (again !== null && !this.stopped) this.request(again);
      if (!this.timer) this.wakeIdle();
    });
  }

  private wakeIdle(): void {
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }
}
