// In-memory stand-ins for the pinned maps, for testing the generic sync
// without a kernel: hash maps with a capacity (a new key past it fails with
// E2BIG, as the kernel's does), a log of every single write, and a hook that
// runs after each one, so a test can check what a BPF program could read at
// every intermediate state.
import { fingerprintOf } from '../../src/dataplane/bpf/fingerprint.js';
import { FE_KEY, FE_VAL, MEMBER_KEY, SET_KEY, SET_VAL } from '../../src/dataplane/bpf/layout.js';
import { encodeService, LB_TABLES, type LbTables } from '../../src/dataplane/bpf/lb-tables.js';
import { TableSync, type CommitResult, type EntryFailure, type MapIO, type WriteFaults } from '../../src/dataplane/bpf/sync.js';
import type { PlannedService } from '../../src/planner/types.js';

const E2BIG = 7;

export interface Write { map: string; op: 'put' | 'del'; key: Uint8Array; value: Uint8Array | null }

export class FakeMap implements MapIO {
  readonly entries = new Map<string, Uint8Array>();
  afterEach: (() => void) | null = null;
  log: Write[] | null = null;

  constructor(readonly name: string, readonly keySize: number, readonly valueSize: number, public capacity = 1 << 20) {}

  write(keys: Uint8Array, values: Uint8Array, n: number): EntryFailure[] {
    const out: EntryFailure[] = [];
    for (let i = 0; i < n; i++) {
      const k = keys.slice(i * this.keySize, (i + 1) * this.keySize);
      const hex = Buffer.from(k).toString('hex');
      if (!this.entries.has(hex) && this.entries.size >= this.capacity) {
        out.push({ index: i, errno: E2BIG });
        continue;
      }
      const v = values.slice(i * this.valueSize, (i + 1) * this.valueSize);
      this.entries.set(hex, v);
      this.log?.push({ map: this.name, op: 'put', key: k, value: v });
      this.afterEach?.();
    }
    return out;
  }

  remove(keys: Uint8Array, n: number): EntryFailure[] {
    for (let i = 0; i < n; i++) {
      const k = keys.slice(i * this.keySize, (i + 1) * this.keySize);
      if (this.entries.delete(Buffer.from(k).toString('hex'))) {
        this.log?.push({ map: this.name, op: 'del', key: k, value: null });
        this.afterEach?.();
      }
    }
    return [];
  }

  /** Dumps, with the order-independent fingerprint the C shim computes over a dump. */
  dumpWords(): { keys: Uint32Array; values: Uint32Array; count: number; fp: [number, number] } {
    const n = this.entries.size;
    const keys = new Uint32Array((n * this.keySize) / 4);
    const values = new Uint32Array((n * this.valueSize) / 4);
    const k8 = new Uint8Array(keys.buffer);
    const v8 = new Uint8Array(values.buffer);
    let i = 0;
    for (const [hex, v] of this.entries) {
      k8.set(Buffer.from(hex, 'hex'), i * this.keySize);
      v8.set(v, i * this.valueSize);
      i++;
    }
    this.dumps++;
    return { keys, values, count: n, fp: fingerprintOf(keys, this.keySize / 4, values, this.valueSize / 4, n) };
  }

  /** How many times the map was dumped. */
  dumps = 0;

  /** Every entry as DataViews. */
  *views(): Iterable<{ k: DataView; v: DataView }> {
    for (const [hex, v] of this.entries) {
      const kb = Buffer.from(hex, 'hex');
      yield { k: new DataView(kb.buffer, kb.byteOffset, kb.length), v: new DataView(v.buffer, v.byteOffset, v.length) };
    }
  }

  has(key: Uint8Array): boolean {
    return this.entries.has(Buffer.from(key).toString('hex'));
  }

  get(key: Uint8Array): DataView | null {
    const v = this.entries.get(Buffer.from(key).toString('hex'));
    return v ? new DataView(v.buffer, v.byteOffset, v.length) : null;
  }
}

export interface Header { count: number; gen: number; empty: number; affinity: number; svcId: number }

/** The LB maps in memory, with the tables over them and helpers that read them the way the BPF programs do. */
export class FakeLb {
  readonly fe = new FakeMap('bpx_fe_v1', FE_KEY.size, FE_VAL.size);
  readonly set = new FakeMap('bpx_set_v1', SET_KEY.size, SET_VAL.size);
  readonly be = new FakeMap('bpx_be_v1', 4, 24);
  readonly member = new FakeMap('bpx_member_v1', MEMBER_KEY.size, 4);
  readonly maps = [this.be, this.member, this.set, this.fe];
  readonly sync: TableSync;
  readonly t: LbTables;

  constructor(caps: Partial<Record<'fe' | 'set' | 'be' | 'member', number>> = {}, faults?: WriteFaults) {
    for (const [k, n] of Object.entries(caps)) this[k as 'fe'].capacity = n;
    this.sync = new TableSync(LB_TABLES, new Map(this.maps.map((m) => [m.name, m])), (map, setting, errno, service) => ({
      service, code: 'MAP_FULL', message: `map ${map.name} is full (errno ${errno}): raise bpf.mapSizes.${setting}`,
    }), faults);
    const tbl = (n: string) => this.sync.table(n);
    this.t = { backends: tbl('backends'), members: tbl('memberships'), slots: tbl('set slots'), headers: tbl('set headers'), frontends: tbl('frontends') };
  }

  /** One sync: full over `services`, or partial over the given owner IDs. */
  apply(services: readonly PlannedService[], partial: number[] | null = null, keep: number[] = []): CommitResult {
    if (!partial) this.sync.reload();
    this.sync.begin();
    const names = new Map<number, string>();
    for (const s of services) {
      names.set(s.id, s.key);
      encodeService(this.t, s);
    }
    return this.sync.commit({
      full: partial === null,
      owners: new Set([...(partial ?? []), ...services.map((s) => s.id)]),
      keep: new Set(keep),
      names,
    });
  }

  /** Records the writes made while `f` runs. */
  logged(f: () => void): Write[] {
    const log: Write[] = [];
    for (const m of this.maps) m.log = log;
    try { f(); } finally { for (const m of this.maps) m.log = null; }
    return log;
  }

  header(set: number): Header | null {
    const v = this.set.get(setKey(set, 0, 0));
    if (!v) return null;
    return {
      count: v.getUint16(SET_VAL.fields.count.offset, true), gen: v.getUint8(SET_VAL.fields.gen.offset),
      empty: v.getUint8(SET_VAL.fields.empty.offset), affinity: v.getUint32(SET_VAL.fields.affinity.offset, true),
      svcId: v.getUint32(SET_VAL.fields.svc_id.offset, true),
    };
  }

  slot(set: number, slot: number, gen: number): number | null {
    const v = this.set.get(setKey(set, slot, gen));
    return v ? v.getUint32(SET_VAL.fields.backend.offset, true) : null;
  }

  /** The backends a reader finds in a set's live generation. */
  live(set: number): number[] | null {
    const h = this.header(set);
    if (!h) return null;
    return Array.from({ length: h.count }, (_, i) => this.slot(set, i + 1, h.gen) ?? -1);
  }

  /** Every slot key of a set: [slot, gen] pairs. */
  slotsOf(set: number): [number, number][] {
    const out: [number, number][] = [];
    for (const { k } of this.set.views()) {
      if (k.getUint32(0, true) !== set) continue;
      const slot = k.getUint16(SET_KEY.fields.slot.offset, true);
      if (slot !== 0) out.push([slot, k.getUint8(SET_KEY.fields.gen.offset)]);
    }
    return out.sort((a, b) => a[1] - b[1] || a[0] - b[0]);
  }

  hasBackend(id: number): boolean {
    return this.be.has(u32(id));
  }

  hasMember(backend: number, set: number): boolean {
    const k = new Uint8Array(8);
    const dv = new DataView(k.buffer);
    dv.setUint32(MEMBER_KEY.fields.backend.offset, backend, true);
    dv.setUint32(MEMBER_KEY.fields.set.offset, set, true);
    return this.member.has(k);
  }

  membersOf(set: number): number[] {
    const out: number[] = [];
    for (const { k } of this.member.views()) if (k.getUint32(MEMBER_KEY.fields.set.offset, true) === set) out.push(k.getUint32(0, true));
    return out.sort((a, b) => a - b);
  }

  /** Frontends as (address bytes hex, port) -> (localSet, extSet). */
  frontends(): { key: string; port: number; localSet: number; extSet: number; svcId: number }[] {
    const out = [];
    for (const { k, v } of this.fe.views()) {
      out.push({
        key: Buffer.from(k.buffer, k.byteOffset, k.byteLength).toString('hex'),
        port: k.getUint16(FE_KEY.fields.port.offset, false),
        svcId: v.getUint32(FE_VAL.fields.svc_id.offset, true),
        localSet: v.getUint32(FE_VAL.fields.local_set.offset, true),
        extSet: v.getUint32(FE_VAL.fields.ext_set.offset, true),
      });
    }
    return out;
  }

  /** What a BPF program could read must make sense; returns the first problem, or null. */
  problem(): string | null {
    for (const f of this.frontends()) {
      for (const set of [f.localSet, f.extSet]) if (!this.header(set)) return `frontend ${f.key} names set ${set} without a header`;
    }
    for (const { k } of this.set.views()) {
      if (k.getUint16(SET_KEY.fields.slot.offset, true) !== 0) continue;
      const set = k.getUint32(0, true);
      const h = this.header(set)!;
      for (let s = 1; s <= h.count; s++) {
        const b = this.slot(set, s, h.gen);
        if (b === null) return `set ${set} slot ${s} of live generation ${h.gen} missing`;
        if (!this.hasBackend(b)) return `set ${set} slot ${s} names missing backend ${b}`;
        if (h.affinity > 0 && !this.hasMember(b, set)) return `backend ${b} in affinity set ${set} has no membership`;
      }
    }
    return null;
  }
}

export function setKey(set: number, slot: number, gen: number): Uint8Array {
  const k = new Uint8Array(SET_KEY.size);
  const dv = new DataView(k.buffer);
  dv.setUint32(SET_KEY.fields.set.offset, set, true);
  dv.setUint16(SET_KEY.fields.slot.offset, slot, true);
  dv.setUint8(SET_KEY.fields.gen.offset, gen);
  return k;
}

export function u32(n: number): Uint8Array {
  const k = new Uint8Array(4);
  new DataView(k.buffer).setUint32(0, n, true);
  return k;
}

/** The frontend key bytes (hex) of an IPv4 address, port and TCP. */
export function feKeyHex(ip: string, port: number, proto = 6): string {
  const k = Buffer.alloc(FE_KEY.size);
  ip.split('.').forEach((p, i) => k.writeUInt8(Number(p), i));
  k.writeUInt16BE(port, FE_KEY.fields.port.offset);
  k.writeUInt8(proto, FE_KEY.fields.proto.offset);
  k.writeUInt8(4, FE_KEY.fields.family.offset);
  return k.toString('hex');
}
