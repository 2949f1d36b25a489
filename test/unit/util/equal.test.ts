// plainEqual stands in for comparing JSON.stringify output: it must agree
// with it on plain data, except that key order does not matter.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { plainEqual } from '../../../src/util/equal.js';

describe('plainEqual', () => {
  it('agrees with comparing JSON on plain data', () => {
    const value = fc.letrec((tie) => ({
      v: fc.oneof({ depthSize: 'small' }, fc.constantFrom(null, true, false, 0, 1, 'a', ''), fc.array(tie('v'), { maxLength: 3 }),
        fc.dictionary(fc.constantFrom('a', 'b', 'c'), tie('v'), { maxKeys: 3 })),
    })).v;
    fc.assert(fc.property(value, value, (a, b) => {
      expect(plainEqual(a, b)).toBe(JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b)));
      expect(plainEqual(a, structuredClone(a))).toBe(true);
    }), { numRuns: 2000 });
  });

  it('tells apart what differs anywhere, and treats undefined properties as absent', () => {
    expect(plainEqual({ a: [1, { b: 2 }] }, { a: [1, { b: 3 }] })).toBe(false);
    expect(plainEqual({ a: [1, 2] }, { a: [1, 2, 3] })).toBe(false);
    expect(plainEqual([], {})).toBe(false);
    expect(plainEqual({ a: null }, { a: undefined })).toBe(false);
    expect(plainEqual({ a: 1, b: undefined }, { a: 1 })).toBe(true);
    expect(plainEqual({ b: 1, a: 2 }, { a: 2, b: 1 })).toBe(true);
    expect(plainEqual(undefined, {})).toBe(false);
  });
});

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
  return v;
}
