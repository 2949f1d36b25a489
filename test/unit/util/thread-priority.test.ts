// The event loop ahead of Node's helper threads (src/util/thread-priority.ts).
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { demoteHelperThreads } from '../../../src/util/thread-priority.js';

const ROOT = new URL('../../../', import.meta.url).pathname;

describe('demoteHelperThreads', () => {
  it('moves every thread but the main one, skips threads that ended, and reports refusals', () => {
    const seen: number[] = [];
    const r = demoteHelperThreads(() => [process.pid, 11, 12, 13], (tid) => {
      seen.push(tid);
      return tid === 12 ? 3 /* ESRCH */ : tid === 13 ? 1 /* EPERM */ : 0;
    });
    expect(seen).toEqual([11, 12, 13]);
    expect(r).toEqual({ lowered: 1, failed: [{ tid: 13, error: 'sched_setscheduler: errno 1' }] });
  });

  it('in a real Node process: the helpers that exist at start end up SCHED_IDLE, the main thread and a Worker made afterwards stay SCHED_OTHER', () => {
    // A child of its own, so that this test runner's threads are left alone; the built module (make build).
    const script = `
      import { readdirSync, readFileSync } from 'node:fs';
      import { Worker } from 'node:worker_threads';
      const { demoteHelperThreads } = await import(${JSON.stringify(`${ROOT}dist/util/thread-priority.js`)});
      const policy = (tid) => Number(/^policy\\s*:\\s*(\\d+)/m.exec(readFileSync('/proc/self/task/' + tid + '/sched', 'utf8'))[1]);
      const before = new Set(readdirSync('/proc/self/task').map(Number));
      const r = demoteHelperThreads();
      const w = new Worker('setTimeout(() => {}, 5000)', { eval: true });
      await new Promise((res) => w.once('online', res));
      const all = readdirSync('/proc/self/task').map(Number);
      const out = { r, main: policy(process.pid), helpers: [...before].filter((t) => t !== process.pid && all.includes(t)).map(policy),
        later: all.filter((t) => !before.has(t)).map(policy) };
      await w.terminate();
      console.log(JSON.stringify(out));`;
    const res = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', cwd: ROOT, timeout: 60_000 });
    expect(res.status, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout.trim().split('\n').pop()!) as { r: { lowered: number; failed: unknown[] }; main: number; helpers: number[]; later: number[] };
    expect(out.r.failed).toEqual([]);
    expect(out.r.lowered).toBeGreaterThanOrEqual(4); // V8's platform workers at least
    expect(out.main).toBe(0); // SCHED_OTHER
    expect(out.helpers.length).toBeGreaterThanOrEqual(4);
    expect(out.helpers.every((p) => p === 5)).toBe(true); // SCHED_IDLE
    expect(out.later.length).toBeGreaterThan(0);
    expect(out.later.every((p) => p === 0)).toBe(true);
  }, 60_000);
});
