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

describe('FlatIndex.reserve', () => {
  it('keeps the slots of removed keys free, and only those, when it grows', () => {
    const idx = new FlatIndex(1, 16);
    const k = new Uint32Array(1);
    for (let i = 0; i < 16; i++) { k[0] = 100 + i; idx.insert(k, 0); }
    k[0] = 105;
    const freed = idx.find(k, 0);
    idx.removeSlot(freed);
    idx.reserve(40);
    k[0] = 999;
    expect(idx.insert(k, 0)).toBe(freed);
    for (let i = 0; i < 16; i++) {
      if (i === 5) continue;
      k[0] = 100 + i;
      expect(idx.find(k, 0)).toBe(i);
    }
    expect(idx.size).toBe(16);
  });
});

describe('FlatIndex.adopt', () => {
  it('indexes keys where they already are, a key met again naming its first slot', () => {
    const idx = new FlatIndex(2, 16);
    const store = new Uint32Array([1, 1, 2, 2, 1, 1, 3, 3, 0, 0]);
    idx.adopt(store, 5);
    expect([0, 1, 2, 3].map((s) => idx.claimAt(s))).toEqual([0, 1, 0, 3]);
    expect(idx.size).toBe(3);
    expect(idx.keys).toBe(store);
    expect(idx.find(new Uint32Array([3, 3]), 0)).toBe(3);
    // Still an ordinary index: removal, insertion, growth.
    idx.removeSlot(1);
    expect(idx.insert(new Uint32Array([4, 4]), 0)).toBe(1);
    for (let i = 10; i < 40; i++) idx.insert(new Uint32Array([i, i]), 0);
    expect(idx.find(new Uint32Array([3, 3]), 0)).toBe(3);
    expect(idx.find(new Uint32Array([4, 4]), 0)).toBe(1);
    expect(idx.size).toBe(33);
  });
});
