// Which sockets the sock_diag way destroys: exactly those the socket
// iterator (bpf/sockdestroy.bpf.c) destroys, by the same rule, here in
// TypeScript because sock_diag runs no program. A socket is destroyed when
//   - it is connected (the dump asks for connected sockets only; a peer port is set),
//   - our connect hook translated it: bpx_sk_rnat_v1 has (its cookie, its
//     peer), which names the service it was connected through,
//   - that (service, peer) pair is one a sync removed.
// The peer is keyed as the hooks key it: an IPv4-mapped peer of an IPv6
// socket is an IPv4 backend (sk_peer() of the program). Pure, apart from
// the lookup it is handed.
import { ipBytes } from '../../util/ip.js';
import { FAMILY_V4, FAMILY_V6, SK_RNAT_KEY, SK_RNAT_VAL } from './layout.js';
import type { RemovedBackend } from './udp-removed.js';

/** A socket line of native/sockdiag.h, read. */
export interface DiagSocket {
  /** The line as the dump wrote it: what the destroy request is made from. */
  line: string;
  cookie: bigint;
  family: 4 | 6;
  dst: Uint8Array;
  dport: number;
}

/** A peer as the hooks key it. */
export interface Peer {
  family: typeof FAMILY_V4 | typeof FAMILY_V6;
  /** 4 bytes for IPv4, 16 for IPv6. */
  addr: Uint8Array;
  port: number;
}

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const V4_MAPPED_PREFIX = '00000000000000000000ffff';

function backendBytes(r: RemovedBackend): Uint8Array {
  if (r.family === 'IPv6') return ipBytes(r.backend.address);
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, r.backend.v4 >>> 0);
  return b;
}

/** The removed backends as sockdiag.h's target lines ("ADDR PORT"), each once. */
export function targetLines(removed: readonly RemovedBackend[]): string {
  return [...new Set(removed.map((r) => `${hex(backendBytes(r))} ${r.backend.port}`))].join('\n');
}

/** Socket lines, read; a line that is not one (a cut end) is skipped. */
export function parseSocketLines(text: string): DiagSocket[] {
  const out: DiagSocket[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length !== 7 || (f[1] !== '4' && f[1] !== '6')) continue;
    const family = f[1] === '4' ? 4 : 6;
    const dst = Buffer.from(f[4]!, 'hex');
    if (dst.length !== (family === 4 ? 4 : 16)) continue;
    out.push({ line, cookie: BigInt(f[0]!), family, dst, dport: Number(f[5]) });
  }
  return out;
}

/** The socket's peer as the hooks key it, or null when it has none. */
export function peerOf(s: DiagSocket): Peer | null {
  if (s.dport === 0) return null;
  if (s.family === 4) return { family: FAMILY_V4, addr: s.dst, port: s.dport };
  if (hex(s.dst.subarray(0, 12)) === V4_MAPPED_PREFIX) return { family: FAMILY_V4, addr: s.dst.subarray(12), port: s.dport };
  return { family: FAMILY_V6, addr: s.dst, port: s.dport };
}

const pairKey = (svcId: number, family: number, addr: Uint8Array, port: number) => `${svcId}/${family}/${hex(addr)}/${port}`;

/**
 * The sockets to destroy, each with the service it was connected through.
 * serviceOf(cookie, peer) is the bpx_sk_rnat_v1 lookup: the service ID, or
 * 0 when the hooks did not translate that socket to that peer.
 */
export function selectSockets(sockets: readonly DiagSocket[], removed: readonly RemovedBackend[], serviceOf: (cookie: bigint, peer: Peer) => number): { socket: DiagSocket; svcId: number }[] {
  const dead = new Set(removed.map((r) => pairKey(r.svcId, r.family === 'IPv4' ? FAMILY_V4 : FAMILY_V6, backendBytes(r), r.backend.port)));
  const out: { socket: DiagSocket; svcId: number }[] = [];
  for (const socket of sockets) {
    const peer = peerOf(socket);
    if (!peer) continue;
    const svcId = serviceOf(socket.cookie, peer);
    if (svcId !== 0 && dead.has(pairKey(svcId, peer.family, peer.addr, peer.port))) out.push({ socket, svcId });
  }
  return out;
}

/** The bpx_sk_rnat_key of (cookie, peer). */
export function rnatKey(cookie: bigint, peer: Peer): Buffer {
  const f = SK_RNAT_KEY.fields;
  const key = Buffer.alloc(SK_RNAT_KEY.size);
  key.writeBigUInt64LE(cookie, f.cookie.offset); // bpf_get_socket_cookie(): a u64 in host order (x86_64)
  key.set(peer.addr, f.addr.offset);
  key.writeUInt16BE(peer.port, f.port.offset);
  key[f.family.offset] = peer.family;
  return key;
}

/** The service ID in a bpx_sk_rnat_val. */
export const rnatService = (value: Buffer): number => value.readUInt32LE(SK_RNAT_VAL.fields.svc_id.offset);
