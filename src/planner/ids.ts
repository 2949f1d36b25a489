// Stable numeric IDs. A planned service keeps its ID while it exists; a
// backend (protocol, address, port) keeps its ID while any service uses it.
// After a restart the IDs the datapath still holds are taken over (its
// affinity and flow entries name them), and new IDs are handed out above all
// known ones, so an ID is not reused while stale state could still name it.
// Everything is kept in typed arrays (FlatIndex): at 300,000 backends a
// Map of string keys and {id, refs} records cost 73 MB of heap and much of
// every full plan's garbage collection.
import { AddressIds, KEY_WORDS } from './address-key.js';
import { FlatIndex, grown } from '../util/flat-index.js';

/**
 * The IDs 1..max: which to hand out next, and which are taken. Fresh IDs go
 * up from above every ID an earlier run left (`floor`), so until they wrap
 * around the only IDs that can be taken out of order are the hinted ones
 * claimed at or below `floor`: only those are remembered. The first wrap
 * asks the owner for every ID in use and remembers all of them from then on
 * (a set of 300,000 IDs costs ~9 MB of typed arrays and a hash insert and
 * remove per ID: not worth paying for the wrap that ~4 billion allocations
 * bring).
 */
export class IdPool {
  /** IDs taken that allocation must step around: claimed ones until the first wrap, every one after. */
  private readonly taken = new FlatIndex(1);
  private readonly probe = new Uint32Array(1);
  private next: number;
  private wrapped = false;

  /**
   * @param max the largest ID the dataplane can store.
   * @param floor the largest ID an earlier run left behind: fresh IDs start above it.
   * @param inUse every ID its owner holds, asked once, when the IDs first wrap around.
   */
  constructor(private readonly max: number, private readonly floor: number, private readonly inUse: () => Iterable<number>) {
    this.next = floor + 1;
  }

  /**
   * Takes `id`, one an earlier run left (at most `floor`), when it is free;
   * false otherwise (0 is never an ID).
   */
  claim(id: number): boolean {
    if (id < 1 || id > this.max || (id > this.floor && !this.wrapped) || this.isTaken(id)) return false;
    this.mark(id);
    return true;
  }

  /** Takes a fresh ID: the next above every one handed out, wrapping to the lowest free one. */
  allocate(): number {
    // Below the wrap, `next` has never been handed out and is above every claimable ID.
    if (!this.wrapped && this.next <= this.max) return this.next++;
    if (!this.wrapped) {
      this.wrapped = true;
      for (const id of this.inUse()) this.mark(id);
    }
    const id = this.fresh();
    this.mark(id);
    return id;
  }

  free(id: number): void {
    this.probe[0] = id;
    const slot = this.taken.find(this.probe, 0);
    if (slot >= 0) this.taken.removeSlot(slot);
  }

  private isTaken(id: number): boolean {
    this.probe[0] = id;
    return this.taken.find(this.probe, 0) >= 0;
  }

  private mark(id: number): void {
    this.probe[0] = id;
    this.taken.insert(this.probe, 0);
  }

  private fresh(): number {
    if (this.next <= this.max && !this.isTaken(this.next)) return this.next++;
    // Wrapped (or the next one is taken): the lowest free ID above the
    // counter, then from 1. Only reached after ~max allocations.
    for (let i = 0; i < this.max; i++) {
      const id = ((this.next - 1 + i) % this.max) + 1;
      if (!this.isTaken(id)) {
        this.next = id + 1;
        return id;
      }
    }
    throw new Error(`all ${this.max} IDs are in use`);
  }
}

/** Keys of one width, each with an ID and a reference count, in parallel typed arrays indexed by slot. */
class CountedKeys {
  readonly index: FlatIndex;
  ids: Uint32Array;
  refs: Uint32Array;

  constructor(words: number) {
    this.index = new FlatIndex(words, 1024);
    this.ids = new Uint32Array(this.index.capacity);
    this.refs = new Uint32Array(this.index.capacity);
    this.index.onGrow = (capacity) => {
      this.ids = grown(this.ids, capacity);
      this.refs = grown(this.refs, capacity);
    };
  }
}

/** Slots of IPv6 keys carry this bit; IPv4 slots are plain. */
const V6_SLOT = 1 << 30;
/** IPv4 keys are stored as two words (address, then protocol/family/port): three fewer than KEY_WORDS. */
const V4_WORDS = 2;

function isIPv6Key(src: Uint32Array, off: number): boolean {
  return ((src[off + 4]! >>> 16) & 0xff) === 6;
}

/**
 * Reference-counted IDs of binary keys (address-key.ts): a key gets an ID on
 * its first acquire and gives it back with its last release. A key's slot
 * (what acquire() returns) does not move while it holds a reference, so
 * holders may keep slots rather than keys. IPv4 keys live in a table of
 * two-word keys, IPv6 ones in a table of full keys: at 300,000 IPv4
 * backends the five-word keys were 10.5 of this table's 21.5 MB.
 */
export class IdAllocator {
  private readonly v4 = new CountedKeys(V4_WORDS);
  private readonly v6 = new CountedKeys(KEY_WORDS);
  private readonly short = new Uint32Array(V4_WORDS);
  private readonly pool: IdPool;

  /**
   * @param max the largest ID the dataplane can store.
   * @param hints key -> ID found in the datapath of an earlier run.
   */
  constructor(max: number, private hints: AddressIds | null = null) {
    this.pool = new IdPool(max, hints?.highestAtMost(max) ?? 0, () => this.idsInUse());
  }

  /** The ID of the key at src[off..], 0 when it has none. */
  get(src: Uint32Array, off: number): number {
    const slot = this.find(src, off);
    return slot < 0 ? 0 : this.idAt(slot);
  }

  /**
   * Counts a reference to the key at src[off..], giving it an ID on first
   * use (the hinted one when it is free). Returns the key's slot.
   */
  acquire(src: Uint32Array, off: number): number {
    const six = isIPv6Key(src, off);
    const t = six ? this.v6 : this.v4;
    const slot = six ? t.index.insert(src, off) : t.index.insert(this.shorten(src, off), 0);
    if (t.index.added) {
      // No hash of the key against an empty table (a first start has no hints).
      const hinted = this.hints && this.hints.size > 0 ? this.hints.find(src, off) : 0;
      t.ids[slot] = 0; // not an ID yet: the pool may ask which IDs are in use
      t.ids[slot] = this.pool.claim(hinted) ? hinted : this.pool.allocate();
      t.refs[slot] = 0;
    }
    t.refs[slot]!++;
    return six ? slot | V6_SLOT : slot;
  }

  /** The ID of the key in `slot`, as acquire() returned it. */
  idAt(slot: number): number {
    return slot & V6_SLOT ? this.v6.ids[slot & ~V6_SLOT]! : this.v4.ids[slot]!;
  }

  /** Drops one reference of the key in `slot`; the ID is freed with the last. */
  release(slot: number): void {
    const t = slot & V6_SLOT ? this.v6 : this.v4;
    const s = slot & ~V6_SLOT;
    if (!t.index.used[s]) return;
    if (--t.refs[s]! > 0) return;
    this.pool.free(t.ids[s]!);
    t.index.removeSlot(s);
  }

  /** Drops one reference of the key at src[off..], as release() does for its slot; nothing when it has no ID. */
  releaseKey(src: Uint32Array, off: number): void {
    const slot = this.find(src, off);
    if (slot >= 0) this.release(slot);
  }

  /** The slot of the key at src[off..], as acquire() returns it; -1 when it has no ID. */
  private find(src: Uint32Array, off: number): number {
    if (!isIPv6Key(src, off)) return this.v4.index.find(this.shorten(src, off), 0);
    const slot = this.v6.index.find(src, off);
    return slot < 0 ? -1 : slot | V6_SLOT;
  }

  /** The two-word form of an IPv4 key (address, protocol/family/port), in scratch. */
  private shorten(src: Uint32Array, off: number): Uint32Array {
    this.short[0] = src[off]!;
    this.short[1] = src[off + 4]!;
    return this.short;
  }

  private *idsInUse(): Iterable<number> {
    for (const t of [this.v4, this.v6]) {
      for (let s = 0; s < t.index.end; s++) if (t.index.used[s] && t.ids[s]) yield t.ids[s]!;
    }
  }

  /** Sizes the IPv4 table for `keys` keys at once, rather than by doubling as they come (each doubling rehashes every key). */
  reserve(keys: number): void {
    this.v4.index.reserve(keys);
  }

  /** Hints only matter until every restored object has been planned once. */
  dropHints(): void {
    this.hints = null;
  }

  get size(): number {
    return this.v4.index.size + this.v6.index.size;
  }
}
