// The bpf dataplane's generic sync over the LB tables, without a kernel: the
// maps are in memory, writes go through one entry at a time in the order the
// sync issues them, and after EVERY single write the state a BPF program
// could read must be serviceable.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FE_VAL, SET_KEY, SET_VAL } from '../../../src/dataplane/bpf/layout.js';
import { LB_TABLES } from '../../../src/dataplane/bpf/lb-tables.js';
import { MAP_SIZE_SETTINGS } from '../../../src/dataplane/bpf/sizes.js';
import type { PlannedBackend, PlannedService } from '../../../src/planner/types.js';
import { FakeLb, feKeyHex, type Write } from '../../helpers/fake-maps.js';
import { frontend, plannedBackend, plannedService } from '../../helpers/planned.js';

const backend = (id: number, last: number): PlannedBackend => plannedBackend(id, `10.244.0.${last}`);

function service(id: number, backends: PlannedBackend[], opts: { nodePort?: boolean; localExternal?: PlannedBackend[]; affinity?: boolean; frontends?: number } = {}): PlannedService {
  return plannedService({
    id, backends, localExternal: opts.localExternal, affinity: opts.affinity,
    frontends: [
      ...Array.from({ length: opts.frontends ?? 1 }, (_, i) => frontend('ClusterIP', i === 0 ? `10.96.0.${id}` : `10.96.${i}.${id}`, 80)),
      ...(opts.nodePort ? [frontend('NodePort', '172.18.0.11', 30000 + id)] : []),
    ],
  });
}

/** A lab of fake maps that checks serviceability after every single write. */
function checkedLb(caps?: ConstructorParameters<typeof FakeLb>[0]): FakeLb {
  const lb = new FakeLb(caps);
  let n = 0;
  for (const m of lb.maps) {
    m.afterEach = () => {
      n++;
      const p = lb.problem();
      if (p) throw new Error(`after write ${n}: ${p}`);
    };
  }
  return lb;
}

const puts = (log: Write[], map: string) => log.filter((w) => w.map === map && w.op === 'put');
const dels = (log: Write[], map: string) => log.filter((w) => w.map === map && w.op === 'del');
const u32At = (b: Uint8Array, off: number) => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(off, true);
const slotOf = (w: Write) => {
  const dv = new DataView(w.key.buffer, w.key.byteOffset, w.key.byteLength);
  return { set: dv.getUint32(0, true), slot: dv.getUint16(SET_KEY.fields.slot.offset, true), gen: dv.getUint8(SET_KEY.fields.gen.offset) };
};

describe('bpf sync over the LB tables', () => {
  it('programs a new service and then has nothing left to do', () => {
    const lb = checkedLb();
    const svc = service(1, [backend(1, 10), backend(2, 11)]);
    const log = lb.logged(() => lb.apply([svc]));
    expect(puts(log, 'bpx_be_v1').map((w) => u32At(w.key, 0))).toEqual([1, 2]);
    const slots = puts(log, 'bpx_set_v1').map(slotOf).filter((k) => k.slot !== 0);
    expect(slots.map((k) => [k.slot, k.gen])).toEqual([[1, 1], [2, 1]]);
    expect(puts(log, 'bpx_set_v1').map(slotOf).filter((k) => k.slot === 0)).toHaveLength(1);
    expect(puts(log, 'bpx_fe_v1').map((w) => Buffer.from(w.key).toString('hex'))).toEqual([feKeyHex('10.96.0.1', 80)]);
    expect(puts(log, 'bpx_member_v1')).toEqual([]); // TCP without affinity: read by slot only
    expect(lb.live(4)).toEqual([1, 2]);
    expect(lb.logged(() => lb.apply([svc]))).toEqual([]);
    expect(lb.logged(() => lb.apply([svc], [1]))).toEqual([]);
  });

  it('replaces a changed backend list in the other generation and then flips the header', () => {
    const lb = checkedLb();
    lb.apply([service(1, [backend(1, 10), backend(2, 11), backend(3, 12)])]);
    const log = lb.logged(() => lb.apply([service(1, [backend(1, 10), backend(3, 12)])]));
    const slotPuts = puts(log, 'bpx_set_v1').map(slotOf).filter((k) => k.slot !== 0);
    expect(slotPuts.every((k) => k.gen === 2)).toBe(true);
    expect(lb.header(4)).toMatchObject({ count: 2, gen: 2 });
    // The old generation is gone, and so is the backend nobody uses any more.
    expect(lb.slotsOf(4)).toEqual([[1, 2], [2, 2]]);
    expect(dels(log, 'bpx_be_v1').map((w) => u32At(w.key, 0))).toEqual([2]);
    expect(lb.hasBackend(2)).toBe(false);
  });

  it('keeps membership entries for affinity sets in step with their backends', () => {
    const lb = checkedLb();
    lb.apply([service(1, [backend(1, 10), backend(2, 11)], { affinity: true })]);
    expect(lb.membersOf(4)).toEqual([1, 2]);
    lb.apply([service(1, [backend(2, 11)], { affinity: true })]);
    expect(lb.membersOf(4)).toEqual([2]);
    lb.apply([service(1, [backend(2, 11)])]);
    expect(lb.membersOf(4)).toEqual([]);
  });

  it('keeps a backend another service still uses', () => {
    const lb = checkedLb();
    const shared = backend(7, 70);
    lb.apply([service(1, [shared]), service(2, [shared, backend(8, 80)])]);
    const log = lb.logged(() => lb.apply([service(2, [shared, backend(8, 80)])]));
    expect(dels(log, 'bpx_fe_v1').map((w) => Buffer.from(w.key).toString('hex'))).toEqual([feKeyHex('10.96.0.1', 80)]);
    expect(dels(log, 'bpx_be_v1')).toEqual([]);
    expect(lb.hasBackend(7)).toBe(true);
    expect(lb.header(4)).toBeNull();
    expect(lb.slotsOf(4)).toEqual([]);
  });

  it('keeps a shared backend through a partial sync that drops it from one service', () => {
    const lb = checkedLb();
    const shared = backend(7, 70);
    lb.apply([service(1, [shared]), service(2, [shared])]);
    lb.apply([service(1, [backend(9, 90)])], [1]);
    expect(lb.hasBackend(7)).toBe(true);
    lb.apply([service(2, [backend(9, 90)])], [2]);
    expect(lb.hasBackend(7)).toBe(false);
  });

  it('gives external traffic its own set only when it differs', () => {
    const all = [backend(1, 10), backend(2, 11)];
    const same = checkedLb();
    same.apply([service(1, all, { nodePort: true })]);
    expect(same.header(4)).not.toBeNull();
    expect(same.header(6)).toBeNull();
    const local = checkedLb();
    local.apply([service(1, all, { nodePort: true, localExternal: [all[0]!] })]);
    expect([4, 5, 6].filter((s) => local.header(s) !== null)).toEqual([4, 6]);
    const np = local.frontends().find((f) => f.port === 30001)!;
    expect(np).toMatchObject({ localSet: 4, extSet: 6 });
  });

  it('a partial sync touches only the services in scope, in proportion to them', () => {
    const lb = checkedLb();
    const many = Array.from({ length: 50 }, (_, i) => service(i + 1, [backend(i + 1, i + 10)]));
    lb.apply(many);
    // Someone deleted service 30's frontend behind our back: a partial sync of service 5 must not notice...
    lb.fe.entries.delete(feKeyHex('10.96.0.30', 80));
    const changed = service(5, [backend(5, 14), backend(99, 200)]);
    const log = lb.logged(() => lb.apply([changed], [5]));
    expect(puts(log, 'bpx_fe_v1')).toEqual([]);
    expect(puts(log, 'bpx_be_v1').map((w) => u32At(w.key, 0))).toEqual([99]);
    // ...and the next full sync repairs it.
    const full = lb.logged(() => lb.apply(many.map((s) => (s.id === 5 ? changed : s))));
    expect(puts(full, 'bpx_fe_v1').map((w) => Buffer.from(w.key).toString('hex'))).toEqual([feKeyHex('10.96.0.30', 80)]);
  });

  it('notices a value edited behind its back, though the dump has as many entries as before, and repairs it', () => {
    const lb = checkedLb();
    const svc = service(1, [backend(1, 10)]);
    lb.apply([svc]);
    lb.apply([service(1, [backend(1, 10), backend(2, 11)])], [1]);
    lb.apply([svc], [1]);
    // The fingerprints kept while writing match the dumps': nothing is compared entry by entry.
    const compared = lb.sync.compared;
    expect(lb.sync.reload()).toEqual([]);
    expect(lb.sync.compared).toBe(compared);
    const key = feKeyHex('10.96.0.1', 80);
    const edited = lb.fe.entries.get(key)!.slice();
    edited[FE_VAL.fields.local_set.offset] = 99;
    lb.fe.entries.set(key, edited);
    const log = lb.logged(() => lb.apply([svc]));
    expect(lb.sync.compared).toBeGreaterThan(compared);
    expect(puts(log, 'bpx_fe_v1').map((w) => Buffer.from(w.key).toString('hex'))).toEqual([key]);
    expect(lb.frontends()[0]).toMatchObject({ localSet: 4 });
  });

  it('removes a service completely in a partial sync', () => {
    const lb = checkedLb();
    lb.apply([service(3, [backend(1, 10)], { nodePort: true, localExternal: [] })]);
    lb.apply([], [3]);
    for (const m of lb.maps) expect(m.entries.size, m.name).toBe(0);
  });

  it('moves a frontend to a new service ID without a moment in which it names a missing set', () => {
    const lb = checkedLb();
    lb.apply([service(1, [backend(1, 10)])]);
    const moved = { ...service(2, [backend(2, 11)]), frontends: service(1, []).frontends };
    lb.apply([moved], [1]);
    expect(lb.frontends()).toEqual([expect.objectContaining({ svcId: 2, localSet: 8 })]);
    expect(lb.header(4)).toBeNull();
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
        const lb = checkedLb();
        let prevIds = new Set<number>();
        for (const [svcs, partial] of steps) {
          const byId = new Map(svcs.map((s) => [s.id, s]));
          const planned = [...byId.values()].map((s) => service(s.id, s.backends, { nodePort: s.nodePort, localExternal: s.local, affinity: s.affinity }));
          const ids = new Set(byId.keys());
          const scope = partial ? [...ids, ...prevIds] : null;
          lb.apply(planned, scope);
          expect(lb.logged(() => lb.apply(planned, scope))).toEqual([]);
          prevIds = ids;
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('mirror bookkeeping', () => {
  it('keeps the mirror equal to what the maps hold, through any sequence of syncs', () => {
    const pool = Array.from({ length: 6 }, (_, i) => backend(i + 1, i + 10));
    fc.assert(fc.property(fc.array(fc.array(fc.record({ id: fc.integer({ min: 1, max: 4 }), backends: fc.subarray(pool), affinity: fc.boolean() }), { maxLength: 4 }), { maxLength: 6 }), (steps) => {
      const lb = new FakeLb();
      for (const svcs of steps) {
        const byId = new Map(svcs.map((s) => [s.id, s]));
        lb.apply([...byId.values()].map((s) => service(s.id, s.backends, { affinity: s.affinity })));
        expect(lb.t.frontends.size).toBe(lb.fe.entries.size);
        expect(lb.t.headers.size + lb.t.slots.size).toBe(lb.set.entries.size);
        expect(lb.t.backends.size).toBe(lb.be.entries.size);
        expect(lb.t.members.size).toBe(lb.member.entries.size);
        expect(lb.sync.reload()).toEqual([]);
      }
    }), { numRuns: 100 });
  });
});

describe('a sync into empty maps', () => {
  it('writes a backend two services share once, and leaves a mirror the next full sync finds equal without writing', () => {
    const lb = checkedLb();
    const shared = backend(7, 17);
    const svcs = [service(1, [backend(1, 10), shared]), service(2, [shared, backend(3, 13)], { affinity: true })];
    const log = lb.logged(() => lb.apply(svcs));
    expect(puts(log, 'bpx_be_v1').map((w) => u32At(w.key, 0))).toEqual([1, 7, 3]);
    expect(lb.live(4)).toEqual([1, 7]);
    expect(lb.live(8)).toEqual([7, 3]);
    expect(lb.membersOf(8)).toEqual([3, 7]);
    expect(lb.t.backends.size).toBe(3);
    expect(lb.sync.reload()).toEqual([]);
    expect(lb.logged(() => lb.apply(svcs))).toEqual([]);
    // The mirror it kept is the one later syncs diff against: dropping the shared backend from one service keeps it.
    lb.apply([service(1, [backend(1, 10)]), svcs[1]!]);
    expect(lb.live(4)).toEqual([1]);
    expect(lb.hasBackend(7)).toBe(true);
    expect(lb.sync.reload()).toEqual([]);
  });

  it('fails only the service whose entry the kernel refused, leaving out its later entries, and converges on the next full sync', () => {
    // A map already holding an entry the (empty) mirror does not know: the partial sync trusts the mirror, the kernel refuses.
    const lb = checkedLb({ be: 3 });
    lb.be.entries.set(Buffer.from(new Uint8Array([99, 0, 0, 0])).toString('hex'), new Uint8Array(24));
    const svcs = [service(1, [backend(1, 10), backend(2, 11)]), service(2, [backend(3, 13)])];
    const res = lb.apply(svcs, []);
    expect([...res.failed]).toEqual([2]);
    expect(res.errors.map((e) => e.service)).toEqual([svcs[1]!.key]);
    expect(lb.live(4)).toEqual([1, 2]);
    expect(lb.header(8)).toBeNull();
    expect(lb.frontends().map((f) => f.svcId)).toEqual([1]);
    expect(lb.t.backends.size).toBe(2);
    lb.be.entries.delete(Buffer.from(new Uint8Array([99, 0, 0, 0])).toString('hex'));
    expect(lb.apply(svcs).errors).toEqual([]);
    expect(lb.live(8)).toEqual([3]);
    expect(lb.sync.reload()).toEqual([]);
  });
});

describe('admission', () => {
  const names = (r: { errors: { service: string }[] }) => r.errors.map((e) => e.service);

  it('admits in key order while services fit, and names the map that is full', () => {
    const lb = new FakeLb({ fe: 4 });
    const r = lb.apply([service(2, [backend(1, 1)], { frontends: 2 }), service(1, [backend(1, 1)], { frontends: 2 }), service(3, [backend(2, 2)])]);
    expect(names(r)).toEqual(['default/s3:/IPv4']);
    expect(r.errors[0]).toMatchObject({ code: 'MAP_FULL', message: expect.stringContaining('bpx_fe_v1') });
    expect(r.errors[0]!.message).toContain('bpf.mapSizes.frontends');
    expect(lb.fe.entries.size).toBe(4);
    expect(lb.header(12)).toBeNull(); // nothing of s3 was written
  });

  it('counts a shared new backend once, and what the maps already hold not at all', () => {
    const lb = new FakeLb({ be: 3 });
    lb.apply([service(1, [backend(1, 1), backend(2, 2)])]);
    // Backends 1 and 2 exist; s2 and s3 both need the new backend 3: 3 backends fit.
    expect(names(lb.apply([service(1, [backend(1, 1), backend(2, 2)]), service(2, [backend(2, 2), backend(3, 3)]), service(3, [backend(3, 3)])]))).toEqual([]);
    expect(names(lb.apply([service(2, [backend(2, 2), backend(3, 3)]), service(3, [backend(4, 4)])], [1]))).toEqual(['default/s3:/IPv4']);
  });

  it('counts a changed backend list as a whole new generation of slots', () => {
    // 1 header + 3 slots = 4 entries; a changed list needs 3 more slots in the other generation.
    const lb = new FakeLb({ set: 4 });
    expect(names(lb.apply([service(1, [backend(1, 1), backend(2, 2), backend(3, 3)])]))).toEqual([]);
    expect(names(lb.apply([service(1, [backend(1, 1), backend(2, 2), backend(3, 3), backend(4, 4)])]))).toEqual(['default/s1:/IPv4']);
    // Refused: it keeps its previous state, whole.
    expect(lb.live(4)).toEqual([1, 2, 3]);
  });

  it('does not keep a removed service\'s frontend for a refused service that wanted the same frontend', () => {
    const lb = checkedLb({ set: 3 });
    lb.apply([service(1, [backend(1, 1)])]);
    // s2 takes over s1's ClusterIP but its 3 backends do not fit; s1 goes in the same sync.
    const taker = { ...service(2, [backend(2, 2), backend(3, 3), backend(4, 4)]), frontends: service(1, []).frontends };
    const r = lb.apply([taker], [1]);
    expect(r.errors.map((e) => e.service)).toEqual(['default/s2:/IPv4']);
    // Every write was checked serviceable; s1 is gone whole, s2 has nothing yet.
    expect(lb.frontends()).toEqual([]);
    expect(lb.header(4)).toBeNull();
  });

  it('does no per-service accounting for a resync of a map more than half full', () => {
    const lb = new FakeLb({ fe: 60 });
    const many = Array.from({ length: 50 }, (_, i) => service(i + 1, [backend(i + 1, i + 1)]));
    lb.apply(many);
    // 50 of 60 used: counting every entry as new would not fit; counting what changed does.
    expect(lb.apply(many).errors).toEqual([]);
    expect(lb.apply([...many, service(51, [backend(51, 51)])]).errors).toEqual([]);
  });
});

describe('encoding', () => {
  it('writes the frontend value the socket programs read', () => {
    const lb = new FakeLb();
    lb.apply([service(7, [backend(1, 1)], { nodePort: true, localExternal: [] })]);
    const np = lb.frontends().find((f) => f.port === 30007)!;
    expect(np).toMatchObject({ svcId: 7, localSet: 28, extSet: 30 });
    expect(lb.header(30)).toMatchObject({ count: 0, empty: 2, svcId: 7 });
    expect(FE_VAL.size).toBe(16);
    expect(SET_VAL.fields.svc_id.offset).toBe(12);
  });
});

describe('table declarations', () => {
  it('name, for each table, the setting that sizes its map', () => {
    for (const t of LB_TABLES) expect(MAP_SIZE_SETTINGS[t.sizeSetting], t.name).toContain(t.map);
  });

  it('write shared entries before the tables that refer to them', () => {
    for (const [i, t] of LB_TABLES.entries()) {
      if (!t.refersTo) continue;
      const target = LB_TABLES.findIndex((x) => x.name === t.refersTo!.table);
      expect(target, `${t.name} refers to ${t.refersTo.table}`).toBeGreaterThanOrEqual(0);
      expect(target).toBeLessThan(i);
      expect(LB_TABLES[target]!.shared).toBe(true);
    }
  });
});
