// Records a source's events and lets a test wait for one, with a bound, instead of sleeping.
import type { KubeObject, ObjectKind, SourceEvent, SourceListener } from '../../../src/sources/types.js';

interface Waiter {
  check: () => boolean;
}

export class EventLog {
  readonly events: SourceEvent[] = [];
  private readonly waiters = new Set<Waiter>();

  readonly listener: SourceListener = (ev) => {
    this.events.push(ev);
    for (const w of [...this.waiters]) w.check();
  };

  /** A position to look for events after. */
  mark(): number {
    return this.events.length;
  }

  since(mark: number): SourceEvent[] {
    return this.events.slice(mark);
  }

  /** Resolves with the first event at or after `from` that matches; rejects after `timeoutMs`. */
  next(pred: (ev: SourceEvent) => boolean, what: string, from = 0, timeoutMs = 5000): Promise<SourceEvent> {
    let found: SourceEvent | undefined;
    return this.until(
      () => {
        found = this.events.slice(from).find(pred);
        return found !== undefined;
      },
      what,
      timeoutMs,
    ).then(() => found!);
  }

  /** Resolves once `cond` holds (checked now and after every event); rejects after `timeoutMs`. */
  until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; events:\n${this.describe()}`));
      }, timeoutMs);
      const waiter: Waiter = {
        check: () => {
          if (!cond()) return false;
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve();
          return true;
        },
      };
      if (!waiter.check()) this.waiters.add(waiter);
    });
  }

  /** The objects the events describe, replayed: "Kind key" -> object. */
  state(): Map<string, KubeObject> {
    const m = new Map<string, KubeObject>();
    for (const ev of this.events) {
      if (ev.type === 'upsert') m.set(`${ev.kind} ${ev.key}`, ev.object);
      else if (ev.type === 'delete') m.delete(`${ev.kind} ${ev.key}`);
    }
    return m;
  }

  describe(from = 0): string {
    return this.events
      .slice(from)
      .map((ev) => `  ${summary(ev)}`)
      .join('\n');
  }
}

/** "upsert Service default/a", "delete Node n1", "synced", "invalid <origin>: <reason>". */
export function summary(ev: SourceEvent): string {
  switch (ev.type) {
    case 'upsert':
    case 'delete':
      return `${ev.type} ${ev.kind} ${ev.key}`;
    case 'synced':
      return 'synced';
    case 'invalid':
      return `invalid ${ev.origin}: ${ev.reason}`;
  }
}

export const isUpsert = (kind: ObjectKind, key: string) => (ev: SourceEvent) =>
  ev.type === 'upsert' && ev.kind === kind && ev.key === key;

export const isDelete = (kind: ObjectKind, key: string) => (ev: SourceEvent) =>
  ev.type === 'delete' && ev.kind === kind && ev.key === key;

/** Polls `cond` every 10 ms until it holds; rejects after `timeoutMs` (for state outside the event stream). */
export async function eventually(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Kinds of handles a source could leak: sockets, servers, directory watches, timers. */
const LEAKABLE = new Set(['TCPSocketWrap', 'TCPServerWrap', 'FSEventWrap', 'Timeout', 'Immediate']);

/** Counts of leakable handles now, to compare with after a test. */
export function openHandles(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) if (LEAKABLE.has(r)) counts[r] = (counts[r] ?? 0) + 1;
  return counts;
}

/** Waits (bounded) until no more leakable handles are open than in `baseline`; sockets close a tick after stop(). */
export async function expectNoLeaks(baseline: Record<string, number>): Promise<void> {
  const excess = () =>
    Object.entries(openHandles())
      .filter(([k, n]) => n > (baseline[k] ?? 0))
      .map(([k, n]) => `${k}: ${n} (was ${baseline[k] ?? 0})`);
  try {
    await eventually(() => excess().length === 0, 'handles to close', 2000);
  } catch {
    throw new Error(`handles left open: ${excess().join(', ')}`);
  }
}
