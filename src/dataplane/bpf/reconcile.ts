// Desired entries vs. the mirror -> the writes that make the maps match, in
// the order that keeps every intermediate state serviceable:
//   1. backends  2. memberships  3. slots of new generations  4. set headers
//   (the atomic flip)  5. frontends  6. stale frontends  7. stale slots and
//   sets  8. stale memberships  9. unreferenced backends.
// A reader (a BPF program) never sees a frontend without its set, a header
// without its slots, or a slot naming a missing backend. Pure.
import type { BackendVal, FeKey, FeVal, SetVal } from './layout.js';
import { memberKey, serviceOfSet, slotOf, type Mirror } from './mirror.js';
import { SETS_PER_SERVICE, type RenderedService } from './render.js';

export interface Ops {
  backendUpserts: { id: number; val: BackendVal; owners: string[] }[];
  memberUpserts: { backend: number; set: number; owner: string }[];
  slotUpserts: { set: number; slot: number; gen: number; val: SetVal; owner: string }[];
  headerUpserts: { set: number; val: SetVal; owner: string }[];
  frontendUpserts: { keyText: string; key: FeKey; val: FeVal; owner: string }[];
  frontendDeletes: { keyText: string; key: FeKey; owner: string }[];
  slotDeletes: { set: number; slot: number; gen: number; owner: string }[];
  memberDeletes: { backend: number; set: number; owner: string }[];
  backendDeletes: { id: number }[];
}

/** All services (a full sync), or the services with these IDs (a partial one). */
export type Scope = { all: true } | { all: false; svcIds: ReadonlySet<number> };

function sameBackend(a: BackendVal, b: BackendVal): boolean {
  return a.address === b.address && a.port === b.port && a.protocol === b.protocol && a.family === b.family && a.flags === b.flags;
}

function sameFe(a: FeVal, b: FeVal): boolean {
  return a.svcId === b.svcId && a.localSet === b.localSet && a.extSet === b.extSet && a.flags === b.flags;
}

function sameList(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export function reconcile(services: readonly RenderedService[], mirror: Mirror, scope: Scope): Ops {
  const ops: Ops = {
    backendUpserts: [], memberUpserts: [], slotUpserts: [], headerUpserts: [], frontendUpserts: [],
    frontendDeletes: [], slotDeletes: [], memberDeletes: [], backendDeletes: [],
  };

  // Desired state of the services in scope.
  const wantBackends = new Map<number, { val: BackendVal; owners: string[] }>();
  const wantMembers = new Map<string, { backend: number; set: number; owner: string }>();
  const wantSets = new Set<number>();
  const wantFrontends = new Set<string>();
  for (const svc of services) {
    for (const [id, val] of svc.backends) {
      const w = wantBackends.get(id);
      if (w) w.owners.push(svc.key);
      else wantBackends.set(id, { val, owners: [svc.key] });
    }
    for (const set of svc.sets) {
      wantSets.add(set.id);
      for (const b of set.backends) wantMembers.set(memberKey(b, set.id), { backend: b, set: set.id, owner: svc.key });
    }
    for (const fe of svc.frontends) wantFrontends.add(fe.keyText);
  }

  // 1. backends
  for (const [id, w] of wantBackends) {
    const have = mirror.backends.get(id);
    if (!have || !sameBackend(have, w.val)) ops.backendUpserts.push({ id, val: w.val, owners: w.owners });
  }
  // 2. memberships
  for (const [k, m] of wantMembers) if (!mirror.members.has(k)) ops.memberUpserts.push(m);

  // 3 + 4. sets: a changed list goes to the other generation, then the header flips.
  for (const svc of services) {
    for (const set of svc.sets) {
      const live = mirror.sets.get(set.id);
      const hdr = live?.header ?? null;
      const liveList = mirror.liveBackends(set.id);
      let gen: number;
      const listSame = liveList !== null && sameList(liveList, set.backends);
      if (hdr && listSame) {
        gen = hdr.gen;
      } else if (set.backends.length === 0) {
        gen = hdr?.gen || 1;
      } else {
        gen = hdr?.gen === 1 ? 2 : 1;
        set.backends.forEach((backend, i) => {
          ops.slotUpserts.push({
            set: set.id, slot: i + 1, gen, owner: svc.key,
            val: { backend, count: 0, gen: 0, empty: 0, affinity: 0, svcId: 0 },
          });
        });
      }
      const header: SetVal = { backend: 0, count: set.backends.length, gen, empty: set.empty, affinity: set.affinity, svcId: set.svcId };
      if (!hdr || hdr.count !== header.count || hdr.gen !== header.gen || hdr.empty !== header.empty ||
          hdr.affinity !== header.affinity || hdr.svcId !== header.svcId || hdr.backend !== 0) {
        ops.headerUpserts.push({ set: set.id, val: header, owner: svc.key });
      }
      // 7 (part). Slots outside the live generation's 1..count.
      if (live) {
        for (const k of live.slots.keys()) {
          const { gen: g, slot } = slotOf(k);
          const keep = g === gen && slot >= 1 && slot <= set.backends.length;
          if (!keep) ops.slotDeletes.push({ set: set.id, slot, gen: g, owner: svc.key });
        }
      }
    }
  }

  // 5. frontends
  for (const svc of services) {
    for (const fe of svc.frontends) {
      const have = mirror.frontends.get(fe.keyText);
      if (!have || !sameFe(have.val, fe.val)) ops.frontendUpserts.push({ keyText: fe.keyText, key: fe.key, val: fe.val, owner: svc.key });
    }
  }
  const ownerOf = new Map<number, string>(services.map((s) => [s.id, s.key]));
  const owner = (svcId: number) => ownerOf.get(svcId) ?? '';

  // 6. stale frontends
  const scopedFrontends = scope.all ? mirror.frontends.keys() : frontendsOf(mirror, scope.svcIds);
  for (const keyText of scopedFrontends) {
    const fe = mirror.frontends.get(keyText);
    if (fe && !wantFrontends.has(keyText)) ops.frontendDeletes.push({ keyText, key: fe.key, owner: owner(fe.val.svcId) });
  }
  // 7. sets no longer wanted: the header first (a reader that still finds it
  // must find its slots), then the slots.
  const scopedSets = scope.all ? [...mirror.sets.keys()] : setsOf(scope.svcIds);
  for (const id of scopedSets) {
    const live = mirror.sets.get(id);
    if (!live || wantSets.has(id)) continue;
    if (live.header) ops.slotDeletes.push({ set: id, slot: 0, gen: 0, owner: owner(serviceOfSet(id)) });
    for (const k of live.slots.keys()) {
      const { gen, slot } = slotOf(k);
      ops.slotDeletes.push({ set: id, slot, gen, owner: owner(serviceOfSet(id)) });
    }
  }
  // 8. memberships
  const refDrop = new Map<number, number>();
  const scopedMembers = scope.all
    ? [...mirror.members.values()]
    : scopedSets.flatMap((set) => [...(mirror.membersBySet.get(set) ?? [])].map((backend) => ({ backend, set })));
  for (const m of scopedMembers) {
    if (wantMembers.has(memberKey(m.backend, m.set))) continue;
    ops.memberDeletes.push({ backend: m.backend, set: m.set, owner: owner(serviceOfSet(m.set)) });
    refDrop.set(m.backend, (refDrop.get(m.backend) ?? 0) + 1);
  }
  // 9. backends no set uses any more. A full sync removes every backend not
  // wanted; a partial one only those whose last membership it just removed.
  const added = new Map<number, number>();
  for (const m of ops.memberUpserts) added.set(m.backend, (added.get(m.backend) ?? 0) + 1);
  const candidates = scope.all ? mirror.backends.keys() : refDrop.keys();
  for (const id of candidates) {
    if (wantBackends.has(id) || !mirror.backends.has(id)) continue;
    const left = (mirror.memberRefs.get(id) ?? 0) - (refDrop.get(id) ?? 0) + (added.get(id) ?? 0);
    if (scope.all || left <= 0) ops.backendDeletes.push({ id });
  }
  return ops;
}

function* frontendsOf(mirror: Mirror, svcIds: ReadonlySet<number>): Iterable<string> {
  for (const id of svcIds) yield* mirror.frontendsBySvc.get(id) ?? [];
}

function setsOf(svcIds: ReadonlySet<number>): number[] {
  const out: number[] = [];
  for (const id of svcIds) for (let k = 0; k < SETS_PER_SERVICE; k++) out.push(id * SETS_PER_SERVICE + k);
  return out;
}

export function opCount(ops: Ops): number {
  return Object.values(ops).reduce((n, list: unknown[]) => n + list.length, 0);
}
