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
// Cost (bench/state-file.ts, 30k services x 10 endpoints, on this 2-core
// machine under load): 5 us per sync inline (it only records), about 220 ms
// and 4 MB to encode the names, 5 ms to rewrite the file when the plan did
// not change. So the names are encoded only when the plan changed (its
// generation) and their bytes kept; a sync that changed nothing rewrites the
// header in front of them. Writes run after the sync returns (a timer), at
// most one per MIN_INTERVAL_MS and at most a tenth of the time (WRITE_SHARE),
// so an endpoint change reaches the datapath without waiting for this file;
// the names are encoded in slices of about a millisecond between turns
// (CatalogEncoder), so a change that arrives meanwhile waits for one slice,
// not the whole encode.
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Packr, unpackMultiple } from 'msgpackr';
import type { DesiredDataplane, PlannedService } from '../planner/types.js';
import { encodePlan, type CompactPlan } from './state-plan.js';
import type { SyncResult } from './types.js';

export const STATE_FORMAT = 1;
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

/** The names behind the IDs, encoded once per plan generation. */
export interface StateCatalog {
  /** [service ID, namespace, name, port name, loadBalancerSourceRanges] per planned service. */
  services: [number, string, string, string, string[]][];
  /** Node names, indexed by `backends`. */
  nodes: string[];
  /**
   * Per backend, three little-endian u32: ID, 1 + index into `nodes` (0:
   * unknown), 1 when terminating. Raw bytes: 300k backends pack as one copy,
   * not 900k numbers.
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

// Plain arrays and maps: records (msgpackr's structures) would make a file
// that needs the writer's structure table to read.
const packr = new Packr({ useRecords: false, variableMapSize: true });

/** Services packed per chunk, and how long one slice of an encode may hold the event loop. */
const CHUNK = 64;
const SLICE_MS = 1;
/** Packed services joined per block, so the file is written in few write() calls. */
const BLOCK_BYTES = 256 * 1024;

/**
 * The catalog, encoded a slice at a time: at 10,000 services a whole encode
 * held the event loop 190-260 ms on this loaded machine (bench/modes.ts
 * names it as the cause of the slowest endpoint changes), so the writer
 * runs it in slices of about SLICE_MS between turns, and an endpoint change
 * waits for at most one slice. Services are packed CHUNK at a time and the
 * chunks joined under one array header: msgpack is self-delimiting, so the
 * bytes read back as one catalog.
 */
export class CatalogEncoder {
  readonly generation: number;
  /** The encoded catalog (pieces to write one after the other: joining them would copy megabytes) and what it counted, once step() returned true. */
  parts: Buffer[] | null = null;
  counts: StateHeader['counts'] = { services: 0, frontends: 0, backends: 0 };
  private readonly it: Iterator<PlannedService>;
  private readonly chunks: Buffer[] = [];
  /** Packed chunks not yet joined into a block (closeBlock). */
  private block: Buffer[] = [];
  private blockBytes = 0;
  private tuples: StateCatalog['services'] = [];
  private services = 0;
  private frontends = 0;
  private readonly nodeIndex = new Map<string, number>();
  private readonly nodes: string[] = [];
  /** ID, 1 + node index, terminating per backend; grown as needed. */
  private backends: Uint32Array = new Uint32Array(3 * 1024);
  private n = 0;
  // Backend IDs are small and dense (the planner's): a bitmap, not a Set,
  // which cost seconds for 300k IDs on a loaded machine here.
  private seen: Uint8Array = new Uint8Array(1024);

  /**
   * `scratch`: the arrays of the writer's last encode, reused: growing them
   * by doubling took 10-30 ms of CPU in one slice at 30,000 x 10. Their
   * bytes back the last catalog, which is not written again once a new
   * encode has started (the writer writes only a finished one).
   */
  constructor(private readonly desired: DesiredDataplane, private readonly rulePlan?: { config: unknown }, private readonly scratch?: EncoderScratch) {
    this.generation = desired.generation;
    if (scratch) {
      this.backends = scratch.backends;
      this.seen = scratch.seen;
      this.seen.fill(0);
    }
    // The planner's services map is live: a plan made while this runs may
    // show in it (names only, in bpf mode; a generation early at most).
    this.it = desired.services.values();
  }

  /** Encodes until done or `budgetMs` has passed (Infinity: to the end); true when done. */
  step(budgetMs: number): boolean {
    if (this.parts) return true;
    const t0 = performance.now();
    for (let r = this.it.next(); !r.done; r = this.it.next()) {
      const s = r.value;
      this.tuples.push([s.id, s.namespace, s.name, s.portName, s.sourceRanges]);
      this.frontends += s.frontends.length;
      this.note(s.internal);
      if (s.cluster !== s.internal) this.note(s.cluster);
      if (s.external !== s.internal && s.external !== s.cluster) this.note(s.external);
      if (this.tuples.length === CHUNK) {
        this.packTuples();
        if (performance.now() - t0 >= budgetMs) return false;
      }
    }
    this.packTuples();
    this.closeBlock();
    this.finish();
    return true;
  }

  private note(list: PlannedService['internal']): void {
    for (const b of list.backends) {
      if (b.id >= this.seen.length) this.seen = grownBytes(this.seen, b.id + 1);
      if (this.seen[b.id]) continue;
      this.seen[b.id] = 1;
      let node = 0;
      if (b.nodeName !== null) {
        node = this.nodeIndex.get(b.nodeName) ?? 0;
        if (node === 0) {
          node = this.nodes.push(b.nodeName);
          this.nodeIndex.set(b.nodeName, node);
        }
      }
      if (this.n + 3 > this.backends.length) {
        const next = new Uint32Array(this.backends.length * 2);
        next.set(this.backends);
        this.backends = next;
      }
      this.backends[this.n++] = b.id;
      this.backends[this.n++] = node;
      this.backends[this.n++] = b.terminating ? 1 : 0;
    }
  }

  /** The tuples so far, packed without their array header (the whole array gets one in finish()). */
  private packTuples(): void {
    const count = this.tuples.length;
    if (count === 0) return;
    const packed = packr.pack(this.tuples);
    this.block.push(packed.subarray(count < 16 ? 1 : 3));
    this.blockBytes += packed.length;
    this.services += count;
    this.tuples = [];
    if (this.blockBytes >= BLOCK_BYTES) this.closeBlock();
  }

  /** Joins the chunks packed so far into one block: at 30,000 services 470 chunks were as many write() calls, 43 ms in one slice under load. */
  private closeBlock(): void {
    if (this.block.length === 0) return;
    this.chunks.push(Buffer.concat(this.block));
    this.block = [];
    this.blockBytes = 0;
  }

  private finish(): void {
    const keys = this.rulePlan ? 4 : 3;
    const head = Buffer.alloc(5);
    head[0] = 0xdd; // array 32: the count is known only now
    head.writeUInt32BE(this.services, 1);
    // bin 32 header, then the backends' bytes as they are (packing them would copy them).
    const bin = Buffer.alloc(5);
    bin[0] = 0xc6;
    bin.writeUInt32BE(this.n * 4, 1);
    const out = [Buffer.from([0x80 | keys]), packr.pack('services'), head, ...this.chunks,
      packr.pack('nodes'), packr.pack(this.nodes),
      packr.pack('backends'), bin, Buffer.from(this.backends.buffer, 0, this.n * 4)];
    if (this.rulePlan) out.push(packr.pack('plan'), packr.pack(encodePlan(this.desired, this.rulePlan.config)));
    this.parts = out;
    if (this.scratch) {
      this.scratch.backends = this.backends;
      this.scratch.seen = this.seen;
    }
    this.counts = { services: this.services, frontends: this.frontends, backends: this.n / 3 };
  }
}

function grownBytes(a: Uint8Array, atLeast: number): Uint8Array {
  const next = new Uint8Array(Math.max(atLeast, a.length * 2));
  next.set(a);
  return next;
}

/** Arrays a writer hands from one encode to the next. */
export interface EncoderScratch { backends: Uint32Array; seen: Uint8Array }

/** The whole catalog at once (bench/state-file.ts, tests). */
export function encodeCatalog(desired: DesiredDataplane, rulePlan?: { config: unknown }): Buffer {
  const enc = new CatalogEncoder(desired, rulePlan);
  enc.step(Infinity);
  return Buffer.concat(enc.parts!);
}

export function encodeHeader(h: StateHeader): Buffer {
  return packr.pack(h);
}

/** Writes `parts` to `path` through a temporary file and a rename: a reader sees the old file or the new one. */
function writeAtomically(path: string, parts: readonly Buffer[]): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    for (const p of parts) writeSync(fd, p);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
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
  let values: unknown[];
  try {
    values = unpackMultiple(bytes) as unknown[];
  } catch (err) {
    throw notOurs((err as Error).message);
  }
  const header = values[0] as StateHeader | undefined;
  if (!header || typeof header !== 'object' || header.format !== STATE_FORMAT) throw notOurs(`format ${String((header as { format?: unknown } | undefined)?.format)}`);
  const catalog = (values[1] ?? { services: [], nodes: [], backends: new Uint8Array(0) }) as StateCatalog;
  return { ...header, catalog };
}

/** Backend ID -> node name and terminating, from a catalog. */
export function backendInfo(c: StateCatalog): Map<number, { node: string | null; terminating: boolean }> {
  const out = new Map<number, { node: string | null; terminating: boolean }>();
  const b = Buffer.from(c.backends.buffer, c.backends.byteOffset, c.backends.byteLength);
  for (let o = 0; o + 12 <= b.length; o += 12) {
    const node = b.readUInt32LE(o + 4);
    out.set(b.readUInt32LE(o), { node: node > 0 ? c.nodes[node - 1] ?? null : null, terminating: b.readUInt32LE(o + 8) === 1 });
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
  private catalog: Buffer[] | null = null;
  private counts: StateHeader['counts'] = { services: 0, frontends: 0, backends: 0 };
  private catalogGeneration = -1;
  /** The catalog being encoded a slice at a time (CatalogEncoder). */
  private encoder: CatalogEncoder | null = null;
  private readonly scratch: EncoderScratch = { backends: new Uint32Array(3 * 1024), seen: new Uint8Array(1024) };
  /** Time spent in the earlier slices of the write in progress. */
  private busyMs = 0;
  private dirty = false;
  private lastWrite = -Infinity;
  /** The time between writes: MIN_INTERVAL_MS, longer when writing takes long. */
  private gap: number;
  private cancel: (() => void) | null = null;
  private disposed = false;
  private failing = false;
  /** Writes done and the time spent encoding and writing (ms), for the benchmark and tests. */
  readonly stats = { writes: 0, catalogs: 0, ms: 0 };

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
    const encoding = this.encoder?.generation === desired.generation;
    if ((desired.generation !== this.catalogGeneration || this.catalog === null) && !encoding) this.pendingPlan = { desired, rulePlan };
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
   * From the timer: a slice of the names' encode (SLICE_MS), and the file
   * once they are done. A change that arrives meanwhile waits for one slice,
   * not for the whole encode.
   */
  private slice(): void {
    if (this.disposed || !this.dirty || !this.header) return;
    const t0 = this.now();
    if (!this.advance(SLICE_MS)) {
      this.busyMs += this.now() - t0;
      this.later(0);
      return;
    }
    this.write(t0);
  }

  /** Writes now what is pending, the names encoded at once. */
  flush(): void {
    if (!this.dirty || !this.header) return;
    const t0 = this.now();
    while (this.encoder || this.pendingPlan) this.advance(Infinity);
    this.write(t0);
  }

  /** Encodes the pending names for up to `budgetMs`; true when the catalog is ready to write. */
  private advance(budgetMs: number): boolean {
    if (!this.encoder && this.pendingPlan) {
      // The planner's services map is live: a plan made since this sync
      // may show here a moment early (in bpf mode only names; in the rule
      // modes `trace` may then show a change one sync before it is in).
      this.encoder = new CatalogEncoder(this.pendingPlan.desired, this.pendingPlan.rulePlan, this.scratch);
      this.pendingPlan = null;
    }
    if (!this.encoder) return true;
    if (!this.encoder.step(budgetMs)) return false;
    this.catalog = this.encoder.parts;
    this.counts = this.encoder.counts;
    this.catalogGeneration = this.encoder.generation;
    this.encoder = null;
    this.stats.catalogs++;
    return true;
  }

  private write(t0: number): void {
    try {
      writeAtomically(this.path, [encodeHeader({ ...this.header!, counts: this.counts }), ...this.catalog!]);
      // Names of a plan newer than the ones just written: another write follows.
      this.dirty = this.pendingPlan !== null;
      this.stats.writes++;
      this.failing = false;
    } catch (err) {
      // Once per run of failures: a read-only /run must not log every second.
      if (!this.failing) this.onError(err);
      this.failing = true;
    }
    this.lastWrite = this.now();
    const busy = this.busyMs + this.lastWrite - t0;
    this.busyMs = 0;
    this.stats.ms += busy;
    // The file may take at most a tenth of the time: a plan whose names take
    // 200 ms to encode is written at most every 2 s while it keeps changing.
    this.gap = Math.max(this.minIntervalMs, WRITE_SHARE * busy);
    if (this.dirty && !this.disposed && !this.cancel) this.later(this.gap);
  }

  dispose(): void {
    if (this.disposed) return;
    this.cancel?.();
    this.cancel = null;
    this.flush();
    this.disposed = true;
  }
}
