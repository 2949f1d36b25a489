// Codecs for the pinned maps' keys and values. The layouts are defined in
// bpf/lib/maps.h; the descriptors below are checked against the BTF of the
// built objects (checkLayouts, run by the loader and by test/bpf/layout.test.ts),
// so they cannot drift silently. Encoders write into caller-provided buffers
// at an offset, so a batch of entries is one contiguous allocation.
import { endianness } from 'node:os';
import { ipBytes, ipFromBytes, type IPFamily } from '../../util/ip.js';
import type { Protocol } from '../../model/types.js';
import { REASON_ENUMS } from './reasons.js';

if (endianness() !== 'LE') throw new Error('bpfproxy: the BPF map codecs assume a little-endian host');

interface Field { offset: number; size: number }
export interface StructLayout<F extends string> { name: string; size: number; fields: Record<F, Field> }

function layout<F extends string>(name: string, size: number, fields: Record<F, [number, number]>): StructLayout<F> {
  const out = {} as Record<F, Field>;
  for (const k of Object.keys(fields) as F[]) out[k] = { offset: fields[k][0], size: fields[k][1] };
  return { name, size, fields: out };
}

export const FE_KEY = layout('bpx_fe_key', 20, { addr: [0, 16], port: [16, 2], proto: [18, 1], family: [19, 1] });
export const FE_VAL = layout('bpx_fe_val', 16, { svc_id: [0, 4], local_set: [4, 4], ext_set: [8, 4], flags: [12, 2], pad: [14, 2] });
export const SET_KEY = layout('bpx_set_key', 8, { set: [0, 4], slot: [4, 2], gen: [6, 1], pad: [7, 1] });
export const SET_VAL = layout('bpx_set_val', 16, { backend: [0, 4], count: [4, 2], gen: [6, 1], empty: [7, 1], affinity: [8, 4], svc_id: [12, 4] });
export const BACKEND = layout('bpx_backend', 24, { addr: [0, 16], port: [16, 2], proto: [18, 1], family: [19, 1], flags: [20, 1], pad: [21, 3] });
export const MEMBER_KEY = layout('bpx_member_key', 8, { backend: [0, 4], set: [4, 4] });
export const SK_RNAT_KEY = layout('bpx_sk_rnat_key', 32, { cookie: [0, 8], addr: [8, 16], port: [24, 2], family: [26, 1], pad: [27, 5] });
export const SK_RNAT_VAL = layout('bpx_sk_rnat_val', 24, { addr: [0, 16], port: [16, 2], family: [18, 1], pad: [19, 1], svc_id: [20, 4] });
export const FLOW_KEY = layout('bpx_flow_key', 32, { cookie: [0, 8], addr: [8, 16], port: [24, 2], proto: [26, 1], family: [27, 1], pad: [28, 4] });
export const FLOW_VAL = layout('bpx_flow_val', 16, { last_ns: [0, 8], backend: [8, 4], set: [12, 4] });
export const AFF_KEY = layout('bpx_aff_key', 24, { client: [0, 16], set: [16, 4], family: [20, 1], pad: [21, 3] });
export const AFF_VAL = layout('bpx_aff_val', 16, { last_ns: [0, 8], backend: [8, 4], pad: [12, 4] });
export const CT_KEY = layout('bpx_ct_key', 40, { saddr: [0, 16], daddr: [16, 16], sport: [32, 2], dport: [34, 2], proto: [36, 1], family: [37, 1], dir: [38, 1], pad: [39, 1] });
export const CT_VAL = layout('bpx_ct_val', 56, {
  last_ns: [0, 8], addr: [8, 16], nat_addr: [24, 16], port: [40, 2], nat_port: [42, 2], backend: [44, 4], flags: [48, 1], pad: [49, 7],
});
export const NAT_KEY = layout('bpx_nat_key', 20, { addr: [0, 16], port: [16, 2], proto: [18, 1], family: [19, 1] });
export const NAT_VAL = layout('bpx_nat_val', 32, { last_ns: [0, 8], client: [8, 16], client_port: [24, 2], pad: [26, 6] });
export const RANGE_KEY = layout('bpx_range_key', 24, { prefixlen: [0, 4], svc: [4, 4], addr: [8, 16] });
export const LOCAL_EP_KEY = layout('bpx_local_ep_key', 20, { addr: [0, 16], family: [16, 1], pad: [17, 3] });
export const LOCAL_EP = layout('bpx_local_ep', 16, { ifindex: [0, 4], mac: [4, 6], src_mac: [10, 6] });
export const MAGLEV_ROW = layout('bpx_maglev_row', 8, { row: [0, 4], m: [4, 4] });
export const COUNTER = layout('bpx_counter', 8, {
  count: [0, 8], anchor_family: [8, 0], anchor_fe_flag: [8, 0], anchor_empty: [8, 0], anchor_be_flag: [8, 0],
  anchor_drop: [8, 0], anchor_event: [8, 0], anchor_slot: [8, 0],
});

export const ALL_LAYOUTS: readonly StructLayout<string>[] = [
  FE_KEY, FE_VAL, SET_KEY, SET_VAL, BACKEND, MEMBER_KEY, SK_RNAT_KEY, SK_RNAT_VAL, FLOW_KEY, FLOW_VAL, AFF_KEY, AFF_VAL,
  CT_KEY, CT_VAL, NAT_KEY, NAT_VAL, MAGLEV_ROW, RANGE_KEY, COUNTER, LOCAL_EP_KEY, LOCAL_EP,
];

/** The BTF description the native layer reports: "size=N;member:offset:size;...". */
export function describeLayout(l: StructLayout<string>): string {
  const parts = Object.entries(l.fields).map(([k, f]) => `${k}:${f.offset}:${f.size}`);
  return [`size=${l.size}`, ...parts].join(';');
}

/** Compares every codec (or those given) with the object's BTF; returns one line per mismatch. */
export function checkLayouts(btfStruct: (name: string) => string | null, layouts: readonly StructLayout<string>[] = ALL_LAYOUTS): string[] {
  const problems: string[] = [];
  for (const l of layouts) {
    const actual = btfStruct(l.name);
    const expected = describeLayout(l);
    if (actual === null) problems.push(`struct ${l.name}: not in the object's BTF`);
    else if (actual !== expected) problems.push(`struct ${l.name}: BTF has "${actual}", the TypeScript codec has "${expected}"`);
  }
  return problems;
}

// ---- constants mirrored from the enums of maps.h (checked against BTF by checkConstants) ----

export const FAMILY_V4 = 4;
export const FAMILY_V6 = 6;
export const FE_CLUSTER_IP = 1 << 0;
export const FE_NODE_PORT = 1 << 1;
export const FE_EXTERNAL_IP = 1 << 2;
export const FE_LOAD_BALANCER = 1 << 3;
export const FE_SOURCE_RANGES = 1 << 4;
export const FE_PRESERVE_SRC = 1 << 5;
export const EMPTY_REJECT = 1;
export const EMPTY_DROP = 2;
export const BE_LOCAL = 1 << 0;

/** Each enum of maps.h and reasons.h (from reasons.ts) as this build knows it: checked against BTF. */
export const CONSTANT_ENUMS: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  ...REASON_ENUMS,
  bpx_family: { BPX_FAMILY_V4: FAMILY_V4, BPX_FAMILY_V6: FAMILY_V6 },
  bpx_fe_flag: {
    BPX_FE_CLUSTER_IP: FE_CLUSTER_IP, BPX_FE_NODE_PORT: FE_NODE_PORT, BPX_FE_EXTERNAL_IP: FE_EXTERNAL_IP,
    BPX_FE_LOAD_BALANCER: FE_LOAD_BALANCER, BPX_FE_SOURCE_RANGES: FE_SOURCE_RANGES, BPX_FE_PRESERVE_SRC: FE_PRESERVE_SRC,
  },
  bpx_empty: { BPX_EMPTY_REJECT: EMPTY_REJECT, BPX_EMPTY_DROP: EMPTY_DROP },
  bpx_be_flag: { BPX_BE_LOCAL: BE_LOCAL },
};

/** Parses the native layer's "NAME=value;..." enum text. */
export function parseEnum(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const part of text.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) out.set(part.slice(0, eq), Number(part.slice(eq + 1)));
  }
  return out;
}

/** Compares the constants above (or those named) with the object's BTF enums; one line per mismatch. */
export function checkConstants(btfEnum: (name: string) => string | null, enums: readonly string[] = Object.keys(CONSTANT_ENUMS)): string[] {
  const problems: string[] = [];
  for (const name of enums) {
    const expected = CONSTANT_ENUMS[name];
    if (!expected) { problems.push(`enum ${name}: unknown to TypeScript (no entry in CONSTANT_ENUMS)`); continue; }
    const text = btfEnum(name);
    if (text === null) { problems.push(`enum ${name}: not in the object's BTF`); continue; }
    const actual = parseEnum(text);
    for (const [k, v] of Object.entries(expected)) {
      if (actual.get(k) !== v) problems.push(`enum ${name}: ${k} is ${actual.get(k)} in BTF, ${v} in TypeScript`);
    }
    for (const k of actual.keys()) if (!(k in expected)) problems.push(`enum ${name}: ${k} is in BTF but unknown to TypeScript`);
  }
  return problems;
}

export const IPPROTO: Readonly<Record<Protocol, number>> = { TCP: 6, UDP: 17, SCTP: 132 };
export const PROTO_NAME: Readonly<Record<number, Protocol>> = { 6: 'TCP', 17: 'UDP', 132: 'SCTP' };

export function familyCode(f: IPFamily): number {
  return f === 'IPv4' ? FAMILY_V4 : FAMILY_V6;
}

// ---- address encoding, for messages, restart hints and tests (the sync encodes in lb-tables.ts) ----

export function writeAddr(buf: Buffer, off: number, ip: string): void {
  buf.fill(0, off, off + 16);
  buf.set(ipBytes(ip), off);
}

export function readAddr(buf: Buffer, off: number, family: number): string {
  return ipFromBytes(buf.subarray(off, off + (family === FAMILY_V4 ? 4 : 16)), family === FAMILY_V4 ? 'IPv4' : 'IPv6');
}

// ---- typed entries ----

export interface FeKey { address: string; port: number; protocol: Protocol; family: IPFamily }
export interface FeVal { svcId: number; localSet: number; extSet: number; flags: number }
export interface BackendVal { address: string; port: number; protocol: Protocol; family: IPFamily; flags: number }

export function writeFeKey(buf: Buffer, off: number, k: FeKey): void {
  buf.fill(0, off, off + FE_KEY.size);
  writeAddr(buf, off + FE_KEY.fields.addr.offset, k.address);
  buf.writeUInt16BE(k.port, off + FE_KEY.fields.port.offset);
  buf.writeUInt8(IPPROTO[k.protocol], off + FE_KEY.fields.proto.offset);
  buf.writeUInt8(familyCode(k.family), off + FE_KEY.fields.family.offset);
}

export function readFeKey(buf: Buffer, off: number): FeKey {
  const fam = buf.readUInt8(off + FE_KEY.fields.family.offset);
  return {
    address: readAddr(buf, off + FE_KEY.fields.addr.offset, fam),
    port: buf.readUInt16BE(off + FE_KEY.fields.port.offset),
    protocol: PROTO_NAME[buf.readUInt8(off + FE_KEY.fields.proto.offset)] ?? 'TCP',
    family: fam === FAMILY_V4 ? 'IPv4' : 'IPv6',
  };
}

export function writeFeVal(buf: Buffer, off: number, v: FeVal): void {
  buf.fill(0, off, off + FE_VAL.size);
  buf.writeUInt32LE(v.svcId, off + FE_VAL.fields.svc_id.offset);
  buf.writeUInt32LE(v.localSet, off + FE_VAL.fields.local_set.offset);
  buf.writeUInt32LE(v.extSet, off + FE_VAL.fields.ext_set.offset);
  buf.writeUInt16LE(v.flags, off + FE_VAL.fields.flags.offset);
}

export function readFeVal(buf: Buffer, off: number): FeVal {
  return {
    svcId: buf.readUInt32LE(off + FE_VAL.fields.svc_id.offset),
    localSet: buf.readUInt32LE(off + FE_VAL.fields.local_set.offset),
    extSet: buf.readUInt32LE(off + FE_VAL.fields.ext_set.offset),
    flags: buf.readUInt16LE(off + FE_VAL.fields.flags.offset),
  };
}







export function readBackend(buf: Buffer, off: number): BackendVal {
  const fam = buf.readUInt8(off + BACKEND.fields.family.offset);
  return {
    address: readAddr(buf, off + BACKEND.fields.addr.offset, fam),
    port: buf.readUInt16BE(off + BACKEND.fields.port.offset),
    protocol: PROTO_NAME[buf.readUInt8(off + BACKEND.fields.proto.offset)] ?? 'TCP',
    family: fam === FAMILY_V4 ? 'IPv4' : 'IPv6',
    flags: buf.readUInt8(off + BACKEND.fields.flags.offset),
  };
}

