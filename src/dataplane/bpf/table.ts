// One pinned map (or one part of one), described once, with two flat halves:
// the mirror (the bytes last written, or read back from the kernel) and the
// desired batch (what this sync wants, encoded straight from the plan). Both
// are typed arrays: an entry costs no object, and a diff is a comparison of
// 32-bit words. Which service owns each entry is kept beside it, so a partial
// sync finds a service's entries without scanning the map, and a failure is
// pinned to the service it belongs to.
import { bucketsFor, FlatIndex, grown } from '../../util/flat-index.js';
import { Fingerprint } from './fingerprint.js';
import { bigArray, grownBig } from './fresh-memory.js';
import { flatAdopt } from './native.js';
import type { StructLayout } from './layout.js';

export interface TableSpec {
  /** Logical name, for messages ("frontends"). */
  readonly name: string;
  /** The pinned map that holds it. Several tables may share one map (see `holds`). */
  readonly map: string;
  readonly key: StructLayout<string>;
  readonly value: StructLayout<string>;
  /** The map-size setting that sizes `map` (bpf.mapSizes.NAME, --bpf-map-size NAME=N). */
  readonly sizeSetting: string;
  /**
   * Entries several services use (backends): owned by none, written while
   * any service wants them, deleted once no entry refers to them.
   */
  readonly shared?: boolean;
  /** For a map split over several tables: whether a dumped key (as 32-bit words at `off`) is this table's. */
  readonly holds?: (key: Uint32Array, off: number) => boolean;
  /** The service owning an entry read back from the map (key and value as 32-bit words; 0 for shared entries). */
  readonly ownerOf: (key: Uint32Array, koff: number, val: Uint32Array, voff: number) => number;
  /** A u32 in the value that names a key of another (shared) table: counted as a reference. */
  readonly refersTo?: { readonly table: string; readonly valueOffset: number };
}

/** Per desired entry, what the diff found. */
export const SAME = 0;
export const CHANGED = 1;
export const NEW = 2;

const NONE = -1;

export class Table {
  readonly ks: number;
  readonly vs: number;
  private readonly kw: number;
  private readonly vw: number;

  // ---- mirror ----
  readonly index: FlatIndex;
  vals: Uint32Array;
  owner: Uint32Array;
  /** How many entries of other tables name this entry (shared tables). */
  refs: Int32Array;
  /** The sync epoch in which a desired entry matched this slot. */
  stamp: Uint32Array;
  private next: Int32Array;
  private prev: Int32Array;
  /**
   * Owner -> first slot of its list: owners (service IDs) in a hash index of
   * their own, heads in a parallel array (no Map: a full sync links one
   * owner per service per table).
   */
  private readonly ownerIndex = new FlatIndex(1, 64);
  private headOf = new Int32Array(64);
  private readonly ownerKey = new Uint32Array(1);
  /** The owner last looked up and its slot in ownerIndex: a sync links a service's entries one after another. */
  private lastOwner = -1;
  private lastOwnerSlot = NONE;
  /** The mirror's order-independent fingerprint, as the C shim computes it over a dump. */
  readonly fp = new Fingerprint();

  // ---- desired batch ----
  dn = 0;
  dk: Uint32Array;
  dv: Uint32Array;
  /** DataViews over dk and dv, for encoders. */
  dkv: DataView;
  dvv: DataView;
  downer: Uint32Array;
  /** Mirror slot the entry matched, or -1. */
  dslot: Int32Array;
  /** SAME, CHANGED or NEW. */
  dstate: Uint8Array;

  constructor(readonly spec: TableSpec) {
    this.ks = spec.key.size;
    this.vs = spec.value.size;
    if (this.ks % 4 !== 0 || this.vs % 4 !== 0) throw new Error(`table ${spec.name}: key and value sizes must be multiples of 4`);
    this.kw = this.ks / 4;
    this.vw = this.vs / 4;
    this.index = new FlatIndex(this.kw, 1024);
    const cap = this.index.capacity;
    this.vals = new Uint32Array(cap * this.vw);
    this.owner = new Uint32Array(cap);
    // Reference counts only for shared tables, owner lists only for the others.
    const shared = spec.shared === true;
    this.refs = new Int32Array(shared ? cap : 0);
    this.stamp = new Uint32Array(cap);
    this.next = new Int32Array(shared ? 0 : cap);
    this.prev = new Int32Array(shared ? 0 : cap);
    this.index.onGrow = (c) => {
      this.vals = grownBig(this.vals, c * this.vw);
      this.owner = grownBig(this.owner, c);
      this.stamp = grownBig(this.stamp, c);
      if (shared) {
        this.refs = grownBig(this.refs, c);
      } else {
        this.next = grownBig(this.next, c);
        this.prev = grownBig(this.prev, c);
      }
    };
    this.dk = new Uint32Array(256 * this.kw);
    this.dv = new Uint32Array(256 * this.vw);
    this.dkv = new DataView(this.dk.buffer);
    this.dvv = new DataView(this.dv.buffer);
    this.downer = new Uint32Array(256);
    this.dslot = new Int32Array(256);
    this.dstate = new Uint8Array(256);
  }

  get name(): string { return this.spec.name; }
  get size(): number { return this.index.size; }

  // ---- the desired batch ----

  /** Starts a new batch: the last one's bytes are zeroed once, so encoders may leave padding alone. */
  resetBatch(): void {
    this.dk.fill(0, 0, this.dhigh * this.kw);
    this.dv.fill(0, 0, this.dhigh * this.vw);
    this.dn = 0;
    this.dhigh = 0;
  }

  /** Entries of the batch written since the last reset (dn may have shrunk since: moveEntry()). */
  private dhigh = 0;

  /** Appends a zeroed entry for `owner`; returns its index. Encode with dkv/dvv at index * ks / vs. */
  push(owner: number): number {
    const i = this.dn++;
    if (this.dn > this.downer.length) this.growBatch(this.dn * 2);
    if (this.dn > this.dhigh) this.dhigh = this.dn;
    this.downer[i] = owner;
    return i;
  }

  /**
   * Gives back the memory of a batch grown by a big sync (a full sync of a
   * large cluster): the next syncs are small, and the mirror is what stays.
   */
  releaseBatch(keep = 4096): void {
    if (this.downer.length <= keep * 4) return;
    this.detachBatch(keep);
  }

  /**
   * A sync into an empty mirror (the first sync into empty maps): the batch
   * becomes the mirror, without copying a byte. Its key words become the
   * index's key store, its values the mirror's values, its owners the
   * mirror's owners; nothing is diffed (everything is new). The batch is
   * compacted on the way: entries whose owner `skip` names are left out, and
   * a key met again (a backend several services name) is kept once; the
   * index and the fingerprint are filled in one pass in the C shim
   * (native/flat.c), the owner lists one owner's run at a time.
   * Returns n: the first n entries of the (former) batch are what to write
   * and what the mirror holds; an entry whose write fails is taken out with
   * remove(). The table then gets a new, empty batch.
   */
  adoptBatch(skip: ((owner: number) => boolean) | null): number {
    if (this.index.size !== 0) throw new Error(`table ${this.name}: adoptBatch needs an empty mirror`);
    const { kw, vw, dk, dv, downer } = this;
    const cap = downer.length;
    const dn = skip === null ? this.dn : this.leaveOut(skip);
    this.index.adopt(dk, cap, bigArray(Int32Array, bucketsFor(cap)));
    this.vals = dv;
    this.owner = downer;
    const shared = this.spec.shared === true;
    this.refs = bigArray(Int32Array, shared ? cap : 0);
    this.stamp = bigArray(Uint32Array, cap);
    this.next = bigArray(Int32Array, shared ? 0 : cap);
    this.prev = bigArray(Int32Array, shared ? 0 : cap);
    this.forgetOwners();
    // Registering and fingerprinting every entry runs once per table, in
    // code the JIT has not compiled yet: in C (native/flat.c) it costs a
    // cache miss per entry instead of more than the write itself.
    const fp = new Uint32Array(2);
    const n = this.index.claimAll((buckets, mask, used) => flatAdopt(dk, kw, dv, vw, downer, dn, buckets, mask, used, fp));
    this.fp.a = fp[0]!;
    this.fp.b = fp[1]!;
    if (shared) downer.fill(0, 0, n);
    else this.linkAll(n);
    this.detachBatch();
    return n;
  }

  /** Compacts the batch without the entries whose owner `skip` names; returns how many are left. */
  private leaveOut(skip: (owner: number) => boolean): number {
    const { kw, vw, dk, dv, downer } = this;
    let n = 0;
    for (let i = 0; i < this.dn; i++) {
      if (skip(downer[i]!)) continue;
      if (i !== n) {
        dk.copyWithin(n * kw, i * kw, (i + 1) * kw);
        dv.copyWithin(n * vw, i * vw, (i + 1) * vw);
        downer[n] = downer[i]!;
      }
      n++;
    }
    return n;
  }

  /** A new, small, empty batch; the old arrays are left to whoever holds them (the mirror, after adoptBatch). */
  private detachBatch(keep = 256): void {
    this.dn = 0;
    this.dhigh = 0;
    this.dk = new Uint32Array(keep * this.kw);
    this.dv = new Uint32Array(keep * this.vw);
    this.dkv = new DataView(this.dk.buffer);
    this.dvv = new DataView(this.dv.buffer);
    this.downer = new Uint32Array(keep);
    this.dslot = new Int32Array(keep);
    this.dstate = new Uint8Array(keep);
  }

  /** Makes room for `n` entries in the batch, so encoding does not grow it step by step. */
  reserveBatch(n: number): void {
    if (n > this.downer.length) this.growBatch(n);
  }

  private growBatch(n: number): void {
    this.dk = grownBig(this.dk, n * this.kw);
    this.dv = grownBig(this.dv, n * this.vw);
    this.dkv = new DataView(this.dk.buffer);
    this.dvv = new DataView(this.dv.buffer);
    this.downer = grownBig(this.downer, n);
  }

  /**
   * Compares every desired entry with the mirror. Nothing is stamped here:
   * only what admitted services want survives the prune (sync.ts stamps it
   * after admission).
   */
  diff(): void {
    // Sized here, not with the batch: a sync into an empty mirror never diffs (Table.adoptBatch).
    if (this.dslot.length < this.dn) {
      this.dslot = new Int32Array(this.downer.length);
      this.dstate = new Uint8Array(this.downer.length);
    }
    const { kw, vw, dk, dv, vals } = this;
    if (this.index.size === 0) {
      // An empty mirror (the first sync into empty maps): everything is new, nothing to look up.
      this.dslot.fill(NONE, 0, this.dn);
      this.dstate.fill(NEW, 0, this.dn);
      return;
    }
    for (let i = 0; i < this.dn; i++) {
      const slot = this.index.find(dk, i * kw);
      this.dslot[i] = slot;
      if (slot < 0) {
        this.dstate[i] = NEW;
        continue;
      }
      let w = 0;
      const a = slot * vw;
      const b = i * vw;
      while (w < vw && vals[a + w] === dv[b + w]) w++;
      this.dstate[i] = w === vw ? SAME : CHANGED;
    }
  }

  // ---- the mirror ----

  /** Slot of a key given as words, or -1. */
  find(key: Uint32Array, off = 0): number {
    return this.index.find(key, off);
  }

  /** Records a written entry: key and value words from the given arrays. Returns its slot. */
  put(key: Uint32Array, koff: number, val: Uint32Array, voff: number, owner: number): number {
    const slot = this.index.insert(key, koff);
    const { kw, vw } = this;
    if (!this.index.added) this.fp.add(this.index.keys, slot * kw, kw, this.vals, slot * vw, vw, -1);
    this.fp.add(key, koff, kw, val, voff, vw, 1);
    if (this.index.added) {
      if (this.spec.shared) this.refs[slot] = 0;
      this.stamp[slot] = 0;
      this.link(slot, owner);
    } else if (this.owner[slot] !== owner) {
      this.unlink(slot);
      this.link(slot, owner);
    }
    const vals = this.vals;
    const base = slot * this.vw;
    for (let w = 0; w < this.vw; w++) vals[base + w] = val[voff + w]!;
    return slot;
  }

  /**
   * Takes a mirror slot for desired entry i's key before it is written (one
   * hash lookup for the check and the insert); `index.added` tells whether
   * the key was absent. The value is filled in by fill() once the write went
   * through; a failed write gives the slot back with unclaim().
   */
  claim(i: number): number {
    const slot = this.index.insert(this.dk, i * this.kw);
    if (this.index.added && this.spec.shared) this.refs[slot] = 0;
    return slot;
  }

  /** Gives back a slot claimed for a key whose write failed. */
  unclaim(slot: number): void {
    this.index.removeSlot(slot);
  }

  /**
   * Records the written value of a claimed slot: `fresh` when the key was
   * not in the mirror before this sync (no old value to take out of the
   * fingerprint, no owner list to leave).
   */
  fill(slot: number, val: Uint32Array, voff: number, owner: number, fresh: boolean): void {
    const { kw, vw, vals } = this;
    const keys = this.index.keys;
    const ko = slot * kw;
    const base = slot * vw;
    if (fresh) {
      this.link(slot, owner);
    } else {
      this.fp.add(keys, ko, kw, vals, base, vw, -1);
      if (this.owner[slot] !== owner) {
        this.unlink(slot);
        this.link(slot, owner);
      }
    }
    for (let w = 0; w < vw; w++) vals[base + w] = val[voff + w]!;
    this.fp.add(keys, ko, kw, vals, base, vw, 1);
  }

  remove(slot: number): void {
    if (!this.index.used[slot]) return;
    this.fp.add(this.index.keys, slot * this.kw, this.kw, this.vals, slot * this.vw, this.vw, -1);
    this.unlink(slot);
    this.index.removeSlot(slot);
  }

  clear(): void {
    this.index.clear();
    this.forgetOwners();
    this.fp.reset();
  }

  /** Slots owned by `owner`, collected first so the caller may remove while walking. */
  slotsOf(owner: number, out: number[]): void {
    const o = this.ownerSlot(owner, false);
    if (o === NONE) return;
    for (let s = this.headOf[o]!; s !== NONE; s = this.next[s]!) out.push(s);
  }

  /** Owners that have entries. */
  owners(): number[] {
    const out: number[] = [];
    const { used, keys } = this.ownerIndex;
    for (let o = 0; o < this.ownerIndex.end; o++) if (used[o]) out.push(keys[o]!);
    return out;
  }

  /** Whether `slot` holds the same value bytes as desired entry i. */
  valueWord(slot: number, w: number): number {
    return this.vals[slot * this.vw + w]!;
  }

  keyWords(slot: number): Uint32Array {
    return this.index.keys.subarray(slot * this.kw, (slot + 1) * this.kw);
  }

  valueWords(slot: number): Uint32Array {
    return this.vals.subarray(slot * this.vw, (slot + 1) * this.vw);
  }

  /** Whether dumped entry i (keys and values as words) is in the mirror with the same value. */
  holdsEntry(keys: Uint32Array, vals: Uint32Array, i: number): boolean {
    const slot = this.index.find(keys, i * this.kw);
    if (slot < 0) return false;
    const vw = this.vw;
    const a = slot * vw;
    const b = i * vw;
    for (let w = 0; w < vw; w++) if (this.vals[a + w] !== vals[b + w]) return false;
    return true;
  }

  /** Replaces the mirror with the dumped entries `pick` selects (all when null). */
  rebuild(keys: Uint32Array, vals: Uint32Array, n: number, pick: ((i: number) => boolean) | null): void {
    this.clear();
    const { kw, vw } = this;
    const { ownerOf } = this.spec;
    for (let i = 0; i < n; i++) if (!pick || pick(i)) this.put(keys, i * kw, vals, i * vw, ownerOf(keys, i * kw, vals, i * vw));
  }

  /** Makes room for `n` entries in the mirror without rehashing on the way. */
  reserve(n: number): void {
    this.index.reserve(n);
  }

  /** Moves desired entry i to position j (j < i): the batch is compacted as it is picked. */
  moveEntry(i: number, j: number): void {
    const { kw, vw, dk, dv } = this;
    for (let w = 0; w < kw; w++) dk[j * kw + w] = dk[i * kw + w]!;
    for (let w = 0; w < vw; w++) dv[j * vw + w] = dv[i * vw + w]!;
    this.downer[j] = this.downer[i]!;
    this.dslot[j] = this.dslot[i]!;
    this.dstate[j] = this.dstate[i]!;
  }

  private forgetOwners(): void {
    this.ownerIndex.clear();
    this.lastOwner = -1;
    this.lastOwnerSlot = NONE;
  }

  /** The owner's slot in ownerIndex (added, with an empty list, when `add`), or NONE. */
  private ownerSlot(owner: number, add: boolean): number {
    if (owner === this.lastOwner) return this.lastOwnerSlot;
    this.ownerKey[0] = owner;
    const idx = this.ownerIndex;
    const o = add ? idx.insert(this.ownerKey, 0) : idx.find(this.ownerKey, 0);
    if (o === NONE) return NONE;
    if (add && idx.added) {
      if (o >= this.headOf.length) this.headOf = grown(this.headOf, idx.capacity);
      this.headOf[o] = NONE;
    }
    this.lastOwner = owner;
    this.lastOwnerSlot = o;
    return o;
  }

  private link(slot: number, owner: number): void {
    this.owner[slot] = owner;
    // Shared entries belong to no service: no list (nothing walks one).
    if (this.spec.shared) return;
    const o = this.ownerSlot(owner, true);
    const head = this.headOf[o]!;
    this.prev[slot] = NONE;
    this.next[slot] = head;
    if (head !== NONE) this.prev[head] = slot;
    this.headOf[o] = slot;
  }

  /**
   * link() for slots 0..n-1, a run of one owner's consecutive slots at a
   * time (an encoder writes a service's entries together): the lists come
   * out as n calls of link() would make them, with one owner lookup per run.
   */
  private linkAll(n: number): void {
    const { owner, next, prev } = this;
    // Room for every owner at once: the owner index does not grow run by run.
    let runs = n > 0 ? 1 : 0;
    for (let i = 1; i < n; i++) if (owner[i] !== owner[i - 1]) runs++;
    this.ownerIndex.reserve(runs);
    this.headOf = grown(this.headOf, this.ownerIndex.capacity);
    for (let a = 0; a < n; ) {
      const o = owner[a]!;
      let b = a + 1;
      while (b < n && owner[b] === o) b++;
      const slot = this.ownerSlot(o, true);
      const head = this.headOf[slot]!;
      // Each slot is put in front of the one before it: b-1 -> ... -> a -> head.
      next[a] = head;
      if (head !== NONE) prev[head] = a;
      for (let s = a + 1; s < b; s++) {
        next[s] = s - 1;
        prev[s - 1] = s;
      }
      prev[b - 1] = NONE;
      this.headOf[slot] = b - 1;
      a = b;
    }
  }

  private unlink(slot: number): void {
    if (this.spec.shared) return;
    const p = this.prev[slot]!;
    const n = this.next[slot]!;
    if (p !== NONE) {
      this.next[p] = n;
    } else {
      const o = this.ownerSlot(this.owner[slot]!, false);
      if (n !== NONE) {
        this.headOf[o] = n;
      } else {
        // The owner's last entry: the owner leaves the index (its slot may go to another owner).
        this.ownerIndex.removeSlot(o);
        this.lastOwner = -1;
        this.lastOwnerSlot = NONE;
      }
    }
    if (n !== NONE) this.prev[n] = p;
  }
}
