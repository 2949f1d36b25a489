// Reconcile, admission, apply and reload, generic over tables. A sync is:
//   1. reload (full syncs): dump each map, compare with the mirror, rebuild what differs;
//   2. the caller encodes the desired entries of the services in scope into each table's batch;
//   3. diff: one mirror lookup per desired entry (SAME, CHANGED, NEW);
//   4. admission: a service whose NEW entries do not fit is refused whole and keeps its state;
//   5. upserts, table by table in declaration order (one batch syscall per table);
//   6. deletes, in reverse order: what no admitted service wants any more, and
//      shared entries nothing refers to.
// The periodic resync checks instead of reloading (verify(), issue 6): the
// same comparison, the dumps made off the event loop, repairs left to a full sync.
// The declaration order is the write order that keeps every intermediate
// state serviceable: a reader never finds an entry naming one not yet written
// or already removed (see lb-tables.ts for the LB order and why).
import type { SyncError } from '../types.js';
import { FlatIndex } from '../../util/flat-index.js';
import { flatCountRefs } from './native.js';
import { CHANGED, NEW, SAME, Table, type TableSpec } from './table.js';

export interface EntryFailure { index: number; errno: number }

/** The kernel side of one map: batch writes, deletes and dumps. A fake in tests. */
export interface MapIO {
  readonly name: string;
  readonly capacity: number;
  /** Writes n entries (keys then values, packed); the rest of the batch goes on after a failed entry. */
  write(keys: Uint8Array, values: Uint8Array, n: number): EntryFailure[];
  /** Deletes n keys; a missing key is not a failure. */
  remove(keys: Uint8Array, n: number): EntryFailure[];
  /**
   * Every entry, keys and values packed, as 32-bit words. `expected` sizes
   * the buffers. `fp`, when given, is the contents' order-independent
   * fingerprint (fingerprint.ts).
   */
  dumpWords(expected: number): { keys: Uint32Array; values: Uint32Array; count: number; fp?: [number, number] };
  /** dumpWords() off the event loop (a worker thread), for the periodic check (verify()). Absent: dumpWords() is used. */
  dumpWordsAsync?(expected: number): Promise<{ keys: Uint32Array; values: Uint32Array; count: number; fp?: [number, number] }>;
}

type Dump = ReturnType<MapIO['dumpWords']>;

/** What a periodic check found: maps whose contents differ from the mirror, and maps written while being dumped every time. */
export interface VerifyResult {
  /** Maps the kernel holds otherwise than the mirror says: a full sync (reload()) is needed. */
  drift: string[];
  /** Maps the proxy wrote during each of their dumps: not checked this time (the next period checks them). */
  raced: string[];
}

/** Dumps of a map that verify() makes when the proxy keeps writing it meanwhile, before leaving it for the next period. */
export const VERIFY_ATTEMPTS = 3;

/**
 * A test seam (issue 12, item 8): called before every batch write and delete
 * with the table's name and how many entries go in that one syscall; a throw
 * stands for a failure midway through a sync, after the tables before it were
 * written. Absent in production.
 */
export interface WriteFaults {
  beforeWrite(table: string, op: 'upsert' | 'delete', entries: number): void;
}

/** Owner (service ID) -> planned-service key. */
export interface OwnerNames {
  get(owner: number): string | undefined;
}

export interface CommitScope {
  full: boolean;
  /** Partial syncs: the owners (service IDs) whose entries are compared and pruned. */
  owners: ReadonlySet<number>;
  /** Owners whose entries stay as they are (a service that could not be planned or written). */
  keep: ReadonlySet<number>;
  /**
   * Owner -> planned-service key: messages, and the order in which refused
   * services are admitted. Read only when something fails or does not fit,
   * so a caller may build it on first use (a Map will do).
   */
  names: OwnerNames;
}

export interface CommitResult {
  upserts: number;
  deletes: number;
  errors: SyncError[];
  /** Owners left out (refused by admission or failed to write): they keep their previous state. */
  failed: Set<number>;
}

/** Describes a failed write for the operator. */
export type DescribeFailure = (map: MapIO, setting: string, errno: number, service: string) => SyncError;

const E2BIG = 7;
const ENOMEM = 12;
const ENOSPC = 28;
export const isFull = (errno: number): boolean => errno === E2BIG || errno === ENOSPC || errno === ENOMEM;

/**
 * Where the last sync's time went, in ms (performance.now()): what the
 * benches print beside the kernel's own cost. `encode` runs between begin()
 * and commit() (the caller's encoders); `kernel` is the batch syscalls alone,
 * which `upsert` and `prune` include.
 */
export interface SyncTimings {
  reload: number;
  encode: number;
  diff: number;
  upsert: number;
  prune: number;
  kernel: number;
}

export class TableSync {
  readonly tables: Table[];
  /** The last sync's phases (see SyncTimings); reload is the last full sync's. */
  readonly timings: SyncTimings = { reload: 0, encode: 0, diff: 0, upsert: 0, prune: 0, kernel: 0 };
  /** The timings of the sync engine that committed last in this process: what the benches read. */
  static last: Readonly<SyncTimings> | null = null;
  private begun = 0;
  private readonly byName = new Map<string, Table>();
  private epoch = 0;
  /** Per shared table: the NEW keys already written in this sync (a backend many services name). */
  private readonly written = new Map<Table, FlatIndex>();
  /** The tables of each map, in declaration order. */
  private readonly byMap = new Map<string, Table[]>();
  /** Entries compared one by one by reload(), since this sync engine started: a resync that finds the fingerprints equal compares none. */
  compared = 0;
  /** Dumps verify() threw away because the proxy wrote the map meanwhile, since this sync engine started. */
  redumped = 0;
  /**
   * Per map, how many times its contents or its mirror changed under this
   * engine (a batch written or deleted, a table rebuilt by reload()): a
   * dump taken while this moved may hold half of a write, so verify()
   * takes it again rather than calling the difference drift.
   */
  private readonly changes = new Map<string, number>();

  constructor(
    specs: readonly TableSpec[], private readonly io: ReadonlyMap<string, MapIO>, private readonly describe: DescribeFailure,
    private readonly faults?: WriteFaults,
  ) {
    this.tables = specs.map((s) => new Table(s));
    for (const t of this.tables) {
      this.byName.set(t.name, t);
      if (!io.has(t.spec.map)) throw new Error(`table ${t.name}: map ${t.spec.map} is not open`);
      if (t.spec.shared) this.written.set(t, new FlatIndex(t.ks / 4, 1024));
      this.byMap.set(t.spec.map, [...(this.byMap.get(t.spec.map) ?? []), t]);
    }
  }

  table(name: string): Table {
    const t = this.byName.get(name);
    if (!t) throw new Error(`no table ${name}`);
    return t;
  }

  /** Entries per map as the mirror knows them. */
  usage(): { name: string; entries: number; capacity: number }[] {
    const out = new Map<string, { name: string; entries: number; capacity: number }>();
    for (const t of this.tables) {
      const m = this.io.get(t.spec.map)!;
      const u = out.get(m.name) ?? { name: m.name, entries: 0, capacity: m.capacity };
      u.entries += t.size;
      out.set(m.name, u);
    }
    return [...out.values()];
  }

  /**
   * Dumps every map and brings the mirror in line. A map whose dump has the
   * count and the fingerprint the mirror has (computed in the C shim while
   * dumping, kept by the tables as they write) is not compared at all;
   * otherwise one pass over the dump compares without allocating, and a table
   * is rebuilt from the dump only when something differs. Returns the tables
   * that had to be rebuilt.
   */
  reload(): string[] {
    const started = performance.now();
    const rebuilt: string[] = [];
    for (const [name, tables] of this.byMap) {
      const d = this.io.get(name)!.dumpWords(this.expected(tables));
      if (this.fingerprintMatches(tables, d)) continue;
      const { which, differ } = this.compare(tables, d);
      tables.forEach((t, k) => {
        if (!differ[k]) return;
        t.rebuild(d.keys, d.values, d.count, tables.length > 1 ? (i) => which[i] === k : null);
        rebuilt.push(t.name);
        this.changed(name);
      });
    }
    if (rebuilt.length > 0) this.recount();
    this.timings.reload = performance.now() - started;
    return rebuilt;
  }

  /**
   * The periodic check (issue 6): reload()'s comparison with the dumps made
   * off the event loop, so endpoint changes go on meanwhile. A map written
   * or reloaded while its dump ran is dumped again (VERIFY_ATTEMPTS in all),
   * else reported raced. Never rebuilds: drift means a full sync is needed.
   * The caller runs one at a time.
   */
  async verify(): Promise<VerifyResult> {
    const drift: string[] = [];
    const raced: string[] = [];
    for (const [name, tables] of this.byMap) {
      const io = this.io.get(name)!;
      let settled = false;
      for (let attempt = 0; attempt < VERIFY_ATTEMPTS && !settled; attempt++) {
        if (attempt > 0) this.redumped++;
        const before = this.changes.get(name) ?? 0;
        const d = io.dumpWordsAsync ? await io.dumpWordsAsync(this.expected(tables)) : io.dumpWords(this.expected(tables));
        if ((this.changes.get(name) ?? 0) !== before) continue;
        settled = true;
        // The mirror as it is now is the one of the whole dump (nothing changed it meanwhile).
        if (!this.fingerprintMatches(tables, d) && this.compare(tables, d).differ.some((x) => x)) drift.push(name);
      }
      if (!settled) raced.push(name);
    }
    return { drift, raced };
  }

  /** How many entries the mirror says a map holds. */
  private expected(tables: readonly Table[]): number {
    return tables.reduce((n, t) => n + t.size, 0);
  }

  /** The dump has the count and the fingerprint the mirror keeps (computed in the C shim while dumping). */
  private fingerprintMatches(tables: readonly Table[], d: Dump): boolean {
    if (!d.fp || d.count !== this.expected(tables)) return false;
    let a = 0;
    let b = 0;
    for (const t of tables) {
      a = (a + t.fp.a) >>> 0;
      b = (b + t.fp.b) >>> 0;
    }
    return a === d.fp[0] && b === d.fp[1];
  }

  /**
   * One pass over a dump, without allocating per entry: which table each
   * entry belongs to (several may share a map) and which tables differ.
   */
  private compare(tables: readonly Table[], d: Dump): { which: Uint8Array; differ: boolean[] } {
    this.compared += d.count;
    const kw = tables[0]!.ks / 4;
    const which = new Uint8Array(d.count);
    if (tables.length > 1) {
      for (let i = 0; i < d.count; i++) {
        let k = 0;
        while (k < tables.length - 1 && !tables[k]!.spec.holds!(d.keys, i * kw)) k++;
        which[i] = k;
      }
    }
    const counts = new Int32Array(tables.length);
    const same = new Uint8Array(tables.length).fill(1);
    for (let i = 0; i < d.count; i++) {
      const k = which[i]!;
      counts[k] = counts[k]! + 1;
      if (same[k] && !tables[k]!.holdsEntry(d.keys, d.values, i)) same[k] = 0;
    }
    return { which, differ: tables.map((t, k) => !(same[k] && counts[k] === t.size)) };
  }

  private changed(map: string): void {
    this.changes.set(map, (this.changes.get(map) ?? 0) + 1);
  }

  /** Starts a sync: empty batches for the encoders. */
  begin(): void {
    for (const t of this.tables) t.resetBatch();
    this.begun = performance.now();
  }

  commit(scope: CommitScope): CommitResult {
    const epoch = ++this.epoch;
    const tm = this.timings;
    let t0 = performance.now();
    tm.encode = t0 - this.begun;
    tm.kernel = 0;
    this.names = scope.names;
    if (this.tables.every((t) => t.size === 0) && this.everythingFits(scope)) return this.commitIntoEmpty(scope);
    for (const t of this.tables) t.diff();
    const errors: SyncError[] = [];
    const failed = new Set<number>(this.admit(scope, errors));
    const keep = scope.keep;
    // Nobody excluded (the usual case): no set lookup per entry.
    const excluded = (o: number) => (failed.size > 0 && failed.has(o)) || (keep.size > 0 && keep.has(o));
    // What admitted services want is stamped: it survives the prune.
    for (const t of this.tables) {
      for (let i = 0; i < t.dn; i++) {
        const s = t.dslot[i]!;
        if (s >= 0 && !excluded(t.downer[i]!)) t.stamp[s] = epoch;
      }
    }
    let upserts = 0;
    let deletes = 0;
    const released: number[][] = this.tables.map(() => []);

    let t1 = performance.now();
    tm.diff = t1 - t0;
    t0 = t1;
    for (const t of this.tables) upserts += this.upsert(t, epoch, excluded, failed, errors, released);
    t1 = performance.now();
    tm.upsert = t1 - t0;
    t0 = t1;
    const clean = () => failed.size === 0 && errors.length === 0;
    for (let k = this.tables.length - 1; k >= 0; k--) {
      const t = this.tables[k]!;
      // Shared entries go only when everything else went through: a failed
      // service may still need one; the next full sync removes it.
      if (t.spec.shared && !clean()) continue;
      deletes += this.prune(t, scope, epoch, excluded, failed, errors, released[k]!, released);
    }
    if (scope.full) this.releaseScratch();
    tm.prune = performance.now() - t0;
    TableSync.last = tm;
    return { upserts, deletes, errors, failed };
  }

  /**
   * Whether every desired entry fits even counted without deduplication
   * (a backend named by several services counts each time): then admission
   * refuses nobody, whatever the mirror holds.
   */
  private everythingFits(scope: CommitScope): boolean {
    const need = new Map<string, number>();
    for (const t of this.tables) {
      let n = t.size;
      if (scope.keep.size === 0) n += t.dn;
      else for (let i = 0; i < t.dn; i++) if (!scope.keep.has(t.downer[i]!)) n++;
      need.set(t.spec.map, (need.get(t.spec.map) ?? 0) + n);
    }
    for (const [m, n] of need) if (n > this.io.get(m)!.capacity) return false;
    return true;
  }

  /**
   * A sync into empty mirrors (the first sync into empty maps, the usual
   * start): no diff, no admission (everythingFits said so), nothing to
   * prune. Each table's batch becomes its mirror (Table.adoptBatch: the
   * bytes written are stored once), in write order; a failed entry fails its
   * owner, whose entries later tables then leave out, as commit() does.
   */
  private commitIntoEmpty(scope: CommitScope): CommitResult {
    const tm = this.timings;
    const t0 = performance.now();
    const errors: SyncError[] = [];
    const failed = new Set<number>();
    const keep = scope.keep;
    const left = (o: number) => keep.has(o) || failed.has(o);
    let upserts = 0;
    for (const t of this.tables) {
      const io = this.io.get(t.spec.map)!;
      const kw = t.ks / 4;
      const vw = t.vs / 4;
      const n = t.adoptBatch(keep.size === 0 && failed.size === 0 ? null : left);
      if (n === 0) continue;
      const keys = t.index.keys;
      let failures: EntryFailure[];
      try {
        this.faults?.beforeWrite(t.name, 'upsert', n);
        this.changed(t.spec.map);
        const ts = performance.now();
        failures = io.write(u8(keys, n * kw), u8(t.vals, n * vw), n);
        tm.kernel += performance.now() - ts;
      } catch (err) {
        // Nothing of this batch is known written: the mirror forgets it.
        t.clear();
        throw err;
      }
      const bad = new Set<number>();
      for (const f of failures) {
        bad.add(f.index);
        const owners = t.spec.shared ? this.ownersReferring(t, keys, f.index * kw) : [t.owner[f.index]!];
        this.fail(io, t, f.errno, owners, failed, errors);
      }
      const ref = t.spec.refersTo ? this.table(t.spec.refersTo.table) : null;
      const refOff = t.spec.refersTo ? t.spec.refersTo.valueOffset / 4 : 0;
      for (const j of bad) t.remove(j);
      upserts += n - bad.size;
      if (ref && bad.size === 0) {
        // Every entry went in: count their references in one pass (native/flat.c), not one lookup each.
        const { buckets, mask } = ref.index.table;
        flatCountRefs(t.vals, vw, refOff, n, ref.index.keys, ref.ks / 4, buckets, mask, ref.refs);
      } else if (ref) {
        for (let j = 0; j < n; j++) if (!bad.has(j)) this.addRef(ref, t.vals, j * vw + refOff);
      }
    }
    tm.diff = 0;
    tm.upsert = performance.now() - t0;
    tm.prune = 0;
    this.releaseScratch();
    TableSync.last = tm;
    return { upserts, deletes: 0, errors, failed };
  }

  /** After a full sync: the batches and dedupe indexes it grew go back to small. */
  private releaseScratch(): void {
    for (const t of this.tables) t.releaseBatch();
    for (const [t, idx] of this.written) if (idx.capacity > 16384) this.written.set(t, new FlatIndex(t.ks / 4, 1024));
  }

  // ---- admission ----

  /**
   * Services whose NEW entries would not fit. The peak a map reaches is what
   * it holds plus every new key (deletes come after upserts). When even
   * counting every NEW entry everything fits (the usual case, and always the
   * case when nothing changed), nobody is refused without per-service work.
   */
  private admit(scope: CommitScope, errors: SyncError[]): number[] {
    const used = new Map<string, number>();
    const bound = new Map<string, number>();
    for (const t of this.tables) {
      const m = t.spec.map;
      used.set(m, (used.get(m) ?? 0) + t.size);
      let n = 0;
      for (let i = 0; i < t.dn; i++) if (t.dstate[i] === NEW && (scope.keep.size === 0 || !scope.keep.has(t.downer[i]!))) n++;
      bound.set(m, (bound.get(m) ?? 0) + n);
    }
    const fits = (m: string, extra: number) => used.get(m)! + extra <= this.io.get(m)!.capacity;
    if ([...bound].every(([m, n]) => fits(m, n))) return [];

    // Per service, in key order; a shared key counts once, for the first service that needs it.
    const newOf = new Map<number, number[]>();
    this.tables.forEach((t, ti) => {
      for (let i = 0; i < t.dn; i++) {
        if (t.dstate[i] !== NEW) continue;
        const o = t.downer[i]!;
        if (scope.keep.has(o)) continue;
        let l = newOf.get(o);
        if (!l) newOf.set(o, (l = []));
        l.push(ti, i);
      }
    });
    const counted = this.tables.map((t) => new FlatIndex(t.ks / 4, 64));
    const refused: number[] = [];
    const order = [...newOf.keys()].sort((a, b) => cmp(scope.names.get(a) ?? '', scope.names.get(b) ?? ''));
    for (const o of order) {
      const need = new Map<string, number>();
      const fresh: number[] = [];
      const l = newOf.get(o)!;
      for (let e = 0; e < l.length; e += 2) {
        const ti = l[e]!;
        const t = this.tables[ti]!;
        const slot = counted[ti]!.insert(t.dk, l[e + 1]! * (t.ks / 4));
        if (!counted[ti]!.added) continue;
        fresh.push(ti, slot);
        need.set(t.spec.map, (need.get(t.spec.map) ?? 0) + 1);
      }
      const over = [...need].find(([m, n]) => !fits(m, n));
      if (!over) {
        for (const [m, n] of need) used.set(m, used.get(m)! + n);
        continue;
      }
      for (let e = 0; e < fresh.length; e += 2) counted[fresh[e]!]!.removeSlot(fresh[e + 1]!);
      const [m, n] = over;
      const io = this.io.get(m)!;
      const t = this.tables.find((x) => x.spec.map === m)!;
      const name = scope.names.get(o) ?? `service ${o}`;
      refused.push(o);
      errors.push({
        service: name,
        code: 'MAP_FULL',
        message: `map ${m} is full (${used.get(m)} of ${io.capacity} entries used, ${name} needs ${n} more): ` +
          `${name} keeps its previous state; raise bpf.mapSizes.${t.spec.sizeSetting} (then \`bpfproxy cleanup\` and a restart resize the pinned map)`,
      });
    }
    return refused;
  }

  // ---- writes ----

  private upsert(t: Table, epoch: number, excluded: (o: number) => boolean, failed: Set<number>, errors: SyncError[], released: number[][]): number {
    const io = this.io.get(t.spec.map)!;
    const kw = t.ks / 4;
    const vw = t.vs / 4;
    const { dstate, downer, dslot } = t;
    // NEW keys take their mirror slots now (room made once): a key desired
    // twice in one batch (a backend several services name) is found taken
    // and written once. CHANGED keys have their slots; the shared ones are
    // deduplicated through `written`.
    let fresh = 0;
    for (let i = 0; i < t.dn; i++) if (dstate[i] === NEW && !excluded(downer[i]!)) fresh++;
    t.reserve(t.size + fresh);
    const written = this.written.get(t);
    written?.clear();
    // The entries to write move to the front of the batch as they are picked
    // (owners of a shared entry that fails are found through the tables that
    // refer to it, so the batch may be rearranged): written from in place.
    let n = 0;
    for (let i = 0; i < t.dn; i++) {
      const state = dstate[i]!;
      if (state === SAME || excluded(downer[i]!)) continue;
      if (state === NEW) {
        const slot = t.claim(i);
        if (!t.index.added) continue;
        dslot[i] = slot;
      } else if (written) {
        written.insert(t.dk, i * kw);
        if (!written.added) continue;
      }
      if (i !== n) t.moveEntry(i, n);
      n++;
    }
    if (n === 0) return 0;
    const bad = new Set<number>();
    const ts = performance.now();
    let failures: EntryFailure[];
    try {
      this.faults?.beforeWrite(t.name, 'upsert', n);
      this.changed(t.spec.map);
      failures = io.write(u8(t.dk, n * kw), u8(t.dv, n * vw), n);
    } catch (err) {
      // Nothing of this batch is known written: the slots taken for it go back.
      for (let j = 0; j < n; j++) if (t.dstate[j] === NEW) t.unclaim(t.dslot[j]!);
      throw err;
    }
    this.timings.kernel += performance.now() - ts;
    for (const f of failures) {
      bad.add(f.index);
      const owners = t.spec.shared ? this.ownersReferring(t, t.dk, f.index * kw) : [t.downer[f.index]!];
      this.fail(io, t, f.errno, owners, failed, errors);
    }
    const ref = t.spec.refersTo ? this.table(t.spec.refersTo.table) : null;
    const refOff = t.spec.refersTo ? t.spec.refersTo.valueOffset / 4 : 0;
    const refReleased = ref ? released[this.tables.indexOf(ref)]! : [];
    const shared = t.spec.shared === true;
    const { dv, stamp } = t;
    let done = 0;
    for (let j = 0; j < n; j++) {
      const slot = t.dslot[j]!;
      const isNew = t.dstate[j] === NEW;
      if (bad.size > 0 && bad.has(j)) {
        if (isNew) t.unclaim(slot);
        continue;
      }
      if (ref && !isNew) this.unref(ref, t.vals, slot * vw + refOff, refReleased);
      t.fill(slot, dv, j * vw, shared ? 0 : t.downer[j]!, isNew);
      stamp[slot] = epoch;
      if (ref) this.addRef(ref, dv, j * vw + refOff);
      done++;
    }
    t.dn = n;
    return done;
  }

  private prune(
    t: Table, scope: CommitScope, epoch: number, excluded: (o: number) => boolean, failed: Set<number>, errors: SyncError[],
    releasedHere: number[], released: number[][],
  ): number {
    const io = this.io.get(t.spec.map)!;
    const victims: number[] = [];
    const { used } = t.index;
    if (t.spec.shared) {
      // Unwanted by any admitted service and named by nothing.
      // (A released slot may be listed more than once: stamp it as it is taken.)
      const take = (s: number) => {
        if (used[s] && t.stamp[s] !== epoch && t.refs[s]! <= 0) {
          victims.push(s);
          t.stamp[s] = epoch;
        }
      };
      if (scope.full) for (let s = 0; s < t.index.end; s++) take(s);
      else for (const s of releasedHere) take(s);
    } else if (scope.full) {
      for (let s = 0; s < t.index.end; s++) if (used[s] && t.stamp[s] !== epoch && !excluded(t.owner[s]!)) victims.push(s);
    } else {
      const slots: number[] = [];
      for (const o of scope.owners) t.slotsOf(o, slots);
      for (const s of slots) if (t.stamp[s] !== epoch && !excluded(t.owner[s]!)) victims.push(s);
    }
    if (victims.length === 0) return 0;
    const kw = t.ks / 4;
    const keys = new Uint32Array(victims.length * kw);
    const tk = t.index.keys;
    for (let j = 0; j < victims.length; j++) {
      const from = victims[j]! * kw;
      for (let w = 0; w < kw; w++) keys[j * kw + w] = tk[from + w]!;
    }
    const bad = new Set<number>();
    this.faults?.beforeWrite(t.name, 'delete', victims.length);
    this.changed(t.spec.map);
    const ts = performance.now();
    const failures = io.remove(u8(keys, keys.length), victims.length);
    this.timings.kernel += performance.now() - ts;
    for (const f of failures) {
      bad.add(f.index);
      this.fail(io, t, f.errno, t.spec.shared ? [] : [t.owner[victims[f.index]!]!], failed, errors);
    }
    const ref = t.spec.refersTo ? this.table(t.spec.refersTo.table) : null;
    const refOff = t.spec.refersTo ? t.spec.refersTo.valueOffset / 4 : 0;
    const refIdx = ref ? this.tables.indexOf(ref) : -1;
    let n = 0;
    victims.forEach((s, j) => {
      if (bad.has(j)) return;
      if (ref) this.unref(ref, t.vals, s * (t.vs / 4) + refOff, released[refIdx]!);
      t.remove(s);
      n++;
    });
    return n;
  }

  private fail(io: MapIO, t: Table, errno: number, owners: number[], failed: Set<number>, errors: SyncError[]): void {
    if (owners.length === 0) errors.push(this.describe(io, t.spec.sizeSetting, errno, ''));
    for (const o of owners) {
      if (failed.has(o)) continue;
      failed.add(o);
      errors.push(this.describe(io, t.spec.sizeSetting, errno, this.names.get(o) ?? `service ${o}`));
    }
  }

  /** The names of the sync in progress, for messages. */
  private names: OwnerNames = new Map<number, string>();

  /** Every owner whose entries in this batch name the shared key at words[off..]: who fails when writing it fails. */
  private ownersReferring(target: Table, words: Uint32Array, off: number): number[] {
    const out = new Set<number>();
    const kw = target.ks / 4;
    for (const t of this.tables) {
      if (t.spec.refersTo?.table !== target.name) continue;
      const vw = t.vs / 4;
      const at = t.spec.refersTo.valueOffset / 4;
      for (let i = 0; i < t.dn; i++) {
        let w = 0;
        while (w < kw && t.dv[i * vw + at + w] === words[off + w]) w++;
        if (w === kw) out.add(t.downer[i]!);
      }
    }
    return [...out];
  }

  private addRef(target: Table, words: Uint32Array, off: number): void {
    const s = target.find(words, off);
    if (s >= 0) target.refs[s]!++;
  }

  private unref(target: Table, words: Uint32Array, off: number, released: number[]): void {
    const s = target.find(words, off);
    if (s < 0) return;
    if (--target.refs[s]! <= 0) released.push(s);
  }

  /** Recomputes every reference count from the referring tables' values. */
  private recount(): void {
    for (const t of this.tables) if (t.spec.shared) t.refs.fill(0);
    for (const t of this.tables) {
      if (!t.spec.refersTo) continue;
      const ref = this.table(t.spec.refersTo.table);
      const off = t.spec.refersTo.valueOffset / 4;
      for (let s = 0; s < t.index.end; s++) if (t.index.used[s]) this.addRef(ref, t.vals, s * (t.vs / 4) + off);
    }
  }
}

/** The first `words` words of `a`, as bytes. */
function u8(a: Uint32Array, words: number): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, words * 4);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export { CHANGED, NEW, SAME };
