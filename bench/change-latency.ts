// One endpoint change, event to datapath, as a running bpf proxy sees it
// (bench/modes.ts step 2). What the old loop missed, and this one counts:
// - events arrive from outside the event loop, open loop: a worker thread
//   (standing in for the watch socket) sends event k at its own pace, so an
//   event that lands while the loop is busy (a garbage collection, a timer's
//   work, the state file) waits, and that wait is part of its latency. A
//   closed loop (start a change when the last one ended) never sees it;
// - the proxy's path: the event is applied as the proxy's onEvent does
//   (model upsert, runner.run()), the bounded-frequency runner
//   (src/runtime/runner.ts, min interval 0) plans and syncs on the next
//   turn, and the state-file writer (src/dataplane/state-file.ts) records
//   each sync and writes on its own timers, as in the proxy;
// - latency runs from the worker's send (process.hrtime: one clock for
//   every thread) to the end of the sync that covered the event. Events
//   that land in one turn are covered by one sync, as in the proxy.
// Each slow change is attributed (causes()): a garbage collection, a
// state-file write or a long sync overlapping it, each with its time on the
// main thread's CPU (clock_gettime(CLOCK_THREAD_CPUTIME_ID)); time off the
// CPU after it was taken off the queue (preempted on a loaded machine); a
// late wake-up; or none of these (this code). A preempted change still
// counts: the causes explain the tail, they do not remove it.
import koffi from 'koffi';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { BoundedFrequencyRunner } from '../src/runtime/runner.js';

/** Milliseconds on the clock every thread shares (CLOCK_MONOTONIC). */
export const hrMs = (): number => Number(process.hrtime.bigint()) / 1e6;

const libc = koffi.load('libc.so.6');
const clockGettime = libc.func('int clock_gettime(int, void *)');
const CLOCK_THREAD_CPUTIME_ID = 3;
const ts = Buffer.alloc(16);
/**
 * This thread's CPU time in ms. clock_gettime through koffi (about 6 us
 * here under load): /proc/thread-self/schedstat took 160 us a read, and is
 * a scheduler tick stale for a running thread.
 */
export function threadCpuMs(): number {
  clockGettime(CLOCK_THREAD_CPUTIME_ID, ts);
  return Number(ts.readBigInt64LE(0)) * 1e3 + Number(ts.readBigInt64LE(8)) / 1e6;
}

export interface ChangeSample {
  /** Sent by the worker, taken off the queue by the main thread, end of the covering sync (hrMs). */
  sent: number;
  received: number;
  end: number;
  /** The main thread's CPU time from receipt to the end of the covering sync: what this change cost on an idle machine once taken off the queue. */
  cpuMs: number;
  /** The main thread's CPU time from the end of the sync before to this event's receipt: work between syncs that an event sent then waited for. */
  cpuBeforeMs: number;
}

export interface Interval { start: number; end: number; what: string; /** The main thread's CPU time in it. */ cpuMs?: number }

export interface ChangeRun {
  samples: ChangeSample[];
  /** Garbage collections and state-file writes during the run (hrMs), for attribution. */
  stalls: Interval[];
  /** Events sent but not covered by a sync when the budget ran out. */
  unfinished: number;
  /** The event loop's delay over the run (monitorEventLoopDelay), ms. */
  loopDelay: { p50: number; p99: number; max: number };
  syncs: number;
}

export interface ChangeOptions {
  count: number;
  warmup: number;
  paceMs: number;
  budgetMs: number;
  /** Applies event k to the model, as a source's upsert reaches the proxy. */
  apply: (k: number) => void;
  /** One sync of what is pending (checkout, plan, dataplane sync); full when the runner asks for it. */
  sync: (full: boolean) => Promise<void>;
  /** Awaited after the runner's first (full) sync, before the first event: what a running proxy did long ago. */
  settle?: () => Promise<void>;
  /** Where the caller's own stalls go (bracket()), beside the garbage collections. */
  stalls?: Interval[];
}

/** Runs fn and records its span in `stalls` as `what`: a timer's work the changes may have waited for. */
export function bracket(stalls: Interval[], what: string, fn: () => void): void {
  const start = hrMs();
  const cpu = threadCpuMs();
  try {
    fn();
  } finally {
    stalls.push({ start, end: hrMs(), what, cpuMs: threadCpuMs() - cpu });
  }
}

/** A sync at least this long is named as a cause. */
const SLOW_SYNC_MS = 1;
const GC_KIND: Record<number, string> = { 1: 'minor GC', 4: 'major GC', 8: 'incremental marking', 16: 'weak callbacks' }; // perf_hooks.constants.NODE_PERFORMANCE_GC_*

// The worker: sends {k, sent} every paceMs on its own event loop, whatever the main thread is doing.
const PACER = `
const { parentPort, workerData } = require('node:worker_threads');
const { total, paceMs } = workerData;
let k = 0;
const send = () => {
  parentPort.postMessage({ k, sent: Number(process.hrtime.bigint()) / 1e6 });
  if (++k < total) setTimeout(send, paceMs);
};
parentPort.once('message', send);
`;

/** Runs `warmup + count` paced changes through a runner; the first `warmup` are not counted (the path is compiled by then, as in a running proxy). */
export async function measureChanges(o: ChangeOptions): Promise<ChangeRun> {
  const total = o.warmup + o.count;
  const stalls: Interval[] = o.stalls ?? [];
  const perfToHr = hrMs() - performance.now();
  const gcObserver = new PerformanceObserver((list) => {
    for (const g of list.getEntries()) {
      const kind = (g as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0;
      stalls.push({ start: g.startTime + perfToHr, end: g.startTime + g.duration + perfToHr, what: GC_KIND[kind] ?? 'GC' });
    }
  });
  gcObserver.observe({ entryTypes: ['gc'] });

  const sent = new Float64Array(total);
  const received = new Float64Array(total);
  const ended = new Float64Array(total);
  const cpuAtReceipt = new Float64Array(total);
  const cpu = new Float64Array(total);
  const cpuBefore = new Float64Array(total);
  let lastSyncCpu = 0;
  let pending: number[] = [];
  let covered = 0;
  let syncs = 0;
  let allDone!: () => void;
  const done = new Promise<void>((resolve) => { allDone = resolve; });
  let firstSync!: () => void;
  const primed = new Promise<void>((resolve) => { firstSync = resolve; });

  const runner = new BoundedFrequencyRunner({
    name: 'bench', minIntervalMs: 0, maxIntervalMs: 3_600_000,
    work: async (ctx) => {
      // Events applied up to here are in this sync's checkout.
      const these = pending;
      pending = [];
      const start = hrMs();
      const cpuStart = threadCpuMs();
      await o.sync(ctx.forceFull);
      const end = hrMs();
      const cpuEnd = threadCpuMs();
      // A long sync is a stall for the changes queued behind it (and its own are slow for it).
      if (end - start >= SLOW_SYNC_MS) stalls.push({ start, end, what: 'a sync', cpuMs: cpuEnd - cpuStart });
      for (const k of these) {
        ended[k] = end;
        cpu[k] = cpuEnd - cpuAtReceipt[k]!;
      }
      lastSyncCpu = cpuEnd;
      syncs++;
      firstSync();
      covered += these.length;
      if (covered === total) allDone();
    },
  });
  const loop = monitorEventLoopDelay({ resolution: 5 });
  const worker = new Worker(PACER, { eval: true, workerData: { total, paceMs: o.paceMs } });
  let timer: NodeJS.Timeout | undefined;
  try {
    runner.start();
    runner.run(); // the runner's first run is full (nothing is known): done before anything is timed
    await primed;
    await o.settle?.();
    syncs = 0;
    lastSyncCpu = threadCpuMs();
    worker.on('message', (m: { k: number; sent: number }) => {
      received[m.k] = hrMs();
      cpuAtReceipt[m.k] = threadCpuMs();
      cpuBefore[m.k] = cpuAtReceipt[m.k]! - lastSyncCpu;
      sent[m.k] = m.sent;
      o.apply(m.k);
      pending.push(m.k);
      runner.run();
    });
    loop.enable();
    worker.postMessage('go');
    await Promise.race([done, new Promise<void>((resolve) => { timer = setTimeout(resolve, o.budgetMs); })]);
  } finally {
    clearTimeout(timer);
    loop.disable();
    await worker.terminate();
    await runner.stop();
    gcObserver.disconnect();
  }
  const samples: ChangeSample[] = [];
  for (let k = o.warmup; k < total; k++) {
    if (ended[k] === 0) continue;
    samples.push({ sent: sent[k]!, received: received[k]!, end: ended[k]!, cpuMs: cpu[k]!, cpuBeforeMs: cpuBefore[k]! });
  }
  const ms = (ns: number) => ns / 1e6;
  return {
    samples, stalls, unfinished: total - covered, syncs,
    loopDelay: { p50: ms(loop.percentile(50)), p99: ms(loop.percentile(99)), max: ms(loop.max) },
  };
}

export const latency = (s: ChangeSample): number => s.end - s.sent;

/**
 * What fell into a change: the stalls overlapping it (each with its time on
 * a CPU: a stall mostly off the CPU is the machine's load, not its code),
 * time off the CPU once the change was taken off the queue, and a late
 * wake-up (queued with nothing running: the thread waited to be scheduled).
 * Empty: none of these (this code).
 */
export function causes(s: ChangeSample, stalls: readonly Interval[], floorMs = 0.2): string[] {
  const why: string[] = [];
  let busyBeforeReceipt = false;
  for (const x of stalls) {
    if (!(x.start < s.end && x.end > s.sent)) continue;
    if (x.start < s.received) busyBeforeReceipt = true;
    why.push(`${x.what} ${(x.end - x.start).toFixed(2)} ms${x.cpuMs === undefined ? '' : ` (${x.cpuMs.toFixed(2)} on CPU)`}`);
  }
  const off = s.end - s.received - s.cpuMs;
  if (off >= floorMs) why.push(`off CPU ${off.toFixed(2)} ms`);
  // Queued with nothing instrumented running: either the thread worked on something else (its CPU time says so) or it waited to be scheduled.
  if (!busyBeforeReceipt && s.received - s.sent >= floorMs) {
    why.push(s.cpuBeforeMs >= floorMs ? `other work on the loop ${s.cpuBeforeMs.toFixed(2)} ms on CPU` : `woken ${(s.received - s.sent).toFixed(2)} ms late`);
  }
  return why;
}

/**
 * The changes over `thresholdMs`, counted by cause (a change with two
 * causes counts under each), and the slowest few with theirs.
 */
export function slowSummary(run: ChangeRun, thresholdMs: number, show = 8): string {
  const slow = run.samples.filter((s) => latency(s) >= thresholdMs).sort((a, b) => latency(b) - latency(a));
  if (slow.length === 0) return `no change took ${thresholdMs} ms or more (of ${run.samples.length})`;
  const by = new Map<string, number>();
  const each = slow.map((s) => {
    const why = causes(s, run.stalls);
    const kinds = why.length === 0 ? ['none of these'] : [...new Set(why.map((w) => w.replace(/ [\d.]+ ms.*$/, '').replace(/^(off CPU|woken|other work on the loop).*/, '$1')))];
    for (const k of kinds) by.set(k, (by.get(k) ?? 0) + 1);
    return `${latency(s).toFixed(2)} ms (${why.join(', ') || 'none of these'}; queued ${(s.received - s.sent).toFixed(2)} ms)`;
  });
  const counts = [...by].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${n} ${k}`).join(', ');
  return `${slow.length} of ${run.samples.length} changes took ${thresholdMs} ms or more (${counts}); slowest: ${each.slice(0, show).join('; ')}`;
}
