// What the pinned maps hold, as far as this process knows: rebuilt from a dump
// on every full sync, kept up to date by every write in between.
import type { BackendVal, FeKey, FeVal, SetVal } from './layout.js';
import { SETS_PER_SERVICE } from './render.js';

export interface LiveSet {
  header: SetVal | null;
  /** slotKey(gen, slot) -> backend id */
  slots: Map<number, number>;
}

export const slotKey = (gen: number, slot: number): number => gen * 0x10000 + slot;
export const slotOf = (k: number): { gen: number; slot: number } => ({ gen: Math.floor(k / 0x10000), slot: k % 0x10000 });
export const memberKey = (backend: number, set: number): string => `${backend}:${set}`;
export const serviceOfSet = (set: number): number => Math.floor(set / SETS_PER_SERVICE);

export class Mirror {
  readonly frontends = new Map<string, { key: FeKey; val: FeVal }>();
  readonly sets = new Map<number, LiveSet>();
  readonly backends = new Map<number, BackendVal>();
  readonly members = new Map<string, { backend: number; set: number }>();
  /** backend id -> number of sets it is a member of */
  readonly memberRefs = new Map<number, number>();
  // Indexes that let a partial sync look only at the services it touches.
  readonly frontendsBySvc = new Map<number, Set<string>>();
  readonly membersBySet = new Map<number, Set<number>>();

  clear(): void {
    this.frontends.clear();
    this.sets.clear();
    this.backends.clear();
    this.members.clear();
    this.memberRefs.clear();
    this.frontendsBySvc.clear();
    this.membersBySet.clear();
  }

  putFrontend(keyText: string, key: FeKey, val: FeVal): void {
    const old = this.frontends.get(keyText);
    if (old && old.val.svcId !== val.svcId) this.frontendsBySvc.get(old.val.svcId)?.delete(keyText);
    this.frontends.set(keyText, { key, val });
    let idx = this.frontendsBySvc.get(val.svcId);
    if (!idx) this.frontendsBySvc.set(val.svcId, (idx = new Set()));
    idx.add(keyText);
  }

  deleteFrontend(keyText: string): void {
    const old = this.frontends.get(keyText);
    if (!old) return;
    this.frontends.delete(keyText);
    const idx = this.frontendsBySvc.get(old.val.svcId);
    idx?.delete(keyText);
    if (idx?.size === 0) this.frontendsBySvc.delete(old.val.svcId);
  }

  liveSet(id: number): LiveSet {
    let s = this.sets.get(id);
    if (!s) {
      s = { header: null, slots: new Map() };
      this.sets.set(id, s);
    }
    return s;
  }

  putSlot(set: number, slot: number, gen: number, val: SetVal): void {
    const s = this.liveSet(set);
    if (slot === 0) s.header = val;
    else s.slots.set(slotKey(gen, slot), val.backend);
  }

  deleteSlot(set: number, slot: number, gen: number): void {
    const s = this.sets.get(set);
    if (!s) return;
    if (slot === 0) s.header = null;
    else s.slots.delete(slotKey(gen, slot));
    if (!s.header && s.slots.size === 0) this.sets.delete(set);
  }

  addMember(backend: number, set: number): void {
    const k = memberKey(backend, set);
    if (this.members.has(k)) return;
    this.members.set(k, { backend, set });
    this.memberRefs.set(backend, (this.memberRefs.get(backend) ?? 0) + 1);
    let idx = this.membersBySet.get(set);
    if (!idx) this.membersBySet.set(set, (idx = new Set()));
    idx.add(backend);
  }

  deleteMember(backend: number, set: number): void {
    const k = memberKey(backend, set);
    if (!this.members.delete(k)) return;
    const idx = this.membersBySet.get(set);
    idx?.delete(backend);
    if (idx?.size === 0) this.membersBySet.delete(set);
    const n = (this.memberRefs.get(backend) ?? 1) - 1;
    if (n <= 0) this.memberRefs.delete(backend);
    else this.memberRefs.set(backend, n);
  }

  /** The backends of a set's live generation in slot order, or null when a slot is missing. */
  liveBackends(set: number): number[] | null {
    const s = this.sets.get(set);
    if (!s?.header) return null;
    const out: number[] = [];
    for (let i = 1; i <= s.header.count; i++) {
      const b = s.slots.get(slotKey(s.header.gen, i));
      if (b === undefined) return null;
      out.push(b);
    }
    return out;
  }
}
