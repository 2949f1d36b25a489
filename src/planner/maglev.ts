// Maglev consistent hashing (Eisenbud et al., NSDI 2016, section 3.4). The
// table depends only on the backends' stable keys and M, so every node builds
// the same table for the same backends, and a flow hashed on any node lands on
// the same backend. Removing one of N backends moves about 1/N of the slots.

import { DEFAULT_MAGLEV_M, isPrime, MAX_MAGLEV_M } from '../util/maglev-size.js';

/** MurmurHash3 x86_32 of a string's UTF-8 bytes. */
export function murmur3(key: string, seed: number): number {
  const data = Buffer.from(key, 'utf8');
  let h = seed >>> 0;
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  const blocks = data.length >> 2;
  for (let i = 0; i < blocks; i++) {
    let k = data.readUInt32LE(i * 4);
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const rest = data.length & 3;
  if (rest > 0) {
    const tail = blocks * 4;
    let k = 0;
    if (rest === 3) k ^= data[tail + 2]! << 16;
    if (rest >= 2) k ^= data[tail + 1]! << 8;
    k ^= data[tail]!;
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
  }
  h ^= data.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const SEED_OFFSET = 0x9e3779b9;
const SEED_SKIP = 0x7f4a7c15;

/**
 * The lookup table: table[slot] is an index into `keys`. `keys` must be the
 * backends' stable keys ("address/port"); their order does not change the
 * result. Empty `keys` gives an empty table.
 */
export function maglevTable(keys: readonly string[], m: number = DEFAULT_MAGLEV_M): Uint32Array {
  if (!isPrime(m) || m > MAX_MAGLEV_M) throw new Error(`Maglev table size ${m} must be a prime <= ${MAX_MAGLEV_M}`);
  const n = keys.length;
  if (n === 0) return new Uint32Array(0);
  // Fill in the order of the sorted keys, so the caller's order is irrelevant.
  const order = keys.map((k, i) => ({ k, i })).sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0));
  const pos = new Float64Array(n);
  const skip = new Float64Array(n);
  order.forEach(({ k }, j) => {
    pos[j] = murmur3(k, SEED_OFFSET) % m;
    skip[j] = (murmur3(k, SEED_SKIP) % (m - 1)) + 1;
  });
  const table = new Int32Array(m).fill(-1);
  let filled = 0;
  for (;;) {
    for (let j = 0; j < n; j++) {
      let c = pos[j]!;
      while (table[c]! >= 0) c = (c + skip[j]!) % m;
      table[c] = order[j]!.i;
      pos[j] = (c + skip[j]!) % m;
      if (++filled === m) return new Uint32Array(table.buffer);
    }
  }
}
