// The bpf dataplane: DesiredDataplane -> pinned maps read by the socket
// programs. A full sync dumps the maps and repairs every difference (so a
// restarted proxy converges without flushing, and an entry edited behind its
// back is put right); a partial sync touches only the changed services and
// trusts the mirror.
import type { Logger } from '../../runtime/log.js';
import type { DesiredDataplane, IdHints, PlannedService } from '../../planner/types.js';
import { frontendHintKey, hasExternalFrontends } from '../../planner/types.js';
import type { Dataplane, SyncError, SyncOptions, SyncResult } from '../types.js';
import { admit } from './admission.js';
import { applyOps } from './apply.js';
import { readBackend, readFeKey, readSetVal, sameSetVal, SET_KEY, SET_VAL } from './layout.js';
import { loadSockDatapath, type LoadOptions, type SockDatapath } from './loader.js';
import { Mirror, slotKey } from './mirror.js';
import { opCount, ownersOf, reconcile, type Scope } from './reconcile.js';
import { feValSvcId, MAX_SET_BACKENDS, renderService, type RenderedService } from './render.js';

export class BpfDataplane implements Dataplane {
  readonly mode = 'bpf' as const;
  private readonly mirror = new Mirror();
  /** Service ID per planned-service key as last applied: a partial sync must find a removed service's entries. */
  private appliedIds = new Map<string, number>();
  private readonly reported = new Set<string>();
  /** Rendering is pure: a planned service that did not change (same object) renders the same. */
  private readonly rendered = new WeakMap<PlannedService, RenderedService>();

  private constructor(private readonly dp: SockDatapath, private readonly log: Logger) {}

  static open(opts: LoadOptions): BpfDataplane {
    return new BpfDataplane(loadSockDatapath(opts), opts.log);
  }

  get maps(): SockDatapath['maps'] {
    return this.dp.maps;
  }

  async restore(): Promise<IdHints> {
    this.reload();
    const services = new Map<string, number>();
    const buf = Buffer.alloc(64);
    for (const [key, val] of this.mirror.frontends) {
      buf.write(key, 0, 'latin1');
      const k = readFeKey(buf, 0);
      services.set(frontendHintKey(k.protocol, k.address, k.port), feValSvcId(val));
    }
    const backends = new Map<string, number>();
    for (const [id, raw] of this.mirror.backends) {
      buf.write(raw, 0, 'latin1');
      const b = readBackend(buf, 0);
      backends.set(frontendHintKey(b.protocol, b.address, b.port), id);
    }
    if (services.size > 0) this.log.info({ frontends: services.size, backends: backends.size }, 'found the datapath of an earlier run: keeping its IDs');
    return { services, backends };
  }

  async sync(desired: DesiredDataplane, opts: SyncOptions): Promise<SyncResult> {
    const errors: SyncError[] = [];
    const unsupported: SyncResult['unsupported'] = [];
    const keys = opts.full ? [...desired.services.keys()] : [...opts.changed];
    const rendered: RenderedService[] = [];
    const oldIds = new Map<string, number>();
    for (const key of keys) {
      const oldId = this.appliedIds.get(key);
      if (oldId !== undefined) oldIds.set(key, oldId);
      const svc = desired.services.get(key);
      if (!svc) continue;
      const problem = tooLarge(svc);
      if (problem) {
        errors.push({ service: key, code: 'SERVICE_TOO_LARGE', message: problem });
        continue;
      }
      let r = this.rendered.get(svc);
      if (!r) this.rendered.set(svc, (r = renderService(svc)));
      rendered.push(r);
      for (const feature of this.unsupportedFeatures(svc)) unsupported.push({ service: key, feature });
    }
    if (opts.full) this.reload();
    const { fe, set, be, member } = this.dp.maps;
    const size = (m: typeof fe) => ({ name: m.name, capacity: m.capacity });
    const adm = admit(rendered, this.mirror, { fe: size(fe), set: size(set), be: size(be), member: size(member) });
    errors.push(...adm.errors);

    // A service that cannot be written this time keeps what it has: the
    // entries under its old ID, or (after a restart) under its restored one.
    const failedKeys = new Set(errors.map((e) => e.service));
    const keep = new Set<number>();
    const scopeIds = new Set<number>();
    for (const key of keys) {
      const oldId = oldIds.get(key);
      if (failedKeys.has(key)) {
        if (oldId !== undefined) keep.add(oldId);
        const id = desired.services.get(key)?.id;
        if (id !== undefined) keep.add(id);
      } else if (oldId !== undefined) {
        scopeIds.add(oldId);
      }
    }
    for (const r of adm.admitted) scopeIds.add(r.id);
    const scope: Scope = opts.full ? { all: true, keep } : { all: false, svcIds: scopeIds };
    const ops = reconcile(adm.admitted, this.mirror, scope);
    const res = opCount(ops) === 0
      ? { upserts: 0, deletes: 0, errors: [], failed: new Set<string>() }
      : applyOps(this.dp.maps, ops, this.mirror, (id) => ownersOf(adm.admitted, id));
    errors.push(...res.errors);

    // Next: untouched services as they were (partial), failed ones with the
    // ID their entries still carry, written ones with their new ID.
    const next = opts.full ? new Map<string, number>() : this.appliedIds;
    for (const key of keys) {
      next.delete(key);
      const oldId = oldIds.get(key);
      if (oldId !== undefined && (failedKeys.has(key) || res.failed.has(key))) next.set(key, oldId);
    }
    for (const r of adm.admitted) if (!res.failed.has(r.key)) next.set(r.key, r.id);
    this.appliedIds = next;
    return { full: opts.full, upserts: res.upserts, deletes: res.deletes, errors, unsupported };
  }

  /** Per-event counters summed over CPUs, by name. */
  readCounters(): Map<string, bigint> {
    const out = new Map<string, bigint>();
    const { keys, values, count, valueStride } = this.dp.maps.stats.dump();
    const perCpu = Math.ceil(this.dp.maps.stats.valueSize / 8) * 8;
    for (let i = 0; i < count; i++) {
      const idx = keys.readUInt32LE(i * 4);
      const name = this.dp.statNames[idx];
      if (!name) continue;
      let sum = 0n;
      for (let off = i * valueStride; off < (i + 1) * valueStride; off += perCpu) sum += values.readBigUInt64LE(off);
      out.set(name, sum);
    }
    return out;
  }

  /** Entries and capacity per map, for metrics. */
  mapUsage(): { name: string; entries: number; capacity: number }[] {
    const m = this.dp.maps;
    return [
      { name: m.fe.name, entries: this.mirror.frontends.size, capacity: m.fe.capacity },
      { name: m.set.name, entries: this.mirror.setEntries, capacity: m.set.capacity },
      { name: m.be.name, entries: this.mirror.backends.size, capacity: m.be.capacity },
      { name: m.member.name, entries: this.mirror.memberCount, capacity: m.member.capacity },
    ];
  }

  async dispose(): Promise<void> {
    this.dp.close();
  }

  /**
   * Brings the mirror in line with the kernel's maps. Each map is dumped and
   * compared with what the mirror says, without allocating per entry; only a
   * map that differs (edited behind our back, or a fresh start) is rebuilt.
   */
  private reload(): void {
    const { fe, set, be, member } = this.dp.maps;
    const m = this.mirror;
    {
      const d = fe.dump(m.frontends.size);
      let same = d.count === m.frontends.size;
      for (let i = 0; same && i < d.count; i++) {
        const v = m.frontends.get(d.keys.toString('latin1', i * fe.keySize, (i + 1) * fe.keySize));
        same = v !== undefined && rawEquals(v, d.values, i * fe.valueSize);
      }
      if (!same) {
        m.clearFrontends();
        for (let i = 0; i < d.count; i++) {
          m.putFrontend(d.keys.toString('latin1', i * fe.keySize, (i + 1) * fe.keySize), d.values.toString('latin1', i * fe.valueSize, (i + 1) * fe.valueSize));
        }
      }
    }
    {
      const d = set.dump(m.setEntries);
      const at = (i: number) => {
        const ko = i * set.keySize;
        return {
          set: d.keys.readUInt32LE(ko + SET_KEY.fields.set.offset),
          slot: d.keys.readUInt16LE(ko + SET_KEY.fields.slot.offset),
          gen: d.keys.readUInt8(ko + SET_KEY.fields.gen.offset),
        };
      };
      let same = d.count === m.setEntries;
      for (let i = 0; same && i < d.count; i++) {
        const ko = i * set.keySize;
        const vo = i * set.valueSize;
        const live = m.sets.get(d.keys.readUInt32LE(ko + SET_KEY.fields.set.offset));
        const slot = d.keys.readUInt16LE(ko + SET_KEY.fields.slot.offset);
        if (slot === 0) {
          const h = live?.header;
          same = h !== null && h !== undefined && sameSetVal(h, readSetVal(d.values, vo));
        } else {
          same = live?.slots.get(slotKey(d.keys.readUInt8(ko + SET_KEY.fields.gen.offset), slot)) === d.values.readUInt32LE(vo + SET_VAL.fields.backend.offset);
        }
      }
      if (!same) {
        m.clearSets();
        for (let i = 0; i < d.count; i++) {
          const k = at(i);
          if (k.slot === 0) m.putHeader(k.set, readSetVal(d.values, i * set.valueSize));
          else m.putSlot(k.set, k.slot, k.gen, d.values.readUInt32LE(i * set.valueSize + SET_VAL.fields.backend.offset));
        }
      }
    }
    {
      const d = be.dump(m.backends.size);
      let same = d.count === m.backends.size;
      for (let i = 0; same && i < d.count; i++) {
        const v = m.backends.get(d.keys.readUInt32LE(i * 4));
        same = v !== undefined && rawEquals(v, d.values, i * be.valueSize);
      }
      if (!same) {
        m.backends.clear();
        for (let i = 0; i < d.count; i++) m.backends.set(d.keys.readUInt32LE(i * 4), d.values.toString('latin1', i * be.valueSize, (i + 1) * be.valueSize));
      }
    }
    {
      const d = member.dump(m.memberCount);
      let same = d.count === m.memberCount;
      for (let i = 0; same && i < d.count; i++) same = m.hasMember(d.keys.readUInt32LE(i * 8), d.keys.readUInt32LE(i * 8 + 4));
      if (!same) {
        m.clearMembers();
        for (let i = 0; i < d.count; i++) m.addMember(d.keys.readUInt32LE(i * 8), d.keys.readUInt32LE(i * 8 + 4));
      }
    }
  }

  private unsupportedFeatures(svc: PlannedService): string[] {
    const out: string[] = [];
    const note = (feature: string) => {
      const k = `${svc.key}\0${feature}`;
      if (this.reported.has(k)) return;
      this.reported.add(k);
      out.push(feature);
    };
    if (svc.protocol === 'SCTP') note('SCTP: the socket hooks translate TCP and UDP only');
    if (hasExternalFrontends(svc.frontends)) {
      note('NodePort/ExternalIP/LoadBalancer traffic from outside the node (XDP/TC datapath not built yet); connections from this node and its pods work');
    }
    if (svc.sourceRanges.length > 0) note('loadBalancerSourceRanges (enforced at XDP, not built yet)');
    return out;
  }
}

/** Whether the latin1 string `raw` holds the same bytes as buf[off..off+raw.length). */
function rawEquals(raw: string, buf: Buffer, off: number): boolean {
  for (let j = 0; j < raw.length; j++) if (raw.charCodeAt(j) !== buf[off + j]) return false;
  return true;
}


function tooLarge(svc: PlannedService): string | null {
  const n = Math.max(svc.internal.backends.length, svc.external.backends.length, svc.cluster.backends.length);
  if (n <= MAX_SET_BACKENDS) return null;
  return `service ${svc.key} has ${n} endpoints; the bpf dataplane serves at most ${MAX_SET_BACKENDS} per service`;
}
