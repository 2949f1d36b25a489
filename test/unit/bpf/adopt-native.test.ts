// A first sync's batch becomes the mirror through the C shim (native/flat.c:
// registered in the hash index and fingerprinted in one pass). The mirror it
// leaves must be the one entry-by-entry recording (Table.put) leaves: the
// same keys found with the same values, the same owners' lists, the same
// fingerprint, for batches with repeated keys and left-out owners.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Table, type TableSpec } from '../../../src/dataplane/bpf/table.js';
import { BACKENDS, SLOTS } from '../../../src/dataplane/bpf/lb-tables.js';

interface Entry { key: number[]; val: number[]; owner: number }

function fill(t: Table, entries: Entry[]): void {
  t.resetBatch();
  for (const e of entries) {
    const i = t.push(e.owner);
    e.key.forEach((w, k) => { t.dk[i * (t.ks / 4) + k] = w; });
    e.val.forEach((w, k) => { t.dv[i * (t.vs / 4) + k] = w; });
  }
}

/** What the mirror holds, as text per key: value words and owner. */
function mirror(t: Table): Map<string, string> {
  const out = new Map<string, string>();
  for (let s = 0; s < t.index.end; s++) {
    if (!t.index.used[s]) continue;
    out.set([...t.keyWords(s)].join(','), `${[...t.valueWords(s)].join(',')} by ${t.owner[s]}`);
  }
  return out;
}

function lists(t: Table): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const o of t.owners()) {
    const slots: number[] = [];
    t.slotsOf(o, slots);
    out.set(o, slots.map((s) => [...t.keyWords(s)].join(',')).sort());
  }
  return out;
}

function check(spec: TableSpec, entries: Entry[], skipped: Set<number>): void {
  const adopted = new Table(spec);
  fill(adopted, entries);
  const n = adopted.adoptBatch(skipped.size > 0 ? (o) => skipped.has(o) : null);

  const recorded = new Table(spec);
  const kw = recorded.ks / 4;
  const seen = new Set<string>();
  for (const e of entries) {
    if (skipped.has(e.owner) || seen.has(e.key.join(','))) continue;
    seen.add(e.key.join(','));
    recorded.put(Uint32Array.from(e.key), 0, Uint32Array.from(e.val), 0, spec.shared ? 0 : e.owner);
  }
  expect(n).toBe(seen.size);
  expect(adopted.size).toBe(recorded.size);
  expect(mirror(adopted)).toEqual(mirror(recorded));
  expect(lists(adopted)).toEqual(lists(recorded));
  expect([adopted.fp.a, adopted.fp.b]).toEqual([recorded.fp.a, recorded.fp.b]);
  // The adopted index keeps working as an index: every key is found, a new one is added after them.
  for (const k of seen) expect(adopted.find(Uint32Array.from(k.split(',').map(Number)))).toBeGreaterThanOrEqual(0);
  const fresh = Uint32Array.from({ length: kw }, () => 0xfffffff0);
  const s = adopted.put(fresh, 0, new Uint32Array(recorded.vs / 4), 0, 1);
  expect(adopted.find(fresh)).toBe(s);
  expect(adopted.size).toBe(recorded.size + 1);
}

const entries = (kw: number, vw: number) => fc.array(fc.record({
  // Few distinct keys, so that batches repeat keys (a backend several services name).
  key: fc.array(fc.integer({ min: 0, max: 6 }), { minLength: kw, maxLength: kw }),
  val: fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: vw, maxLength: vw }),
  owner: fc.integer({ min: 1, max: 5 }),
}), { maxLength: 200 });

describe('a batch adopted as the mirror by the C shim', () => {
  it('leaves the mirror recording entry by entry leaves (owned table: set slots)', () => {
    fc.assert(fc.property(entries(SLOTS.key.size / 4, SLOTS.value.size / 4), fc.array(fc.integer({ min: 1, max: 5 })), (es, skip) => {
      check(SLOTS, es.map((e) => ({ ...e, key: e.key.map((w, i) => (i === 0 ? w : w * 3)) })), new Set(skip));
    }), { numRuns: 200 });
  });

  it('leaves the mirror recording entry by entry leaves (shared table: backends)', () => {
    fc.assert(fc.property(entries(BACKENDS.key.size / 4, BACKENDS.value.size / 4), fc.array(fc.integer({ min: 1, max: 5 })), (es, skip) => {
      check(BACKENDS, es, new Set(skip));
    }), { numRuns: 200 });
  });

  it('keeps a large batch whole, with its fingerprint', () => {
    const es: Entry[] = Array.from({ length: 20_000 }, (_, i) => ({ key: [i * 2654435761 >>> 0, i], val: [i, 1, 2, 3], owner: 1 + Math.floor(i / 7) }));
    check(SLOTS, es, new Set());
  });
});
