// The load-balancing tables the socket programs (and, next, the packet
// programs) read, declared once, and the encoder that writes a planned
// service straight into their batches. The declaration order is the write
// order (deletes run in reverse), chosen so a reader never sees a frontend
// without its set, a header without its slots, or a slot naming a missing
// backend:
//   backends -> memberships -> slots of a new generation -> set headers (the
//   atomic flip) -> frontends; then stale frontends -> headers -> slots ->
//   memberships -> backends nothing names.
// A set's backend list is replaced by writing the set's other generation and
// then flipping its header: a reader sees the old list or the new one.
import type { BackendSet, FrontendKind, PlannedBackend, PlannedService } from '../../planner/types.js';
import { ipv6Words } from '../../util/ip.js';
import {
  BACKEND, BE_LOCAL, EMPTY_DROP, EMPTY_REJECT, FAMILY_V4, FAMILY_V6, FE_CLUSTER_IP, FE_EXTERNAL_IP, FE_KEY, FE_LOAD_BALANCER,
  FE_NODE_PORT, FE_PRESERVE_SRC, FE_SOURCE_RANGES, FE_VAL, IPPROTO, MEMBER_KEY, SET_KEY, SET_VAL, type StructLayout,
} from './layout.js';
import type { Table, TableSpec } from './table.js';

/** A service's backend sets get IDs next to its own: svcId * SETS_PER_SERVICE + kind. */
export const SETS_PER_SERVICE = 4;
const SET_INTERNAL = 0;
const SET_CLUSTER = 1;
const SET_EXTERNAL = 2;
export const MAX_SERVICE_ID = Math.floor(0xffffffff / SETS_PER_SERVICE);
/** Slots are 16-bit. */
export const MAX_SET_BACKENDS = 0xffff;

const U32: StructLayout<'value'> = { name: '__u32', size: 4, fields: { value: { offset: 0, size: 4 } } };
const LE = true;

export const serviceOfSet = (set: number): number => Math.floor(set / SETS_PER_SERVICE);
// Dumped keys and values arrive as 32-bit words in host (little-endian) order.
const word = (byteOffset: number) => byteOffset / 4;
const setKeySlot = (k: Uint32Array, o: number) => k[o + word(SET_KEY.fields.slot.offset)]! & 0xffff;
const setOfKey = (k: Uint32Array, o: number) => k[o + word(SET_KEY.fields.set.offset)]!;

export const BACKENDS: TableSpec = {
  name: 'backends', map: 'bpx_be_v1', key: U32, value: BACKEND, sizeSetting: 'backends', shared: true,
  ownerOf: () => 0,
};
export const MEMBERS: TableSpec = {
  name: 'memberships', map: 'bpx_member_v1', key: MEMBER_KEY, value: U32, sizeSetting: 'backendSets',
  ownerOf: (k, o) => serviceOfSet(k[o + word(MEMBER_KEY.fields.set.offset)]!),
};
export const SLOTS: TableSpec = {
  name: 'set slots', map: 'bpx_set_v1', key: SET_KEY, value: SET_VAL, sizeSetting: 'backendSets',
  holds: (k, o) => setKeySlot(k, o) !== 0,
  ownerOf: (k, o) => serviceOfSet(setOfKey(k, o)),
  refersTo: { table: 'backends', valueOffset: SET_VAL.fields.backend.offset },
};
export const HEADERS: TableSpec = {
  name: 'set headers', map: 'bpx_set_v1', key: SET_KEY, value: SET_VAL, sizeSetting: 'backendSets',
  holds: (k, o) => setKeySlot(k, o) === 0,
  ownerOf: (_k, _ko, v, vo) => v[vo + word(SET_VAL.fields.svc_id.offset)]!,
};
export const FRONTENDS: TableSpec = {
  name: 'frontends', map: 'bpx_fe_v1', key: FE_KEY, value: FE_VAL, sizeSetting: 'frontends',
  ownerOf: (_k, _ko, v, vo) => v[vo + word(FE_VAL.fields.svc_id.offset)]!,
};

/** In write order. */
export const LB_TABLES: readonly TableSpec[] = [BACKENDS, MEMBERS, SLOTS, HEADERS, FRONTENDS];

export interface LbTables {
  backends: Table;
  members: Table;
  slots: Table;
  headers: Table;
  frontends: Table;
}

const KIND_FLAG: Readonly<Record<FrontendKind, number>> = {
  ClusterIP: FE_CLUSTER_IP,
  NodePort: FE_NODE_PORT,
  ExternalIP: FE_EXTERNAL_IP,
  LoadBalancer: FE_LOAD_BALANCER,
};

function sameSet(a: BackendSet, b: BackendSet): boolean {
  if (a === b) return true;
  if (a.onEmpty !== b.onEmpty || a.backends.length !== b.backends.length) return false;
  for (let i = 0; i < a.backends.length; i++) if (a.backends[i]!.id !== b.backends[i]!.id) return false;
  return true;
}

/**
 * Writes an address into 16 bytes at `off` (IPv4 in the first 4, network
 * order): IPv4 from the number the model parsed at validation, IPv6 from text.
 */
function writeAddr(dv: DataView, off: number, family: number, v4: number, address: string): void {
  if (family === FAMILY_V4) {
    dv.setUint32(off, v4 >>> 0, false);
    return;
  }
  if (!ipv6Words(address, v6, 0)) throw new Error(`not an IPv6 address: ${address}`);
  for (let w = 0; w < 4; w++) dv.setUint32(off + w * 4, v6[w]!, false);
}
const v6 = new Uint32Array(4);

/** The address, port, protocol and family of a frontend key or a backend value (both structs have these fields). */
function writeEndpoint(
  dv: DataView, o: number, l: StructLayout<'addr' | 'port' | 'proto' | 'family'>,
  family: number, v4: number, address: string, port: number, proto: number,
): void {
  writeAddr(dv, o + l.fields.addr.offset, family, v4, address);
  dv.setUint16(o + l.fields.port.offset, port, false);
  dv.setUint8(o + l.fields.proto.offset, proto);
  dv.setUint8(o + l.fields.family.offset, family);
}

const setKey = new Uint32Array(2);
const setKeyView = new DataView(setKey.buffer);

function writeSetKey(dv: DataView, off: number, set: number, slot: number, gen: number): void {
  dv.setUint32(off + SET_KEY.fields.set.offset, set, LE);
  dv.setUint16(off + SET_KEY.fields.slot.offset, slot, LE);
  dv.setUint8(off + SET_KEY.fields.gen.offset, gen);
}

/**
 * The generation a set's slots go to: the live one when it already holds
 * exactly this list (nothing to write), else the other one (written, then
 * the header flips to it).
 */
function generationFor(t: LbTables, set: number, list: readonly PlannedBackend[]): number {
  writeSetKey(setKeyView, 0, set, 0, 0);
  const h = t.headers.find(setKey);
  if (h < 0) return 1;
  const w1 = t.headers.valueWord(h, 1); // count (u16), gen (u8), empty (u8)
  const count = w1 & 0xffff;
  const gen = (w1 >>> 16) & 0xff;
  if (list.length === 0) return gen || 1;
  if (count === list.length && liveEquals(t, set, gen, list)) return gen;
  return gen === 1 ? 2 : 1;
}

/** Whether the set's live generation holds exactly these backends, in slot order. */
function liveEquals(t: LbTables, set: number, gen: number, list: readonly PlannedBackend[]): boolean {
  for (let i = 0; i < list.length; i++) {
    writeSetKey(setKeyView, 0, set, i + 1, gen);
    const s = t.slots.find(setKey);
    if (s < 0 || t.slots.valueWord(s, 0) !== list[i]!.id) return false;
  }
  return true;
}

/** A reason the service cannot be written at all, or null. */
export function tooLarge(svc: PlannedService): string | null {
  const n = Math.max(svc.internal.backends.length, svc.external.backends.length, svc.cluster.backends.length);
  if (n > MAX_SET_BACKENDS) return `service ${svc.key} has ${n} endpoints; the bpf dataplane serves at most ${MAX_SET_BACKENDS} per service`;
  if (svc.id <= 0 || svc.id > MAX_SERVICE_ID) return `service ${svc.key}: id ${svc.id} out of range`;
  return null;
}

/**
 * Sizes the batches for encoding these services (an upper bound: a service
 * whose sets share their backends encodes them once), so a full sync of a
 * large cluster does not grow them step by step.
 */
export function reserveFor(t: LbTables, services: Iterable<PlannedService>): void {
  let fe = 0;
  let sets = 0;
  let slots = 0;
  let members = 0;
  for (const svc of services) {
    fe += svc.frontends.length;
    const n = svc.internal.backends.length;
    const extra = (svc.cluster === svc.internal ? 0 : svc.cluster.backends.length) + (svc.external === svc.internal ? 0 : svc.external.backends.length);
    sets += 1 + (svc.cluster === svc.internal ? 0 : 1) + (svc.external === svc.internal ? 0 : 1);
    slots += n + extra;
    if (readsMembership(svc)) members += n + extra;
  }
  t.frontends.reserveBatch(fe);
  t.headers.reserveBatch(sets);
  t.slots.reserveBatch(slots);
  t.backends.reserveBatch(slots);
  t.members.reserveBatch(members);
}

/** Whether a reader checks the membership of a remembered backend in this service's sets. */
function readsMembership(svc: PlannedService): boolean {
  return (svc.affinityTimeout ?? 0) > 0 || svc.protocol === 'UDP' || svc.maglev !== null;
}

/** Backends already encoded for the service being encoded (only when it has several sets). */
const seen = new Set<number>();

/** Encodes every entry of `svc` into the tables' batches. Returns the ID of its external set (what Maglev tables are built for). */
export function encodeService(t: LbTables, svc: PlannedService): number {
  const proto = IPPROTO[svc.protocol];
  const family = svc.family === 'IPv4' ? FAMILY_V4 : FAMILY_V6;
  const internal = encodeSet(t, svc, svc.internal, SET_INTERNAL, proto, family, false);
  const several = !sameSet(svc.cluster, svc.internal) || !sameSet(svc.external, svc.internal);
  if (several) {
    seen.clear();
    for (const b of svc.internal.backends) seen.add(b.id);
  }
  const cluster = sameSet(svc.cluster, svc.internal) ? internal : encodeSet(t, svc, svc.cluster, SET_CLUSTER, proto, family, true);
  const external = sameSet(svc.external, svc.internal)
    ? internal
    : sameSet(svc.external, svc.cluster) ? cluster : encodeSet(t, svc, svc.external, SET_EXTERNAL, proto, family, true);

  for (const f of svc.frontends) {
    const isCluster = f.kind === 'ClusterIP';
    let flags = KIND_FLAG[f.kind];
    if (!isCluster && svc.preserveSource) flags |= FE_PRESERVE_SRC;
    if (f.kind === 'LoadBalancer' && svc.sourceRanges.length > 0) flags |= FE_SOURCE_RANGES;
    const i = t.frontends.push(svc.id);
    writeEndpoint(t.frontends.dkv, i * FE_KEY.size, FE_KEY, family, f.v4, f.address, f.port, proto);
    const v = t.frontends.dvv;
    const vo = i * FE_VAL.size;
    v.setUint32(vo + FE_VAL.fields.svc_id.offset, svc.id, LE);
    // Connections made on this node: a ClusterIP follows the internal
    // policy; an external frontend reached from inside is short-circuited
    // to the Cluster-policy endpoints, as kube-proxy does.
    v.setUint32(vo + FE_VAL.fields.local_set.offset, isCluster ? internal : cluster, LE);
    v.setUint32(vo + FE_VAL.fields.ext_set.offset, isCluster ? internal : external, LE);
    v.setUint16(vo + FE_VAL.fields.flags.offset, flags, LE);
  }
  return external;
}

/** One backend set: its backends (once per service), memberships, slots and header. Returns the set's ID. */
function encodeSet(t: LbTables, svc: PlannedService, s: BackendSet, kind: number, proto: number, family: number, dedupe: boolean): number {
  const owner = svc.id;
  const set = owner * SETS_PER_SERVICE + kind;
  const list = s.backends;
  const affinity = svc.affinityTimeout ?? 0;
  for (let k = 0; k < list.length; k++) {
    const b = list[k]!;
    if (dedupe) {
      if (seen.has(b.id)) continue;
      seen.add(b.id);
    }
    const i = t.backends.push(owner);
    t.backends.dkv.setUint32(i * 4, b.id, LE);
    const o = i * BACKEND.size;
    writeEndpoint(t.backends.dvv, o, BACKEND, family, b.v4, b.address, b.port, proto);
    t.backends.dvv.setUint8(o + BACKEND.fields.flags.offset, b.local ? BE_LOCAL : 0);
  }
  // Memberships only for sets whose readers check them: ClientIP affinity,
  // unconnected-UDP flows and the packet programs' conntrack (the sets of
  // external frontends) must notice that a remembered backend left the set.
  if (readsMembership(svc)) {
    for (let k = 0; k < list.length; k++) {
      const i = t.members.push(owner);
      t.members.dkv.setUint32(i * MEMBER_KEY.size + MEMBER_KEY.fields.backend.offset, list[k]!.id, LE);
      t.members.dkv.setUint32(i * MEMBER_KEY.size + MEMBER_KEY.fields.set.offset, set, LE);
      t.members.dvv.setUint32(i * 4, 1, LE);
    }
  }
  const gen = generationFor(t, set, list);
  for (let k = 0; k < list.length; k++) {
    const i = t.slots.push(owner);
    writeSetKey(t.slots.dkv, i * SET_KEY.size, set, k + 1, gen);
    t.slots.dvv.setUint32(i * SET_VAL.size + SET_VAL.fields.backend.offset, list[k]!.id, LE);
  }
  const h = t.headers.push(owner);
  writeSetKey(t.headers.dkv, h * SET_KEY.size, set, 0, 0);
  const dv = t.headers.dvv;
  const o = h * SET_VAL.size;
  dv.setUint16(o + SET_VAL.fields.count.offset, list.length, LE);
  dv.setUint8(o + SET_VAL.fields.gen.offset, gen);
  dv.setUint8(o + SET_VAL.fields.empty.offset, s.onEmpty === 'drop' ? EMPTY_DROP : EMPTY_REJECT);
  dv.setUint32(o + SET_VAL.fields.affinity.offset, affinity, LE);
  dv.setUint32(o + SET_VAL.fields.svc_id.offset, svc.id, LE);
  return set;
}
