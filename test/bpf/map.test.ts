// BpfMap against a real map: batch writes report the entry that failed, and a
// dump returns every entry whatever size the caller guessed (including the
// edge where the guess is exactly the content).
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BpfMap } from '../../src/dataplane/bpf/map.js';
import * as native from '../../src/dataplane/bpf/native.js';
import { Fingerprint, fingerprintOf } from '../../src/dataplane/bpf/fingerprint.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('bpf map tests skipped: creating BPF maps needs root');

describe.skipIf(!isRoot)('BpfMap on a real hash map', () => {
  const pin = `/sys/fs/bpf/bpfproxy-maptest-${process.pid}`;
  let map: BpfMap;

  beforeAll(() => {
    execFileSync('bpftool', ['map', 'create', pin, 'type', 'hash', 'key', '4', 'value', '24', 'entries', '64', 'name', 'maptest']);
    const fd = native.objGet(pin);
    expect(fd).toBeGreaterThan(0);
    map = new BpfMap('maptest', fd);
  });

  afterAll(() => {
    if (map) native.closeFd(map.fd);
    rmSync(pin, { force: true });
  });

  const put = (n: number) => map.update(n, (i, k, ko, v, vo) => {
    k.writeUInt32LE(i + 1, ko);
    v.fill(i + 1, vo, vo + 24);
  });

  it('writes a batch, and when the map is full names the first entry that did not fit', () => {
    expect(put(40)).toEqual([]);
    const failures = map.update(30, (i, k, ko, v, vo) => {
      k.writeUInt32LE(1000 + i, ko);
      v.fill(7, vo, vo + 24);
    });
    // 64 entries fit: 24 of the 30 new keys went in, the other 6 failed with E2BIG.
    expect(failures.map((f) => f.index)).toEqual([24, 25, 26, 27, 28, 29]);
    expect(failures.every((f) => f.errno === 7)).toBe(true);
  });

  it('dumps every entry when the buffers fit exactly or amply, and says ENOSPC when they are short', () => {
    for (const max of [64, 65, 200]) {
      const keys = Buffer.alloc(max * 4);
      const values = Buffer.alloc(max * 24);
      const n = native.dump(map.fd, keys, values, max);
      expect(n, `buffers for ${max}`).toBe(64);
      const seen = new Set(Array.from({ length: n }, (_, i) => keys.readUInt32LE(i * 4)));
      expect(seen.size).toBe(64);
      // Values belong to their keys: key 1..40 was filled with its own number.
      for (let i = 0; i < n; i++) {
        const k = keys.readUInt32LE(i * 4);
        if (k <= 40) expect(values[i * 24 + 23]).toBe(k);
      }
    }
    for (const max of [1, 10, 63]) {
      expect(() => native.dump(map.fd, Buffer.alloc(max * 4), Buffer.alloc(max * 24), max), `buffers for ${max}`).toThrow(/dump map/);
    }
    // BpfMap.dump retries at full capacity when its guess is short.
    expect(map.dump(0).count).toBe(64);
  });

  it('fingerprints a dump in C exactly as the tables do in TypeScript, whatever order the kernel returns', () => {
    const d = map.dumpWords(64);
    expect(d.count).toBe(64);
    expect(d.fp).toEqual(fingerprintOf(d.keys, 1, d.values, 6, d.count));
    // Entry by entry, in another order, through the running sums the tables keep.
    const fp = new Fingerprint();
    for (let i = d.count - 1; i >= 0; i--) fp.add(d.keys, i, 1, d.values, i * 6, 6, 1);
    expect([fp.a, fp.b]).toEqual(d.fp);
    // One value changed: the fingerprint moves.
    const before = d.fp;
    map.update(1, (_i, k, ko, v, vo) => { k.writeUInt32LE(1, ko); v.fill(99, vo, vo + 24); });
    expect(map.dumpWords(64).fp).not.toEqual(before);
  });
});
