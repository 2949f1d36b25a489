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
/** Words per entry of each batch. */
const FE_KW = FE_KEY.size / 4;
const FE_VW = FE_VAL.size / 4;
const BE_VW = BACKEND.size / 4;
const SK_KW = SET_KEY.size / 4;
const SV_VW = SET_VAL.size / 4;
const MK_KW = MEMBER_KEY.size / 4;

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

// The encoders write whole 32-bit words into the batches (typed-array
// stores: no DataView call per field), in host order, which is the order of
// the BPF maps' own fields on this little-endian host. Each word's place is
// read from the layouts (checked against BTF); the packed words below hold
// only for the byte positions asserted here, at load.
const wordAt = (byteOffset: number): number => {
  if (byteOffset % 4 !== 0) throw new Error(`lb-tables: field at byte ${byteOffset} is not word-aligned`);
  return byteOffset / 4;
};
/** port (network order), proto, family: one word, as frontend keys and backend values both lay them out. */
function assertEndpointWord(l: StructLayout<'addr' | 'port' | 'proto' | 'family'>): number {
  const at = l.fields.port.offset;
  if (l.fields.addr.size !== 16 || l.fields.proto.offset !== at + 2 || l.fields.family.offset !== at + 3) {
    throw new Error(`lb-tables: ${l.name} is not laid out as addr[16], port, proto, family`);
  }
  return wordAt(at);
}
const FE_ADDR = wordAt(FE_KEY.fields.addr.offset);
const FE_EP = assertEndpointWord(FE_KEY);
const BE_ADDR = wordAt(BACKEND.fields.addr.offset);
const BE_EP = assertEndpointWord(BACKEND);
const BE_FLAGS = wordAt(BACKEND.fields.flags.offset); // flags is the low byte of its word (pad follows)
const FE_SVC = wordAt(FE_VAL.fields.svc_id.offset);
const FE_LOCAL_SET = wordAt(FE_VAL.fields.local_set.offset);
const FE_EXT_SET = wordAt(FE_VAL.fields.ext_set.offset);
const FE_FLAGS = wordAt(FE_VAL.fields.flags.offset); // u16 flags, u16 pad
const SK_SET = wordAt(SET_KEY.fields.set.offset);
const SK_SLOT = wordAt(SET_KEY.fields.slot.offset); // u16 slot, u8 gen, u8 pad
const SV_BACKEND = wordAt(SET_VAL.fields.backend.offset);
const SV_COUNT = wordAt(SET_VAL.fields.count.offset); // u16 count, u8 gen, u8 empty
const SV_AFFINITY = wordAt(SET_VAL.fields.affinity.offset);
const SV_SVC = wordAt(SET_VAL.fields.svc_id.offset);
const MK_BACKEND = wordAt(MEMBER_KEY.fields.backend.offset);
const MK_SET = wordAt(MEMBER_KEY.fields.set.offset);
if (BACKEND.fields.flags.offset !== 20 || SET_KEY.fields.gen.offset !== SET_KEY.fields.slot.offset + 2 ||
    SET_VAL.fields.gen.offset !== SET_VAL.fields.count.offset + 2 || SET_VAL.fields.empty.offset !== SET_VAL.fields.count.offset + 3) {
  throw new Error('lb-tables: set or backend layout changed: update the packed words');
}

const bswap32 = (x: number): number => ((x >>> 24) | ((x >>> 8) & 0xff00) | ((x & 0xff00) << 8) | (x << 24)) >>> 0;

/**
 * An endpoint (address, port, protocol, family) into its words: IPv4
 * from the number the model parsed at validation (network order in the first
 * word), IPv6 from text.
 */
function writeEndpoint(out: Uint32Array, addrAt: number, epAt: number, family: number, v4: number, address: string, port: number, proto: number): void {
  if (family === FAMILY_V4) {
    out[addrAt] = bswap32(v4);
  } else {
    if (!ipv6Words(address, v6, 0)) throw new Error(`not an IPv6 address: ${address}`);
    for (let k = 0; k < 4; k++) out[addrAt + k] = bswap32(v6[k]!);
  }
  out[epAt] = ((port >>> 8) & 0xff) | ((port & 0xff) << 8) | (proto << 16) | (family << 24);
}
const v6 = new Uint32Array(4);

const setKey = new Uint32Array(2);

function writeSetKey(out: Uint32Array, w: number, set: number, slot: number, gen: number): void {
  out[w + SK_SET] = set;
  out[w + SK_SLOT] = (slot & 0xffff) | (gen << 16);
}

/**
 * The generation a set's slots go to: the live one when it already holds
 * exactly this list (nothing to write), else the other one (written, then
 * the header flips to it).
 */
function generationFor(t: LbTables, set: number, list: readonly PlannedBackend[]): number {
  writeSetKey(setKey, 0, set, 0, 0);
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
    writeSetKey(setKey, 0, set, i + 1, gen);
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
export function reserveFor(t: LbTables, services: Iterable<PlannedService>, packetPrograms = false): void {
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
    if (readsMembership(svc, packetPrograms)) members += n + extra;
  }
  t.frontends.reserveBatch(withRoom(fe));
  t.headers.reserveBatch(withRoom(sets));
  t.slots.reserveBatch(withRoom(slots));
  t.backends.reserveBatch(withRoom(slots));
  t.members.reserveBatch(withRoom(members));
}

/**
 * A sync into empty maps adopts its batch as the mirror, at the batch's
 * capacity: sized exactly, the first endpoint added after a start grew
 * (rehashed) each table at once, 390 ms inside one change at 30,000 x 10
 * (bench/modes.ts). A sixteenth more defers that to real growth.
 */
const withRoom = (n: number): number => n + (n >> 4) + 64;

/**
 * Whether a reader checks the membership of a remembered backend in this
 * service's sets. With the packet programs loaded every set does: XDP's
 * conntrack checks it for every frontend it serves, ClusterIPs routed to
 * the node included (a flow without it would be re-selected every packet).
 */
function readsMembership(svc: PlannedService, packetPrograms: boolean): boolean {
  return packetPrograms || (svc.affinityTimeout ?? 0) > 0 || svc.protocol === 'UDP' || svc.maglev !== null;
}

/** Backends already encoded for the service being encoded (only when it has several sets). */
const seen = new Set<number>();

/** Encodes every entry of `svc` into the tables' batches. Returns the ID of its external set (what Maglev tables are built for). */
export function encodeService(t: LbTables, svc: PlannedService, packetPrograms = false): number {
  const proto = IPPROTO[svc.protocol];
  const family = svc.family === 'IPv4' ? FAMILY_V4 : FAMILY_V6;
  const members = readsMembership(svc, packetPrograms);
  const internal = encodeSet(t, svc, svc.internal, SET_INTERNAL, proto, family, false, members);
  const several = !sameSet(svc.cluster, svc.internal) || !sameSet(svc.external, svc.internal);
  if (several) {
    seen.clear();
    for (const b of svc.internal.backends) seen.add(b.id);
  }
  const cluster = sameSet(svc.cluster, svc.internal) ? internal : encodeSet(t, svc, svc.cluster, SET_CLUSTER, proto, family, true, members);
  const external = sameSet(svc.external, svc.internal)
    ? internal
    : sameSet(svc.external, svc.cluster) ? cluster : encodeSet(t, svc, svc.external, SET_EXTERNAL, proto, family, true, members);

  for (const f of svc.frontends) {
    const isCluster = f.kind === 'ClusterIP';
    let flags = KIND_FLAG[f.kind];
    if (!isCluster && svc.preserveSource) flags |= FE_PRESERVE_SRC;
    if (f.kind === 'LoadBalancer' && svc.sourceRanges.length > 0) flags |= FE_SOURCE_RANGES;
    const f0 = t.frontends;
    const i = f0.push(svc.id);
    writeEndpoint(f0.dk, i * FE_KW + FE_ADDR, i * FE_KW + FE_EP, family, f.v4, f.address, f.port, proto);
    const v = f0.dv;
    const vo = i * FE_VW;
    v[vo + FE_SVC] = svc.id;
    // Connections made on this node: a ClusterIP follows the internal
    // policy; an external frontend reached from inside is short-circuited
    // to the Cluster-policy endpoints, as kube-proxy does.
    v[vo + FE_LOCAL_SET] = isCluster ? internal : cluster;
    v[vo + FE_EXT_SET] = isCluster ? internal : external;
    v[vo + FE_FLAGS] = flags & 0xffff;
  }
  return external;
}

/** One backend set: its backends (once per service), memberships, slots and header. Returns the set's ID. */
function encodeSet(t: LbTables, svc: PlannedService, s: BackendSet, kind: number, proto: number, family: number, dedupe: boolean, members: boolean): number {
  const owner = svc.id;
  const set = owner * SETS_PER_SERVICE + kind;
  const list = s.backends;
  const affinity = svc.affinityTimeout ?? 0;
  const be = t.backends;
  for (let k = 0; k < list.length; k++) {
    const b = list[k]!;
    if (dedupe) {
      if (seen.has(b.id)) continue;
      seen.add(b.id);
    }
    const i = be.push(owner);
    be.dk[i] = b.id;
    const o = i * BE_VW;
    writeEndpoint(be.dv, o + BE_ADDR, o + BE_EP, family, b.v4, b.address, b.port, proto);
    be.dv[o + BE_FLAGS] = b.local ? BE_LOCAL : 0;
  }
  // Memberships only for sets whose readers check them: ClientIP affinity,
  // unconnected-UDP flows and the packet programs' conntrack (the sets of
  // external frontends) must notice that a remembered backend left the set.
  if (members) {
    const m = t.members;
    for (let k = 0; k < list.length; k++) {
      const i = m.push(owner);
      m.dk[i * MK_KW + MK_BACKEND] = list[k]!.id;
      m.dk[i * MK_KW + MK_SET] = set;
      m.dv[i] = 1;
    }
  }
  const gen = generationFor(t, set, list);
  const sl = t.slots;
  for (let k = 0; k < list.length; k++) {
    const i = sl.push(owner);
    writeSetKey(sl.dk, i * SK_KW, set, k + 1, gen);
    sl.dv[i * SV_VW + SV_BACKEND] = list[k]!.id;
  }
  const hd = t.headers;
  const h = hd.push(owner);
  writeSetKey(hd.dk, h * SK_KW, set, 0, 0);
  const o = h * SV_VW;
  hd.dv[o + SV_COUNT] = (list.length & 0xffff) | (gen << 16) | ((s.onEmpty === 'drop' ? EMPTY_DROP : EMPTY_REJECT) << 24);
  hd.dv[o + SV_AFFINITY] = affinity;
  hd.dv[o + SV_SVC] = svc.id;
  return set;
}
