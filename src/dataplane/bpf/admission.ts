// Before anything is written: does each service's new entries fit in the
// maps? Services are admitted in key order while they fit; one that does not
// is left out of the sync entirely, so it keeps its previous state (rather
// than being half written), and the error names the map and the service.
// Deletes happen after upserts, so the peak is what the maps hold now plus
// every new key. Pure.
import type { SyncError } from '../types.js';
import type { Mirror } from './mirror.js';
import type { RenderedService } from './render.js';
import { sizeSettingOf } from './sizes.js';

export interface Capacity {
  fe: { name: string; capacity: number };
  set: { name: string; capacity: number };
  be: { name: string; capacity: number };
  member: { name: string; capacity: number };
}

export function admit(services: readonly RenderedService[], mirror: Mirror, cap: Capacity): { admitted: RenderedService[]; refused: RenderedService[]; errors: SyncError[] } {
  const used = { fe: mirror.frontends.size, set: mirror.setEntries, be: mirror.backends.size, member: mirror.memberCount };
  // The usual case, maps far from full: if even counting every entry as new
  // everything fits, admit all without the per-service accounting.
  const bound = { fe: 0, set: 0, be: 0, member: 0 };
  for (const svc of services) {
    bound.fe += svc.frontends.length;
    bound.be += svc.backends.size;
    for (const set of svc.sets) {
      bound.set += 1 + set.backends.length;
      if (set.members) bound.member += set.backends.length;
    }
  }
  if ((Object.keys(bound) as (keyof Capacity)[]).every((m) => used[m] + bound[m] <= cap[m].capacity)) {
    return { admitted: [...services], refused: [], errors: [] };
  }
  const newFe = new Set<string>();
  const newBe = new Set<number>();
  const admitted: RenderedService[] = [];
  const refused: RenderedService[] = [];
  const errors: SyncError[] = [];
  for (const svc of [...services].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))) {
    const need = { fe: 0, set: 0, be: 0, member: 0 };
    const fe: string[] = [];
    const be: number[] = [];
    for (const f of svc.frontends) if (!mirror.frontends.has(f.key) && !newFe.has(f.key)) fe.push(f.key);
    for (const id of svc.backends.keys()) if (!mirror.backends.has(id) && !newBe.has(id)) be.push(id);
    need.fe = fe.length;
    need.be = be.length;
    for (const set of svc.sets) {
      const live = mirror.sets.get(set.id);
      if (!live?.header) need.set++;
      // A changed list is written to the other generation: count those slots as new.
      if (!mirror.liveEquals(set.id, set.backends)) need.set += set.backends.length;
      if (set.members) for (const b of set.backends) if (!mirror.hasMember(b, set.id)) need.member++;
    }
    const over = (Object.keys(need) as (keyof Capacity)[]).find((m) => used[m] + need[m] > cap[m].capacity);
    if (over) {
      refused.push(svc);
      errors.push({
        service: svc.key,
        code: 'MAP_FULL',
        message: `map ${cap[over].name} is full (${used[over]} of ${cap[over].capacity} entries used, ${svc.key} needs ${need[over]} more): ` +
          `${svc.key} keeps its previous state; raise ${sizeSettingOf(cap[over].name)} (then \`bpfproxy cleanup\` and a restart resize the pinned map)`,
      });
      continue;
    }
    for (const m of Object.keys(need) as (keyof Capacity)[]) used[m] += need[m];
    fe.forEach((k) => newFe.add(k));
    be.forEach((id) => newBe.add(id));
    admitted.push(svc);
  }
  return { admitted, refused, errors };
}
