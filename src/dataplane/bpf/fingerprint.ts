// A map's contents fingerprinted independently of order: two 32-bit sums,
// over the entries, of a hash of each entry's key and value words. The C shim
// computes the same sums over a dump and over a first sync's batch
// (native/hashes.h, entry_hash: keep the two identical), and each table
// keeps them for what it wrote, so a full resync compares two numbers per
// map instead of every entry, also right after this process wrote to the map.

import { fmix, mixWord } from '../../util/murmur.js';

const SEED_A = 0x9747b28c;
const SEED_B = 0x5bd1e995;

/** The running sums of one table (or map). */
export class Fingerprint {
  a = 0;
  b = 0;

  /**
   * Adds (sign 1) or takes away (sign -1) one entry: the entry's hash under
   * each seed, both in one pass over its words (a full sync adds every
   * entry it writes).
   */
  add(k: Uint32Array, ko: number, kw: number, v: Uint32Array, vo: number, vw: number, sign: 1 | -1): void {
    let ha = SEED_A | 0;
    let hb = SEED_B | 0;
    for (let i = 0; i < kw; i++) {
      const x = k[ko + i]!;
      ha = mixWord(ha, x);
      hb = mixWord(hb, x);
    }
    for (let i = 0; i < vw; i++) {
      const x = v[vo + i]!;
      ha = mixWord(ha, x);
      hb = mixWord(hb, x);
    }
    this.a = (this.a + sign * fmix(ha ^ (kw + vw))) >>> 0;
    this.b = (this.b + sign * fmix(hb ^ (kw + vw))) >>> 0;
  }

  reset(): void {
    this.a = 0;
    this.b = 0;
  }
}

/** The fingerprint of n packed entries (what the C computes over a dump), for tests and fakes. */
export function fingerprintOf(keys: Uint32Array, kw: number, vals: Uint32Array, vw: number, n: number): [number, number] {
  const fp = new Fingerprint();
  for (let i = 0; i < n; i++) fp.add(keys, i * kw, kw, vals, i * vw, vw, 1);
  return [fp.a, fp.b];
}
