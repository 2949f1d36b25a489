// The names behind the IDs, for the state file (state-file.ts), kept as
// encoded bytes and brought up to date by what changed.
//
// Why: at 30,000 services x 10 endpoints a whole encode of the names took
// about 220 ms of CPU, and every endpoint change makes a new plan
// generation, so under a steady trickle of changes the file was always
// being encoded again in full (issue 6: the state file's slices were the
// main cause of slow endpoint changes at that size). Here a generation
// costs a hash lookup and a pointer comparison per service (the planner
// keeps an unchanged PlannedService object, so identity says what changed:
// about 1.7 ms at 30,000 on this loaded machine, in 1 ms slices, once per
// write, not per change), plus, per changed service, its backends'
// reference counts and, only when its names changed, one encode of its
// names and a copy of its block (bench/state-file.ts). A start pays a whole
// pass (about 200 ms at 30,000 x 10 under load, in slices; the hash
// indexes' growth rehashes everything in one slice, up to about 25 ms,
// while they grow).
//
// Layout, all in typed arrays (no object per service or backend lives here
// beyond the planner's own). IDs are not dense: the planner hands out fresh
// IDs above every earlier one (planner/ids.ts), so under endpoint churn they
// climb for ever; each ID gets a slot of a hash index (FlatIndex), and the
// slots, reused after removals, stay as many as the live IDs.
// - services: each one's names packed once (a msgpack array), kept in
//   blocks of BLOCK services by slot: a block is one Buffer holding its live
//   services' packed names in slot order, each one's offset and length in
//   `segStart`/`segLen`. A changed service re-packs itself and copies its
//   block (about 2 KB); the file is the blocks written one after the other.
// - backends: per slot the ID (the index's key) and one u32 (PRESENT |
//   TERMINATING | 1 + node index), both written to the file as they are; a
//   reference count per slot says when the last service naming a backend
//   let go of it.
import { Packr } from 'msgpackr';
import type { BackendSet, DesiredDataplane, PlannedService } from '../planner/types.js';
import { plainEqual } from '../util/equal.js';
import { FlatIndex, grown } from '../util/flat-index.js';
import { encodePlan } from './state-plan.js';

// Plain arrays and maps: records (msgpackr's structures) would make a file
// that needs the writer's structure table to read.
export const packr = new Packr({ useRecords: false, variableMapSize: true });

/** Bits of a backend's u32 in the file. */
export const BACKEND_PRESENT = 0x4000_0000;
export const BACKEND_TERMINATING = 0x8000_0000;
export const BACKEND_NODE_MASK = 0x3fff_ffff;

/** Service slots per block (1 << BLOCK_SHIFT): what a change of one service's names copies. */
const BLOCK_SHIFT = 6;
/** Services scanned between two looks at the clock (a scan is a pointer comparison; an encode some microseconds). */
const CHECK_EVERY = 64;
/** Slots swept for removed services between two looks at the clock. */
const SWEEP_CHECK = 4096;
/** Blocks rebuilt between two looks at the clock (a block: about 2 KB copied). */
const BLOCK_CHECK = 8;

const NONE = 0;
const REPLACED = 1;
const REMOVED = 2;

type Phase = 'idle' | 'scan' | 'sweep' | 'blocks' | 'plan';

export interface CatalogCounts { services: number; frontends: number; backends: number }


/** The fields of a service the catalog records: when they are equal, a new plan object needs no new bytes. */
function sameNames(a: PlannedService, b: PlannedService): boolean {
  return a.id === b.id && a.namespace === b.namespace && a.name === b.name && a.portName === b.portName && plainEqual(a.sourceRanges, b.sourceRanges);
}

/**
 * The catalog, kept up to date pass by pass: begin(desired) and step()
 * until it returns true; parts() then gives the bytes to write. Passes run
 * in slices (step's budget) between turns of the event loop; between a
 * begin and the step that finishes, parts() is not consistent.
 */
export class IncrementalCatalog {
  /** Work done, for tests and the benchmark: services whose names were packed, and their bytes; blocks copied. */
  readonly stats = { passes: 0, encoded: 0, encodedBytes: 0, blocks: 0 };

  // Per service slot (services: the slot of each service ID).
  private readonly services = new FlatIndex(1, 256);
  private applied: (PlannedService | undefined)[] = [];
  private stamp = new Uint32Array(256);
  private segStart = new Uint32Array(256);
  private segLen = new Uint32Array(256);
  private staged = new Uint8Array(256);
  private stageOff = new Uint32Array(256);
  private stageLen = new Uint32Array(256);
  /** Packed names of services changed in this pass, until their blocks are rebuilt. */
  private stage = Buffer.allocUnsafeSlow(16 * 1024);
  private stageEnd = 0;
  private blocks: (Buffer | undefined)[] = [];
  private dirty = new Uint8Array(16);
  private dirtyList: number[] = [];

  // Per backend slot (backends: the slot of each backend ID).
  private readonly backends = new FlatIndex(1, 1024);
  private refs = new Uint32Array(1024);
  private terminatingRefs = new Uint32Array(1024);
  private info = new Uint32Array(1024);
  private readonly nodeIndex = new Map<string, number>();
  private readonly nodes: string[] = [];
  private nodesPacked: Buffer = packr.pack([]);
  private readonly probe = new Uint32Array(1);

  private live = 0;
  private frontends = 0;

  private phase: Phase = 'idle';
  private pass = 0;
  private it: Iterator<PlannedService> | null = null;
  private sweepAt = 0;
  private desired: DesiredDataplane | null = null;
  private rulePlan: { config: unknown } | undefined;
  private planPacked: Buffer | null = null;

  constructor() {
    this.services.onGrow = (capacity) => {
      this.stamp = grown(this.stamp, capacity);
      this.segStart = grown(this.segStart, capacity);
      this.segLen = grown(this.segLen, capacity);
      this.staged = grown(this.staged, capacity);
      this.stageOff = grown(this.stageOff, capacity);
      this.stageLen = grown(this.stageLen, capacity);
    };
    this.backends.onGrow = (capacity) => {
      this.refs = grown(this.refs, capacity);
      this.terminatingRefs = grown(this.terminatingRefs, capacity);
      this.info = grown(this.info, capacity);
    };
  }

  get counts(): CatalogCounts {
    return { services: this.live, frontends: this.frontends, backends: this.backends.size };
  }

  /** Starts a pass towards `desired` (and, in the rule modes, its plan). A pass in progress is continued over the new plan's services. */
  begin(desired: DesiredDataplane, rulePlan?: { config: unknown }): void {
    this.desired = desired;
    this.rulePlan = rulePlan;
    // Stamps tell the services this pass met from those it must remove; a
    // new pass needs a new stamp (and a scan of everything from the start).
    this.pass = (this.pass + 1) >>> 0 || 1;
    // The planner's services map is live: a plan made while a pass runs may
    // show in it a generation early; Map iterators see entries added and
    // skip entries deleted meanwhile, and a later pass catches the rest.
    this.it = desired.services.values();
    this.phase = 'scan';
  }

  /** Works for up to `budgetMs` (Infinity: to the end); true when the pass is done. */
  step(budgetMs: number): boolean {
    if (this.phase === 'idle') return true;
    const t0 = performance.now();
    const late = () => performance.now() - t0 >= budgetMs;
    if (this.phase === 'scan') {
      let n = 0;
      for (let r = this.it!.next(); !r.done; r = this.it!.next()) {
        this.visit(r.value);
        if (++n % CHECK_EVERY === 0 && late()) return false;
      }
      this.it = null;
      this.phase = 'sweep';
      this.sweepAt = 0;
    }
    if (this.phase === 'sweep') {
      while (this.sweepAt < this.services.end) {
        const slot = this.sweepAt++;
        if (this.applied[slot] !== undefined && this.stamp[slot] !== this.pass) this.remove(slot);
        if (this.sweepAt % SWEEP_CHECK === 0 && late()) return false;
      }
      this.phase = 'blocks';
    }
    if (this.phase === 'blocks') {
      let n = 0;
      while (this.dirtyList.length > 0) {
        this.rebuild(this.dirtyList.pop()!);
        if (++n % BLOCK_CHECK === 0 && late()) return false;
      }
      this.stageEnd = 0;
      this.phase = 'plan';
    }
    if (this.phase === 'plan') {
      // The rule modes' plan for `trace`, whole (state-plan.ts): they are
      // not incremental; their own syncs cost far more than this encode.
      this.planPacked = this.rulePlan ? packr.pack(encodePlan(this.desired!, this.rulePlan.config)) : null;
      this.desired = null;
      this.stats.passes++;
      this.phase = 'idle';
    }
    return true;
  }

  /** The catalog's bytes (one msgpack map), as pieces to write one after the other. Valid until the next begin(). */
  parts(): Buffer[] {
    const head = Buffer.alloc(5);
    head[0] = 0xdd; // array 32
    head.writeUInt32BE(this.live, 1);
    const bin = Buffer.alloc(5);
    // bin 32: the backends' IDs by slot, then their u32 by slot, as they are.
    const slots = this.backends.end;
    bin[0] = 0xc6;
    bin.writeUInt32BE(slots * 8, 1);
    const out: Buffer[] = [Buffer.from([0x80 | (this.planPacked ? 4 : 3)]), K_SERVICES, head];
    for (const b of this.blocks) if (b) out.push(b);
    const ids = this.backends.keys;
    out.push(K_NODES, this.nodesPacked, K_BACKENDS, bin, Buffer.from(ids.buffer, ids.byteOffset, slots * 4), Buffer.from(this.info.buffer, this.info.byteOffset, slots * 4));
    if (this.planPacked) out.push(K_PLAN, this.planPacked);
    return out;
  }

  private visit(s: PlannedService): void {
    this.probe[0] = s.id;
    const slot = this.services.insert(this.probe, 0);
    this.stamp[slot] = this.pass;
    const old = this.applied[slot];
    if (old === s) return;
    // +1 before -1: a backend both name keeps its count above zero.
    this.reference(s, 1);
    if (old) this.reference(old, -1);
    else this.live++;
    this.frontends += s.frontends.length - (old ? old.frontends.length : 0);
    this.applied[slot] = s;
    // An endpoint change makes a new object with the same names: nothing to pack.
    if (old && sameNames(old, s)) return;
    const packed = packr.pack([s.id, s.namespace, s.name, s.portName, s.sourceRanges]);
    this.stats.encoded++;
    this.stats.encodedBytes += packed.length;
    if (this.stageEnd + packed.length > this.stage.length) {
      const next = Buffer.allocUnsafeSlow(Math.max(this.stageEnd + packed.length, this.stage.length * 2));
      this.stage.copy(next, 0, 0, this.stageEnd);
      this.stage = next;
    }
    packed.copy(this.stage, this.stageEnd);
    this.stageOff[slot] = this.stageEnd;
    this.stageLen[slot] = packed.length;
    this.stageEnd += packed.length;
    this.staged[slot] = REPLACED;
    this.markDirty(slot >> BLOCK_SHIFT);
  }

  /** A service the pass did not meet: its slot is free for the next pass's new services (its block is rebuilt in this one). */
  private remove(slot: number): void {
    const old = this.applied[slot]!;
    this.reference(old, -1);
    this.live--;
    this.frontends -= old.frontends.length;
    this.applied[slot] = undefined;
    this.staged[slot] = REMOVED;
    this.services.removeSlot(slot);
    this.markDirty(slot >> BLOCK_SHIFT);
  }

  private markDirty(block: number): void {
    if (block >= this.dirty.length) this.dirty = grown(this.dirty, Math.max(block + 1, this.dirty.length * 2));
    if (this.dirty[block]) return;
    this.dirty[block] = 1;
    this.dirtyList.push(block);
  }

  /** The block's live services' names in slot order: the unchanged copied from the old block, the changed from the stage. */
  private rebuild(block: number): void {
    const lo = block << BLOCK_SHIFT;
    const hi = Math.min(lo + (1 << BLOCK_SHIFT), this.services.end);
    let size = 0;
    for (let id = lo; id < hi; id++) {
      if (this.staged[id] === REPLACED) size += this.stageLen[id]!;
      else if (this.staged[id] === NONE && this.applied[id] !== undefined) size += this.segLen[id]!;
    }
    const old = this.blocks[block];
    // Not from Node's shared pool: a pooled slice would keep its whole 8 KiB slab alive.
    const out = size > 0 ? Buffer.allocUnsafeSlow(size) : undefined;
    let at = 0;
    for (let id = lo; id < hi; id++) {
      const state = this.staged[id];
      let len = 0;
      if (state === REPLACED) {
        len = this.stageLen[id]!;
        this.stage.copy(out!, at, this.stageOff[id]!, this.stageOff[id]! + len);
      } else if (state === NONE && this.applied[id] !== undefined) {
        len = this.segLen[id]!;
        old!.copy(out!, at, this.segStart[id]!, this.segStart[id]! + len);
      }
      this.segStart[id] = at;
      this.segLen[id] = len;
      this.staged[id] = NONE;
      at += len;
    }
    this.blocks[block] = out;
    this.dirty[block] = 0;
    this.stats.blocks++;
  }

  /** Counts the backends `s` names in (+1) or out (-1), each set once: the planner shares a set between internal, cluster and external when they hold the same backends. */
  private reference(s: PlannedService, delta: 1 | -1): void {
    this.referenceSet(s.internal, delta);
    if (s.cluster !== s.internal) this.referenceSet(s.cluster, delta);
    if (s.external !== s.internal && s.external !== s.cluster) this.referenceSet(s.external, delta);
  }

  private referenceSet(set: BackendSet, delta: 1 | -1): void {
    for (const b of set.backends) {
      this.probe[0] = b.id;
      const slot = delta > 0 ? this.backends.insert(this.probe, 0) : this.backends.find(this.probe, 0);
      if (slot < 0) continue; // not counted in: nothing to count out
      const refs = (this.refs[slot] = this.refs[slot]! + delta);
      const terminating = (this.terminatingRefs[slot] = this.terminatingRefs[slot]! + (b.terminating ? delta : 0));
      if (refs === 0) {
        this.info[slot] = 0;
        this.backends.removeSlot(slot);
        continue;
      }
      // A backend ID is one address, port and protocol: one endpoint, on one
      // node. Terminating when any service that names it says so (one
      // Service's slice may say it a moment before another's).
      const node = delta > 0 ? this.nodeNumber(b.nodeName) : this.info[slot]! & BACKEND_NODE_MASK;
      this.info[slot] = (BACKEND_PRESENT | node | (terminating > 0 ? BACKEND_TERMINATING : 0)) >>> 0;
    }
  }

  /** 1 + the node's index in `nodes` (0: unknown). Node names are kept once seen: a cluster has few. */
  private nodeNumber(name: string | null): number {
    if (name === null) return 0;
    let n = this.nodeIndex.get(name);
    if (n === undefined) {
      n = this.nodes.push(name);
      this.nodeIndex.set(name, n);
      this.nodesPacked = packr.pack(this.nodes);
    }
    return n;
  }
}

const K_SERVICES = packr.pack('services');
const K_NODES = packr.pack('nodes');
const K_BACKENDS = packr.pack('backends');
const K_PLAN = packr.pack('plan');

/** The whole catalog at once, from nothing (tests, the benchmark). */
export function encodeCatalog(desired: DesiredDataplane, rulePlan?: { config: unknown }): Buffer {
  const c = new IncrementalCatalog();
  c.begin(desired, rulePlan);
  c.step(Infinity);
  return Buffer.concat(c.parts());
}
