// The periodic check on real pinned maps (issue 6): the periodic full sync
// becomes a partial one plus a check whose dumps run on a worker thread
// (koffi async), and only drift makes it ask for the in-line full sync that
// repairs. Programs attach to a cgroup this test creates and removes; pins go
// to a directory of its own.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BpfDataplane } from '../../src/dataplane/bpf/dataplane.js';
import { cleanupPins } from '../../src/dataplane/bpf/loader.js';
import { writeFeKey } from '../../src/dataplane/bpf/layout.js';
import type { TableSync } from '../../src/dataplane/bpf/sync.js';
import { cgroup2Mount } from '../../src/lab/host.js';
import { silentLogger } from '../../src/util/log.js';
import type { DesiredDataplane, PlannedBackend, PlannedService } from '../../src/planner/types.js';
import { frontend, plannedBackend, plannedService } from '../helpers/planned.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('bpf periodic check tests skipped: loading BPF programs and pinning maps needs root');

const backend = (id: number, last: number): PlannedBackend => plannedBackend(id, `10.244.8.${last}`);
const service = (id: number, backends: PlannedBackend[]): PlannedService =>
  plannedService({ id, backends, namespace: 'v', frontends: [frontend('ClusterIP', `10.96.8.${id}`, 80)] });

function desired(services: PlannedService[]): DesiredDataplane {
  return { generation: 1, services: new Map(services.map((s) => [s.key, s])), healthChecks: new Map(), nodePortAddresses: { IPv4: [], IPv6: [] } };
}

const FULL = { full: true, changed: new Set<string>() };
const PERIODIC = { ...FULL, periodic: true };
const hex = (b: Buffer) => [...b].map((x) => `0x${x.toString(16)}`);
/** The dataplane's sync engine, for its counters. */
const engine = (dp: BpfDataplane) => (dp as unknown as { sync_: TableSync }).sync_;

describe.skipIf(!isRoot)('the periodic check on real maps', () => {
  const tag = `bpfproxy-verify-${process.pid}`;
  const pinDir = `/sys/fs/bpf/${tag}`;
  let cgroup: string;
  let open: BpfDataplane[] = [];
  const start = () => {
    const dp = BpfDataplane.open({ pinDir, cgroupRoot: cgroup, mapSizes: {}, log: silentLogger() });
    open.push(dp);
    return dp;
  };

  beforeEach(() => {
    cgroup = join(cgroup2Mount(), tag);
    mkdirSync(cgroup, { recursive: true });
  });

  afterEach(async () => {
    for (const dp of open) await dp.dispose();
    open = [];
    cleanupPins(pinDir);
    rmdirSync(cgroup);
  });

  it('dumps a map on a worker thread into what the in-line dump reads', async () => {
    const dp = start();
    await dp.sync(desired([service(1, [backend(1, 10), backend(2, 11)]), service(2, [backend(3, 12)])]), FULL);
    for (const m of [dp.maps.fe, dp.maps.be, dp.maps.set]) {
      const sync = m.dumpWords(0);
      const off = await m.dumpWordsAsync(0);
      expect(off.count).toBeGreaterThan(0);
      expect({ count: off.count, fp: off.fp }).toEqual({ count: sync.count, fp: sync.fp });
    }
  });

  it('a periodic sync of unchanged maps finds no drift and asks for nothing', async () => {
    const dp = start();
    let asked = 0;
    dp.onFullSyncNeeded = () => asked++;
    const plan = desired([service(1, [backend(1, 10)]), service(2, [backend(2, 11)])]);
    await dp.sync(plan, FULL);
    const compared = engine(dp).compared;
    expect(await dp.sync(plan, PERIODIC)).toMatchObject({ full: true, upserts: 0, deletes: 0, errors: [] });
    expect(await dp.verify()).toEqual({ drift: [], raced: [] });
    expect(asked).toBe(0);
    expect(engine(dp).compared).toBe(compared);
  });

  it('a periodic sync writes what changed at once, and its check finds a stray entry that the full sync it asks for removes', async () => {
    const dp = start();
    let asked = 0;
    dp.onFullSyncNeeded = () => asked++;
    const plan = desired([service(1, [backend(1, 10)]), service(2, [backend(2, 11)])]);
    await dp.sync(plan, FULL);
    // Someone adds a stray frontend with bpftool.
    const key = Buffer.alloc(20);
    writeFeKey(key, 0, { address: '10.96.8.99', port: 80, protocol: 'TCP', family: 'IPv4' });
    execFileSync('bpftool', ['map', 'update', 'pinned', join(pinDir, 'bpx_fe_v1'), 'key', ...hex(key), 'value', ...hex(Buffer.alloc(16, 1))]);

    // The periodic sync writes the changed service without dumping in line...
    const changed = desired([service(1, [backend(1, 10), backend(3, 12)]), service(2, [backend(2, 11)])]);
    const res = await dp.sync(changed, PERIODIC);
    expect(res).toMatchObject({ full: true, errors: [] });
    expect(res.upserts).toBeGreaterThan(0);
    expect(dp.maps.fe.lookup(key)).not.toBeNull();
    // ...its background check finds the stray entry and asks for a full sync, once.
    expect(await dp.verify()).toEqual({ drift: ['bpx_fe_v1'], raced: [] });
    expect(asked).toBe(1);
    // The full sync the runner then runs (run({ full: true }): not periodic) removes it.
    expect(await dp.sync(changed, FULL)).toMatchObject({ upserts: 0, deletes: 1, errors: [] });
    expect(dp.maps.fe.lookup(key)).toBeNull();
    await dp.sync(changed, PERIODIC);
    expect(await dp.verify()).toEqual({ drift: [], raced: [] });
    expect(asked).toBe(1);
  });

  it('after drift, the next periodic sync reloads in line even if nobody asked for a full one', async () => {
    const dp = start();
    const plan = desired([service(1, [backend(1, 10)])]);
    await dp.sync(plan, FULL);
    execFileSync('bpftool', ['map', 'delete', 'pinned', join(pinDir, 'bpx_be_v1'), 'key', '1', '0', '0', '0']);
    await dp.sync(plan, PERIODIC);
    expect((await dp.verify()).drift).toEqual(['bpx_be_v1']);
    expect(await dp.sync(plan, PERIODIC)).toMatchObject({ upserts: 1, deletes: 0, errors: [] });
    expect(await dp.verify()).toEqual({ drift: [], raced: [] });
  });

  it('a sync that writes a map while the check dumps it makes the check dump it again, not report drift', async () => {
    const dp = start();
    const plan = desired([service(1, [backend(1, 10)]), service(2, [backend(2, 11)])]);
    await dp.sync(plan, FULL);
    const redumped = engine(dp).redumped;
    // The check's first dump is under way on a worker thread when every map is written.
    const check = dp.verify();
    const next = desired([service(1, [backend(1, 10), backend(3, 12)]), service(2, [backend(2, 11)]), service(4, [backend(4, 13)])]);
    const res = await dp.sync(next, { full: false, changed: new Set(next.services.keys()) });
    expect(res.upserts).toBeGreaterThan(0);
    expect(await check).toEqual({ drift: [], raced: [] });
    expect(engine(dp).redumped).toBeGreaterThan(redumped);
  });
});
