// IP address and CIDR helpers. Addresses are kept as canonical strings
// (what `net` and the kernel print) for logs, dumps and comparisons, next to
// their numeric form where it is used per endpoint: IPv4 as a number
// (ipv4ToUint32), IPv6 as four words written into the caller's buffer
// (ipv6Words), both without allocating.
import { isIPv6 } from 'node:net';

export type IPFamily = 'IPv4' | 'IPv6';

/**
 * An IPv4 address as an unsigned 32-bit number, or -1 when ip[start..end) is
 * not dotted-quad IPv4 as net.isIPv4 accepts it (no leading zeros). No
 * allocation: the hot paths (validation, sorting, encoding) go through here.
 */
export function ipv4ToUint32(ip: string, start = 0, end = ip.length): number {
  let n = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = start; i < end; i++) {
    const c = ip.charCodeAt(i);
    if (c === 46) {
      if (digits === 0) return -1;
      n = n * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits === 1 && part === 0) return -1; // leading zero
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return -1;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0) return -1;
  return n * 256 + part;
}

/** The eight groups of the last address ipv6Words() parsed: scratch, so parsing allocates nothing. */
const groups = new Uint16Array(8);

/** Hex digit value, or -1. */
function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * Parses IPv6 text (with "::" and an embedded IPv4 tail, without a zone)
 * into `groups`. False when it is not one.
 */
function parseIPv6Groups(ip: string): boolean {
  const len = ip.length;
  let n = 0;
  /** Where "::" stands, as a group index; -1 when there is none. */
  let gap = -1;
  let i = 0;
  if (len >= 2 && ip.charCodeAt(0) === 58) {
    if (ip.charCodeAt(1) !== 58) return false;
    gap = 0;
    i = 2;
  }
  while (i < len) {
    if (n === 8) return false;
    let v = 0;
    let j = i;
    for (; j < len; j++) {
      const d = hexDigit(ip.charCodeAt(j));
      if (d < 0) break;
      if (j - i === 4) return false;
      v = v * 16 + d;
    }
    if (j < len && ip.charCodeAt(j) === 46) {
      // An IPv4 tail (::ffff:1.2.3.4) is the last two groups.
      const v4 = n <= 6 ? ipv4ToUint32(ip, i, len) : -1;
      if (v4 < 0) return false;
      groups[n++] = v4 >>> 16;
      groups[n++] = v4 & 0xffff;
      break;
    }
    if (j === i) return false;
    groups[n++] = v;
    if (j === len) break;
    if (ip.charCodeAt(j) !== 58 || j + 1 === len) return false;
    i = j + 1;
    if (ip.charCodeAt(i) === 58) {
      if (gap >= 0) return false;
      gap = n;
      i++;
    }
  }
  if (gap < 0) return n === 8;
  if (n === 8) return false; // "::" stands for at least one group
  const after = n - gap;
  for (let k = after - 1; k >= 0; k--) groups[8 - after + k] = groups[gap + k]!;
  for (let k = gap; k < 8 - after; k++) groups[k] = 0;
  return true;
}

/**
 * Writes an IPv6 address's 16 bytes as four big-endian 32-bit words into
 * out[off..off+4) (word 0 holds bytes 0-3). False, writing nothing, when
 * `ip` is not IPv6 text. No allocation: the planner keys backends with it.
 */
export function ipv6Words(ip: string, out: Uint32Array, off: number): boolean {
  if (!parseIPv6Groups(ip)) return false;
  for (let w = 0; w < 4; w++) out[off + w] = ((groups[2 * w]! << 16) | groups[2 * w + 1]!) >>> 0;
  return true;
}

export function familyOf(ip: string): IPFamily | null {
  if (ipv4ToUint32(ip) >= 0) return 'IPv4';
  if (isIPv6(ip)) return 'IPv6';
  return null;
}

/** Bytes of an address in network order: 4 for IPv4, 16 for IPv6. Throws on garbage. */
export function ipBytes(ip: string): Uint8Array {
  const n = ipv4ToUint32(ip);
  if (n >= 0) return Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
  if (!isIPv6(ip)) throw new Error(`not an IP address: ${ip}`);
  let s = ip;
  const out = new Uint8Array(16);
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hextets.
  const v4tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4tail) {
    const b = ipBytes(v4tail[1]!);
    s = s.slice(0, -v4tail[1]!.length) + `${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? s.split('::') as [string, string] : [s, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  return out;
}

/** Canonical text of an address given its bytes (RFC 5952 for IPv6). */
export function ipFromBytes(b: Uint8Array, family: IPFamily): string {
  if (family === 'IPv4') return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[i * 2]! << 8) | b[i * 2 + 1]!);
  // Longest run of zero groups (length >= 2) becomes "::".
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

/** The canonical form of an IP string, or null when it is not one. */
export function canonicalIP(ip: string): string | null {
  if (ipv4ToUint32(ip) >= 0) return ip; // dotted quad without leading zeros is canonical
  const fam = familyOf(ip);
  if (!fam) return null;
  return ipFromBytes(ipBytes(ip), fam);
}

export interface Cidr {
  family: IPFamily;
  bytes: Uint8Array;
  prefix: number;
  text: string;
}

/** Parses "a.b.c.d/n" or "x::/n" into its network (host bits cleared). Null when invalid. */
export function parseCidr(s: string): Cidr | null {
  const slash = s.indexOf('/');
  if (slash < 0) return null;
  const ip = s.slice(0, slash);
  const p = s.slice(slash + 1);
  const family = familyOf(ip);
  if (!family || !/^\d{1,3}$/.test(p)) return null;
  const prefix = Number(p);
  const bits = family === 'IPv4' ? 32 : 128;
  if (prefix > bits) return null;
  const bytes = ipBytes(ip);
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    bytes[i]! &= (0xff << (8 - keep)) & 0xff;
  }
  return { family, bytes, prefix, text: `${ipFromBytes(bytes, family)}/${prefix}` };
}

export function cidrContains(c: Cidr, ip: string): boolean {
  if (familyOf(ip) !== c.family) return false;
  const b = ipBytes(ip);
  for (let i = 0; i < c.bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, c.prefix - i * 8));
    if (keep === 0) break;
    const mask = (0xff << (8 - keep)) & 0xff;
    if ((b[i]! & mask) !== c.bytes[i]) return false;
  }
  return true;
}

/**
 * Total order on canonical addresses: IPv4 before IPv6, then numerically.
 * Hot in the planner (every endpoint list is sorted), hence the IPv4 path
 * that parses without allocating.
 */
export function compareIP(a: string, b: string): number {
  const na = ipv4ToUint32(a);
  const nb = ipv4ToUint32(b);
  if (na >= 0 && nb >= 0) return na - nb;
  if (na >= 0) return -1;
  if (nb >= 0) return 1;
  const ba = ipBytes(a);
  const bb = ipBytes(b);
  for (let i = 0; i < ba.length; i++) if (ba[i] !== bb[i]) return ba[i]! - bb[i]!;
  return 0;
}

export function isLoopback(ip: string): boolean {
  const n = ipv4ToUint32(ip);
  if (n >= 0) return n >>> 24 === 127;
  const b = ipBytes(ip);
  return b.every((x, i) => (i === 15 ? x === 1 : x === 0));
}

export function isLinkLocal(ip: string): boolean {
  const n = ipv4ToUint32(ip);
  if (n >= 0) return n >>> 16 === 0xa9fe;
  const b = ipBytes(ip);
  return b[0] === 0xfe && (b[1]! & 0xc0) === 0x80;
}

export function isLinkLocalMulticast(ip: string): boolean {
  const n = ipv4ToUint32(ip);
  if (n >= 0) return n >>> 8 === 0xe00000;
  const b = ipBytes(ip);
  return b[0] === 0xff && (b[1]! & 0x0f) === 0x02;
}

export function isUnspecified(ip: string): boolean {
  const n = ipv4ToUint32(ip);
  if (n >= 0) return n === 0;
  return ipBytes(ip).every((x) => x === 0);
}

/** "a.b.c.d:port" or "[v6]:port". */
export function hostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}
