// The typed-array hash index against a plain Map, through any sequence of
// inserts and removes (removal by backward shift is where such tables break).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FlatIndex } from '../../../src/util/flat-index.js';

describe('FlatIndex', () => {
  it('finds exactly the keys a Map would hold, through inserts, removes and growth', () => {
    const op = fc.record({ add: fc.boolean(), a: fc.integer({ min: 0, max: 300 }), b: fc.integer({ min: 0, max: 3 }) });
    fc.assert(fc.property(fc.array(op, { maxLength: 600 }), (ops) => {
      const idx = new FlatIndex(2, 4);
      const model = new Map<string, number>();
      const key = new Uint32Array(2);
      for (const o of ops) {
        key[0] = o.a; key[1] = o.b;
        const k = `${o.a}/${o.b}`;
        if (o.add) {
          const slot = idx.insert(key, 0);
          expect(idx.added).toBe(!model.has(k));
          if (model.has(k)) expect(slot).toBe(model.get(k));
          model.set(k, slot);
        } else {
          const slot = idx.find(key, 0);
          expect(slot).toBe(model.get(k) ?? -1);
          if (slot >= 0) { idx.removeSlot(slot); model.delete(k); }
        }
      }
      expect(idx.size).toBe(model.size);
      for (const [k, slot] of model) {
        const [a, b] = k.split('/').map(Number);
        key[0] = a!; key[1] = b!;
        expect(idx.find(key, 0)).toBe(slot);
        expect(Array.from(idx.keys.subarray(slot * 2, slot * 2 + 2))).toEqual([a, b]);
      }
      // A slot is reused only after its key left.
      const slots = [...model.values()];
      expect(new Set(slots).size).toBe(slots.length);
    }), { numRuns: 300 });
  });
});

describe('FlatIndex.clear', () => {
  it('empties a big index holding few keys, and a full one, leaving it usable', () => {
    const idx = new FlatIndex(1, 16);
    const k = new Uint32Array(1);
    for (const n of [5000, 3, 0, 700]) {
      for (let i = 0; i < n; i++) { k[0] = i * 7919; idx.insert(k, 0); }
      expect(idx.size).toBe(n);
      idx.clear();
      expect(idx.size).toBe(0);
      for (let i = 0; i < n; i++) { k[0] = i * 7919; expect(idx.find(k, 0)).toBe(-1); }
      k[0] = 42;
      expect(idx.insert(k, 0)).toBe(0);
      expect(idx.find(k, 0)).toBe(0);
      idx.clear();
    }
  });
});
