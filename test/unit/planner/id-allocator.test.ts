// The ID allocator on its own: binary keys, references, hints and
// wrap-around, at the edges the planner tests do not reach.
import { describe, expect, it } from 'vitest';
import { AddressIds, KEY_WORDS, writeAddressKey, writeBytesKey } from '../../../src/planner/address-key.js';
import { IdAllocator, IdPool } from '../../../src/planner/ids.js';
import { ipBytes, ipv4ToUint32 } from '../../../src/util/ip.js';

function key(address: string, port: number, protocol: 'TCP' | 'UDP' = 'TCP'): Uint32Array {
  const k = new Uint32Array(KEY_WORDS);
  const v4 = ipv4ToUint32(address);
  writeAddressKey(k, 0, protocol, v4 >= 0 ? 'IPv4' : 'IPv6', v4 | 0, address, port);
  return k;
}

describe('address keys', () => {
  it('are the same whether written from the model\'s parse or from dumped bytes', () => {
    for (const [address, family] of [['10.244.1.2', 4], ['192.168.0.1', 4], ['2001:db8::7', 6]] as const) {
      const fromBytes = new Uint32Array(KEY_WORDS);
      // A dump holds 16 address bytes whatever the family, after other fields.
      const dump = new Uint8Array(20);
      dump.set(ipBytes(address), 4);
      writeBytesKey(fromBytes, 0, 6, family, dump, 4, 8080);
      expect([...fromBytes], address).toEqual([...key(address, 8080)]);
    }
  });

  it('tell apart protocol, port and family', () => {
    const distinct = [key('10.0.0.1', 80), key('10.0.0.1', 80, 'UDP'), key('10.0.0.1', 81), key('a00:1::', 80)];
    // a00:1:: has the same first four bytes as 10.0.0.1.
    expect(distinct[3]![0]).toBe(distinct[0]![0]);
    expect(new Set(distinct.map((k) => k.join())).size).toBe(4);
  });
});

describe('IdAllocator', () => {
  it('keeps an ID while any holder has it, and frees it with the last', () => {
    const ids = new IdAllocator(100);
    const a = ids.acquire(key('10.0.0.1', 80), 0);
    const again = ids.acquire(key('10.0.0.1', 80), 0);
    expect(again).toBe(a);
    const id = ids.idAt(a);
    ids.release(a);
    expect(ids.get(key('10.0.0.1', 80), 0)).toBe(id);
    ids.release(a);
    expect(ids.get(key('10.0.0.1', 80), 0)).toBe(0);
    expect(ids.size).toBe(0);
  });

  it('takes over hinted IDs, starts fresh ones above every hint, and never hands out one a hint names', () => {
    const hints = new AddressIds();
    hints.add(6, 4, ipBytes('10.0.0.1'), 80, 7);
    hints.add(6, 4, ipBytes('10.0.0.2'), 80, 3);
    hints.add(6, 4, ipBytes('10.0.0.3'), 80, 500); // above max: ignored
    const ids = new IdAllocator(100, hints);
    const fresh = ids.idAt(ids.acquire(key('10.0.0.9', 80), 0));
    expect(fresh).toBe(8);
    expect(ids.idAt(ids.acquire(key('10.0.0.2', 80), 0))).toBe(3);
    expect(ids.idAt(ids.acquire(key('10.0.0.1', 80), 0))).toBe(7);
    expect(ids.idAt(ids.acquire(key('10.0.0.3', 80), 0))).toBe(9);
  });

  it('gives a hinted ID that is already taken a fresh one instead', () => {
    const hints = new AddressIds();
    hints.add(6, 4, ipBytes('10.0.0.1'), 80, 2);
    hints.add(6, 4, ipBytes('10.0.0.2'), 80, 2);
    const ids = new IdAllocator(100, hints);
    expect(ids.idAt(ids.acquire(key('10.0.0.1', 80), 0))).toBe(2);
    expect(ids.idAt(ids.acquire(key('10.0.0.2', 80), 0))).toBe(3);
  });

  it('survives growth: thousands of keys keep their IDs and free them all', () => {
    const ids = new IdAllocator(0xffffffff);
    const slots: number[] = [];
    for (let i = 0; i < 5000; i++) slots.push(ids.acquire(key(`10.1.${i >> 8}.${i & 255}`, 80), 0));
    for (let i = 0; i < 5000; i++) expect(ids.get(key(`10.1.${i >> 8}.${i & 255}`, 80), 0)).toBe(i + 1);
    for (const s of slots) ids.release(s);
    expect(ids.size).toBe(0);
  });

  it('wraps around past the largest ID to the lowest free one, stepping around IDs still held', () => {
    const ids = new IdAllocator(3);
    const slots = ['10.0.0.1', '10.0.0.2', '10.0.0.3'].map((a) => ids.acquire(key(a, 80), 0));
    expect(slots.map((s) => ids.idAt(s))).toEqual([1, 2, 3]);
    ids.release(slots[1]!);
    expect(ids.idAt(ids.acquire(key('10.0.0.4', 80), 0))).toBe(2);
    expect(() => ids.acquire(key('10.0.0.5', 80), 0)).toThrow(/all 3 IDs are in use/);
  });
});

describe('IdPool', () => {
  /** A pool and the IDs its owner holds, as the pool would ask for them. */
  function pool(max: number, floor = 0) {
    const held = new Set<number>();
    const p = new IdPool(max, floor, () => held);
    return {
      allocate: () => { const id = p.allocate(); held.add(id); return id; },
      claim: (id: number) => { const ok = p.claim(id); if (ok) held.add(id); return ok; },
      free: (id: number) => { p.free(id); held.delete(id); },
    };
  }

  it('wraps around to the lowest free ID above the counter, then from 1', () => {
    const p = pool(5);
    expect([1, 2, 3, 4, 5].map(() => p.allocate())).toEqual([1, 2, 3, 4, 5]);
    p.free(2);
    p.free(4);
    expect(p.allocate()).toBe(2);
    expect(p.allocate()).toBe(4);
    expect(() => p.allocate()).toThrow(/all 5 IDs are in use/);
  });

  it('claims only free IDs an earlier run left, and hands out fresh ones above them', () => {
    const p = pool(10, 4);
    expect(p.claim(0)).toBe(false);
    expect(p.claim(11)).toBe(false);
    expect(p.claim(3)).toBe(true);
    expect(p.claim(3)).toBe(false);
    expect(p.allocate()).toBe(5);
    p.free(3);
    expect(p.claim(3)).toBe(true);
  });

  it('after wrapping, steps around claimed IDs and those handed out alike', () => {
    const p = pool(4, 2);
    expect(p.claim(2)).toBe(true);
    expect([p.allocate(), p.allocate()]).toEqual([3, 4]);
    expect(p.allocate()).toBe(1);
    expect(() => p.allocate()).toThrow(/all 4 IDs are in use/);
    p.free(3);
    expect(p.allocate()).toBe(3);
  });
});
