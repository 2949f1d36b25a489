// Executes reconcile's steps against the maps, in order, one batch per step.
// Capacity is checked before anything is written (admission.ts), so a write
// failing here is unexpected (an entry added behind our back, memory). Such a
// service is left out of every later step: its new slots sit in the unused
// generation, its frontends are neither added nor removed, and the next sync
// is full. Unreferenced backends are kept when anything failed; the next full
// sync removes them.
import type { SyncError } from '../types.js';
import { writeMemberKey, writeSetKey, writeSetVal, type SetVal } from './layout.js';
import type { BpfMap, EntryFailure } from './map.js';
import type { Mirror } from './mirror.js';
import type { Ops } from './reconcile.js';
import { strerror } from './native.js';
import { sizeSettingOf } from './sizes.js';

export interface LbMaps {
  fe: BpfMap;
  set: BpfMap;
  be: BpfMap;
  member: BpfMap;
}

export interface ApplyResult {
  upserts: number;
  deletes: number;
  errors: SyncError[];
  /** Services that failed and keep their previous state. */
  failed: Set<string>;
}

const E2BIG = 7;
const ENOSPC = 28;
const ENOMEM = 12;

function describe(map: BpfMap, errno: number, service: string): SyncError {
  const full = errno === E2BIG || errno === ENOSPC || errno === ENOMEM;
  const who = service || 'an entry no service owns';
  return full
    ? {
        service,
        code: 'MAP_FULL',
        message: `map ${map.name} is full (${map.capacity} entries): ${who} does not fit and keeps its previous state; ` +
          `raise ${sizeSettingOf(map.name)} (then \`bpfproxy cleanup\` and restart to resize a pinned map)`,
      }
    : { service, code: 'MAP_WRITE', message: `write to map ${map.name} failed for ${who}: ${strerror(errno)}` };
}

/** `ownersOf(backend)`: the services that fail with a backend that could not be written. */
export function applyOps(maps: LbMaps, ops: Ops, mirror: Mirror, ownersOf: (backend: number) => string[]): ApplyResult {
  const failed = new Set<string>();
  const errors: SyncError[] = [];
  let upserts = 0;
  let deletes = 0;
  const fail = (map: BpfMap, f: EntryFailure, owners: string[]) => {
    for (const o of owners) {
      if (failed.has(o)) continue;
      failed.add(o);
      errors.push(describe(map, f.errno, o));
    }
    if (owners.length === 0) errors.push(describe(map, f.errno, ''));
  };
  const ok = <T extends { owner: string }>(list: T[]) => list.filter((x) => !failed.has(x.owner));
  const failedIdx = (fs: EntryFailure[]) => new Set(fs.map((f) => f.index));

  // 1. backends
  {
    const list = ops.backendUpserts;
    const fs = maps.be.update(list.length, (i, k, ko, v, vo) => {
      k.writeUInt32LE(list[i]!.id, ko);
      v.write(list[i]!.val, vo, 'latin1');
    });
    for (const f of fs) fail(maps.be, f, ownersOf(list[f.index]!.id));
    const bad = failedIdx(fs);
    list.forEach((b, i) => { if (!bad.has(i)) { mirror.backends.set(b.id, b.val); upserts++; } });
  }
  // 2. memberships
  {
    const list = ops.memberUpserts;
    const fs = maps.member.update(list.length, (i, k, ko, v, vo) => {
      writeMemberKey(k, ko, list[i]!.backend, list[i]!.set);
      v.writeUInt32LE(1, vo);
    });
    for (const f of fs) fail(maps.member, f, [list[f.index]!.owner]);
    const bad = failedIdx(fs);
    list.forEach((m, i) => { if (!bad.has(i)) { mirror.addMember(m.backend, m.set); upserts++; } });
  }
  // 3. slots of new generations
  {
    const list = ok(ops.slotUpserts);
    const slotVal: SetVal = { backend: 0, count: 0, gen: 0, empty: 0, affinity: 0, svcId: 0 };
    const fs = maps.set.update(list.length, (i, k, ko, v, vo) => {
      const e = list[i]!;
      writeSetKey(k, ko, e.set, e.slot, e.gen);
      slotVal.backend = e.backend;
      writeSetVal(v, vo, slotVal);
    });
    for (const f of fs) fail(maps.set, f, [list[f.index]!.owner]);
    const bad = failedIdx(fs);
    list.forEach((e, i) => { if (!bad.has(i)) { mirror.putSlot(e.set, e.slot, e.gen, e.backend); upserts++; } });
  }
  // 4. headers: the flip, skipped for a service whose slots did not all make it
  {
    const list = ok(ops.headerUpserts);
    const fs = maps.set.update(list.length, (i, k, ko, v, vo) => {
      writeSetKey(k, ko, list[i]!.set, 0, 0);
      writeSetVal(v, vo, list[i]!.val);
    });
    for (const f of fs) fail(maps.set, f, [list[f.index]!.owner]);
    const bad = failedIdx(fs);
    list.forEach((e, i) => { if (!bad.has(i)) { mirror.putHeader(e.set, e.val); upserts++; } });
  }
  // 5. frontends
  {
    const list = ok(ops.frontendUpserts);
    const fs = maps.fe.update(list.length, (i, k, ko, v, vo) => {
      k.write(list[i]!.key, ko, 'latin1');
      v.write(list[i]!.val, vo, 'latin1');
    });
    for (const f of fs) fail(maps.fe, f, [list[f.index]!.owner]);
    const bad = failedIdx(fs);
    list.forEach((e, i) => { if (!bad.has(i)) { mirror.putFrontend(e.key, e.val); upserts++; } });
  }
  // 6. stale frontends
  {
    const list = ok(ops.frontendDeletes);
    const fs = maps.fe.delete(list.length, (i, k, ko) => k.write(list[i]!.key, ko, 'latin1'));
    for (const f of fs) fail(maps.fe, f, [list[f.index]!.owner]);
    const bad = failedIdx(fs);
    list.forEach((e, i) => { if (!bad.has(i)) { mirror.deleteFrontend(e.key); deletes++; } });
  }
  // 7. stale slots and sets
  {
    const list = ok(ops.slotDeletes);
    const fs = maps.set.delete(list.length, (i, k, ko) => writeSetKey(k, ko, list[i]!.set, list[i]!.slot, list[i]!.gen));
    for (const f of fs) fail(maps.set, f, [list[f.index]!.owner]);
    const bad = failedIdx(fs);
    list.forEach((e, i) => { if (!bad.has(i)) { mirror.deleteSlot(e.set, e.slot, e.gen); deletes++; } });
  }
  // 8. stale memberships
  {
    const list = ok(ops.memberDeletes);
    const fs = maps.member.delete(list.length, (i, k, ko) => writeMemberKey(k, ko, list[i]!.backend, list[i]!.set));
    for (const f of fs) fail(maps.member, f, [list[f.index]!.owner]);
    const bad = failedIdx(fs);
    list.forEach((e, i) => { if (!bad.has(i)) { mirror.deleteMember(e.backend, e.set); deletes++; } });
  }
  // 9. unreferenced backends, only when everything else went through
  if (failed.size === 0 && errors.length === 0) {
    const list = ops.backendDeletes;
    const fs = maps.be.delete(list.length, (i, k, ko) => k.writeUInt32LE(list[i]!.id, ko));
    for (const f of fs) fail(maps.be, f, []);
    const bad = failedIdx(fs);
    list.forEach((e, i) => { if (!bad.has(i)) { mirror.backends.delete(e.id); deletes++; } });
  }
  return { upserts, deletes, errors, failed };
}
