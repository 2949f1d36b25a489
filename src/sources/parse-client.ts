// The main thread's side of the parse worker (parse-worker.ts): one worker,
// started on first use, one request at a time, each bounded in time. A worker
// that runs out of its capped heap, crashes or overruns the time bound is
// ended and replaced; the file it was parsing is reported unreadable and keeps
// its last good state. The event loop only ever waits on a message.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { InputLimits } from '../util/input-limits.js';
import { PACKAGE_ROOT } from '../util/paths.js';
import type { Definition, ParsedManifest } from './manifest-parse.js';

export interface ParseRequest {
  id: number;
  path: string;
  bytes: Uint8Array;
  previous: readonly Definition[];
  limits: InputLimits;
}

export interface ParseResponse {
  id: number;
  result: ParsedManifest;
}

/** What the worker posts once its modules are loaded and it listens. */
export interface WorkerReady {
  ready: true;
}

/** Longest parse of one file; files within the limits parse in well under a second. */
export const PARSE_TIMEOUT_MS = 10_000;
/** The worker's heap: room for a file at the byte limit, far below the proxy's. */
const WORKER_HEAP_MB = 512;

/** The built worker: beside this file in dist/, or dist/ when running from the TypeScript sources (tests after `make build`). */
function workerScript(): string {
  const here = fileURLToPath(import.meta.url);
  const path = here.endsWith('.js') ? join(dirname(here), 'parse-worker.js') : join(PACKAGE_ROOT, 'dist', 'sources', 'parse-worker.js');
  if (!existsSync(path)) throw new Error(`the manifest parse worker ${path} is missing: build first (make build)`);
  return path;
}

export class ParseClient {
  private worker: Worker | null = null;
  /** Resolves true once the current worker has loaded (its WorkerReady), false if it ended first. */
  private ready: Promise<boolean> | null = null;
  private nextId = 1;
  private pending: { id: number; done: (r: ParsedManifest) => void; timer: NodeJS.Timeout } | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly timeoutMs = PARSE_TIMEOUT_MS) {}

  /** Parses one file's bytes in the worker. Never rejects: a failure is a result with its reason. */
  parse(path: string, bytes: Buffer, previous: readonly Definition[], limits: InputLimits): Promise<ParsedManifest> {
    const run = this.queue.then(() => this.runOne(path, bytes, previous, limits));
    this.queue = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.queue;
    await this.endWorker();
  }

  private runOne(path: string, bytes: Buffer, previous: readonly Definition[], limits: InputLimits): Promise<ParsedManifest> {
    if (this.closed) return Promise.resolve({ ok: false, reason: 'not parsed: the source is stopping' });
    let worker: Worker;
    try {
      worker = this.ensureWorker();
    } catch (err) {
      return Promise.resolve({ ok: false, reason: `not parsed: ${(err as Error).message}` });
    }
    // The time bound starts once the worker has loaded its modules: starting a worker is no parse, and
    // took over 10 s in a TCG guest on a loaded machine (docs/vm.md), which failed every file in turn.
    return this.ready!.then((started) => (!started ? { ok: false, reason: 'not read: the parse worker exited' } : new Promise((resolve) => {
      const id = this.nextId++;
      const timer = setTimeout(() => {
        this.finish({ ok: false, reason: `not read: parsing took longer than ${this.timeoutMs / 1000} s (the parse was stopped)` });
        void this.endWorker();
      }, this.timeoutMs);
      this.pending = { id, done: resolve, timer };
      const req: ParseRequest = { id, path, bytes, previous, limits };
      worker.postMessage(req);
    })));
  }

  private finish(result: ParsedManifest, id?: number): void {
    const p = this.pending;
    if (!p || (id !== undefined && id !== p.id)) return;
    this.pending = null;
    clearTimeout(p.timer);
    p.done(result);
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(workerScript(), { resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB } });
    let started: (ok: boolean) => void = () => undefined;
    this.ready = new Promise((r) => { started = r; });
    w.on('message', (res: ParseResponse | WorkerReady) => ('ready' in res ? started(true) : this.finish(res.result, res.id)));
    w.on('error', (err: Error & { code?: string }) => {
      started(false);
      const why = err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? `the parse ran out of its ${WORKER_HEAP_MB} MB heap` : `the parse worker failed: ${err.message}`;
      this.finish({ ok: false, reason: `not read: ${why}` });
    });
    w.on('exit', () => {
      started(false);
      if (this.worker === w) this.worker = null;
      this.finish({ ok: false, reason: 'not read: the parse worker exited' });
    });
    this.worker = w;
    return w;
  }

  private async endWorker(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    if (w) await w.terminate();
  }
}
