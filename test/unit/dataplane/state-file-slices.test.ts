// The state file's names are brought up to date a slice at a time
// (IncrementalCatalog), so an endpoint change never waits behind a whole
// pass: the catalog pieced together from slices must read back exactly as
// the plan says.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unpackMultiple } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { backendInfo, encodeCatalog, IncrementalCatalog, NodeStateWriter, readNodeState, type StateCatalog } from '../../../src/dataplane/state-file.js';
import { decodePlan } from '../../../src/dataplane/state-plan.js';
import type { DesiredDataplane, PlannedService } from '../../../src/planner/types.js';
import { frontend, plannedBackend, plannedService } from '../../helpers/planned.js';
import { desired } from '../../helpers/rule-fixtures.js';

/** n services of two backends each; every third shares its first backend with the service before it, every fifth's second is terminating on node-b. */
function plan(n: number): DesiredDataplane {
  const list: PlannedService[] = [];
  for (let i = 1; i <= n; i++) {
    const first = i % 3 === 0 ? (i - 1) * 10 : i * 10;
    const s = plannedService({
      id: i, frontends: [frontend('ClusterIP', `10.96.${i >> 8}.${i & 255}`, 80)],
      backends: [
        plannedBackend(first, `10.244.${first >> 8 & 255}.${first & 255}`, 8080, { nodeName: 'node-a' }),
        plannedBackend(i * 10 + 1, `10.245.${i >> 8}.${i & 255}`, 8080, { nodeName: 'node-b', terminating: i % 5 === 0 }),
      ],
    });
    s.name = `svc-${i}`;
    s.portName = i % 2 ? 'http' : '';
    list.push(s);
  }
  return desired(list);
}

const read = (bytes: Buffer): StateCatalog => unpackMultiple(bytes)[0] as StateCatalog;

describe('the state file catalog, encoded in slices', () => {
  it('reads back every service name and backend whether encoded in one go or a chunk per slice', () => {
    const d = plan(1000);
    const enc = new IncrementalCatalog();
    enc.begin(d);
    let slices = 1;
    // A budget of 0 stops after every 64 services scanned and every block rebuilt: the most slices there can be.
    while (!enc.step(0)) slices++;
    expect(slices).toBeGreaterThanOrEqual(10);
    const bytes = Buffer.concat(enc.parts());
    const sliced = read(bytes);
    expect(bytes.equals(encodeCatalog(d))).toBe(true);
    expect(sliced.services).toHaveLength(1000);
    expect(sliced.services[0]).toEqual([1, 'default', 'svc-1', 'http', []]);
    expect(sliced.services[999]!.slice(0, 4)).toEqual([1000, 'default', 'svc-1000', '']);
    const be = backendInfo(sliced);
    // Shared backends once: 1000 second backends, and first backends for the services not a multiple of 3.
    expect(be.size).toBe(1000 + 1000 - 333);
    expect(be.get(51)).toEqual({ node: 'node-b', terminating: true });
    expect(be.get(41)).toEqual({ node: 'node-b', terminating: false });
    expect(be.get(20)).toEqual({ node: 'node-a', terminating: false });
    expect(enc.counts).toEqual({ services: 1000, frontends: 1000, backends: 1667 });
  });

  it('keeps the rule modes\' plan after the names', () => {
    const d = plan(300);
    const enc = new IncrementalCatalog();
    enc.begin(d, { config: { x: 1 } });
    while (!enc.step(0));
    const c = read(Buffer.concat(enc.parts()));
    expect(c.services).toHaveLength(300);
    const back = decodePlan(c.plan!);
    expect(back.services.get(d.services.keys().next().value!)!.name).toBe('svc-1');
    expect(back.services.size).toBe(300);
  });
});

describe('the state file writer, encoding in slices between turns', () => {
  it('writes each plan\'s names exactly, from one plan to a smaller next one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bpx-slices-'));
    try {
      const path = join(dir, 's.msgpack');
      const timers: (() => void)[] = [];
      const w = new NodeStateWriter(path, { mode: 'bpf', reason: '', node: 'n', pinDir: '/p' }, { minIntervalMs: 0, schedule: (_ms, fn) => { timers.push(fn); return () => {}; } });
      const ok = { full: false, upserts: 1, deletes: 0, errors: [], unsupported: [] };
      const drain = () => { for (let i = 0; i < 10_000 && timers.length > 0; i++) timers.shift()!(); };
      w.synced({ ...plan(1000), generation: 1 }, ok, 0);
      drain();
      expect(backendInfo(readNodeState(path)!.catalog).size).toBe(1667);
      // The next plan names the same backend IDs (and fewer): each must be there once, none left from the last.
      const smaller = { ...plan(300), generation: 2 };
      w.synced(smaller, ok, 0);
      drain();
      const s = readNodeState(path)!;
      expect(s.sync.generation).toBe(2);
      expect(s.counts).toEqual({ services: 300, frontends: 300, backends: 500 });
      expect(s.catalog.services).toHaveLength(300);
      expect(backendInfo(s.catalog).size).toBe(500);
      expect(backendInfo(s.catalog).get(51)).toEqual({ node: 'node-b', terminating: true });
      w.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
