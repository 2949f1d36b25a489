// The bpf dataplane's diff, without a kernel: ops are applied to a Mirror one
// at a time, in the order apply.ts uses, and after EVERY single write the
// state a BPF program could read must be serviceable.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readFeVal } from '../../../src/dataplane/bpf/layout.js';
import { Mirror, slotKey } from '../../../src/dataplane/bpf/mirror.js';
import { reconcile, opCount, type Ops, type Scope } from '../../../src/dataplane/bpf/reconcile.js';
import { rawFeKey, renderService, type RenderedService } from '../../../src/dataplane/bpf/render.js';
import type { BackendSet, PlannedBackend, PlannedService } from '../../../src/planner/types.js';

function backend(id: number, last: number): PlannedBackend {
  return { id, address: `10.244.0.${last}`, port: 8080, nodeName: 'n1', zone: null, local: false, terminating: false };
}

function service(id: number, backends: PlannedBackend[], opts: { nodePort?: boolean; localExternal?: PlannedBackend[]; affinity?: boolean } = {}): PlannedService {
  const internal: BackendSet = { backends, onEmpty: 'reject' };
  const external: BackendSet = opts.localExternal ? { backends: opts.localExternal, onEmpty: 'drop' } : internal;
  return {
    key: `default/s${id}:/IPv4`, namespace: 'default', name: `s${id}`, portName: '', protocol: 'TCP', family: 'IPv4', id,
    frontends: [
      { kind: 'ClusterIP', address: `10.96.0.${id}`, port: 80 },
      ...(opts.nodePort ? [{ kind: 'NodePort' as const, address: '172.18.0.11', port: 30000 + id }] : []),
    ],
    internal, external, cluster: internal, affinityTimeout: opts.affinity ? 10800 : null, sourceRanges: [], preserveSource: false, maglev: null, topology: '',
  };
}

/** What a BPF program could read must make sense: checked after every write. */
function assertServiceable(m: Mirror, where: string): void {
  for (const [k, raw] of m.frontends) {
    const fe = readFeVal(Buffer.from(raw, 'latin1'), 0);
    for (const set of [fe.localSet, fe.extSet]) {
      const live = m.sets.get(set);
      expect(live?.header, `${where}: frontend ${k} names set ${set} without a header`).toBeTruthy();
    }
  }
  for (const [id, live] of m.sets) {
    if (!live.header) continue;
    for (let s = 1; s <= live.header.count; s++) {
      const b = live.slots.get(slotKey(live.header.gen, s));
      expect(b, `${where}: set ${id} slot ${s} of live generation ${live.header.gen} missing`).toBeDefined();
      expect(m.backends.has(b!), `${where}: set ${id} slot ${s} names missing backend ${b}`).toBe(true);
      if (live.header.affinity > 0) expect(m.hasMember(b!, id), `${where}: backend ${b} in affinity set ${id} has no membership`).toBe(true);
    }
  }
}

/** Applies ops one entry at a time, in apply.ts's order, checking after each. */
function applyStepwise(m: Mirror, ops: Ops): void {
  let n = 0;
  const step = (f: () => void) => { f(); assertServiceable(m, `after write ${++n}`); };
  for (const b of ops.backendUpserts) step(() => m.backends.set(b.id, b.val));
  for (const x of ops.memberUpserts) step(() => m.addMember(x.backend, x.set));
  for (const s of ops.slotUpserts) step(() => m.putSlot(s.set, s.slot, s.gen, s.backend));
  for (const h of ops.headerUpserts) step(() => m.putHeader(h.set, h.val));
  for (const f of ops.frontendUpserts) step(() => m.putFrontend(f.key, f.val));
  for (const f of ops.frontendDeletes) step(() => m.deleteFrontend(f.key));
  for (const s of ops.slotDeletes) step(() => m.deleteSlot(s.set, s.slot, s.gen));
  for (const x of ops.memberDeletes) step(() => m.deleteMember(x.backend, x.set));
  for (const b of ops.backendDeletes) step(() => m.backends.delete(b.id));
}

const ALL: Scope = { all: true };
const only = (...ids: number[]): Scope => ({ all: false, svcIds: new Set(ids) });

function converge(m: Mirror, services: RenderedService[], scope: Scope = ALL): Ops {
  const ops = reconcile(services, m, scope);
  applyStepwise(m, ops);
  return ops;
}

describe('bpf reconcile', () => {
  it('programs a new service and then has nothing left to do', () => {
    const m = new Mirror();
    const svc = renderService(service(1, [backend(1, 10), backend(2, 11)]));
    const ops = converge(m, [svc]);
    expect(ops.backendUpserts.map((b) => b.id)).toEqual([1, 2]);
    expect(ops.slotUpserts.map((s) => [s.slot, s.gen, s.backend])).toEqual([[1, 1, 1], [2, 1, 2]]);
    expect(ops.headerUpserts).toHaveLength(1);
    expect(ops.frontendUpserts.map((f) => f.text)).toEqual(['TCP/10.96.0.1:80']);
    expect(ops.memberUpserts).toEqual([]); // TCP without affinity: read by slot only
    expect(m.liveEquals(4, [1, 2])).toBe(true);
    expect(opCount(reconcile([svc], m, ALL))).toBe(0);
  });

  it('replaces a changed backend list in the other generation and then flips the header', () => {
    const m = new Mirror();
    converge(m, [renderService(service(1, [backend(1, 10), backend(2, 11), backend(3, 12)]))]);
    const ops = converge(m, [renderService(service(1, [backend(1, 10), backend(3, 12)]))]);
    expect(ops.slotUpserts.every((s) => s.gen === 2)).toBe(true);
    expect(ops.headerUpserts[0]!.val).toMatchObject({ count: 2, gen: 2 });
    // The old generation is gone, and so is the backend nobody uses any more.
    expect([...m.sets.get(4)!.slots.keys()].sort()).toEqual([slotKey(2, 1), slotKey(2, 2)]);
    expect(ops.backendDeletes.map((b) => b.id)).toEqual([2]);
    expect(m.backends.has(2)).toBe(false);
  });

  it('keeps membership entries for affinity sets in step with their backends', () => {
    const m = new Mirror();
    converge(m, [renderService(service(1, [backend(1, 10), backend(2, 11)], { affinity: true }))]);
    expect([...m.membersBySet.get(4)!].sort()).toEqual([1, 2]);
    converge(m, [renderService(service(1, [backend(2, 11)], { affinity: true }))]);
    expect([...m.membersBySet.get(4)!]).toEqual([2]);
    converge(m, [renderService(service(1, [backend(2, 11)]))]);
    expect(m.membersBySet.has(4)).toBe(false);
  });

  it('keeps a backend another service still uses', () => {
    const m = new Mirror();
    const shared = backend(7, 70);
    converge(m, [renderService(service(1, [shared])), renderService(service(2, [shared, backend(8, 80)]))]);
    const ops = converge(m, [renderService(service(2, [shared, backend(8, 80)]))]);
    expect(ops.frontendDeletes.map((f) => f.key)).toEqual([rawFeKey('10.96.0.1', 80, 'TCP', 'IPv4')]);
    expect(ops.backendDeletes).toEqual([]);
    expect(m.backends.has(7)).toBe(true);
    expect(m.sets.has(4)).toBe(false);
  });

  it('gives external traffic its own set only when it differs', () => {
    const all = [backend(1, 10), backend(2, 11)];
    const same = renderService(service(1, all, { nodePort: true }));
    expect(same.sets).toHaveLength(1);
    const local = renderService(service(1, all, { nodePort: true, localExternal: [all[0]!] }));
    expect(local.sets.map((s) => s.id)).toEqual([4, 6]);
    const np = local.frontends.find((f) => f.text === 'TCP/172.18.0.11:30001')!;
    expect(readFeVal(Buffer.from(np.val, 'latin1'), 0)).toMatchObject({ localSet: 4, extSet: 6 });
  });

  it('a partial sync touches only the services in scope, in proportion to them', () => {
    const m = new Mirror();
    const many = Array.from({ length: 50 }, (_, i) => renderService(service(i + 1, [backend(i + 1, i + 10)])));
    converge(m, many);
    // Someone deleted service 30's frontend behind our back: a partial sync of service 5 must not notice...
    m.deleteFrontend(rawFeKey('10.96.0.30', 80, 'TCP', 'IPv4'));
    const changed = renderService(service(5, [backend(5, 14), backend(99, 200)]));
    const ops = converge(m, [changed], only(5));
    expect(ops.frontendUpserts).toEqual([]);
    expect(ops.backendUpserts.map((b) => b.id)).toEqual([99]);
    // ...and the next full sync repairs it.
    const full = converge(m, many.map((s) => (s.id === 5 ? changed : s)));
    expect(full.frontendUpserts.map((f) => f.text)).toEqual(['TCP/10.96.0.30:80']);
  });

  it('removes a service completely in a partial sync', () => {
    const m = new Mirror();
    converge(m, [renderService(service(3, [backend(1, 10)], { nodePort: true, localExternal: [] }))]);
    converge(m, [], only(3));
    expect(m.frontends.size).toBe(0);
    expect(m.sets.size).toBe(0);
    expect(m.memberCount).toBe(0);
    expect(m.backends.size).toBe(0);
  });

  it('every intermediate state is serviceable, for any sequence of plans', () => {
    const backendPool = Array.from({ length: 8 }, (_, i) => backend(i + 1, i + 10));
    const plan = fc.array(
      fc.record({
        id: fc.integer({ min: 1, max: 5 }),
        backends: fc.subarray(backendPool),
        nodePort: fc.boolean(),
        affinity: fc.boolean(),
        local: fc.option(fc.subarray(backendPool), { nil: undefined }),
      }),
      { maxLength: 5 },
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(plan, fc.boolean()), { minLength: 1, maxLength: 6 }), (steps) => {
        const m = new Mirror();
        let prevIds = new Set<number>();
        for (const [svcs, partial] of steps) {
          const byId = new Map(svcs.map((s) => [s.id, s]));
          const rendered = [...byId.values()].map((s) => renderService(service(s.id, s.backends, { nodePort: s.nodePort, localExternal: s.local, affinity: s.affinity })));
          const ids = new Set(byId.keys());
          const scope: Scope = partial ? only(...ids, ...prevIds) : ALL;
          converge(m, rendered, scope);
          expect(opCount(reconcile(rendered, m, scope))).toBe(0);
          prevIds = ids;
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('mirror bookkeeping', () => {
  it('keeps its entry counts equal to what it holds, through any sequence of syncs', () => {
    const pool = Array.from({ length: 6 }, (_, i) => backend(i + 1, i + 10));
    fc.assert(fc.property(fc.array(fc.array(fc.record({ id: fc.integer({ min: 1, max: 4 }), backends: fc.subarray(pool), affinity: fc.boolean() }), { maxLength: 4 }), { maxLength: 6 }), (steps) => {
      const m = new Mirror();
      for (const svcs of steps) {
        const byId = new Map(svcs.map((s) => [s.id, s]));
        converge(m, [...byId.values()].map((s) => renderService(service(s.id, s.backends, { affinity: s.affinity }))));
        let sets = 0;
        for (const s of m.sets.values()) sets += s.slots.size + (s.header ? 1 : 0);
        let members = 0;
        for (const s of m.membersBySet.values()) members += s.size;
        expect(m.setEntries).toBe(sets);
        expect(m.memberCount).toBe(members);
      }
    }), { numRuns: 100 });
  });
});
