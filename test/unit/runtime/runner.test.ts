import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock, realClock, settle } from '../../../src/util/clock.js';
import { BoundedFrequencyRunner, type RunContext, type RunOutcome } from '../../../src/runtime/runner.js';

interface Call extends RunContext {
  /** Milliseconds since the harness was made. */
  at: number;
}

function deferred(): { promise: Promise<RunOutcome>; resolve: (v?: RunOutcome) => void; reject: (e: unknown) => void } {
  let resolve!: (v?: RunOutcome) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<RunOutcome>((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

const runners: BoundedFrequencyRunner[] = [];
afterEach(async () => {
  await Promise.all(runners.splice(0).map((r) => r.stop()));
});

function harness(minIntervalMs: number, maxIntervalMs: number, retryInitialMs?: number) {
  const clock = new FakeClock();
  const t0 = clock.now();
  const calls: Call[] = [];
  let active = 0;
  let maxActive = 0;
  /** What the next runs do; the default succeeds at once. */
  const h = {
    clock,
    calls,
    get maxActive() { return maxActive; },
    behaviour: async (_ctx: RunContext): Promise<RunOutcome> => undefined,
    runner: undefined as unknown as BoundedFrequencyRunner,
    /** Clock time relative to the start. */
    get t() { return clock.now() - t0; },
  };
  h.runner = new BoundedFrequencyRunner({
    name: 'test',
    minIntervalMs,
    maxIntervalMs,
    ...(retryInitialMs === undefined ? {} : { retryInitialMs }),
    clock,
    work: async (ctx) => {
      calls.push({ ...ctx, at: clock.now() - t0 });
      active++;
      maxActive = Math.max(maxActive, active);
      try {
        return await h.behaviour(ctx);
      } finally {
        active--;
      }
    },
  });
  runners.push(h.runner);
  h.runner.start();
  return h;
}

describe('BoundedFrequencyRunner', () => {
  it('(1, 6) never runs concurrently, and calls during a run schedule exactly one more run', async () => {
    const h = harness(0, 60_000);
    const first = deferred();
    h.behaviour = () => first.promise;
    h.runner.run();
    await h.clock.advance(0);
    expect(h.calls).toHaveLength(1);

    h.behaviour = async () => undefined;
    for (let i = 0; i < 5; i++) h.runner.run();
    await h.clock.advance(10);
    expect(h.calls).toHaveLength(1);

    first.resolve();
    await h.clock.advance(0);
    expect(h.calls).toHaveLength(2);
    expect(h.maxActive).toBe(1);

    await h.clock.advance(1000);
    expect(h.calls).toHaveLength(2);
  });

  it('(2) coalesces a burst into one run at the end of minInterval', async () => {
    const h = harness(1000, 60_000);
    h.runner.run();
    await h.clock.advance(0);
    expect(h.calls.map((c) => c.at)).toEqual([0]);

    for (const step of [100, 200, 300]) {
      await h.clock.advance(step);
      h.runner.run();
    }
    await h.clock.advance(399);
    expect(h.calls).toHaveLength(1);
    await h.clock.advance(1);
    expect(h.calls.map((c) => c.at)).toEqual([0, 1000]);
    expect(h.calls[1]!.reason).toBe('change');

    await h.clock.advance(5000);
    expect(h.calls).toHaveLength(2);
  });

  it('(2) measures minInterval from the end of the previous run', async () => {
    const h = harness(1000, 60_000);
    const slow = deferred();
    h.behaviour = () => slow.promise;
    h.runner.run();
    await h.clock.advance(0);
    h.runner.run();
    await h.clock.advance(500);
    h.behaviour = async () => undefined;
    slow.resolve();
    await h.clock.advance(999);
    expect(h.calls).toHaveLength(1);
    await h.clock.advance(1);
    expect(h.calls.map((c) => c.at)).toEqual([0, 1500]);
  });

  it('(3) runs a full periodic run every maxInterval without run() calls', async () => {
    const h = harness(1000, 30_000);
    await h.clock.advance(29_999);
    expect(h.calls).toHaveLength(0);
    await h.clock.advance(1);
    await h.clock.advance(30_000);
    expect(h.calls).toEqual([
      { reason: 'periodic', forceFull: true, at: 30_000 },
      { reason: 'periodic', forceFull: true, at: 60_000 },
    ]);
  });

  it('(3) makes one run full every maxInterval under constant churn', async () => {
    const h = harness(0, 30_000);
    h.runner.run();
    await h.clock.advance(0);
    for (let i = 0; i < 40; i++) {
      await h.clock.advance(2000);
      h.runner.run();
      await h.clock.advance(0);
    }
    const fullAt = h.calls.filter((c) => c.forceFull).map((c) => c.at);
    expect(fullAt).toEqual([0, 30_000, 60_000]);
    expect(h.calls.filter((c) => !c.forceFull).every((c) => c.reason === 'change')).toBe(true);
    expect(h.calls.filter((c) => c.at > 0 && c.forceFull).every((c) => c.reason === 'periodic')).toBe(true);
  });

  it('(4) runs a change at once when the last run is older than minInterval, coalescing one turn', async () => {
    const h = harness(1000, 60_000);
    h.runner.run();
    await h.clock.advance(0);
    await h.clock.advance(5000);
    h.runner.run();
    h.runner.run();
    h.runner.run();
    // Due now, as a zero-delay timer (setImmediate on the real clock), not after minInterval.
    expect(h.runner.nextRunAt).toBe(h.clock.now());
    expect(h.clock.pendingTimers).toBe(1);
    await h.clock.advance(0);
    expect(h.calls.map((c) => c.at)).toEqual([0, 5000]);
    await h.clock.advance(2000);
    expect(h.calls).toHaveLength(2);
  });

  it('(4) with minInterval 0 runs every change, coalesced per turn', async () => {
    const h = harness(0, 60_000);
    h.runner.run();
    h.runner.run();
    await h.clock.advance(0);
    h.runner.run();
    await h.clock.advance(0);
    h.runner.run();
    await h.clock.advance(0);
    expect(h.calls.map((c) => [c.at, c.reason])).toEqual([[0, 'change'], [0, 'change'], [0, 'change']]);
  });

  it('(5) retries a rejected run with a doubling backoff capped at maxInterval, full each time', async () => {
    const h = harness(0, 10_000, 1000);
    h.behaviour = async () => { throw new Error('map full'); };
    h.runner.run();
    await h.clock.advance(0);
    await h.clock.advance(1000 + 2000 + 4000 + 8000 + 10_000 + 10_000);
    expect(h.calls.map((c) => c.at)).toEqual([0, 1000, 3000, 7000, 15_000, 25_000, 35_000]);
    expect(h.calls.slice(1).every((c) => c.reason === 'retry' && c.forceFull)).toBe(true);
    expect(h.runner.consecutiveFailures).toBe(7);
  });

  it('(5) treats {ok: false} as a failure, ignores run() during the backoff, and resets after a success', async () => {
    const h = harness(0, 60_000, 1000);
    let fail = true;
    h.behaviour = async () => ({ ok: !fail });
    h.runner.run();
    await h.clock.advance(0);
    await h.clock.advance(500);
    h.runner.run();
    await h.clock.advance(0);
    expect(h.calls).toHaveLength(1);
    await h.clock.advance(500);
    expect(h.calls.map((c) => [c.at, c.reason])).toEqual([[0, 'change'], [1000, 'retry']]);

    fail = false;
    await h.clock.advance(2000);
    expect(h.calls.map((c) => [c.at, c.reason, c.forceFull])).toEqual([
      [0, 'change', true], [1000, 'retry', true], [3000, 'retry', true],
    ]);
    expect(h.runner.consecutiveFailures).toBe(0);

    h.runner.run();
    await h.clock.advance(0);
    expect(h.calls.at(-1)).toEqual({ at: 3000, reason: 'change', forceFull: false });

    fail = true;
    h.runner.run();
    await h.clock.advance(0);
    await h.clock.advance(1000);
    expect(h.calls.slice(-2).map((c) => [c.at, c.reason])).toEqual([[3000, 'change'], [4000, 'retry']]);
  });

  it('(7) stop() waits for a running call, cancels timers, and ignores later run() calls', async () => {
    const h = harness(0, 30_000);
    const slow = deferred();
    h.behaviour = () => slow.promise;
    h.runner.run();
    await h.clock.advance(0);
    h.runner.run();

    let stopped = false;
    const stopping = h.runner.stop().then(() => { stopped = true; });
    await settle();
    expect(stopped).toBe(false);
    slow.resolve();
    await stopping;
    expect(stopped).toBe(true);
    expect(h.clock.pendingTimers).toBe(0);

    h.runner.run();
    await h.clock.advance(120_000);
    expect(h.calls).toHaveLength(1);
  });

  it('(8) makes the first run full and later change runs partial; run({full}) asks for a full one', async () => {
    const h = harness(0, 60_000);
    h.runner.run();
    await h.clock.advance(0);
    h.runner.run();
    await h.clock.advance(0);
    h.runner.run({ full: true });
    await h.clock.advance(0);
    expect(h.calls.map((c) => c.forceFull)).toEqual([true, false, true]);
  });

  it('remembers run() calls made before start()', async () => {
    const clock = new FakeClock();
    const reasons: string[] = [];
    const runner = new BoundedFrequencyRunner({
      name: 'early', minIntervalMs: 0, maxIntervalMs: 1000, clock,
      work: async (ctx) => { reasons.push(ctx.reason); },
    });
    runners.push(runner);
    runner.run();
    await clock.advance(0);
    expect(reasons).toEqual([]);
    runner.start();
    await clock.advance(0);
    expect(reasons).toEqual(['change']);
  });

  it('rejects bounds that cannot hold, naming the option', () => {
    const work = async () => undefined;
    expect(() => new BoundedFrequencyRunner({ name: 'x', minIntervalMs: -1, maxIntervalMs: 10, work })).toThrow(/minIntervalMs/);
    expect(() => new BoundedFrequencyRunner({ name: 'x', minIntervalMs: 20, maxIntervalMs: 10, work })).toThrow(/maxIntervalMs/);
    expect(() => new BoundedFrequencyRunner({ name: 'x', minIntervalMs: 0, maxIntervalMs: 10, retryInitialMs: 0, work })).toThrow(/retryInitialMs/);
  });

  it('runs a due change even when the clock moves between two reads, as the real one does', async () => {
    const fake = new FakeClock();
    let creep = 0;
    const clock = {
      now: () => fake.now() + (creep += 0.001),
      setTimer: (ms: number, fn: () => void) => fake.setTimer(ms, fn),
      clearTimer: fake.clearTimer.bind(fake),
    };
    const reasons: string[] = [];
    const runner = new BoundedFrequencyRunner({ name: 'creep', minIntervalMs: 0, maxIntervalMs: 60_000, clock, work: async (ctx) => { reasons.push(ctx.reason); } });
    runners.push(runner);
    runner.start();
    runner.run();
    await fake.advance(0);
    expect(reasons).toEqual(['change']);
  });

  it('runs on the real clock: a change starts the work without waiting for a timer, periodic timers are released on stop', async () => {
    const ran: RunContext[] = [];
    let signal!: () => void;
    const first = new Promise<void>((resolve) => { signal = resolve; });
    const runner = new BoundedFrequencyRunner({
      name: 'real', minIntervalMs: 0, maxIntervalMs: 3_600_000, clock: realClock,
      work: async (ctx) => { ran.push(ctx); signal(); },
    });
    runners.push(runner);
    runner.start();
    runner.run();
    await first;
    expect(ran).toEqual([{ reason: 'change', forceFull: true }]);
    await runner.stop();
    expect(runner.nextRunAt).toBeNull();
  });
});

describe('realClock', () => {
  it('cancels zero-delay and delayed timers', async () => {
    const fired: string[] = [];
    realClock.clearTimer(realClock.setTimer(0, () => fired.push('immediate')));
    realClock.clearTimer(realClock.setTimer(5, () => fired.push('timeout')));
    realClock.setTimer(0, () => fired.push('kept'));
    // Timers fire in due order, so once this one has fired the cancelled 5 ms one would have too.
    await new Promise<void>((resolve) => realClock.setTimer(6, resolve));
    expect(fired).toEqual(['kept']);
  });
});
