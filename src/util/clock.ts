// Time as a parameter: the runner, the health state and the tests share one
// interface, so every timing rule can be checked on a FakeClock without sleeping.
import { performance } from 'node:perf_hooks';

/** Opaque handle of a pending timer. */
export interface TimerHandle {
  readonly __timer: unique symbol;
}

export interface Clock {
  /** Milliseconds since the epoch, fractional, never going backwards. */
  now(): number;
  /** Calls fn once after delayMs; a delay <= 0 means the next turn of the event loop. */
  setTimer(delayMs: number, fn: () => void): TimerHandle;
  clearTimer(handle: TimerHandle): void;
}

type RealHandle = { kind: 'immediate'; h: NodeJS.Immediate } | { kind: 'timeout'; h: NodeJS.Timeout };

/**
 * The process clock. now() is performance.now() anchored at the epoch, so a
 * wall-clock step (NTP, a VM resume) cannot shorten or stretch an interval.
 * Zero delays use setImmediate: setTimeout(0) waits at least 1 ms, which would be
 * most of our latency budget for a single endpoint change.
 */
export const realClock: Clock = {
  now: () => performance.timeOrigin + performance.now(),
  setTimer(delayMs, fn) {
    const handle: RealHandle = delayMs <= 0
      ? { kind: 'immediate', h: setImmediate(fn) }
      : { kind: 'timeout', h: setTimeout(fn, delayMs) };
    return handle as unknown as TimerHandle;
  },
  clearTimer(handle) {
    const h = handle as unknown as RealHandle;
    if (h.kind === 'immediate') clearImmediate(h.h);
    else clearTimeout(h.h);
  },
};

interface FakeTimer {
  id: number;
  due: number;
  fn: () => void;
}

/** Lets pending promise callbacks (and the I/O they start) run: one real event-loop turn. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * A clock that only moves when told to. Timers fire in due order (ties in the
 * order they were set); after each one the event loop turns once, so the async
 * work a timer started can finish before the next timer is considered.
 */
export class FakeClock implements Clock {
  static readonly MAX_TIMERS_PER_ADVANCE = 100_000;
  private current: number;
  private seq = 0;
  private readonly timers = new Map<number, FakeTimer>();

  constructor(start: number = Date.UTC(2025, 0, 1)) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setTimer(delayMs: number, fn: () => void): TimerHandle {
    const id = ++this.seq;
    this.timers.set(id, { id, due: this.current + Math.max(0, delayMs), fn });
    return id as unknown as TimerHandle;
  }

  clearTimer(handle: TimerHandle): void {
    this.timers.delete(handle as unknown as number);
  }

  /** Timers set and not yet fired or cleared. */
  get pendingTimers(): number {
    return this.timers.size;
  }

  /** When the earliest pending timer fires, or null. */
  nextDue(): number | null {
    const next = this.earliest();
    return next ? next.due : null;
  }

  /**
   * Moves time forward by ms, firing every timer that comes due on the way,
   * including timers set by the ones that fire. advance(0) runs what is due now.
   */
  async advance(ms: number): Promise<void> {
    const target = this.current + ms;
    await settle();
    for (let fired = 0; ; fired++) {
      // A timer that keeps re-arming itself at zero delay would never let time pass.
      if (fired > FakeClock.MAX_TIMERS_PER_ADVANCE) throw new Error(`FakeClock.advance: more than ${FakeClock.MAX_TIMERS_PER_ADVANCE} timers fired; a timer re-arms itself without end`);
      const next = this.earliest();
      if (!next || next.due > target) break;
      this.timers.delete(next.id);
      this.current = Math.max(this.current, next.due);
      next.fn();
      await settle();
    }
    this.current = target;
  }

  private earliest(): FakeTimer | undefined {
    let best: FakeTimer | undefined;
    for (const t of this.timers.values()) {
      if (!best || t.due < best.due || (t.due === best.due && t.id < best.id)) best = t;
    }
    return best;
  }
}
