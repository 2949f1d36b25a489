// Packets for the BPF packet tests and `make bench`: a builder (Ethernet with
// up to two VLAN tags, IPv4 with options and fragment fields, IPv6 with
// extension headers, TCP/UDP/SCTP/ICMP/ICMPv6) that always writes valid
// checksums, and a parser that reads a packet back and verifies them.
// Malformed shapes are asked for by overriding one field (ihl, totalLength,
// dataOffset, ...) or by cutting the frame (truncate): checksums are computed
// after the overrides, so a case breaks exactly the one thing it names.
import { ipBytes, ipFromBytes } from '../../src/util/ip.js';

export const ETH_P_IP = 0x0800;
export const ETH_P_IPV6 = 0x86dd;
export const ETH_P_ARP = 0x0806;
export const ETH_P_8021Q = 0x8100;
export const ETH_P_8021AD = 0x88a8;
export const IPPROTO = { HOPOPTS: 0, ICMP: 1, TCP: 6, UDP: 17, ROUTING: 43, FRAGMENT: 44, GRE: 47, ESP: 50, AH: 51, ICMPV6: 58, NONE: 59, DSTOPTS: 60, SCTP: 132 } as const;
export const TCP_FLAGS = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10 } as const;

export interface EthSpec {
  src?: string;
  dst?: string;
  /** VLAN IDs, outermost first: one tag is 802.1Q, the outer of two is 802.1ad. */
  vlans?: number[];
  /** EtherType after the tags; default from the L3 spec. */
  type?: number;
}

export interface Ipv4Spec {
  src: string;
  dst: string;
  ttl?: number;
  id?: number;
  tos?: number;
  dontFragment?: boolean;
  moreFragments?: boolean;
  /** In 8-byte units. */
  fragmentOffset?: number;
  /** Raw option bytes, padded with End-of-Options to a multiple of 4. */
  options?: Uint8Array;
  /** Overrides, for malformed packets. */
  version?: number;
  ihl?: number;
  totalLength?: number;
  protocol?: number;
}

export type Ipv6Ext =
  | { type: 'hop' | 'dest'; options?: Uint8Array }
  | { type: 'routing'; segments: string[]; segmentsLeft?: number; routingType?: number }
  | { type: 'fragment'; offset?: number; more?: boolean; id?: number };

export interface Ipv6Spec {
  src: string;
  dst: string;
  hopLimit?: number;
  flowLabel?: number;
  ext?: Ipv6Ext[];
  /** Overrides, for malformed packets. */
  version?: number;
  payloadLength?: number;
  nextHeader?: number;
}

export type L4Spec =
  | { proto: 'tcp'; sport: number; dport: number; seq?: number; ack?: number; flags?: number; window?: number; dataOffset?: number; payload?: Uint8Array }
  | { proto: 'udp'; sport: number; dport: number; length?: number; payload?: Uint8Array }
  | { proto: 'sctp'; sport: number; dport: number; tag?: number; payload?: Uint8Array }
  | { proto: 'icmp' | 'icmpv6'; type?: number; code?: number; id?: number; seq?: number; payload?: Uint8Array }
  | { proto: 'raw'; protocol: number; payload?: Uint8Array };

export interface PacketSpec {
  eth?: EthSpec;
  ipv4?: Ipv4Spec;
  ipv6?: Ipv6Spec;
  /** Without L3 (ARP-like frames): the bytes after the Ethernet header. */
  l2payload?: Uint8Array;
  l4?: L4Spec;
}

const DEFAULT_SRC_MAC = '02:00:00:00:00:01';
const DEFAULT_DST_MAC = '02:00:00:00:00:02';

// ---- checksums ---------------------------------------------------------------

/** The ones-complement sum of 16-bit big-endian words, folded (RFC 1071); an odd byte is padded with zero. */
export function onesSum(bytes: Uint8Array, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < bytes.length; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (bytes.length % 2) sum += bytes[bytes.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

export function internetChecksum(bytes: Uint8Array, initial = 0): number {
  return ~onesSum(bytes, initial) & 0xffff;
}

function pseudoHeader(src: Uint8Array, dst: Uint8Array, proto: number, length: number): Uint8Array {
  const v6 = src.length === 16;
  const b = Buffer.alloc(v6 ? 40 : 12);
  b.set(src, 0);
  b.set(dst, src.length);
  if (v6) {
    b.writeUInt32BE(length, 32);
    b.writeUInt8(proto, 39);
  } else {
    b.writeUInt8(proto, 9);
    b.writeUInt16BE(length, 10);
  }
  return b;
}

/** CRC32c (Castagnoli), reflected, as SCTP's checksum (RFC 9260 appendix A). */
const CRC32C = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC32C[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// ---- building ----------------------------------------------------------------

function mac(s: string): Buffer {
  const parts = s.split(':').map((h) => parseInt(h, 16));
  if (parts.length !== 6 || parts.some((p) => !(p >= 0 && p <= 255))) throw new Error(`bad MAC ${s}`);
  return Buffer.from(parts);
}

function macString(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');
}

function l4Protocol(l4: L4Spec): number {
  switch (l4.proto) {
    case 'tcp': return IPPROTO.TCP;
    case 'udp': return IPPROTO.UDP;
    case 'sctp': return IPPROTO.SCTP;
    case 'icmp': return IPPROTO.ICMP;
    case 'icmpv6': return IPPROTO.ICMPV6;
    case 'raw': return l4.protocol;
  }
}

/** The L4 segment with its checksum (pseudo header from src/dst when the protocol has one). */
function buildL4(l4: L4Spec, src: Uint8Array, dst: Uint8Array): Buffer {
  const payload = Buffer.from(l4.payload ?? []);
  switch (l4.proto) {
    case 'tcp': {
      const h = Buffer.alloc(20);
      h.writeUInt16BE(l4.sport, 0);
      h.writeUInt16BE(l4.dport, 2);
      h.writeUInt32BE(l4.seq ?? 1, 4);
      h.writeUInt32BE(l4.ack ?? 0, 8);
      h.writeUInt8((l4.dataOffset ?? 5) << 4, 12);
      h.writeUInt8(l4.flags ?? TCP_FLAGS.SYN, 13);
      h.writeUInt16BE(l4.window ?? 64240, 14);
      const seg = Buffer.concat([h, payload]);
      seg.writeUInt16BE(internetChecksum(seg, onesSum(pseudoHeader(src, dst, IPPROTO.TCP, seg.length))), 16);
      return seg;
    }
    case 'udp': {
      const seg = Buffer.concat([Buffer.alloc(8), payload]);
      seg.writeUInt16BE(l4.sport, 0);
      seg.writeUInt16BE(l4.dport, 2);
      seg.writeUInt16BE(l4.length ?? seg.length, 4);
      let c = internetChecksum(seg, onesSum(pseudoHeader(src, dst, IPPROTO.UDP, seg.length)));
      if (c === 0) c = 0xffff; // 0 means "no checksum" in UDP
      seg.writeUInt16BE(c, 6);
      return seg;
    }
    case 'sctp': {
      const seg = Buffer.concat([Buffer.alloc(12), payload]);
      seg.writeUInt16BE(l4.sport, 0);
      seg.writeUInt16BE(l4.dport, 2);
      seg.writeUInt32BE(l4.tag ?? 0x01020304, 4);
      seg.writeUInt32LE(crc32c(seg), 8);
      return seg;
    }
    case 'icmp':
    case 'icmpv6': {
      const v6 = l4.proto === 'icmpv6';
      const seg = Buffer.concat([Buffer.alloc(8), payload]);
      seg.writeUInt8(l4.type ?? (v6 ? 128 : 8), 0); // echo request
      seg.writeUInt8(l4.code ?? 0, 1);
      seg.writeUInt16BE(l4.id ?? 1, 4);
      seg.writeUInt16BE(l4.seq ?? 1, 6);
      // ICMPv6 covers a pseudo header; ICMP (v4) does not.
      seg.writeUInt16BE(internetChecksum(seg, v6 ? onesSum(pseudoHeader(src, dst, IPPROTO.ICMPV6, seg.length)) : 0), 2);
      return seg;
    }
    case 'raw':
      return payload;
  }
}

function buildIpv4(ip: Ipv4Spec, protocol: number, l4: Buffer): Buffer {
  const opts = Buffer.from(ip.options ?? []);
  const optLen = Math.ceil(opts.length / 4) * 4;
  const h = Buffer.alloc(20 + optLen);
  opts.copy(h, 20);
  h.writeUInt8(((ip.version ?? 4) << 4) | (ip.ihl ?? h.length / 4), 0);
  h.writeUInt8(ip.tos ?? 0, 1);
  h.writeUInt16BE(ip.totalLength ?? h.length + l4.length, 2);
  h.writeUInt16BE(ip.id ?? 0x1234, 4);
  h.writeUInt16BE((ip.dontFragment ? 0x4000 : 0) | (ip.moreFragments ? 0x2000 : 0) | (ip.fragmentOffset ?? 0), 6);
  h.writeUInt8(ip.ttl ?? 64, 8);
  h.writeUInt8(ip.protocol ?? protocol, 9);
  h.set(ipBytes(ip.src), 12);
  h.set(ipBytes(ip.dst), 16);
  h.writeUInt16BE(internetChecksum(h), 10);
  return Buffer.concat([h, l4]);
}

const EXT_CODE: Record<Ipv6Ext['type'], number> = { hop: IPPROTO.HOPOPTS, routing: IPPROTO.ROUTING, fragment: IPPROTO.FRAGMENT, dest: IPPROTO.DSTOPTS };

function buildExt(ext: Ipv6Ext, next: number): Buffer {
  switch (ext.type) {
    case 'hop':
    case 'dest': {
      // Options padded to a multiple of 8 with PadN (type 1) or Pad1 (type 0).
      const opts = Buffer.from(ext.options ?? []);
      const len = Math.ceil((2 + opts.length) / 8) * 8;
      const b = Buffer.alloc(len);
      b.writeUInt8(next, 0);
      b.writeUInt8(len / 8 - 1, 1);
      opts.copy(b, 2);
      const pad = len - 2 - opts.length;
      if (pad === 1) b.writeUInt8(0, 2 + opts.length);
      else if (pad > 1) { b.writeUInt8(1, 2 + opts.length); b.writeUInt8(pad - 2, 3 + opts.length); }
      return b;
    }
    case 'routing': {
      const b = Buffer.alloc(8 + 16 * ext.segments.length);
      b.writeUInt8(next, 0);
      b.writeUInt8(2 * ext.segments.length, 1);
      b.writeUInt8(ext.routingType ?? 0, 2);
      b.writeUInt8(ext.segmentsLeft ?? ext.segments.length, 3);
      ext.segments.forEach((s, i) => b.set(ipBytes(s), 8 + 16 * i));
      return b;
    }
    case 'fragment': {
      const b = Buffer.alloc(8);
      b.writeUInt8(next, 0);
      b.writeUInt16BE(((ext.offset ?? 0) << 3) | (ext.more ? 1 : 0), 2);
      b.writeUInt32BE(ext.id ?? 0xabcd, 4);
      return b;
    }
  }
}

/** Where an upper-layer checksum's pseudo header points: the final destination (RFC 8200 8.1). */
function finalDestination(ip: Ipv6Spec): string {
  const rt = ip.ext?.find((e): e is Extract<Ipv6Ext, { type: 'routing' }> => e.type === 'routing');
  return rt && (rt.segmentsLeft ?? rt.segments.length) > 0 && rt.segments.length > 0 ? rt.segments[rt.segments.length - 1]! : ip.dst;
}

function buildIpv6(ip: Ipv6Spec, protocol: number, l4: Buffer): Buffer {
  const exts = ip.ext ?? [];
  const parts: Buffer[] = [];
  exts.forEach((e, i) => parts.push(buildExt(e, i + 1 < exts.length ? EXT_CODE[exts[i + 1]!.type] : protocol)));
  const payload = Buffer.concat([...parts, l4]);
  const h = Buffer.alloc(40);
  h.writeUInt32BE((((ip.version ?? 6) << 28) | ((ip.flowLabel ?? 0) & 0xfffff)) >>> 0, 0);
  h.writeUInt16BE(ip.payloadLength ?? payload.length, 4);
  h.writeUInt8(ip.nextHeader ?? (exts.length ? EXT_CODE[exts[0]!.type] : protocol), 6);
  h.writeUInt8(ip.hopLimit ?? 64, 7);
  h.set(ipBytes(ip.src), 8);
  h.set(ipBytes(ip.dst), 24);
  return Buffer.concat([h, payload]);
}

export function buildPacket(spec: PacketSpec): Buffer {
  const eth = spec.eth ?? {};
  const vlans = eth.vlans ?? [];
  if (vlans.length > 2) throw new Error('at most two VLAN tags');
  let l3: Buffer;
  let type: number;
  if (spec.ipv4 || spec.ipv6) {
    if (!spec.l4) throw new Error('an IP packet needs an l4 spec');
    const protocol = l4Protocol(spec.l4);
    if (spec.ipv4) {
      l3 = buildIpv4(spec.ipv4, protocol, buildL4(spec.l4, ipBytes(spec.ipv4.src), ipBytes(spec.ipv4.dst)));
      type = ETH_P_IP;
    } else {
      const ip = spec.ipv6!;
      l3 = buildIpv6(ip, protocol, buildL4(spec.l4, ipBytes(ip.src), ipBytes(finalDestination(ip))));
      type = ETH_P_IPV6;
    }
  } else {
    l3 = Buffer.from(spec.l2payload ?? Buffer.alloc(28));
    type = ETH_P_ARP;
  }
  const h = Buffer.alloc(14 + 4 * vlans.length);
  mac(eth.dst ?? DEFAULT_DST_MAC).copy(h, 0);
  mac(eth.src ?? DEFAULT_SRC_MAC).copy(h, 6);
  vlans.forEach((vid, i) => {
    h.writeUInt16BE(vlans.length === 2 && i === 0 ? ETH_P_8021AD : ETH_P_8021Q, 12 + 4 * i);
    h.writeUInt16BE(vid & 0xfff, 14 + 4 * i);
  });
  h.writeUInt16BE(eth.type ?? type, 12 + 4 * vlans.length);
  return Buffer.concat([h, l3]);
}

/** The first `length` bytes of a packet (a frame cut short). */
export function truncate(packet: Buffer, length: number): Buffer {
  return Buffer.from(packet.subarray(0, length));
}

/** Appends zero bytes, as Ethernet padding of a short frame does. */
export function pad(packet: Buffer, length: number): Buffer {
  return packet.length >= length ? packet : Buffer.concat([packet, Buffer.alloc(length - packet.length)]);
}

// ---- parsing -----------------------------------------------------------------

export interface ParsedPacket {
  eth: { dst: string; src: string; vlans: number[]; type: number };
  ipv4?: {
    version: number; ihl: number; totalLength: number; id: number; dontFragment: boolean; moreFragments: boolean;
    fragmentOffset: number; ttl: number; protocol: number; src: string; dst: string; checksumOk: boolean;
  };
  ipv6?: { version: number; payloadLength: number; nextHeader: number; hopLimit: number; src: string; dst: string; ext: number[] };
  /** The upper-layer protocol number (after IPv6 extension headers). */
  protocol?: number;
  l4?: { sport?: number; dport?: number; type?: number; code?: number; flags?: number; checksumOk: boolean; payload: Buffer };
  /** Where parsing stopped short, if it did. */
  truncated?: string;
}

function ipv6ExtLength(type: number, b: Buffer, off: number): number {
  return type === IPPROTO.FRAGMENT ? 8 : (b.readUInt8(off + 1) + 1) * 8;
}

/** Reads a packet back: addresses, ports, and whether every checksum is right. */
export function parsePacket(b: Buffer): ParsedPacket {
  if (b.length < 14) return { eth: { dst: '', src: '', vlans: [], type: 0 }, truncated: 'ethernet' };
  const eth = { dst: macString(b.subarray(0, 6)), src: macString(b.subarray(6, 12)), vlans: [] as number[], type: b.readUInt16BE(12) };
  let off = 14;
  while ((eth.type === ETH_P_8021Q || eth.type === ETH_P_8021AD) && off + 4 <= b.length) {
    eth.vlans.push(b.readUInt16BE(off) & 0xfff);
    eth.type = b.readUInt16BE(off + 2);
    off += 4;
  }
  const out: ParsedPacket = { eth };
  let src: Uint8Array;
  let dst: Uint8Array;
  let end: number;
  if (eth.type === ETH_P_IP) {
    if (off + 20 > b.length) return { ...out, truncated: 'ipv4' };
    const ihl = b.readUInt8(off) & 0xf;
    const frag = b.readUInt16BE(off + 6);
    src = b.subarray(off + 12, off + 16);
    dst = b.subarray(off + 16, off + 20);
    out.ipv4 = {
      version: b.readUInt8(off) >> 4, ihl, totalLength: b.readUInt16BE(off + 2), id: b.readUInt16BE(off + 4),
      dontFragment: (frag & 0x4000) !== 0, moreFragments: (frag & 0x2000) !== 0, fragmentOffset: frag & 0x1fff,
      ttl: b.readUInt8(off + 8), protocol: b.readUInt8(off + 9), src: ipFromBytes(src, 'IPv4'), dst: ipFromBytes(dst, 'IPv4'),
      checksumOk: off + ihl * 4 <= b.length && onesSum(b.subarray(off, off + ihl * 4)) === 0xffff,
    };
    out.protocol = out.ipv4.protocol;
    end = Math.min(b.length, off + out.ipv4.totalLength);
    off += ihl * 4;
    if (out.ipv4.fragmentOffset !== 0) return out; // no L4 header in a later fragment
  } else if (eth.type === ETH_P_IPV6) {
    if (off + 40 > b.length) return { ...out, truncated: 'ipv6' };
    src = b.subarray(off + 8, off + 24);
    dst = b.subarray(off + 24, off + 40);
    out.ipv6 = {
      version: b.readUInt8(off) >> 4, payloadLength: b.readUInt16BE(off + 4), nextHeader: b.readUInt8(off + 6),
      hopLimit: b.readUInt8(off + 7), src: ipFromBytes(src, 'IPv6'), dst: ipFromBytes(dst, 'IPv6'), ext: [],
    };
    end = Math.min(b.length, off + 40 + out.ipv6.payloadLength);
    let next = out.ipv6.nextHeader;
    off += 40;
    while ([IPPROTO.HOPOPTS, IPPROTO.ROUTING, IPPROTO.FRAGMENT, IPPROTO.DSTOPTS].includes(next as 0)) {
      if (off + 8 > end) return { ...out, truncated: 'ipv6 extension header' };
      out.ipv6.ext.push(next);
      const len = ipv6ExtLength(next, b, off);
      if (next === IPPROTO.ROUTING && b.readUInt8(off + 3) > 0 && len > 8) dst = b.subarray(off + len - 16, off + len);
      next = b.readUInt8(off);
      off += len;
    }
    out.protocol = next;
  } else {
    return out;
  }
  const seg = b.subarray(off, end);
  const proto = out.protocol!;
  const pseudo = (p: number) => onesSum(pseudoHeader(src, dst, p, seg.length));
  if (proto === IPPROTO.TCP) {
    if (seg.length < 20) return { ...out, truncated: 'tcp' };
    out.l4 = {
      sport: seg.readUInt16BE(0), dport: seg.readUInt16BE(2), flags: seg.readUInt8(13),
      checksumOk: onesSum(seg, pseudo(IPPROTO.TCP)) === 0xffff, payload: seg.subarray((seg.readUInt8(12) >> 4) * 4),
    };
  } else if (proto === IPPROTO.UDP) {
    if (seg.length < 8) return { ...out, truncated: 'udp' };
    const sum = seg.readUInt16BE(6);
    out.l4 = {
      sport: seg.readUInt16BE(0), dport: seg.readUInt16BE(2),
      checksumOk: (sum === 0 && out.ipv4 !== undefined) || onesSum(seg, pseudo(IPPROTO.UDP)) === 0xffff, payload: seg.subarray(8),
    };
  } else if (proto === IPPROTO.SCTP) {
    if (seg.length < 12) return { ...out, truncated: 'sctp' };
    const zeroed = Buffer.from(seg);
    zeroed.writeUInt32LE(0, 8);
    out.l4 = { sport: seg.readUInt16BE(0), dport: seg.readUInt16BE(2), checksumOk: crc32c(zeroed) === seg.readUInt32LE(8), payload: seg.subarray(12) };
  } else if (proto === IPPROTO.ICMP || proto === IPPROTO.ICMPV6) {
    if (seg.length < 8) return { ...out, truncated: 'icmp' };
    out.l4 = {
      type: seg.readUInt8(0), code: seg.readUInt8(1),
      checksumOk: onesSum(seg, proto === IPPROTO.ICMPV6 ? pseudo(IPPROTO.ICMPV6) : 0) === 0xffff, payload: seg.subarray(8),
    };
  }
  return out;
}

// ---- ICMP errors ---------------------------------------------------------------

/** The IP packet inside a frame (Ethernet header and VLAN tags cut off), its first `bytes` when given: what an ICMP error quotes. */
export function ipPart(frame: Buffer, bytes?: number): Buffer {
  let off = 14;
  while (off + 4 <= frame.length && [ETH_P_8021Q, ETH_P_8021AD].includes(frame.readUInt16BE(off - 2))) off += 4;
  const ip = frame.subarray(off);
  return Buffer.from(bytes === undefined ? ip : ip.subarray(0, bytes));
}

/**
 * The L4 spec of an ICMP (IPv4) or ICMPv6 error quoting `quote` (ipPart of
 * a frame), with `mtu` in the 32 bits after the checksum, where
 * "fragmentation needed" (its low 16 bits, RFC 1191) and "packet too big"
 * (all 32, RFC 4443) carry it. buildPacket writes the checksum over the
 * whole message (and, for ICMPv6, the pseudo header).
 */
export function icmpError(family: 'IPv4' | 'IPv6', type: number, code: number, quote: Uint8Array, mtu = 0): L4Spec {
  return { proto: family === 'IPv6' ? 'icmpv6' : 'icmp', type, code, id: (mtu >>> 16) & 0xffff, seq: mtu & 0xffff, payload: quote };
}

/** ICMP and ICMPv6 error types and codes the tests name. */
export const ICMP_ERR = {
  DEST_UNREACH: 3, PORT_UNREACH: 3, FRAG_NEEDED: 4, TIME_EXCEEDED: 11,
  V6_DEST_UNREACH: 1, V6_PORT_UNREACH: 4, V6_PACKET_TOO_BIG: 2, V6_TIME_EXCEEDED: 3,
} as const;
