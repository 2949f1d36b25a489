// The debounce and coalescing of the local redirect's refreshes
// (src/dataplane/bpf/refresh-scheduler.ts), on a fake clock.
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../../src/util/clock.js';
import { RefreshScheduler } from '../../../src/dataplane/bpf/refresh-scheduler.js';

/** A refresh that takes `takesMs` of fake time and records when it started and whether two overlapped. */
function recorder(clock: FakeClock, takesMs = 0, fail = false) {
  const starts: number[] = [];
  let inFlight = 0;
  let overlapped = false;
  const t0 = clock.now();
  const run = async () => {
    starts.push(clock.now() - t0);
    if (++inFlight > 1) overlapped = true;
    if (takesMs > 0) await new Promise<void>((r) => clock.setTimer(takesMs, r));
    inFlight--;
    if (fail) throw new Error('read failed');
  };
  return { run, starts, overlapped: () => overlapped };
}

describe('RefreshScheduler: events -> few refreshes, never two at once', () => {
  it('a burst of events within the debounce window is one refresh, debounceMs after the first', async () => {
    const clock = new FakeClock();
    const r = recorder(clock);
    const s = new RefreshScheduler(r.run, clock, 75);
    for (let i = 0; i < 20; i++) {
      s.request();
      await clock.advance(3);
    }
    await clock.advance(200);
    expect(r.starts).toEqual([75]);
  });

  it('events during a refresh: exactly one more refresh after it, none overlapping', async () => {
    const clock = new FakeClock();
    const r = recorder(clock, 500);
    const s = new RefreshScheduler(r.run, clock, 50);
    s.request();
    await clock.advance(60); // the first runs from 50 to 550
    for (let i = 0; i < 10; i++) {
      s.request();
      await clock.advance(20);
    }
    await clock.advance(2000);
    expect(r.starts).toEqual([50, 600]); // 550 + the debounce
    expect(r.overlapped()).toBe(false);
  });

  it('an endpoint change (delay 0) brings a waiting refresh forward, and runs right after one in progress', async () => {
    const clock = new FakeClock();
    const r = recorder(clock, 100);
    const s = new RefreshScheduler(r.run, clock, 75);
    s.request();
    await clock.advance(10);
    s.request(0);
    await clock.advance(0);
    expect(r.starts).toEqual([10]);
    s.request(0); // during the run (10..110)
    await clock.advance(300);
    expect(r.starts).toEqual([10, 110]);
  });

  it('a steady stream of events is not starved: a refresh every window or so', async () => {
    const clock = new FakeClock();
    const r = recorder(clock, 20);
    const s = new RefreshScheduler(r.run, clock, 75);
    for (let t = 0; t < 1000; t += 10) {
      s.request();
      await clock.advance(10);
    }
    // Each cycle: 75 ms debounce + 20 ms run; 1 s of events gives about ten.
    expect(r.starts.length).toBeGreaterThanOrEqual(9);
    expect(r.starts.length).toBeLessThanOrEqual(11);
    expect(r.overlapped()).toBe(false);
  });

  it('events keep a minimum interval between refreshes; a change of the local backends (delay 0) does not wait for it', async () => {
    const clock = new FakeClock();
    const r = recorder(clock, 10);
    const s = new RefreshScheduler(r.run, clock, 50, 1000);
    for (let t = 0; t < 3000; t += 100) {
      s.request();
      await clock.advance(100);
    }
    expect(r.starts).toEqual([50, 1050, 2050]);
    await clock.advance(1000);
    s.request();
    s.request(0);
    await clock.advance(0);
    expect(r.starts.at(-1)).toBe(4000);
  });

  it('a failed refresh does not stop later ones', async () => {
    const clock = new FakeClock();
    const r = recorder(clock, 0, true);
    const s = new RefreshScheduler(r.run, clock, 10);
    s.request();
    await clock.advance(50);
    s.request();
    await clock.advance(50);
    expect(r.starts).toEqual([10, 60]);
  });

  it('after stop() nothing runs, and idle() resolves once the run in progress ends', async () => {
    const clock = new FakeClock();
    const r = recorder(clock, 100);
    const s = new RefreshScheduler(r.run, clock, 10);
    s.request();
    await clock.advance(20); // running until 110
    s.request();
    let idle = false;
    void s.idle().then(() => { idle = true; });
    s.stop();
    s.request();
    await clock.advance(50);
    expect(idle).toBe(false);
    await clock.advance(500);
    expect(idle).toBe(true);
    expect(r.starts).toEqual([10]);
    expect(clock.pendingTimers).toBe(0);
  });
});
