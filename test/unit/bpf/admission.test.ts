import { describe, expect, it } from 'vitest';
import { admit, type Capacity } from '../../../src/dataplane/bpf/admission.js';
import { Mirror } from '../../../src/dataplane/bpf/mirror.js';
import { reconcile } from '../../../src/dataplane/bpf/reconcile.js';
import { renderService } from '../../../src/dataplane/bpf/render.js';
import type { PlannedBackend, PlannedService } from '../../../src/planner/types.js';

const b = (id: number): PlannedBackend => ({ id, address: `10.244.0.${id}`, port: 80, nodeName: null, zone: null, local: false, terminating: false });

function svc(id: number, backends: number[], frontends = 1): PlannedService {
  const set = { backends: backends.map(b), onEmpty: 'reject' as const };
  return {
    key: `ns/s${id}:/IPv4`, namespace: 'ns', name: `s${id}`, portName: '', protocol: 'TCP', family: 'IPv4', id,
    frontends: Array.from({ length: frontends }, (_, i) => ({ kind: 'ClusterIP' as const, address: `10.96.${id}.${i}`, port: 80 })),
    internal: set, external: set, cluster: set, affinityTimeout: null, sourceRanges: [], preserveSource: false, maglev: null, topology: '',
  };
}

const cap = (fe: number, set = 100, be = 100): Capacity => ({
  fe: { name: 'bpx_fe_v1', capacity: fe }, set: { name: 'bpx_set_v1', capacity: set },
  be: { name: 'bpx_be_v1', capacity: be }, member: { name: 'bpx_member_v1', capacity: 100 },
});

describe('admission', () => {
  it('admits in key order while services fit, and names the map that is full', () => {
    const r = admit([svc(2, [1], 2), svc(1, [1], 2), svc(3, [2], 1)].map(renderService), new Mirror(), cap(4));
    expect(r.admitted.map((s) => s.key)).toEqual(['ns/s1:/IPv4', 'ns/s2:/IPv4']);
    expect(r.errors).toEqual([expect.objectContaining({ service: 'ns/s3:/IPv4', code: 'MAP_FULL', message: expect.stringContaining('bpx_fe_v1') })]);
  });

  it('counts a shared new backend once, and what the maps already hold not at all', () => {
    const m = new Mirror();
    const first = [svc(1, [1, 2])].map(renderService);
    const ops = reconcile(first, m, { all: true });
    for (const x of ops.backendUpserts) m.backends.set(x.id, x.val);
    // Backends 1 and 2 exist; s2 and s3 both need the new backend 3: 3 backends fit.
    const r = admit([svc(1, [1, 2]), svc(2, [2, 3]), svc(3, [3])].map(renderService), m, cap(10, 100, 3));
    expect(r.errors).toEqual([]);
    const r2 = admit([svc(2, [2, 3]), svc(3, [4])].map(renderService), m, cap(10, 100, 3));
    expect(r2.errors.map((e) => e.service)).toEqual(['ns/s3:/IPv4']);
  });

  it('counts a changed backend list as a whole new generation of slots', () => {
    // 1 header + 3 slots = 4 entries; a changed list needs 3 more slots in the other generation.
    const r = admit([svc(1, [1, 2, 3])].map(renderService), new Mirror(), cap(10, 4));
    expect(r.errors).toEqual([]);
    expect(admit([svc(1, [1, 2, 3, 4])].map(renderService), new Mirror(), cap(10, 4)).errors).toHaveLength(1);
  });
});
