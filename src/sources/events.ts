// Kubernetes Events about objects the proxy rejected, so `kubectl describe
// service` shows why a Service is not programmed, next to the log line and
// bpfproxy_rejected_objects_total.
//
// Shaped like client-go's events.k8s.io/v1 recorder (tools/events), which is
// what kube-proxy uses:
// - The same occurrence (object, reason, note) within SERIES_WINDOW_MS is one
//   Event whose `series.count` is patched, not a new Event each time: a
//   Service rejected on every watch update or re-list makes one Event.
// - record() never waits: it counts the occurrence and queues the Event;
//   one request at a time goes out, paced by a token bucket (a burst, then a
//   steady rate). The queue and the table of known Events are bounded; what
//   does not fit is dropped and counted, never held.
// - A series is patched at most once per patchIntervalMs (client-go patches
//   it every 30 min; ours is shorter so the count someone reads is current).
// - The object's uid is looked up when its Event is created (kubectl describe
//   finds Events by the object's uid); an object already gone gets none.
import { clip } from '../util/clip.js';
import { realClock, type Clock, type TimerHandle } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import type { ObjectKind } from './types.js';

/** The object an Event is about. */
export interface EventObject {
  kind: ObjectKind;
  /** Absent for cluster-scoped kinds (Node). */
  namespace?: string;
  name: string;
}

export interface ObjectIdentity {
  uid?: string;
  resourceVersion?: string;
}

export interface EventOccurrence {
  type: 'Normal' | 'Warning';
  /** CamelCase, machine-readable: why. */
  reason: string;
  /** What was being done when it happened. */
  action: string;
  /** For people; clipped to the API's limit. */
  note: string;
}

/** An events.k8s.io/v1 Event as sent to the API server. */
export interface EventBody {
  apiVersion: 'events.k8s.io/v1';
  kind: 'Event';
  metadata: { name: string; namespace: string };
  eventTime: string;
  series?: EventSeries;
  reportingController: string;
  reportingInstance: string;
  action: string;
  reason: string;
  note: string;
  type: string;
  regarding: { apiVersion: string; kind: string; namespace?: string; name: string; uid?: string; resourceVersion?: string };
}

export interface EventSeries {
  count: number;
  lastObservedTime: string;
}

/** Where Events go: the API server (event-sink.ts), or a test's recorder. */
export interface EventSink {
  /** The object's uid and resourceVersion; null when it no longer exists. */
  lookup(obj: EventObject): Promise<ObjectIdentity | null>;
  create(event: EventBody): Promise<void>;
  /** Rejects with an error whose `status` is 404 when the Event is gone (expired). */
  patchSeries(namespace: string, name: string, series: EventSeries): Promise<void>;
  /** Ends the requests in flight (stop() must not wait out a dead API server's timeout). */
  close?(): void;
}

export interface EventRecorderOptions {
  /** reportingController: who reports. */
  controller: string;
  /** reportingInstance: which instance of it (the node name). */
  instance: string;
  sink: EventSink;
  log: Logger;
  clock?: Clock;
  /** Occurrences waiting to be written; more are dropped. Default 256. */
  maxQueued?: number;
  /** Series remembered for patching; the least recently seen is forgotten first. Default 4096. */
  maxKnown?: number;
  /** Requests allowed at once after a quiet period. Default 25. */
  burst?: number;
  /** One more request allowed every refillMs. Default 1000. */
  refillMs?: number;
  /** The shortest time between two patches of one series. Default 10 s. */
  patchIntervalMs?: number;
}

/** client-go's: an occurrence later than this after the last one starts a new Event. */
export const SERIES_WINDOW_MS = 6 * 60_000;
/** The API server refuses a longer note (events.k8s.io/v1 validation, in bytes). */
export const NOTE_MAX_BYTES = 1024;
/** reportingInstance, reason and action are limited to 128 characters. */
const FIELD_MAX = 128;
const DROP_LOG_INTERVAL_MS = 60_000;

const API_VERSIONS: Record<ObjectKind, string> = { Service: 'v1', EndpointSlice: 'discovery.k8s.io/v1', Node: 'v1' };

interface Series {
  key: string;
  obj: EventObject;
  what: EventOccurrence;
  firstAt: number;
  lastAt: number;
  count: number;
  /** The count the API server has; 0 before the Event exists. */
  written: number;
  /** The Event's name once created. */
  name?: string;
  lastWriteAt: number;
  queued: boolean;
}

export interface EventRecorderStats {
  created: number;
  patched: number;
  /** Occurrences not written: queue full, or the write failed. */
  dropped: number;
}

export class EventRecorder {
  readonly stats: EventRecorderStats = { created: 0, patched: 0, dropped: 0 };
  private readonly clock: Clock;
  private readonly maxQueued: number;
  private readonly maxKnown: number;
  private readonly burst: number;
  private readonly refillMs: number;
  private readonly patchIntervalMs: number;
  /** Every series seen, least recently seen first. */
  private readonly known = new Map<string, Series>();
  /** Series with something to write, in arrival order. */
  private readonly queue = new Set<Series>();
  private tokens: number;
  private tokensAt: number;
  private timer: TimerHandle | null = null;
  private writing: Promise<void> | null = null;
  private stopped = false;
  private lastDropLog = -Infinity;
  private seq = 0;

  constructor(private readonly opts: EventRecorderOptions) {
    this.clock = opts.clock ?? realClock;
    this.maxQueued = opts.maxQueued ?? 256;
    this.maxKnown = opts.maxKnown ?? 4096;
    this.burst = opts.burst ?? 25;
    this.refillMs = opts.refillMs ?? 1000;
    this.patchIntervalMs = opts.patchIntervalMs ?? 10_000;
    this.tokens = this.burst;
    this.tokensAt = this.clock.now();
  }

  /** Counts one occurrence and queues its Event. Returns at once. */
  record(obj: EventObject, what: EventOccurrence): void {
    if (this.stopped) return;
    const now = this.clock.now();
    const key = `${obj.kind}\0${obj.namespace ?? ''}\0${obj.name}\0${what.reason}\0${what.note}`;
    let s = this.known.get(key);
    if (s && now - s.lastAt > SERIES_WINDOW_MS && !s.queued) s = undefined;
    if (s) {
      s.count++;
      s.lastAt = now;
      this.known.delete(key); // re-inserted: most recently seen last
    } else {
      s = { key, obj, what, firstAt: now, lastAt: now, count: 1, written: 0, lastWriteAt: -Infinity, queued: false };
      this.forgetOldest();
    }
    this.known.set(key, s);
    this.enqueue(s);
  }

  /** Stops writing: what is queued is dropped, a request in flight is ended (sink.close) and waited for. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) this.clock.clearTimer(this.timer);
    this.timer = null;
    this.queue.clear();
    this.opts.sink.close?.();
    await this.writing;
  }

  private forgetOldest(): void {
    for (const [key, s] of this.known) {
      if (this.known.size < this.maxKnown) return;
      this.known.delete(key);
      if (s.queued) {
        this.queue.delete(s);
        this.stats.dropped++;
      }
    }
  }

  private enqueue(s: Series): void {
    if (s.queued) return;
    if (this.queue.size >= this.maxQueued) {
      this.dropped('the event queue is full');
      return;
    }
    s.queued = true;
    this.queue.add(s);
    this.schedule();
  }

  private dropped(why: string): void {
    this.stats.dropped++;
    const now = this.clock.now();
    if (now - this.lastDropLog < DROP_LOG_INTERVAL_MS) return;
    this.lastDropLog = now;
    this.opts.log.warn({ dropped: this.stats.dropped }, `Kubernetes Event not sent: ${why}`);
  }

  /** Arms the one timer for the next write, when a token and a due series are there. */
  private schedule(): void {
    if (this.stopped || this.writing || this.timer) return;
    const now = this.clock.now();
    let due = Infinity;
    for (const s of this.queue) due = Math.min(due, this.dueAt(s));
    if (due === Infinity) return;
    const delay = Math.max(due, this.tokenAt(now)) - now;
    this.timer = this.clock.setTimer(delay, () => {
      this.timer = null;
      this.writeNext();
    });
  }

  /** A new Event is due at once; a series patch waits out patchIntervalMs. */
  private dueAt(s: Series): number {
    return s.name === undefined ? -Infinity : s.lastWriteAt + this.patchIntervalMs;
  }

  /** When the bucket next holds a whole token. */
  private tokenAt(now: number): number {
    this.refill(now);
    return this.tokens >= 1 ? now : this.tokensAt + (1 - this.tokens) * this.refillMs;
  }

  private refill(now: number): void {
    this.tokens = Math.min(this.burst, this.tokens + (now - this.tokensAt) / this.refillMs);
    this.tokensAt = now;
  }

  private writeNext(): void {
    if (this.stopped) return;
    const now = this.clock.now();
    let next: Series | undefined;
    for (const s of this.queue) {
      if (this.dueAt(s) <= now) {
        next = s;
        break;
      }
    }
    this.refill(now);
    if (!next || this.tokens < 1) return this.schedule();
    this.tokens -= 1;
    this.queue.delete(next);
    next.queued = false;
    const s = next;
    this.writing = this.write(s)
      .catch((err: unknown) => {
        // Events are best effort, as in client-go: the log line and the metric already said it.
        // A series whose Event exists keeps it (the next occurrence patches again);
        // one that could not be created starts afresh with its next occurrence.
        if (s.name === undefined) this.known.delete(s.key);
        else s.written = s.count;
        this.dropped(describe(err));
      })
      .finally(() => {
        this.writing = null;
        // Occurrences counted while the request was out.
        if (!this.stopped && this.known.get(s.key) === s && s.count > s.written) this.enqueue(s);
        this.schedule();
      });
  }

  private async write(s: Series): Promise<void> {
    const count = s.count;
    const series = count > 1 ? { count, lastObservedTime: microTime(s.lastAt) } : undefined;
    if (s.name !== undefined) {
      try {
        await this.opts.sink.patchSeries(eventNamespace(s.obj), s.name, series ?? { count, lastObservedTime: microTime(s.lastAt) });
        this.stats.patched++;
        s.written = count;
        s.lastWriteAt = this.clock.now();
        return;
      } catch (err) {
        if ((err as { status?: number }).status !== 404) throw err;
        // Expired on the server (Events live an hour): the series starts again.
        s.name = undefined;
      }
    }
    const identity = await this.opts.sink.lookup(s.obj);
    if (!identity) {
      this.known.delete(s.key); // the object is gone: nothing to say about it
      return;
    }
    const name = eventName(s.obj.name, this.clock.now(), ++this.seq);
    await this.opts.sink.create(this.body(s, name, identity, series));
    this.stats.created++;
    s.name = name;
    s.written = count;
    s.lastWriteAt = this.clock.now();
  }

  private body(s: Series, name: string, id: ObjectIdentity, series: EventSeries | undefined): EventBody {
    const { obj, what } = s;
    return {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { name, namespace: eventNamespace(obj) },
      eventTime: microTime(s.firstAt),
      ...(series ? { series } : {}),
      reportingController: this.opts.controller,
      reportingInstance: this.opts.instance.slice(0, FIELD_MAX),
      action: what.action.slice(0, FIELD_MAX),
      reason: what.reason.slice(0, FIELD_MAX),
      note: fitNote(what.note),
      type: what.type,
      regarding: {
        apiVersion: API_VERSIONS[obj.kind],
        kind: obj.kind,
        ...(obj.namespace ? { namespace: obj.namespace } : {}),
        name: obj.name,
        ...(id.uid ? { uid: id.uid } : {}),
        ...(id.resourceVersion ? { resourceVersion: id.resourceVersion } : {}),
      },
    };
  }
}

/** Cluster-scoped objects' Events live in "default", as client-go puts them. */
export function eventNamespace(obj: EventObject): string {
  return obj.namespace || 'default';
}

/** client-go's naming (object name, a dot, a hex timestamp), kept within a DNS subdomain's 253 characters. */
function eventName(objectName: string, nowMs: number, seq: number): string {
  const suffix = (BigInt(Math.floor(nowMs)) * 1_000_000n + BigInt(seq % 1_000_000)).toString(16);
  return `${objectName.slice(0, 253 - 1 - suffix.length).replace(/[.-]+$/, '')}.${suffix}`;
}

/** metav1.MicroTime: RFC 3339 with exactly six fractional digits (the API server parses that layout). */
export function microTime(ms: number): string {
  const iso = new Date(Math.floor(ms)).toISOString(); // ...T10:00:00.123Z
  const micros = String(Math.floor((ms % 1) * 1000)).padStart(3, '0');
  return `${iso.slice(0, -1)}${micros}Z`;
}

/** Clipped as log lines clip outside text, then to the API's byte limit. */
export function fitNote(note: string): string {
  // The marker clip() appends takes under 64 bytes; multi-byte text needs a shorter cut.
  let budget = NOTE_MAX_BYTES - 64;
  let out = clip(note, budget);
  while (Buffer.byteLength(out) > NOTE_MAX_BYTES) out = clip(note, (budget = Math.floor(budget * 0.8)));
  return out;
}

function describe(err: unknown): string {
  const status = (err as { status?: number }).status;
  const message = err instanceof Error ? err.message : String(err);
  return status ? `${message} (HTTP ${status})` : message;
}
