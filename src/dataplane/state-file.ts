// What the node-side commands (`bpfproxy status`, `services`, `trace`) need and
// the datapath does not hold: the pinned maps hold numbers, not names. After
// each successful sync the dataplane hands its plan here, and a small msgpack
// file records the mode and why, the last sync, and the names behind the IDs
// (service names per service ID, node and terminating state per backend ID).
// In the rule modes, which have no maps to read back, it records the plan
// itself, so `trace` can render the same rules and run the packet tracer.
//
// Where: not beside the pins. bpffs holds pins and directories, no regular
// files (pindir.ts measured it), so the file lives in STATE_DIR, keyed by the
// --bpf-fs path as the pin directory's lock is: every mode, one place, and
// two proxies with their own --bpf-fs (lab nodes) do not share a file.
//
// Cost: synced() only records (microseconds). Writes run after the sync
// returns (a timer), at most one per MIN_INTERVAL_MS and at most a tenth of
// the time (WRITE_SHARE), so an endpoint change reaches the datapath without
// waiting for this file. The names are kept encoded and brought up to date
// by what changed since the last write (state-catalog.ts: a pointer
// comparison per service, an encode per service whose names changed), and
// both that pass and the file's write run in slices of about SLICE_MS
// between turns of the event loop: an endpoint change waits for one slice at
// most. Issue 6: encoding every name again for every plan took about 220 ms
// of CPU at 30,000 x 10, and every endpoint change is a new plan.
//
// The file: three msgpack values, [header, catalog, trailer]; the trailer
// says how many bytes precede it, and a file that does not end in it is
// refused (readNodeState).
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rename, renameSync, rmSync, writevSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { unpackMultiple } from 'msgpackr';
import type { DesiredDataplane } from '../planner/types.js';
import type { CompactPlan } from './state-plan.js';
import { BACKEND_NODE_MASK, BACKEND_PRESENT, BACKEND_TERMINATING, IncrementalCatalog, packr } from './state-catalog.js';
import type { SyncResult } from './types.js';

/**
 * 2: the backends as the catalog's own tables (IDs, then node and state) and
 * a trailer after the catalog. 1 had (ID, node, terminating) triples and no
 * trailer.
 */
export const STATE_FORMAT = 2;
export const STATE_DIR = process.env.BPFPROXY_STATE_DIR ?? '/run/bpfproxy/state';
const MIN_INTERVAL_MS = 1000;
/** A write waits this many times its own duration before the next one. */
const WRITE_SHARE = 10;

/** The state file of the proxy that pins under `pinDir` (whatever its mode). */
export function statePathFor(pinDir: string, dir = STATE_DIR): string {
  return join(dir, `${encodeURIComponent(resolve(pinDir))}.msgpack`);
}

/** Removes the state files of every pin directory under `root` (a lab's bpffs directory at teardown). */
export function removeStateFilesUnder(root: string, dir = STATE_DIR): void {
  const prefix = encodeURIComponent(`${resolve(root)}/`);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) if (n.startsWith(prefix)) rmSync(join(dir, n), { force: true });
}

/** Who wrote the file and how its dataplane was chosen. */
export interface StateHeader {
  format: number;
  version: string;
  commit: string;
  pid: number;
  node: string;
  mode: string;
  /** "--proxy-mode bpf", or the fallback and what made it necessary. */
  reason: string;
  pinDir: string;
  sync: {
    /** Wall-clock time the last successful sync finished (ms since the epoch). */
    at: number;
    /** How long it took (the dataplane's part), in ms. */
    ms: number;
    full: boolean;
    /** The plan's generation it applied. */
    generation: number;
    upserts: number;
    deletes: number;
    /** Services that kept their previous state (a full map, ...). */
    failed: number;
  };
  counts: { services: number; frontends: number; backends: number };
}

/** The names behind the IDs, as a reader gets them (state-catalog.ts keeps them up to date). */
export interface StateCatalog {
  /** [service ID, namespace, name, port name, loadBalancerSourceRanges] per planned service. */
  services: [number, string, string, string, string[]][];
  /** Node names, indexed by `backends`. */
  nodes: string[];
  /**
   * Two tables of n little-endian u32, one after the other (the writer's
   * own, written as they are: state-catalog.ts): backend IDs, then per
   * backend BACKEND_PRESENT | BACKEND_TERMINATING when terminating | 1 +
   * index into `nodes` (0: unknown). An entry without BACKEND_PRESENT is a
   * free slot: skip it.
   */
  backends: Uint8Array;
  /** Rule modes: the plan as applied and the renderer's settings, for `trace` (state-plan.ts). */
  plan?: CompactPlan;
}

export interface NodeState extends StateHeader {
  catalog: StateCatalog;
}

/** What the process says about itself: set once at start (cli/main.ts). */
const processInfo = { version: 'unknown', commit: 'unknown' };
export function describeProcess(version: string, commit: string): void {
  processInfo.version = version;
  processInfo.commit = commit;
}

/** How long one slice of the writer's work (the catalog's pass, the file's write) may hold the event loop. */
const SLICE_MS = 1;
/** Bytes handed to one writev(): about 0.1-0.4 ms into the page cache on this machine, so a slice checks the clock between them. */
const WRITE_BATCH_BYTES = 128 * 1024;
/** writev() takes at most IOV_MAX (1024) buffers at once. */
const WRITE_BATCH_PARTS = 1024;
/**
 * The last value of a file: [END_MARK, the byte length of what precedes
 * it]. Files are written to a temporary name and renamed, so a reader never
 * meets a half-written one; the trailer makes sure of it anyway (a copied,
 * truncated or concatenated file): a file that does not end in it, exactly,
 * is refused.
 */
const END_MARK = 'bpfproxy-state-end';

export { encodeCatalog, IncrementalCatalog } from './state-catalog.js';

export function encodeHeader(h: StateHeader): Buffer {
  return packr.pack(h);
}

/** The trailer after `bytes` bytes of header and catalog. */
function trailer(bytes: number): Buffer {
  return packr.pack([END_MARK, bytes]);
}

/**
 * A file at least this big is renamed into place on libuv's threadpool:
 * renaming over an existing file on ext4 flushes the new file's delayed
 * allocation first (auto_da_alloc), measured here at 1.3-22 ms for 3 MB
 * (0.15-0.3 ms on tmpfs, where /run usually is). A few pages rename in
 * microseconds, and synchronously: tests and small clusters see the file
 * as soon as the write's last slice returns.
 */
const BACKGROUND_RENAME_BYTES = 256 * 1024;
let writeSeq = 0;

/**
 * Writes `parts` to `path` through a temporary file and a rename (a reader
 * sees the old file or the new one), a batch of writev() at a time: at
 * 30,000 x 10 the file is about 3 MB, which took 5-50 ms to write on this
 * machine's disk under load.
 */
class FileWrite {
  private readonly tmp: string;
  private fd: number | null;
  private part = 0;
  private offset = 0;
  /** The rename handed to the threadpool and not yet done. */
  private renaming = false;
  /** Big enough to be renamed on the threadpool (and to be worth a slice of its own). */
  readonly background: boolean;

  constructor(private readonly path: string, private readonly parts: readonly Buffer[], private readonly renamed: (err: Error | null) => void) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    // Its own name: a write never truncates a file a background rename still has to move.
    this.tmp = `${path}.${process.pid}.${++writeSeq}.tmp`;
    this.fd = openSync(this.tmp, 'w', 0o600);
    let bytes = 0;
    for (const p of parts) bytes += p.length;
    this.background = bytes >= BACKGROUND_RENAME_BYTES;
  }

  /**
   * Writes for up to `budgetMs` (at least one batch); 'done' when the file is
   * in place, 'renaming' when its rename runs in the background (`renamed`
   * is called when it is done). Throws on a failed write (after removing the
   * temporary file).
   */
  step(budgetMs: number): 'more' | 'renaming' | 'done' {
    const t0 = performance.now();
    try {
      while (this.part < this.parts.length) {
        const batch: Buffer[] = [];
        let bytes = 0;
        for (let i = this.part, off = this.offset; i < this.parts.length && bytes < WRITE_BATCH_BYTES && batch.length < WRITE_BATCH_PARTS; i++, off = 0) {
          const p = this.parts[i]!;
          const piece = p.subarray(off, off + Math.min(p.length - off, WRITE_BATCH_BYTES - bytes));
          if (piece.length > 0) batch.push(piece);
          bytes += piece.length;
        }
        let written = writevSync(this.fd!, batch);
        if (written === 0 && bytes > 0) throw new Error(`${this.tmp}: writev wrote nothing`);
        // A short write (regular files rarely do it) continues where it stopped.
        while (written > 0) {
          const left = this.parts[this.part]!.length - this.offset;
          if (written < left) {
            this.offset += written;
            written = 0;
          } else {
            written -= left;
            this.part++;
            this.offset = 0;
          }
        }
        while (this.part < this.parts.length && this.parts[this.part]!.length === 0) this.part++;
        if (performance.now() - t0 >= budgetMs && this.part < this.parts.length) return 'more';
      }
      closeSync(this.fd!);
      this.fd = null;
    } catch (err) {
      this.abandon();
      throw err;
    }
    if (!this.background) {
      try {
        renameSync(this.tmp, this.path);
      } catch (err) {
        this.abandon();
        throw err;
      }
      return 'done';
    }
    this.renaming = true;
    rename(this.tmp, this.path, (err) => {
      if (!this.renaming) return; // settled meanwhile
      this.renaming = false;
      if (err) rmSync(this.tmp, { force: true });
      this.renamed(err);
    });
    return 'renaming';
  }

  /**
   * Puts the file in place now, whether or not the background rename ran
   * (a stopping proxy, or a write that must follow it): whichever of the two
   * renames comes second finds no temporary file, and the file is this one.
   */
  settle(): void {
    if (!this.renaming) return;
    this.renaming = false;
    try {
      renameSync(this.tmp, this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  /** Drops the temporary file (a failed write, or a writer disposed mid-write). */
  abandon(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    if (!this.renaming) rmSync(this.tmp, { force: true });
  }
}

/** The state file at `path`, or null when there is none. Throws when it is there and unreadable. */
export function readNodeState(path: string): NodeState | null {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const notOurs = (why: string) => new Error(`${path}: not a bpfproxy state file of format ${STATE_FORMAT} (${why}; written by another version?)`);
  const values: unknown[] = [];
  let lastStart = 0;
  let lastEnd = 0;
  let unpackError: Error | null = null;
  try {
    unpackMultiple(bytes, (value, start, end) => {
      values.push(value);
      lastStart = start ?? 0;
      lastEnd = end ?? 0;
    });
  } catch (err) {
    unpackError = err as Error;
  }
  // The format first: a file of another version says so, whatever its shape.
  const header = values[0] as StateHeader | undefined;
  if (!header || typeof header !== 'object' || header.format !== STATE_FORMAT) {
    throw notOurs(unpackError && !header ? unpackError.message : `format ${String((header as { format?: unknown } | undefined)?.format)}`);
  }
  const end = values[values.length - 1] as unknown;
  const complete = unpackError === null && values.length === 3 && Array.isArray(end) && end.length === 2 && end[0] === END_MARK &&
    end[1] === lastStart && lastEnd === bytes.length;
  if (!complete) throw new Error(`${path}: incomplete or damaged bpfproxy state file (${unpackError ? unpackError.message : 'no end marker where the file ends'}): not read`);
  return { ...header, catalog: values[1] as StateCatalog };
}

/** Backend ID -> node name and terminating, from a catalog. */
export function backendInfo(c: StateCatalog): Map<number, { node: string | null; terminating: boolean }> {
  const out = new Map<number, { node: string | null; terminating: boolean }>();
  const b = Buffer.from(c.backends.buffer, c.backends.byteOffset, c.backends.byteLength);
  const slots = Math.floor(b.length / 8);
  for (let i = 0; i < slots; i++) {
    const v = b.readUInt32LE(4 * (slots + i));
    if ((v & BACKEND_PRESENT) === 0) continue;
    const node = v & BACKEND_NODE_MASK;
    out.set(b.readUInt32LE(4 * i), { node: node > 0 ? c.nodes[node - 1] ?? null : null, terminating: (v & BACKEND_TERMINATING) !== 0 });
  }
  return out;
}

export interface WriterContext {
  mode: string;
  reason: string;
  node: string;
  pinDir: string;
}

export interface WriterOptions {
  minIntervalMs?: number;
  now?: () => number;
  /** Wall-clock time for `sync.at`. */
  wallClock?: () => number;
  /** Runs `fn` after `ms`; returns a cancel. Default: an unref'd setTimeout. */
  schedule?: (ms: number, fn: () => void) => () => void;
  /** Where a failed write is reported (it never fails a sync). */
  onError?: (err: unknown) => void;
}

const defaultSchedule = (ms: number, fn: () => void) => {
  const t = setTimeout(fn, ms);
  t.unref();
  return () => clearTimeout(t);
};

/**
 * Records each successful sync and writes the state file, coalesced. Owned
 * by the proxy (created when the dataplane opens, disposed when it stops;
 * dispose writes what is pending, so a stopped proxy leaves its last sync).
 */
export class NodeStateWriter {
  private readonly minIntervalMs: number;
  private readonly now: () => number;
  private readonly wallClock: () => number;
  private readonly schedule: NonNullable<WriterOptions['schedule']>;
  private readonly onError: (err: unknown) => void;
  private header: StateHeader | null = null;
  private pendingPlan: { desired: DesiredDataplane; rulePlan?: { config: unknown } } | null = null;
  /** The names, kept encoded and brought up to date pass by pass (state-catalog.ts). */
  readonly catalog = new IncrementalCatalog();
  private counts: StateHeader['counts'] = { services: 0, frontends: 0, backends: 0 };
  /** The generation the catalog holds, and the one its pass in progress is bringing it to (null: none). */
  private catalogGeneration = -1;
  private passGeneration: number | null = null;
  /** The file being written a batch at a time; the catalog is not touched meanwhile (its bytes are being written). */
  private fileWrite: FileWrite | null = null;
  /** Its rename is on the threadpool (FileWrite): nothing new starts until it is done. */
  private renaming = false;
  /** Time spent in the earlier slices of the write in progress. */
  private busyMs = 0;
  private dirty = false;
  private lastWrite = -Infinity;
  /** The time between writes: MIN_INTERVAL_MS, longer when writing takes long. */
  private gap: number;
  private cancel: (() => void) | null = null;
  private disposed = false;
  private failing = false;
  /** Writes done, catalog passes, the time spent on both (ms), and the longest slice (ms), for the benchmark and tests. */
  readonly stats = { writes: 0, catalogs: 0, ms: 0, maxSliceMs: 0 };

  constructor(readonly path: string, private ctx: WriterContext, opts: WriterOptions = {}) {
    this.minIntervalMs = opts.minIntervalMs ?? MIN_INTERVAL_MS;
    this.gap = this.minIntervalMs;
    this.now = opts.now ?? (() => performance.now());
    this.wallClock = opts.wallClock ?? Date.now;
    this.schedule = opts.schedule ?? defaultSchedule;
    this.onError = opts.onError ?? (() => {});
  }

  /**
   * A sync went through (errors confined to services count as through: they
   * kept their previous state). O(1): the file is written later.
   * `rulePlan`: the rule modes' renderer settings, to keep the plan itself.
   */
  synced(desired: DesiredDataplane, result: SyncResult, startedMs: number, rulePlan?: { config: unknown }): void {
    if (this.disposed || result.errors.some((e) => e.service === '')) return;
    const ms = this.now() - startedMs;
    const failed = new Set(result.errors.map((e) => e.service)).size;
    this.header = {
      format: STATE_FORMAT, version: processInfo.version, commit: processInfo.commit, pid: process.pid,
      node: this.ctx.node, mode: this.ctx.mode, reason: this.ctx.reason, pinDir: this.ctx.pinDir,
      sync: { at: this.wallClock(), ms: Math.round(ms * 1000) / 1000, full: result.full, generation: desired.generation, upserts: result.upserts, deletes: result.deletes, failed },
      counts: this.counts,
    };
    if (desired.generation !== this.catalogGeneration && desired.generation !== this.passGeneration) this.pendingPlan = { desired, rulePlan };
    this.dirty = true;
    if (this.cancel) return;
    this.later(Math.max(0, this.lastWrite + this.gap - this.now()));
  }

  /** Schedules the next slice of the write. */
  private later(ms: number): void {
    let ran = false;
    const cancel = this.schedule(ms, () => {
      ran = true;
      this.cancel = null;
      this.slice();
    });
    if (!ran) this.cancel = cancel;
  }

  /**
   * From the timer: a slice of the catalog's pass, then of the file's write
   * (SLICE_MS in all). A change that arrives meanwhile waits for one slice,
   * not for the whole write.
   */
  private slice(): void {
    if (this.disposed || !this.header || (!this.dirty && !this.fileWrite) || this.renaming) return;
    const t0 = this.now();
    const started = performance.now();
    const state = this.work(SLICE_MS, started);
    this.stats.maxSliceMs = Math.max(this.stats.maxSliceMs, performance.now() - started);
    this.busyMs += this.now() - t0;
    if (state === 'done') this.wrote();
    else if (state === 'more') this.later(0);
    // 'renaming': renamed() carries on.
  }

  /** Brings the catalog up to date and writes the file, for up to `budgetMs` from `started`. */
  private work(budgetMs: number, started: number): 'more' | 'renaming' | 'done' {
    try {
      if (!this.fileWrite) {
        if (!this.advance(budgetMs)) return 'more';
        this.fileWrite = new FileWrite(this.path, this.fileParts(), (err) => this.renamed(err));
        // What changes from here on is for the next write.
        this.dirty = this.pendingPlan !== null;
        if (this.fileWrite.background && performance.now() - started >= budgetMs) return 'more';
      }
      // At least one batch per slice: a small file is written in the slice that finished its catalog.
      const state = this.fileWrite.step(budgetMs - (performance.now() - started));
      if (state === 'more') return 'more';
      if (state === 'renaming') {
        this.renaming = true;
        return 'renaming';
      }
      this.fileWrite = null;
      this.stats.writes++;
      this.failing = false;
    } catch (err) {
      this.fileWrite = null;
      this.failed(err);
    }
    return 'done';
  }

  /** The background rename of the last write finished. */
  private renamed(err: Error | null): void {
    this.renaming = false;
    this.fileWrite = null;
    if (this.disposed) return;
    if (err) this.failed(err);
    else {
      this.stats.writes++;
      this.failing = false;
    }
    this.wrote();
  }

  private failed(err: unknown): void {
    // Once per run of failures: a read-only /run must not log every second.
    if (!this.failing) this.onError(err);
    this.failing = true;
  }

  /** Header, catalog and trailer, as pieces. */
  private fileParts(): Buffer[] {
    const parts = [encodeHeader({ ...this.header!, counts: this.counts }), ...this.catalog.parts()];
    let bytes = 0;
    for (const p of parts) bytes += p.length;
    parts.push(trailer(bytes));
    return parts;
  }

  /** Writes now what is pending, the catalog brought up to date at once. */
  flush(): void {
    if (!this.header) return;
    const t0 = this.now();
    // A write in progress holds an older header: finish it (its catalog is consistent), then write afresh.
    if (this.fileWrite) this.finishNow();
    if (!this.dirty) return;
    this.finishNow();
    this.busyMs += this.now() - t0;
    this.wrote();
  }

  /** The write in progress, or a new one, to its end, renamed in place before this returns. */
  private finishNow(): void {
    if (!this.fileWrite || !this.renaming) this.work(Infinity, performance.now());
    if (this.renaming) {
      try {
        this.fileWrite!.settle();
        this.stats.writes++;
        this.failing = false;
      } catch (err) {
        this.failed(err);
      }
      this.renaming = false;
      this.fileWrite = null;
    }
  }

  /** Runs the catalog's pass for up to `budgetMs`, starting one for the pending plan; true when the catalog is ready to write. */
  private advance(budgetMs: number): boolean {
    if (this.passGeneration === null && this.pendingPlan) {
      // The planner's services map is live: a plan made since this sync
      // may show here a moment early (in bpf mode only names; in the rule
      // modes `trace` may then show a change one sync before it is in).
      this.catalog.begin(this.pendingPlan.desired, this.pendingPlan.rulePlan);
      this.passGeneration = this.pendingPlan.desired.generation;
      this.pendingPlan = null;
    }
    if (this.passGeneration === null) return true;
    if (!this.catalog.step(budgetMs)) return false;
    this.counts = this.catalog.counts;
    this.catalogGeneration = this.passGeneration;
    this.passGeneration = null;
    this.stats.catalogs++;
    return true;
  }

  /** After a write: the next one waits its gap. */
  private wrote(): void {
    this.lastWrite = this.now();
    const busy = this.busyMs;
    this.busyMs = 0;
    this.stats.ms += busy;
    // The file may take at most a tenth of the time.
    this.gap = Math.max(this.minIntervalMs, WRITE_SHARE * busy);
    if (this.dirty && !this.disposed && !this.cancel) this.later(this.gap);
  }

  dispose(): void {
    if (this.disposed) return;
    this.cancel?.();
    this.cancel = null;
    this.flush();
    this.fileWrite?.abandon();
    this.fileWrite = null;
    this.disposed = true;
  }
}
