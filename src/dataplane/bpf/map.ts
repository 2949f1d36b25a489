// A pinned map, written in batches: one syscall per batch, and when an entry
// fails, the rest of the batch still goes through and the caller learns which
// entries failed and why (a full map, most often).
import * as native from './native.js';
import type { MapInfo } from './native.js';
import type { EntryFailure, MapIO } from './sync.js';

const ENOENT = 2;
const ENOSPC = 28;

export type { EntryFailure };

export class BpfMap implements MapIO {
  readonly info: MapInfo;

  constructor(readonly name: string, readonly fd: number) {
    this.info = native.mapInfo(fd);
  }

  get keySize(): number { return this.info.keySize; }
  get valueSize(): number { return this.info.valueSize; }
  get capacity(): number { return this.info.maxEntries; }

  /** Writes n entries; fill(i, keys, keyOff, values, valOff) encodes entry i. */
  update(n: number, fill: (i: number, keys: Buffer, keyOff: number, values: Buffer, valOff: number) => void): EntryFailure[] {
    if (n === 0) return [];
    const { keySize: ks, valueSize: vs } = this;
    const keys = Buffer.alloc(n * ks);
    const values = Buffer.alloc(n * vs);
    for (let i = 0; i < n; i++) fill(i, keys, i * ks, values, i * vs);
    return this.write(keys, values, n);
  }

  /**
   * A bench seam: sees every batch written, before it goes to the kernel, so
   * a bench can replay the same batch syscalls alone (bench/dataplane.ts).
   * Null in production.
   */
  static tap: ((map: BpfMap, keys: Uint8Array, values: Uint8Array, n: number) => void) | null = null;

  /** Writes n packed entries in one batch syscall (more when an entry fails: the rest still goes in). */
  write(keysIn: Uint8Array, valuesIn: Uint8Array, n: number): EntryFailure[] {
    if (n === 0) return [];
    BpfMap.tap?.(this, keysIn, valuesIn, n);
    const { keySize: ks, valueSize: vs } = this;
    const keys = asBuffer(keysIn);
    const values = asBuffer(valuesIn);
    const failures: EntryFailure[] = [];
    let start = 0;
    while (start < n) {
      const count = n - start;
      const r = native.updateBatch(this.fd, keys.subarray(start * ks), values.subarray(start * vs), count);
      if (r.errno === 0) break;
      // The kernel stopped at entry start + done: record it, go on after it.
      failures.push({ index: start + r.done, errno: -r.errno });
      start += r.done + 1;
    }
    return failures;
  }

  /** Deletes n keys. Keys already gone count as deleted. */
  delete(n: number, fill: (i: number, keys: Buffer, keyOff: number) => void): EntryFailure[] {
    if (n === 0) return [];
    const keys = Buffer.alloc(n * this.keySize);
    for (let i = 0; i < n; i++) fill(i, keys, i * this.keySize);
    return this.remove(keys, n);
  }

  /** Deletes n packed keys. Keys already gone count as deleted. */
  remove(keysIn: Uint8Array, n: number): EntryFailure[] {
    if (n === 0) return [];
    const ks = this.keySize;
    const keys = asBuffer(keysIn);
    const failures: EntryFailure[] = [];
    let start = 0;
    while (start < n) {
      const r = native.deleteBatch(this.fd, keys.subarray(start * ks), n - start);
      if (r.errno === 0) break;
      if (-r.errno !== ENOENT) failures.push({ index: start + r.done, errno: -r.errno });
      start += r.done + 1;
    }
    return failures;
  }

  /**
   * Every entry, as contiguous key and value buffers. `expected` is how many
   * entries the caller believes the map holds: buffers are sized for that
   * (plus a margin) rather than for the map's capacity, and the dump is
   * retried at full capacity only when the map holds more.
   */
  dump(expected = this.capacity): { keys: Buffer; values: Buffer; count: number; valueStride: number } {
    const perCpu = [5, 6, 10].includes(this.info.type); // PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH
    const valueStride = perCpu ? Math.ceil(this.valueSize / 8) * 8 * native.possibleCpus() : this.valueSize;
    return this.sized(expected, (max) => {
      const keys = Buffer.allocUnsafe(max * this.keySize);
      const values = Buffer.allocUnsafe(max * valueStride);
      return { keys, values, count: native.dump(this.fd, keys, values, max), valueStride };
    });
  }

  /**
   * Every entry, as 32-bit words (aligned buffers of their own), for the
   * table mirrors. Not for per-CPU maps.
   */
  dumpWords(expected: number): { keys: Uint32Array; values: Uint32Array; count: number; fp: [number, number] } {
    return this.sized(expected, (max) => {
      // Not zero-filled (the dump writes what is read back), not pooled (aligned for word views).
      const kb = Buffer.allocUnsafeSlow(Math.ceil((max * this.keySize) / 4) * 4);
      const vb = Buffer.allocUnsafeSlow(Math.ceil((max * this.valueSize) / 4) * 4);
      const r = native.dumpFingerprinted(this.fd, kb, vb, max);
      return { keys: new Uint32Array(kb.buffer, kb.byteOffset, kb.length / 4), values: new Uint32Array(vb.buffer, vb.byteOffset, vb.length / 4), ...r };
    });
  }

  /** dumpWords() with the dump on a worker thread (native.dumpFingerprintedAsync): the periodic check's. */
  async dumpWordsAsync(expected: number): Promise<{ keys: Uint32Array; values: Uint32Array; count: number; fp: [number, number] }> {
    const attempt = async (max: number) => {
      const kb = Buffer.allocUnsafeSlow(Math.ceil((max * this.keySize) / 4) * 4);
      const vb = Buffer.allocUnsafeSlow(Math.ceil((max * this.valueSize) / 4) * 4);
      const r = await native.dumpFingerprintedAsync(this.fd, kb, vb, max);
      return { keys: new Uint32Array(kb.buffer, kb.byteOffset, kb.length / 4), values: new Uint32Array(vb.buffer, vb.byteOffset, vb.length / 4), ...r };
    };
    const guess = this.guess(expected);
    if (guess >= this.capacity) return attempt(this.capacity);
    try {
      return await attempt(guess);
    } catch (err) {
      if (err instanceof native.BpfError && err.errno === -ENOSPC) return attempt(this.capacity);
      throw err;
    }
  }

  /** Buffers for `expected` entries plus a margin, at most the map's capacity. */
  private guess(expected: number): number {
    return Math.min(this.capacity, Math.ceil(expected * 1.25) + 1024);
  }

  /**
   * Runs a dump into buffers for `expected` entries (plus a margin) rather
   * than the map's capacity, and again at full capacity only when the map
   * held more (ENOSPC).
   */
  private sized<T>(expected: number, attempt: (max: number) => T): T {
    const guess = this.guess(expected);
    if (guess >= this.capacity) return attempt(this.capacity);
    try {
      return attempt(guess);
    } catch (err) {
      if (err instanceof native.BpfError && err.errno === -ENOSPC) return attempt(this.capacity);
      throw err;
    }
  }

  lookup(key: Buffer): Buffer | null {
    const value = Buffer.alloc(this.valueSize);
    return native.lookup(this.fd, key, value) ? value : null;
  }
}

/** A Buffer over the same memory (koffi passes Buffers as `void *`). */
function asBuffer(a: Uint8Array): Buffer {
  return Buffer.isBuffer(a) ? a : Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}
