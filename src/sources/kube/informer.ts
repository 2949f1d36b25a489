// List, then watch from the list's resourceVersion, forever: client-go's
// reflector, cut down to what the proxy needs.
// 1. A list is paginated (list.ts); each object whose resourceVersion differs
//    from the one last delivered is delivered as an upsert, page by page; once
//    the whole list is in, the objects it no longer holds are deleted. Only a
//    complete list deletes: an unreachable API server never empties the proxy.
// 2. The watch starts at the list's resourceVersion with bookmarks, and every
//    event (bookmarks included) moves the resume point, so a watch that ends
//    resumes where it stopped without re-listing.
// 3. 410 Gone (an HTTP status or an ERROR event, on a watch or a continued
//    list page) means the resume point is no longer kept: re-list at once
//    (after the backoff if the watch came straight from a list).
// 4. Any other failure (connection refused or reset, a 5xx, a silent socket)
//    is retried after a backoff, doubling from retry.initialMs to
//    retry.maxMs, and reset by a watch that stayed open for a second. A
//    watch that the server ended cleanly is resumed at once, unless it ended
//    within a second of opening (a server ending every watch at once would
//    otherwise be hammered: a test showed 19 watches a second).
// 5. Only identities and resourceVersions are kept (key -> version), never
//    the objects: the model keeps the one normalized copy. The key string is
//    the one handed to the handlers, so the model's copy of it is this one.
// 6. stop() aborts the open request and resolves once the loop has ended.
import { isGone } from '../api-request.js';
import type { KubeObject } from '../types.js';
import type { ApiConnection } from './connection.js';
import type { Collection } from './collection.js';
import { listPaged } from './list.js';
import { watchOnce } from './watch.js';
import type { WatchEvent } from './watch-stream.js';

export interface InformerHandlers {
  /** The object's identity ("namespace/name", or "name"); undefined: not deliverable (no name). */
  keyOf(obj: KubeObject): string | undefined;
  /** An object added, or changed since it was last delivered. */
  upsert(key: string, obj: KubeObject): void;
  /** The object of this identity is gone. */
  remove(key: string): void;
  /** An object without an identity, not delivered. */
  nameless(): void;
  /** A complete list has been delivered (its upserts and deletes). */
  listed(): void;
  /** A list or watch failed; the next attempt is in `retryInMs`. */
  failed(err: unknown, retryInMs: number): void;
  /** A watch event that could not be used. */
  malformed(problem: string): void;
}

export interface InformerOptions {
  retry: { initialMs: number; maxMs: number };
  pageSize?: number;
  /** The server-side timeout of each watch, in seconds; default 5-10 minutes at random. */
  watchTimeoutSeconds?: () => number;
}

/** A watch shorter than this that ends cleanly counts as a failure for the backoff. */
const SHORTEST_HEALTHY_WATCH_MS = 1000;

export class Informer {
  /** key -> resourceVersion last delivered (a number when it is one, as it is on every API server today: smaller). */
  private readonly versions = new Map<string, number | string>();
  private resourceVersion = '';
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private retryMs: number;

  constructor(
    private readonly conn: ApiConnection,
    private readonly collection: Collection,
    private readonly handlers: InformerHandlers,
    private readonly opts: InformerOptions,
  ) {
    this.retryMs = opts.retry.initialMs;
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted) {
      let listedNow = false;
      try {
        if (this.resourceVersion === '') {
          await this.list();
          listedNow = true;
        }
        let openedAt: number | undefined;
        try {
          await watchOnce(this.conn, this.collection, {
            resourceVersion: this.resourceVersion,
            timeoutSeconds: this.opts.watchTimeoutSeconds?.() ?? 300 + Math.floor(Math.random() * 300),
            signal,
            onOpen: () => (openedAt = performance.now()),
          }, (ev) => this.apply(ev));
        } finally {
          // Only a watch that stayed open a while proves the server healthy.
          if (openedAt !== undefined && performance.now() - openedAt >= SHORTEST_HEALTHY_WATCH_MS) this.retryMs = this.opts.retry.initialMs;
        }
        if (openedAt === undefined || performance.now() - openedAt < SHORTEST_HEALTHY_WATCH_MS) await this.backoff(undefined);
      } catch (err) {
        if (signal.aborted) break;
        if (isGone(err) && this.resourceVersion !== '') {
          this.resourceVersion = '';
          // Too old already, from a list just made: re-listing at once would loop.
          if (listedNow) await this.backoff(err);
          continue;
        }
        await this.backoff(err);
      }
    }
  }

  private async list(): Promise<void> {
    const seen = new Set<string>();
    const rv = await listPaged(this.conn, this.collection, { signal: this.abort.signal, ...(this.opts.pageSize !== undefined && { pageSize: this.opts.pageSize }) }, (items) => {
      for (const obj of items) {
        const key = this.handlers.keyOf(obj);
        if (key === undefined) {
          this.handlers.nameless();
          continue;
        }
        seen.add(key);
        const version = compactVersion(obj.metadata?.resourceVersion);
        if (version !== '' && this.versions.get(key) === version) continue;
        this.versions.set(key, version);
        this.handlers.upsert(key, obj);
      }
    });
    for (const key of [...this.versions.keys()]) {
      if (seen.has(key)) continue;
      this.versions.delete(key);
      this.handlers.remove(key);
    }
    this.resourceVersion = rv;
    this.handlers.listed();
  }

  private apply(ev: WatchEvent): void {
    if (ev.type === 'MALFORMED') return this.handlers.malformed(ev.problem);
    if (ev.type === 'ERROR') return; // watchOnce ends the watch with it
    if (ev.type === 'BOOKMARK') {
      this.resourceVersion = ev.resourceVersion;
      return;
    }
    const obj = ev.object;
    const rv = obj.metadata?.resourceVersion;
    if (typeof rv === 'string' && rv !== '') this.resourceVersion = rv;
    const key = this.handlers.keyOf(obj);
    if (key === undefined) return this.handlers.nameless();
    if (ev.type === 'DELETED') {
      this.versions.delete(key);
      this.handlers.remove(key);
    } else {
      this.versions.set(key, compactVersion(rv));
      this.handlers.upsert(key, obj);
    }
  }

  /** Waits out the current delay (doubling it), unless stopped first. */
  private async backoff(err: unknown): Promise<void> {
    const delay = this.retryMs;
    this.retryMs = Math.min(delay * 2, this.opts.retry.maxMs);
    if (err !== undefined) this.handlers.failed(err, delay);
    await abortableSleep(delay, this.abort.signal);
  }
}

/** A resourceVersion as a small integer where it is the decimal form of one, else as it is. */
function compactVersion(rv: unknown): number | string {
  if (typeof rv !== 'string') return '';
  const n = Number(rv);
  return Number.isSafeInteger(n) && String(n) === rv ? n : rv;
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}
