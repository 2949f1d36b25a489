// Desired entries vs. the mirror -> the writes that make the maps match, in
// the order that keeps every intermediate state serviceable:
//   1. backends  2. memberships  3. slots of new generations  4. set headers
//   (the atomic flip)  5. frontends  6. stale frontends  7. stale sets
//   (header first) and stale slots  8. stale memberships  9. backends no slot
//   names any more.
// A reader (a BPF program) never sees a frontend without its set, a header
// without its slots, or a slot naming a missing backend. Pure.
import { sameSetVal, type SetVal } from './layout.js';
import { serviceOfSet, slotKey, slotOf, type Mirror } from './mirror.js';
import { feValSvcId, SETS_PER_SERVICE, type RenderedService } from './render.js';

export interface Ops {
  /** `owner`: the first service that needs it (failures look up the others, see ownersOf). */
  backendUpserts: { id: number; val: string; owner: string }[];
  memberUpserts: { backend: number; set: number; owner: string }[];
  slotUpserts: { set: number; slot: number; gen: number; backend: number; owner: string }[];
  headerUpserts: { set: number; val: SetVal; owner: string }[];
  frontendUpserts: { key: string; val: string; text: string; owner: string }[];
  frontendDeletes: { key: string; owner: string }[];
  slotDeletes: { set: number; slot: number; gen: number; owner: string }[];
  memberDeletes: { backend: number; set: number; owner: string }[];
  backendDeletes: { id: number }[];
}

/**
 * all: every entry is compared, and what no service wants is removed, except
 * the entries of the services in `keep` (they stay as they are).
 * partial: only the entries of the services with these IDs.
 */
export type Scope = { all: true; keep?: ReadonlySet<number> } | { all: false; svcIds: ReadonlySet<number> };

export function reconcile(services: readonly RenderedService[], mirror: Mirror, scope: Scope): Ops {
  const ops: Ops = {
    backendUpserts: [], memberUpserts: [], slotUpserts: [], headerUpserts: [], frontendUpserts: [],
    frontendDeletes: [], slotDeletes: [], memberDeletes: [], backendDeletes: [],
  };
  const kept = (svcId: number) => scope.all && (scope.keep?.has(svcId) ?? false);

  // Desired state of the services in scope.
  const wantBackends = new Map<number, { val: string; owner: string }>();
  const wantSets = new Set<number>();
  const wantFrontends = new Set<string>();
  const wantMembers = new Map<number, Set<number>>();
  for (const svc of services) {
    for (const [id, val] of svc.backends) if (!wantBackends.has(id)) wantBackends.set(id, { val, owner: svc.key });
    for (const set of svc.sets) {
      wantSets.add(set.id);
      if (set.members) wantMembers.set(set.id, new Set(set.backends));
    }
    for (const fe of svc.frontends) wantFrontends.add(fe.key);
  }

  // 1. backends
  for (const [id, w] of wantBackends) if (mirror.backends.get(id) !== w.val) ops.backendUpserts.push({ id, val: w.val, owner: w.owner });

  // Slot references each backend gains or loses in this sync, to know which
  // backends nothing names afterwards (step 9).
  const refDelta = new Map<number, number>();
  const bump = (b: number, d: number) => refDelta.set(b, (refDelta.get(b) ?? 0) + d);

  for (const svc of services) {
    for (const set of svc.sets) {
      // 2. memberships
      if (set.members) {
        for (const b of set.backends) if (!mirror.hasMember(b, set.id)) ops.memberUpserts.push({ backend: b, set: set.id, owner: svc.key });
      }
      // 3 + 4. a changed list goes to the other generation, then the header flips.
      const live = mirror.sets.get(set.id);
      const hdr = live?.header ?? null;
      let gen: number;
      if (hdr && mirror.liveEquals(set.id, set.backends)) {
        gen = hdr.gen;
      } else if (set.backends.length === 0) {
        gen = hdr?.gen || 1;
      } else {
        gen = hdr?.gen === 1 ? 2 : 1;
        set.backends.forEach((backend, i) => {
          const old = live?.slots.get(slotKey(gen, i + 1));
          if (old === backend) return;
          if (old !== undefined) bump(old, -1);
          bump(backend, 1);
          ops.slotUpserts.push({ set: set.id, slot: i + 1, gen, backend, owner: svc.key });
        });
      }
      const count = set.backends.length;
      const header: SetVal = { backend: 0, count, gen, empty: set.empty, affinity: set.affinity, svcId: set.svcId };
      if (!hdr || !sameSetVal(hdr, header)) ops.headerUpserts.push({ set: set.id, val: header, owner: svc.key });
      // 7 (part). Slots outside the live generation's 1..count (none when the
      // set holds exactly its live slots, the usual case: no scan then).
      if (live && !(live.slots.size === count && gen === hdr?.gen && mirror.liveEquals(set.id, set.backends))) {
        for (const [k, b] of live.slots) {
          const { gen: g, slot } = slotOf(k);
          if (g === gen && slot >= 1 && slot <= count) continue;
          ops.slotDeletes.push({ set: set.id, slot, gen: g, owner: svc.key });
          bump(b, -1);
        }
      }
    }
    // 5. frontends
    for (const fe of svc.frontends) {
      if (mirror.frontends.get(fe.key) !== fe.val) ops.frontendUpserts.push({ key: fe.key, val: fe.val, text: fe.text, owner: svc.key });
    }
  }
  const ownerOf = new Map<number, string>(services.map((s) => [s.id, s.key]));
  const owner = (svcId: number) => ownerOf.get(svcId) ?? '';

  // 6. stale frontends
  for (const key of scope.all ? mirror.frontends.keys() : frontendsOf(mirror, scope.svcIds)) {
    if (wantFrontends.has(key)) continue;
    const svcId = feValSvcId(mirror.frontends.get(key)!);
    if (!kept(svcId)) ops.frontendDeletes.push({ key, owner: owner(svcId) });
  }
  // 7. sets no longer wanted: the header first (a reader that still finds it
  // must find its slots), then the slots.
  const scopedSets = scope.all ? [...mirror.sets.keys()] : setsOf(scope.svcIds);
  for (const id of scopedSets) {
    const live = mirror.sets.get(id);
    if (!live || wantSets.has(id) || kept(serviceOfSet(id))) continue;
    const o = owner(serviceOfSet(id));
    if (live.header) ops.slotDeletes.push({ set: id, slot: 0, gen: 0, owner: o });
    for (const [k, b] of live.slots) {
      const { gen, slot } = slotOf(k);
      ops.slotDeletes.push({ set: id, slot, gen, owner: o });
      bump(b, -1);
    }
  }
  // 8. memberships
  const memberSets = scope.all ? [...mirror.membersBySet.keys()] : scopedSets;
  for (const set of memberSets) {
    if (kept(serviceOfSet(set))) continue;
    const want = wantMembers.get(set);
    for (const b of mirror.membersBySet.get(set) ?? []) {
      if (!want?.has(b)) ops.memberDeletes.push({ backend: b, set, owner: owner(serviceOfSet(set)) });
    }
  }
  // 9. backends no slot names after this sync.
  const candidates = scope.all ? mirror.backends.keys() : refDelta.keys();
  for (const id of candidates) {
    if (wantBackends.has(id) || !mirror.backends.has(id)) continue;
    if ((mirror.slotRefs.get(id) ?? 0) + (refDelta.get(id) ?? 0) <= 0) ops.backendDeletes.push({ id });
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

/** Every service among `services` that uses backend `id`: who fails when writing it fails. */
export function ownersOf(services: readonly RenderedService[], id: number): string[] {
  return services.filter((s) => s.backends.has(id)).map((s) => s.key);
}

export function opCount(ops: Ops): number {
  return Object.values(ops).reduce((n, list: unknown[]) => n + list.length, 0);
}
