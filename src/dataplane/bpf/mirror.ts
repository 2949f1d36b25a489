// What the pinned maps hold, as far as this process knows: rebuilt from a dump
// on every full sync, kept up to date by every write in between. Frontend and
// backend entries are kept as raw bytes (latin1 strings): compared as they
// are, decoded only for messages and for the restart hints.
import type { SetVal } from './layout.js';
import { feValSvcId, SETS_PER_SERVICE } from './render.js';

export interface LiveSet {
  header: SetVal | null;
  /** slotKey(gen, slot) -> backend id */
  slots: Map<number, number>;
}

export const slotKey = (gen: number, slot: number): number => gen * 0x10000 + slot;
export const slotOf = (k: number): { gen: number; slot: number } => ({ gen: Math.floor(k / 0x10000), slot: k % 0x10000 });
export const serviceOfSet = (set: number): number => Math.floor(set / SETS_PER_SERVICE);

export class Mirror {
  /** raw bpx_fe_key -> raw bpx_fe_val */
  readonly frontends = new Map<string, string>();
  readonly sets = new Map<number, LiveSet>();
  /** backend id -> raw bpx_backend */
  readonly backends = new Map<number, string>();
  /** set -> the backends it has membership entries for (only sets whose readers check them) */
  readonly membersBySet = new Map<number, Set<number>>();
  /** backend id -> how many slot entries (any set, any generation) name it: 0 means unused */
  readonly slotRefs = new Map<number, number>();
  /** service id -> raw keys of its frontends, so a partial sync looks only at the services it touches */
  readonly frontendsBySvc = new Map<number, Set<string>>();
  /** Entries in the set map (headers and slots) and the membership map, kept as they change. */
  setEntries = 0;
  memberCount = 0;

  clear(): void {
    this.clearFrontends();
    this.clearSets();
    this.backends.clear();
    this.clearMembers();
  }

  clearFrontends(): void {
    this.frontends.clear();
    this.frontendsBySvc.clear();
  }

  clearSets(): void {
    this.sets.clear();
    this.slotRefs.clear();
    this.setEntries = 0;
  }

  clearMembers(): void {
    this.membersBySet.clear();
    this.memberCount = 0;
  }

  putFrontend(key: string, val: string): void {
    const old = this.frontends.get(key);
    const svc = feValSvcId(val);
    if (old !== undefined && feValSvcId(old) !== svc) this.unindex(key, feValSvcId(old));
    this.frontends.set(key, val);
    let idx = this.frontendsBySvc.get(svc);
    if (!idx) this.frontendsBySvc.set(svc, (idx = new Set()));
    idx.add(key);
  }

  deleteFrontend(key: string): void {
    const old = this.frontends.get(key);
    if (old === undefined) return;
    this.frontends.delete(key);
    this.unindex(key, feValSvcId(old));
  }

  private unindex(key: string, svc: number): void {
    const idx = this.frontendsBySvc.get(svc);
    idx?.delete(key);
    if (idx?.size === 0) this.frontendsBySvc.delete(svc);
  }

  private liveSet(id: number): LiveSet {
    let s = this.sets.get(id);
    if (!s) {
      s = { header: null, slots: new Map() };
      this.sets.set(id, s);
    }
    return s;
  }

  putHeader(set: number, val: SetVal): void {
    const s = this.liveSet(set);
    if (!s.header) this.setEntries++;
    s.header = val;
  }

  putSlot(set: number, slot: number, gen: number, backend: number): void {
    const slots = this.liveSet(set).slots;
    const k = slotKey(gen, slot);
    const old = slots.get(k);
    if (old === backend) return;
    if (old !== undefined) this.unref(old);
    else this.setEntries++;
    slots.set(k, backend);
    this.slotRefs.set(backend, (this.slotRefs.get(backend) ?? 0) + 1);
  }

  deleteSlot(set: number, slot: number, gen: number): void {
    const s = this.sets.get(set);
    if (!s) return;
    if (slot === 0) {
      if (s.header) this.setEntries--;
      s.header = null;
    } else {
      const k = slotKey(gen, slot);
      const old = s.slots.get(k);
      if (old !== undefined) {
        s.slots.delete(k);
        this.setEntries--;
        this.unref(old);
      }
    }
    if (!s.header && s.slots.size === 0) this.sets.delete(set);
  }

  private unref(backend: number): void {
    const n = (this.slotRefs.get(backend) ?? 1) - 1;
    if (n <= 0) this.slotRefs.delete(backend);
    else this.slotRefs.set(backend, n);
  }

  hasMember(backend: number, set: number): boolean {
    return this.membersBySet.get(set)?.has(backend) ?? false;
  }

  addMember(backend: number, set: number): void {
    let idx = this.membersBySet.get(set);
    if (!idx) this.membersBySet.set(set, (idx = new Set()));
    if (idx.has(backend)) return;
    idx.add(backend);
    this.memberCount++;
  }

  deleteMember(backend: number, set: number): void {
    const idx = this.membersBySet.get(set);
    if (!idx?.delete(backend)) return;
    this.memberCount--;
    if (idx.size === 0) this.membersBySet.delete(set);
  }

  /** Whether the set's live generation holds exactly `list`, in slot order. No allocation. */
  liveEquals(set: number, list: readonly number[]): boolean {
    const s = this.sets.get(set);
    if (!s?.header || s.header.count !== list.length) return false;
    for (let i = 0; i < list.length; i++) if (s.slots.get(slotKey(s.header.gen, i + 1)) !== list[i]) return false;
    return true;
  }

}
