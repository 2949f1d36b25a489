// --bpf-lb-maglev-map-max reaching the kernel: the Maglev array and its rows
// map get their max_entries at load from tables x M (maglev-tables.ts:
// maglevMapSizes), and a pinned array of another size is kept as it is, with
// one warning naming both sizes and how to apply the new one (the loader's
// size-mismatch rule for every pinned map: a pinned map cannot be resized in
// place). Only xdp.bpf.o is loaded, nothing is attached; pins go to a
// directory of this test's own.
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupPins, loadDatapath } from '../../src/dataplane/bpf/loader.js';
import { maglevMapSizes } from '../../src/dataplane/bpf/maglev-tables.js';
import { XDP_OBJECT } from '../../src/dataplane/bpf/objects.js';
import { createLogger, silentLogger } from '../../src/util/log.js';
import { testPinDir } from './xdp-harness.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('Maglev array size tests skipped: loading BPF objects and pinning maps needs root');

const M = 16381;

describe.skipIf(!isRoot)('the Maglev array sized by --bpf-lb-maglev-map-max', () => {
  const pinDir = testPinDir('maglev-size');
  afterAll(() => { cleanupPins(pinDir); });

  function load(tables: number, log = silentLogger()) {
    return loadDatapath({ pinDir, mapSizes: {}, maglev: { tables, m: M }, objects: [XDP_OBJECT], log });
  }

  it('creates the array with tables x M slots (two per entry) and the rows map with one entry per table', () => {
    const dp = load(3);
    try {
      expect(dp.map('bpx_maglev_v1').capacity).toBe(Math.ceil((3 * M) / 2));
      expect(dp.map('bpx_maglev_row_v1').capacity).toBe(3);
      expect(maglevMapSizes(3, M).bpx_maglev_v1).toBe(dp.map('bpx_maglev_v1').capacity);
    } finally {
      dp.close();
    }
  });

  it('a pinned array of another size keeps its size, with one warning saying how to apply the new one', () => {
    const lines: { level: number; msg: string }[] = [];
    const dp = load(5, createLogger('info', 'json', { write: (s: string) => { lines.push(JSON.parse(s)); } }));
    try {
      expect(dp.map('bpx_maglev_v1').capacity).toBe(Math.ceil((3 * M) / 2));
      expect(dp.map('bpx_maglev_row_v1').capacity).toBe(3);
      const notes = lines.filter((l) => /bpx_maglev_v1: keeping the pinned size/.test(l.msg));
      expect(notes.map((l) => l.msg)).toEqual([expect.stringMatching(`keeping the pinned size ${Math.ceil((3 * M) / 2)} instead of ${Math.ceil((5 * M) / 2)}.*bpfproxy cleanup`)]);
    } finally {
      dp.close();
    }
  });
});
