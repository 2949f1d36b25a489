// An open-addressing hash index over fixed-width binary keys, made of typed
// arrays only: no object, string or boxed number per entry, so a table of a
// million keys costs the garbage collector nothing to trace. Keys are W
// 32-bit words; each key lives in a numbered slot (0..capacity-1) and the
// caller keeps whatever it associates with a key in parallel arrays indexed
// by slot. Slots of removed keys are reused. Linear probing with
// backward-shift deletion: no tombstones, so lookups stay short however many
// keys come and go.

import { fmix, mixWord } from './murmur.js';

const EMPTY = -1;

export class FlatIndex {
  /** Key words, slot * words. */
  keys: Uint32Array;
  /** Whether a slot holds a key. */
  used: Uint8Array;
  /** Bucket -> slot, or EMPTY. Power-of-two size, at most half full. */
  private buckets: Int32Array;
  private mask: number;
  /** Free slots below `top`, as a stack (allocated by the first removal). */
  private free: Int32Array = new Int32Array(0);
  private freeCount = 0;
  /** Slots 0..top-1 have been handed out at least once. */
  private top = 0;
  private count = 0;
  /** Called after the slot arrays grew, so the caller grows its parallel arrays. */
  onGrow: ((capacity: number) => void) | null = null;

  constructor(readonly words: number, initialCapacity = 64) {
    const cap = Math.max(16, initialCapacity);
    this.keys = new Uint32Array(cap * words);
    this.used = new Uint8Array(cap);
    this.buckets = new Int32Array(bucketsFor(cap)).fill(EMPTY);
    this.mask = this.buckets.length - 1;
  }

  get size(): number { return this.count; }
  get capacity(): number { return this.used.length; }
  /** One past the highest slot ever used: iterate 0..end and test `used`. */
  get end(): number { return this.top; }

  /** The slot of the key at src[off..off+words), or -1. */
  find(src: Uint32Array, off: number): number {
    const w = this.words;
    const keys = this.keys;
    for (let b = hash(src, off, w) & this.mask; ; b = (b + 1) & this.mask) {
      const s = this.buckets[b]!;
      if (s === EMPTY) {
        this.missAt = b;
        return -1;
      }
      let i = 0;
      const base = s * w;
      while (i < w && keys[base + i] === src[off + i]) i++;
      if (i === w) return s;
    }
  }

  /** The slot of the key, adding it when absent. `added` tells which happened. */
  insert(src: Uint32Array, off: number): number {
    if (this.freeCount === 0 && this.top === this.capacity) this.grow();
    const found = this.find(src, off);
    if (found >= 0) {
      this.added = false;
      return found;
    }
    this.added = true;
    const slot = this.freeCount > 0 ? this.free[--this.freeCount]! : this.top++;
    const w = this.words;
    // A loop, not keys.set(src.subarray(...)): a subarray is a new object per insert.
    const base = slot * w;
    for (let i = 0; i < w; i++) this.keys[base + i] = src[off + i]!;
    this.used[slot] = 1;
    this.count++;
    // The empty bucket find() stopped at: one hash per insert, not two.
    this.buckets[this.missAt] = slot;
    return slot;
  }

  /** The empty bucket where the last find() that missed stopped. */
  private missAt = 0;

  /** Set by insert(): whether the key was new. */
  added = false;

  /**
   * Makes `keys` (`capacity` keys of `words` words) the key store of this
   * empty index, without copying: slot i is key i of it. Keys are then
   * registered one by one with claimAt(). Lets a caller that encoded a batch
   * of keys keep that very buffer as its index (a first sync into empty
   * maps: the batch written is the mirror), so the bytes are stored once.
   * `buckets` (bucketsFor(capacity) long) lets the caller choose its memory.
   */
  adopt(keys: Uint32Array, capacity: number, buckets = new Int32Array(bucketsFor(capacity))): void {
    if (this.count !== 0) throw new Error('FlatIndex.adopt: the index is not empty');
    if (keys.length < capacity * this.words) throw new Error('FlatIndex.adopt: the key store is smaller than its capacity');
    this.keys = keys;
    this.used = new Uint8Array(capacity);
    this.free = new Int32Array(0);
    this.freeCount = 0;
    this.top = 0;
    if (buckets.length !== bucketsFor(capacity)) throw new Error('FlatIndex.adopt: buckets not sized by bucketsFor(capacity)');
    this.buckets = buckets.fill(EMPTY);
    this.mask = this.buckets.length - 1;
  }

  /**
   * Registers the key already stored in `slot` (at or past `end`: slots are
   * claimed in increasing order). When an equal key is held, nothing is
   * registered and its slot is returned; otherwise `slot`.
   */
  claimAt(slot: number): number {
    if (slot < this.top) throw new Error(`FlatIndex.claimAt: slot ${slot} is below end ${this.top}`);
    const found = this.find(this.keys, slot * this.words);
    if (found >= 0) return found;
    this.used[slot] = 1;
    this.count++;
    this.top = slot + 1;
    this.buckets[this.missAt] = slot;
    return slot;
  }

  /**
   * Registers slots 0..n-1 of a just-adopted key store in one step, as
   * claimAt() for each would: `claim` fills the buckets (and `used`) and
   * returns n, the slots it registered. For bulk passes done elsewhere (the C
   * shim's, over a first sync's batches: dataplane/bpf/table.ts).
   */
  claimAll(claim: (buckets: Int32Array, mask: number, used: Uint8Array) => number): number {
    if (this.count !== 0 || this.top !== 0) throw new Error('FlatIndex.claimAll: the index is not empty');
    const n = claim(this.buckets, this.mask, this.used);
    this.top = n;
    this.count = n;
    return n;
  }

  /** The buckets and their mask, for bulk lookups done elsewhere (read only). */
  get table(): { buckets: Int32Array; mask: number } {
    return { buckets: this.buckets, mask: this.mask };
  }

  /** Removes the key in `slot`; the slot may be handed out again. */
  removeSlot(slot: number): void {
    if (!this.used[slot]) return;
    const w = this.words;
    const mask = this.mask;
    let b = hash(this.keys, slot * w, w) & mask;
    while (this.buckets[b] !== slot) b = (b + 1) & mask;
    // Backward shift: pull later members of the probe run into the hole.
    let hole = b;
    for (let j = (hole + 1) & mask; ; j = (j + 1) & mask) {
      const s = this.buckets[j]!;
      if (s === EMPTY) break;
      const home = hash(this.keys, s * w, w) & mask;
      // Move s into the hole when its home is not cyclically in (hole, j].
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        this.buckets[hole] = s;
        hole = j;
      }
    }
    this.buckets[hole] = EMPTY;
    this.used[slot] = 0;
    if (this.freeCount === this.free.length) this.free = grown(this.free, Math.max(64, this.freeCount * 2));
    this.free[this.freeCount++] = slot;
    this.count--;
  }

  /**
   * Removes every key. In proportion to the keys held when they are few
   * against the table's size (an index grown once by a big sync and then
   * cleared before every small one must not cost its whole size each time).
   */
  clear(): void {
    if (this.count * 8 < this.buckets.length) {
      // Find every key's bucket first, then empty them: emptying while
      // probing would cut the probe runs of the keys not yet found.
      const w = this.words;
      const found: number[] = [];
      for (let s = 0; s < this.top; s++) {
        if (!this.used[s]) continue;
        let b = hash(this.keys, s * w, w) & this.mask;
        while (this.buckets[b] !== s) b = (b + 1) & this.mask;
        found.push(b);
        this.used[s] = 0;
      }
      for (const b of found) this.buckets[b] = EMPTY;
    } else {
      this.buckets.fill(EMPTY);
      this.used.fill(0, 0, this.top);
    }
    this.freeCount = 0;
    this.top = 0;
    this.count = 0;
  }

  private place(slot: number): void {
    const w = this.words;
    let b = hash(this.keys, slot * w, w) & this.mask;
    while (this.buckets[b] !== EMPTY) b = (b + 1) & this.mask;
    this.buckets[b] = slot;
  }

  /** Grows, once, to hold `n` keys. */
  reserve(n: number): void {
    if (n > this.capacity) this.grow(n);
  }

  private grow(atLeast = 0): void {
    let cap = this.capacity * 2;
    while (cap < atLeast) cap *= 2;
    const keys = new Uint32Array(cap * this.words);
    keys.set(this.keys);
    this.keys = keys;
    const used = new Uint8Array(cap);
    used.set(this.used);
    this.used = used;
    // The free stack is kept: slots removed before the growth are still free (and only they).
    this.buckets = new Int32Array(bucketsFor(cap)).fill(EMPTY);
    this.mask = this.buckets.length - 1;
    for (let s = 0; s < this.top; s++) if (this.used[s]) this.place(s);
    this.onGrow?.(cap);
  }
}

/**
 * Buckets for `capacity` slots: a power of two at least 1.5 times as many,
 * so the table is at most two-thirds full (a capacity that is a power of two,
 * as growth makes it, gets twice as many). The buckets are the index's
 * largest array and the one every lookup misses the cache in.
 */
export function bucketsFor(capacity: number): number {
  let n = 32;
  while (n < capacity * 1.5) n *= 2;
  return n;
}

/** murmur3's mixing over W words: cheap, and spreads sequential IDs and addresses well (native/hashes.h, key_hash, is the same). */
export function hash(src: Uint32Array, off: number, w: number): number {
  let h = 0x9747b28c ^ w;
  for (let i = 0; i < w; i++) h = mixWord(h, src[off + i]!);
  return fmix(h) >>> 0;
}

/** Grows a typed array to `capacity` elements, keeping its contents. */
export function grown<T extends Uint8Array | Uint16Array | Uint32Array | Int32Array | Float64Array>(a: T, capacity: number): T {
  if (a.length >= capacity) return a;
  const out = new (a.constructor as new (n: number) => T)(capacity);
  out.set(a);
  return out;
}
