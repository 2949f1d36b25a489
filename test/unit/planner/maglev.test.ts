// Maglev (Eisenbud et al., NSDI 2016): every node must build the same table
// from the same backends, fill every slot, spread slots evenly, and move few
// flows when a backend goes away.
import { describe, expect, it } from 'vitest';
import { maglevTable } from '../../../src/planner/maglev.js';
import { DEFAULT_MAGLEV_M, isPrime, MAX_MAGLEV_M } from '../../../src/util/maglev-size.js';

const backends = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `10.244.${(i + from) >> 8}.${(i + from) & 255}/8080`);

/** The table as backend keys, so tables built from differently ordered lists compare. */
function asKeys(keys: readonly string[], m: number): string[] {
  return [...maglevTable(keys, m)].map((i) => keys[i]!);
}

describe('maglevTable', () => {
  it('is the same whatever order the backends are given in', () => {
    const keys = backends(7);
    const shuffled = [keys[3]!, keys[0]!, keys[6]!, keys[1]!, keys[5]!, keys[2]!, keys[4]!];
    expect(asKeys(shuffled, 1021)).toEqual(asKeys(keys, 1021));
    expect(asKeys([...keys].reverse(), DEFAULT_MAGLEV_M)).toEqual(asKeys(keys, DEFAULT_MAGLEV_M));
  });

  it('fills every slot with a valid backend index', () => {
    for (const n of [1, 2, 3, 10, 100]) {
      const t = maglevTable(backends(n), 1021);
      expect(t.length).toBe(1021);
      for (const i of t) expect(i).toBeLessThan(n);
    }
    expect(maglevTable([], 1021).length).toBe(0);
  });

  it('gives each of N backends M/N slots, give or take one', () => {
    for (const n of [2, 3, 7, 10, 64]) {
      const m = DEFAULT_MAGLEV_M;
      const counts = new Array<number>(n).fill(0);
      for (const i of maglevTable(backends(n), m)) counts[i]!++;
      expect(Math.max(...counts) - Math.min(...counts), `n=${n}`).toBeLessThanOrEqual(1);
      expect(Math.min(...counts)).toBe(Math.floor(m / n));
    }
  });

  it('moves few of the other backends\' slots when one of N backends is removed', () => {
    const m = DEFAULT_MAGLEV_M;
    for (const n of [5, 10, 20, 50]) {
      const keys = backends(n);
      const before = asKeys(keys, m);
      for (const removed of [0, Math.floor(n / 2), n - 1]) {
        const after = asKeys(keys.filter((_, i) => i !== removed), m);
        let kept = 0;
        let moved = 0;
        for (let s = 0; s < m; s++) {
          if (before[s] === keys[removed]) continue;
          kept++;
          if (after[s] !== before[s]) moved++;
        }
        // The paper puts the extra disruption near 1/N (measured here: well
        // under it); a table built without consistency would move (N-1)/N.
        expect(moved / kept, `n=${n}, removed #${removed}`).toBeLessThan(1 / n);
      }
    }
  });

  it('requires a prime table size no larger than the maximum', () => {
    expect(isPrime(DEFAULT_MAGLEV_M)).toBe(true);
    expect(isPrime(MAX_MAGLEV_M)).toBe(true);
    expect(() => maglevTable(backends(3), 16380)).toThrow(/prime/);
    expect(() => maglevTable(backends(3), 65537)).toThrow(/prime <= 65521/);
    expect(() => maglevTable(backends(3), 1)).toThrow(/prime/);
  });
});
