// The bpf dataplane on real pinned maps when a sync fails midway (issue 12,
// item 8): the Nth batch write or delete of a full or a partial sync throws,
// for every N the sync issues. The maps must stay serviceable (no frontend
// naming a missing set, no live slot naming a missing backend), the next full
// sync must go through, and the maps must then read exactly as the plan
// programmed from scratch reads. Pins and programs go to a lab node's bpffs
// directory and cgroup.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BpfDataplane } from '../../src/dataplane/bpf/dataplane.js';
import { createLab, type Lab } from '../../src/lab/lab.js';
import type { DesiredDataplane, PlannedBackend, PlannedService } from '../../src/planner/types.js';
import { silentLogger } from '../../src/util/log.js';
import { frontend, plannedBackend, plannedService } from '../helpers/planned.js';
import { copyOfMaps, FailAt, readerView, viewFromScratch } from '../helpers/write-faults.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('partial-failure lab test skipped: loading BPF programs and pinning maps needs root');

const backend = (id: number, last: number): PlannedBackend => plannedBackend(id, `10.244.1.${last}`);

function service(id: number, backends: PlannedBackend[], opts: { affinity?: boolean; nodePort?: boolean; localExternal?: PlannedBackend[] } = {}): PlannedService {
  return plannedService({
    id, backends, affinity: opts.affinity, localExternal: opts.localExternal, namespace: 'lab',
    frontends: [frontend('ClusterIP', `10.96.6.${id}`, 80), ...(opts.nodePort ? [frontend('NodePort', '172.18.0.11', 30000 + id)] : [])],
  });
}

function desired(services: PlannedService[]): DesiredDataplane {
  return { generation: 1, services: new Map(services.map((s) => [s.key, s])), healthChecks: new Map(), nodePortAddresses: { IPv4: ['172.18.0.11'], IPv6: [] } };
}

// Before: two services; after: one changed (a backend swapped, affinity on), one removed, one added.
const BEFORE = [service(1, [backend(1, 10), backend(2, 11)]), service(2, [backend(3, 12)], { nodePort: true })];
const AFTER = [
  service(1, [backend(1, 10), backend(4, 13)], { affinity: true }),
  service(3, [backend(3, 12), backend(5, 14)], { nodePort: true, localExternal: [backend(5, 14)] }),
];
const CHANGED = new Set([...BEFORE, ...AFTER].map((s) => s.key));
const FULL = { full: true, changed: new Set<string>() };

describe.skipIf(!isRoot)('bpf dataplane on real maps: a sync that fails midway', () => {
  let lab: Lab;
  let dp: BpfDataplane;
  const faults = new FailAt(0);

  beforeAll(async () => {
    lab = await createLab({ nodes: [{ name: 'node1', pods: [] }] });
    const node = lab.node('node1');
    dp = BpfDataplane.open({ pinDir: node.bpffs, cgroupRoot: node.cgroup, mapSizes: {}, log: silentLogger(), faults });
  });

  afterAll(async () => {
    await dp?.dispose();
    // The lab's teardown removes the pins and with them the links and programs.
    await lab?.teardown();
  });

  const mapsNow = () => copyOfMaps(dp.maps);

  for (const partial of [false, true]) {
    it(`${partial ? 'partial' : 'full'} sync: whichever batch fails, the maps stay serviceable and the next full sync matches the plan`, async () => {
      const want = viewFromScratch(AFTER);
      const before = viewFromScratch(BEFORE);
      // How many batches the sync issues, counted on a run that does not fail.
      await dp.sync(desired(BEFORE), FULL);
      faults.arm(0);
      await dp.sync(desired(AFTER), partial ? { full: false, changed: CHANGED } : FULL);
      const total = faults.calls;
      expect(total).toBeGreaterThanOrEqual(6);
      const failures: string[] = [];
      for (let n = 1; n <= total; n++) {
        faults.armed = false;
        expect((await dp.sync(desired(BEFORE), FULL)).errors).toEqual([]);
        expect(readerView(mapsNow()), `back to BEFORE (fault ${n})`).toEqual(before);
        faults.arm(n);
        await expect(dp.sync(desired(AFTER), partial ? { full: false, changed: CHANGED } : FULL)).rejects.toThrow(/injected failure/);
        failures.push(faults.failed!);
        expect(mapsNow().problem(), `half-written state in force after a failed ${faults.failed}`).toBeNull();
        faults.armed = false;
        const next = await dp.sync(desired(AFTER), FULL);
        expect(next).toMatchObject({ full: true, errors: [] });
        expect(readerView(mapsNow()), `after a failed ${faults.failed}`).toEqual(want);
        // Converged: another full sync writes nothing.
        expect(await dp.sync(desired(AFTER), FULL)).toMatchObject({ upserts: 0, deletes: 0 });
      }
      console.log(`bpf ${partial ? 'partial' : 'full'} sync failed at each of its ${total} batches (${failures.join('; ')}): every time serviceable, and the next full sync matched the plan`);
    });
  }
});
