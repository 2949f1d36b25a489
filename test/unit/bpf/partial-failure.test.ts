// A sync that fails midway (issue 12, item 8), at the generic sync over the
// LB tables, without a kernel: the Nth batch write or delete throws, for every
// N a full and a partial sync issue. After every single write, the failure
// included, what a BPF program could read must be serviceable (nothing
// half-written in force); the next full sync must leave exactly what the
// plan says, as programming the plan from scratch does.
import { describe, expect, it } from 'vitest';
import type { WriteFaults } from '../../../src/dataplane/bpf/sync.js';
import type { PlannedBackend, PlannedService } from '../../../src/planner/types.js';
import { FakeLb } from '../../helpers/fake-maps.js';
import { FailAt, readerView as view, viewFromScratch as fromScratch } from '../../helpers/write-faults.js';
import { frontend, plannedBackend, plannedService } from '../../helpers/planned.js';

const backend = (id: number, last: number): PlannedBackend => plannedBackend(id, `10.244.0.${last}`);

function service(id: number, backends: PlannedBackend[], opts: { affinity?: boolean; nodePort?: boolean; localExternal?: PlannedBackend[] } = {}): PlannedService {
  return plannedService({
    id, backends, affinity: opts.affinity, localExternal: opts.localExternal,
    frontends: [frontend('ClusterIP', `10.96.0.${id}`, 80), ...(opts.nodePort ? [frontend('NodePort', '172.18.0.11', 30000 + id)] : [])],
  });
}

/** An LB whose every single write is checked for serviceability. */
function checkedLb(faults: WriteFaults): FakeLb {
  const lb = new FakeLb({}, faults);
  for (const m of lb.maps) {
    m.afterEach = () => {
      const p = lb.problem();
      if (p) throw new Error(`half-written state in force: ${p}`);
    };
  }
  return lb;
}

// Before: two services; after: one changed (a backend swapped, affinity on), one removed, one added.
const BEFORE = [service(1, [backend(1, 10), backend(2, 11)]), service(2, [backend(3, 12)], { nodePort: true })];
const AFTER = [
  service(1, [backend(1, 10), backend(4, 13)], { affinity: true }),
  service(3, [backend(3, 12), backend(5, 14)], { nodePort: true, localExternal: [backend(5, 14)] }),
];
const CHANGED = [1, 2, 3];

/** How many batch writes and deletes a sync from BEFORE to AFTER issues. */
function writesOf(partial: boolean): number {
  const count = new FailAt(0);
  const lb = new FakeLb({}, count);
  lb.apply(BEFORE);
  count.armed = true;
  lb.apply(AFTER, partial ? CHANGED : null);
  return count.calls;
}

describe('a sync that fails midway', () => {
  for (const partial of [false, true]) {
    const kind = partial ? 'partial' : 'full';
    it(`${kind}: whichever batch fails, nothing half-written is in force and the next full sync matches the plan exactly`, () => {
      const total = writesOf(partial);
      expect(total).toBeGreaterThanOrEqual(6);
      const want = fromScratch(AFTER);
      const failedAt: string[] = [];
      for (let n = 1; n <= total; n++) {
        const faults = new FailAt(n);
        const lb = checkedLb(faults);
        lb.apply(BEFORE);
        faults.arm(n);
        expect(() => lb.apply(AFTER, partial ? CHANGED : null), `fault ${n}`).toThrow(/injected failure/);
        failedAt.push(faults.failed!);
        expect(lb.problem()).toBeNull();
        faults.armed = false;
        const res = lb.apply(AFTER);
        expect(res.errors, `fault ${n}: ${faults.failed}`).toEqual([]);
        expect(view(lb), `after a failure at ${faults.failed}`).toEqual(want);
        // And it stays there: one more full sync has nothing to do.
        expect(lb.apply(AFTER)).toMatchObject({ upserts: 0, deletes: 0 });
      }
      // Every table's writes and its deletes were among the failures tried.
      expect(failedAt.some((f) => f.startsWith('upsert') && f.endsWith('frontends'))).toBe(true);
      expect(failedAt.some((f) => f.startsWith('delete') && f.endsWith('backends'))).toBe(true);
    });
  }
});
