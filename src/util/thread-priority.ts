// The event loop ahead of the process's own helper threads.
//
// Every thread a Node process has before its main module runs, other than
// the main thread, is Node's: V8's platform workers (concurrent JIT
// compilation, concurrent marking and sweeping), its delayed-task thread,
// and libuv's pool (fs and DNS). On a small node they compete with the event
// loop for the same cores, and the scheduler lets a woken helper preempt it.
// Measured with bpftrace on sched_switch during bench/modes.ts's 1,000
// endpoint changes (one every 4 ms) on this 2-core machine: 59 of the 72
// changes slower than 1 ms had the main thread runnable but preempted for
// 1-8 ms, each time by one of V8's four platform workers. Raising the main
// thread (nice -5, -10) left 61 and 45 slow changes; the helpers at nice +10
// about 45 (p99 at 10,000 services 0.95 -> 0.62 ms); the helpers under
// SCHED_IDLE, which never preempts a normal thread, 4-5, and p99 0.46-0.70 ms
// at 10, 1,000 and 10,000 services (was 3.3, 2.5 and 0.95 ms).
//
// SCHED_IDLE threads still run, at the least weight, when the cores are
// busy: V8 then does more of its GC and compilation on the main thread, and
// the pool's file writes and name lookups wait their turn; none of them is
// on the path from an event to the datapath. Only threads that exist at
// start are changed: the process's own workers (the API parser, the off-loop
// command runner) are made later, by the main thread, and keep its policy,
// since they are on that path. Lowering one's own threads needs no privilege.
import { readdirSync } from 'node:fs';
import koffi from 'koffi';
import type { Logger } from './log.js';

/** sched.h */
const SCHED_IDLE = 5;

export interface HelperDemotion {
  /** Threads moved to SCHED_IDLE. */
  lowered: number;
  /** Threads that could not be, with why (a thread that ended since the listing is not one). */
  failed: { tid: number; error: string }[];
}

type SetScheduler = (pid: number, policy: number, param: Buffer) => number;
let setSchedulerFn: SetScheduler | null = null;

/** sched_setscheduler(tid, SCHED_IDLE): 0, or the errno. */
function schedIdle(tid: number): number {
  setSchedulerFn ??= koffi.load('libc.so.6').func('int sched_setscheduler(int pid, int policy, void *param)') as SetScheduler;
  const param = Buffer.alloc(4); // struct sched_param { int sched_priority; }: 0 for SCHED_IDLE
  return setSchedulerFn(tid, SCHED_IDLE, param) === 0 ? 0 : koffi.errno();
}

const ESRCH = 3;

/**
 * Moves every thread of this process but the main one to SCHED_IDLE. Call
 * once, at the start of main, before any Worker is made. `tasks` and `set`
 * are for tests.
 */
export function demoteHelperThreads(
  tasks: () => number[] = () => readdirSync('/proc/self/task').map(Number),
  set: (tid: number) => number = schedIdle,
): HelperDemotion {
  const out: HelperDemotion = { lowered: 0, failed: [] };
  for (const tid of tasks()) {
    if (tid === process.pid) continue;
    const errno = set(tid);
    if (errno === 0) out.lowered++;
    else if (errno !== ESRCH) out.failed.push({ tid, error: `sched_setscheduler: errno ${errno}` });
  }
  return out;
}

/** demoteHelperThreads at the proxy's start, with one log line. */
export function demoteHelperThreadsLogged(log: Logger): HelperDemotion {
  let r: HelperDemotion;
  try {
    r = demoteHelperThreads();
  } catch (err) {
    // No /proc, no libc: the helpers keep the event loop's priority, as any Node process's do.
    log.warn({ err }, 'cannot move Node\'s helper threads below the event loop');
    return { lowered: 0, failed: [] };
  }
  log[r.failed.length > 0 ? 'warn' : 'info']({ lowered: r.lowered, failed: r.failed.length > 0 ? r.failed : undefined },
    'Node\'s helper threads (V8\'s compilers and GC, libuv\'s pool) run as SCHED_IDLE, below the event loop');
  return r;
}
