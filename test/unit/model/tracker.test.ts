// The change tracker: a checkout returns, per key, the value at the previous
// checkout and the value now, and nothing for keys that came back to where
// they were (kube-proxy's servicechangetracker.go behaviour).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ChangeTracker, sameValue } from '../../../src/model/tracker.js';

type Value = { n: number } | undefined;

describe('ChangeTracker', () => {
  it('reports an add, an update and a delete with the value at the last checkout', () => {
    const t = new ChangeTracker<{ n: number }>();
    t.update('a', undefined, { n: 1 });
    expect([...t.checkout()]).toEqual([['a', { previous: undefined, current: { n: 1 } }]]);
    t.update('a', { n: 1 }, { n: 2 });
    t.update('a', { n: 2 }, { n: 3 });
    expect(t.checkout().get('a')).toEqual({ previous: { n: 1 }, current: { n: 3 } });
    t.update('a', { n: 3 }, undefined);
    expect(t.checkout().get('a')).toEqual({ previous: { n: 3 }, current: undefined });
  });

  it('drops an edit followed by its undo, and an add followed by a delete', () => {
    const t = new ChangeTracker<{ n: number }>();
    t.update('a', { n: 1 }, { n: 2 });
    t.update('a', { n: 2 }, { n: 1 });
    t.update('b', undefined, { n: 5 });
    t.update('b', { n: 5 }, undefined);
    expect(t.size).toBe(0);
    expect(t.has('a')).toBe(false);
    expect(t.checkout().size).toBe(0);
  });

  it('compares values by content, not identity', () => {
    const t = new ChangeTracker<{ n: number }>();
    t.update('a', { n: 1 }, { n: 1 });
    expect(t.size).toBe(0);
    expect(sameValue({ n: 1 }, { n: 1 })).toBe(true);
    expect(sameValue({ n: 1 }, undefined)).toBe(false);
  });

  it('checkout: current is the last update per key; keys back at their last checked-out value are absent', () => {
    const op = fc.oneof(
      { arbitrary: fc.record({ kind: fc.constant('update' as const), key: fc.constantFrom('a', 'b', 'c', 'd'), value: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }) }), weight: 5 },
      { arbitrary: fc.record({ kind: fc.constant('checkout' as const) }), weight: 1 },
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const t = new ChangeTracker<{ n: number }>();
        const store = new Map<string, Value>();
        let atCheckout = new Map<string, Value>();
        const check = () => {
          const got = t.checkout();
          for (const key of new Set([...store.keys(), ...atCheckout.keys()])) {
            const before = atCheckout.get(key);
            const now = store.get(key);
            if (sameValue(before, now)) {
              expect(got.has(key), `${key} came back to ${JSON.stringify(now)}`).toBe(false);
            } else {
              expect(got.get(key), key).toEqual({ previous: before, current: now });
            }
          }
          for (const key of got.keys()) expect(store.has(key) || atCheckout.has(key)).toBe(true);
          atCheckout = new Map(store);
          expect(t.size).toBe(0);
        };
        for (const o of ops) {
          if (o.kind === 'checkout') {
            check();
            continue;
          }
          const next: Value = o.value === undefined ? undefined : { n: o.value };
          t.update(o.key, store.get(o.key), next);
          store.set(o.key, next);
        }
        check();
      }),
      { numRuns: 300 },
    );
  });
});
