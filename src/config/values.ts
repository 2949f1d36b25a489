// Parsers for configuration values, shared by the config file and the flags.
// Each takes the name of the field or flag it parses so its errors can say which.
import { familyOf, canonicalIP, parseCidr } from '../util/ip.js';
import { isIP } from 'node:net';
import { ConfigError } from './errors.js';
import { isPrime, MAX_MAGLEV_M } from '../util/maglev-size.js';

const DURATION_UNITS_MS: Readonly<Record<string, number>> = {
  ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000,
};

/**
 * A Go duration ("1s", "500ms", "1m30s", "1.5h", "0") in milliseconds, as kube-proxy's
 * metav1.Duration fields and flags take them. Negative durations are refused: no
 * field here has a meaning for them.
 */
export function parseDuration(text: string, field: string): number {
  const bad = (why: string) => new ConfigError(field, `invalid duration ${JSON.stringify(text)}: ${why} (use Go syntax such as "1s", "500ms", "1m30s")`);
  let s = text.trim();
  if (s.startsWith('-')) throw bad('negative');
  if (s.startsWith('+')) s = s.slice(1);
  if (s === '0') return 0;
  if (s === '') throw bad('empty');
  let total = 0;
  const part = /^(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/;
  while (s.length > 0) {
    const m = part.exec(s);
    if (!m) throw bad(/^[\d.]+$/.test(s) ? 'missing unit' : 'unknown unit or garbage');
    total += Number(m[1]) * DURATION_UNITS_MS[m[2]!]!;
    s = s.slice(m[0].length);
  }
  return total;
}

/** Milliseconds as Go prints a duration: 0 -> "0s", 500 -> "500ms", 90000 -> "1m30s", 3600000 -> "1h0m0s". */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms < 1000) return `${ms}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const sec = `${(ms % 60_000) / 1000}s`;
  if (h > 0) return `${h}h${m}m${sec}`;
  if (m > 0) return `${m}m${sec}`;
  return sec;
}

/** Where an HTTP server listens. host "" means every address. */
export interface BindAddress {
  host: string;
  port: number;
}

export function formatBindAddress(a: BindAddress): string {
  const host = a.host.includes(':') ? `[${a.host}]` : a.host;
  return `${host}:${a.port}`;
}

/**
 * "IP:port", "[v6]:port" or ":port"; a bare IP gets defaultPort (as kube-proxy
 * appends its default port). "" disables the server: null. Port 0 asks the kernel
 * for a free port, which tests use.
 */
export function parseBindAddress(text: string, field: string, defaultPort: number): BindAddress | null {
  const s = text.trim();
  if (s === '') return null;
  const bad = (why: string) => new ConfigError(field, `invalid address ${JSON.stringify(text)}: ${why} (use "IP:port", "[IPv6]:port", ":port", or "" to disable)`);
  let host: string;
  let portText: string | null;
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(s);
  if (bracketed) {
    host = bracketed[1]!;
    portText = bracketed[2] ?? null;
    if (familyOf(host) !== 'IPv6') throw bad('brackets hold an IPv6 address');
  } else if (familyOf(s) !== null) {
    host = s;
    portText = null;
  } else {
    const colon = s.lastIndexOf(':');
    if (colon < 0) throw bad('not an IP address');
    host = s.slice(0, colon);
    portText = s.slice(colon + 1);
    if (host !== '' && familyOf(host) !== 'IPv4') throw bad(host.includes(':') ? 'put an IPv6 address in brackets' : `${JSON.stringify(host)} is not an IP address`);
  }
  const port = portText === null ? defaultPort : parsePort(portText, field, true);
  return { host: host === '' ? '' : canonicalIP(host)!, port };
}

function parsePort(text: string, field: string, allowZero: boolean): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535 || (!allowZero && Number(text) === 0)) {
    throw new ConfigError(field, `invalid port ${JSON.stringify(text)}: want ${allowZero ? 0 : 1}-65535`);
  }
  return Number(text);
}

/** Splits a comma-separated flag value; a list stays a list. Empty items are dropped. */
export function splitList(value: string | readonly string[]): string[] {
  const items = typeof value === 'string' ? value.split(',') : value;
  return items.map((s) => s.trim()).filter((s) => s !== '');
}

/**
 * CIDRs in canonical text, at most one per family when dualStackPair (kube-proxy's
 * clusterCIDR and the apiserver's service-cluster-ip-range are "a dual-stack pair").
 */
export function parseCidrList(value: string | readonly string[], field: string, dualStackPair: boolean): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const item of splitList(value)) {
    const cidr = parseCidr(item);
    if (!cidr) throw new ConfigError(field, `invalid CIDR ${JSON.stringify(item)}`);
    if (dualStackPair && seen.has(cidr.family)) throw new ConfigError(field, `more than one ${cidr.family} CIDR in ${JSON.stringify(splitList(value).join(','))}: give at most one per family`);
    seen.add(cidr.family);
    out.push(cidr.text);
  }
  return out;
}

/** Which node addresses NodePorts (and healthCheckNodePorts) are served on. */
export type NodePortAddresses =
  | { kind: 'all' }
  /** The Node object's primary address of each family. */
  | { kind: 'primary' }
  | { kind: 'cidrs'; cidrs: string[] };

export function parseNodePortAddresses(value: string | readonly string[], field: string): NodePortAddresses {
  const items = splitList(value);
  if (items.length === 0) return { kind: 'all' };
  const keywords = items.filter((s) => !s.includes('/'));
  for (const k of keywords) {
    if (k === 'localhost') throw new ConfigError(field, `"localhost" is not supported: bpfproxy serves no NodePort on loopback addresses`);
    if (k !== 'primary' && k !== 'all') throw new ConfigError(field, `invalid value ${JSON.stringify(k)}: want CIDRs, "primary" or "all"`);
  }
  if (keywords.length > 0) {
    if (items.length > 1) throw new ConfigError(field, `"${keywords[0]}" must be the only value, got ${JSON.stringify(items.join(','))}`);
    return { kind: keywords[0] as 'primary' | 'all' };
  }
  return { kind: 'cidrs', cidrs: parseCidrList(items, field, false) };
}

export interface PortRange {
  min: number;
  max: number;
}

/** "30000-32767", "30000+2767" (base plus size, as the apiserver takes it) or a single port. */
export function parsePortRange(text: string, field: string): PortRange {
  const s = text.trim();
  const m = /^(\d+)(?:([-+])(\d+))?$/.exec(s);
  if (!m) throw new ConfigError(field, `invalid port range ${JSON.stringify(text)}: want "MIN-MAX", e.g. "30000-32767"`);
  const min = parsePort(m[1]!, field, false);
  const max = m[2] === undefined ? min : m[2] === '-' ? parsePort(m[3]!, field, false) : min + Number(m[3]);
  if (max < min || max > 65535) throw new ConfigError(field, `invalid port range ${JSON.stringify(text)}: the end must be between ${min} and 65535`);
  return { min, max };
}

export function validateMaglevTableSize(n: number, field: string): number {
  if (!Number.isInteger(n) || n < 2 || n > MAX_MAGLEV_M) {
    throw new ConfigError(field, `invalid Maglev table size ${n}: want a prime between 2 and ${MAX_MAGLEV_M}`);
  }
  if (!isPrime(n)) {
    let below = n - 1;
    while (!isPrime(below)) below--;
    let above = n + 1;
    while (above <= MAX_MAGLEV_M && !isPrime(above)) above++;
    const near = above <= MAX_MAGLEV_M ? `${below} or ${above}` : `${below}`;
    throw new ConfigError(field, `Maglev table size ${n} is not prime (the nearest primes are ${near})`);
  }
  return n;
}

/**
 * --bpf-lb-maglev-map-max: how many Maglev tables the packet datapath holds.
 * Bounded by the rows map it also sizes; the array's bytes (tables x M x 4)
 * are logged at load.
 */
export function validateMaglevMapMax(n: number, field: string, max: number): number {
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw new ConfigError(field, `invalid number of Maglev tables ${n}: want an integer between 1 and ${max} (each takes M x 4 bytes, 64 KiB at the default M)`);
  }
  return n;
}

/** A specific IP for --bind-address (kube-proxy's): "" and the unspecified addresses mean none. */
export function parseBindIP(text: string, field: string): string {
  const t = text.trim();
  if (t === '' || t === '0.0.0.0' || t === '::') return '';
  if (isIP(t) === 0) throw new ConfigError(field, `invalid IP address ${JSON.stringify(text)}`);
  return t;
}

/** A decimal integer from text, within [min, max]. */
export function parseInteger(text: string, field: string, min: number, max: number): number {
  const s = text.trim();
  if (!/^-?\d+$/.test(s)) throw new ConfigError(field, `invalid integer ${JSON.stringify(text)}`);
  return checkInteger(Number(s), field, min, max);
}

export function checkInteger(n: number, field: string, min: number, max: number): number {
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new ConfigError(field, `invalid value ${n}: want an integer between ${min} and ${max}`);
  return n;
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function parseLogLevel(text: string, field: string): LogLevel {
  const s = text.trim().toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(s)) throw new ConfigError(field, `invalid log level ${JSON.stringify(text)}: want one of ${LOG_LEVELS.join(', ')}`);
  return s as LogLevel;
}

/** kube-proxy's klog verbosity mapped onto pino: 0-1 info, 2-3 debug, 4 and up trace. */
export function verbosityToLevel(v: number): LogLevel {
  if (v >= 4) return 'trace';
  if (v >= 2) return 'debug';
  return 'info';
}

/** Exactly one of the allowed strings, or an error listing them. */
export function parseEnum<T extends string>(text: string, allowed: readonly T[], field: string): T {
  if (!(allowed as readonly string[]).includes(text)) throw new ConfigError(field, `invalid value ${JSON.stringify(text)}: want one of ${allowed.join(', ')}`);
  return text as T;
}

export { LOG_FORMATS, type LogFormat } from '../util/log.js';

/** A boolean as Go's strconv.ParseBool reads it, which is how pflag takes "--flag=value". */
export function parseGoBool(text: string, field: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false;
  throw new ConfigError(field, `invalid value ${JSON.stringify(text)}: want true or false`);
}

/** A float such as --kube-api-qps takes. */
export function parseNumber(text: string, field: string, min: number): number {
  const n = Number(text.trim());
  if (text.trim() === '' || !Number.isFinite(n) || n < min) throw new ConfigError(field, `invalid number ${JSON.stringify(text)}: want ${min} or more`);
  return n;
}

/** --feature-gates "A=true,B=false": the gates named, each with its value. */
export function parseFeatureGates(text: string, field: string): Record<string, boolean> {
  const out: Record<string, boolean> = {};
  for (const item of splitList(text)) {
    const m = /^([A-Za-z0-9]+)=(.*)$/.exec(item);
    if (!m) throw new ConfigError(field, `invalid gate ${JSON.stringify(item)}: want NAME=true|false`);
    out[m[1]!] = parseGoBool(m[2]!.trim(), `${field} ${m[1]}`);
  }
  return out;
}
