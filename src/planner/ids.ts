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

/**
 * Reference-counted IDs of binary keys (address-key.ts): a key gets an ID on
 * its first acquire and gives it back with its last release. A key's slot
 * (its place in the parallel arrays) does not move while it holds a
 * reference, so holders keep slots, not keys.
 */
export class IdAllocator {
  private readonly index = new FlatIndex(KEY_WORDS, 1024);
  /** Per slot: the key's ID and how many holders it has. */
  private ids = new Uint32Array(this.index.capacity);
  private refs = new Uint32Array(this.index.capacity);
  private readonly pool: IdPool;

  /**
   * @param max the largest ID the dataplane can store.
   * @param hints key -> ID found in the datapath of an earlier run.
   */
  constructor(max: number, private hints: AddressIds | null = null) {
    this.pool = new IdPool(max, hints?.highestAtMost(max) ?? 0, () => this.idsInUse());
    this.index.onGrow = (capacity) => {
      this.ids = grown(this.ids, capacity);
      this.refs = grown(this.refs, capacity);
    };
  }

  /** The ID of the key at src[off..], 0 when it has none. */
  get(src: Uint32Array, off: number): number {
    const slot = this.index.find(src, off);
    return slot < 0 ? 0 : this.ids[slot]!;
  }

  /**
   * Counts a reference to the key at src[off..], giving it an ID on first
   * use (the hinted one when it is free). Returns the key's slot.
   */
  acquire(src: Uint32Array, off: number): number {
    const slot = this.index.insert(src, off);
    if (this.index.added) {
      const hinted = this.hints?.find(src, off) ?? 0;
      this.ids[slot] = 0; // not an ID yet: the pool may ask which IDs are in use
      this.ids[slot] = this.pool.claim(hinted) ? hinted : this.pool.allocate();
      this.refs[slot] = 0;
    }
    this.refs[slot]!++;
    return slot;
  }

  /** The ID of the key in `slot`, as acquire() returned it. */
  idAt(slot: number): number {
    return this.ids[slot]!;
  }

  /** Drops one reference of the key in `slot`; the ID is freed with the last. */
  release(slot: number): void {
    if (!this.index.used[slot]) return;
    if (--this.refs[slot]! > 0) return;
    this.pool.free(this.ids[slot]!);
    this.index.removeSlot(slot);
  }

  private *idsInUse(): Iterable<number> {
    for (let s = 0; s < this.index.end; s++) if (this.index.used[s] && this.ids[s]) yield this.ids[s]!;
  }

  /** Hints only matter until every restored object has been planned once. */
  dropHints(): void {
    this.hints = null;
  }

  get size(): number {
    return this.index.size;
  }
}
