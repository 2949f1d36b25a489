// What service.ts, endpointslice.ts and node.ts share: the field-error
// vocabulary of kube-apiserver (so a rejected object reads the way `kubectl
// apply` would have reported it), readers that narrow untyped JSON, and the
// name, port and address rules of k8s.io/apimachinery/pkg/util/validation.
import { API_VERSIONS, type KubeObject, type ObjectKind } from './objects.js';
import {
  canonicalIP,
  familyOf,
  ipBytes,
  isLinkLocal,
  isLinkLocalMulticast,
  isLoopback,
  isUnspecified,
  ipv4ToUint32,
  parseCidr,
  type Cidr,
  type IPFamily,
} from '../util/ip.js';
import type { Validated } from './types.js';

export type JsonObject = Record<string, unknown>;

/** What kube-apiserver would have done for us; said wherever we refuse to guess. */
export const NO_ALLOCATOR = 'bpfproxy without an API server cannot allocate one';

export const PORT_RANGE = 'must be between 1 and 65535, inclusive';

/**
 * The errors and warnings found in one object. Like kube-apiserver, every
 * error is collected (an operator fixes them all in one go); any error
 * rejects the object.
 */
export class Findings {
  private readonly errors: string[] = [];
  private readonly warnings: string[] = [];

  /** e.g. "Service default/web": the start of every reason and warning. */
  constructor(readonly subject: string) {}

  get failed(): boolean {
    return this.errors.length > 0;
  }

  get errorCount(): number {
    return this.errors.length;
  }

  invalid(path: string, value: unknown, detail: string): void {
    this.errors.push(`${path}: Invalid value: ${show(value)}: ${detail}`);
  }

  required(path: string, detail = ''): void {
    this.errors.push(`${path}: Required value${detail ? `: ${detail}` : ''}`);
  }

  notSupported(path: string, value: unknown, supported: readonly string[]): void {
    const list = supported.map((s) => JSON.stringify(s)).join(', ');
    this.errors.push(`${path}: Unsupported value: ${show(value)}: supported values: ${list}`);
  }

  duplicate(path: string, value: unknown): void {
    this.errors.push(`${path}: Duplicate value: ${show(value)}`);
  }

  forbidden(path: string, detail: string): void {
    this.errors.push(`${path}: Forbidden: ${detail}`);
  }

  tooMany(path: string, actual: number, max: number): void {
    this.errors.push(`${path}: Too many: ${actual}: must have at most ${max} items`);
  }

  /** Something kube-proxy would log and carry on with. */
  warn(path: string, message: string): void {
    this.warnings.push(`${this.subject}: ${path}: ${message}`);
  }

  reject<T>(): Validated<T> {
    return { ok: false, reason: `${this.subject}: ${this.errors.join('; ')}` };
  }

  accept<T>(value: T): Validated<T> {
    if (this.failed) return this.reject();
    return { ok: true, value, warnings: [...this.warnings] };
  }
}

/** A value the way field errors print it: strings quoted, the rest as JSON, long values cut. */
function show(value: unknown): string {
  if (value === undefined || value === null) return 'null';
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

// ---------------------------------------------------------------------------
// Readers. Objects arrive as parsed JSON or YAML: every field may be missing,
// null, or of the wrong type. Missing and null read as undefined (Go's zero
// value follows); a wrong type is an error, as it would fail to decode.

export function readObject(f: Findings, v: unknown, path: string): JsonObject {
  if (v === undefined || v === null) return {};
  if (typeof v === 'object' && !Array.isArray(v)) return v as JsonObject;
  f.invalid(path, v, 'must be an object');
  return {};
}

export function readList(f: Findings, v: unknown, path: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (Array.isArray(v)) return v;
  f.invalid(path, v, 'must be a list');
  return [];
}

export function readString(f: Findings, v: unknown, path: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  f.invalid(path, v, 'must be a string');
  return undefined;
}

export function readInt(f: Findings, v: unknown, path: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  f.invalid(path, v, 'must be an integer');
  return undefined;
}

export function readBool(f: Findings, v: unknown, path: string): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'boolean') return v;
  f.invalid(path, v, 'must be a boolean');
  return undefined;
}

export function readStringList(f: Findings, v: unknown, path: string): string[] {
  const out: string[] = [];
  readList(f, v, path).forEach((item, i) => {
    if (typeof item === 'string') out.push(item);
    else f.invalid(`${path}[${i}]`, item, 'must be a string');
  });
  return out;
}

export function readStringMap(f: Findings, v: unknown, path: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(readObject(f, v, path))) {
    if (typeof val === 'string') out[k] = val;
    else f.invalid(`${path}[${k}]`, val, 'must be a string');
  }
  return out;
}

/**
 * A port number field. Absent reads as Go's 0, which is out of range when
 * the field is required; absent optional fields come back undefined.
 */
export function readPortNumber(f: Findings, v: unknown, path: string, required: boolean): number | undefined {
  if (v === undefined || v === null) {
    if (required) f.invalid(path, 0, PORT_RANGE);
    return undefined;
  }
  const n = readInt(f, v, path);
  if (n === undefined) return undefined;
  if (!isPortNumber(n)) {
    f.invalid(path, n, PORT_RANGE);
    return undefined;
  }
  return n;
}

/** Timestamps are RFC 3339 strings in JSON; client libraries may hand over a Date. */
export function readTimestamp(v: unknown): string | null {
  if (typeof v === 'string' && v !== '') return v;
  if (v instanceof Date && !Number.isNaN(v.getTime())) return v.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return null;
}

// ---------------------------------------------------------------------------
// Object metadata.

export interface ObjectStart {
  f: Findings;
  /** "" for Nodes. */
  namespace: string;
  name: string;
  meta: JsonObject;
}

/**
 * Checks kind, apiVersion, metadata.name (with `nameErrors`) and, for
 * namespaced kinds, metadata.namespace, which defaults to "default" the way
 * kubectl fills it in.
 */
export function startObject(obj: KubeObject, kind: ObjectKind, nameErrors: (name: string) => string[]): ObjectStart {
  const namespaced = kind !== 'Node';
  const rawMeta: unknown = obj.metadata;
  const meta: JsonObject = typeof rawMeta === 'object' && rawMeta !== null && !Array.isArray(rawMeta) ? (rawMeta as JsonObject) : {};
  const name = typeof meta.name === 'string' ? meta.name : '';
  const namespace = !namespaced ? '' : typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : 'default';
  const f = new Findings(namespaced ? `${kind} ${namespace}/${name || '<unnamed>'}` : `${kind} ${name || '<unnamed>'}`);

  if (obj.kind !== undefined && obj.kind !== kind) f.notSupported('kind', obj.kind, [kind]);
  const apiVersion = API_VERSIONS[kind];
  if (obj.apiVersion !== undefined && obj.apiVersion !== apiVersion) f.notSupported('apiVersion', obj.apiVersion, [apiVersion]);
  readObject(f, rawMeta, 'metadata');

  const nameRead = readString(f, meta.name, 'metadata.name');
  if (nameRead === undefined ? meta.name === undefined || meta.name === null : nameRead === '') {
    f.required('metadata.name', 'name or generateName is required');
  } else if (nameRead !== undefined) {
    for (const msg of nameErrors(nameRead)) f.invalid('metadata.name', nameRead, msg);
  }
  if (namespaced && readString(f, meta.namespace, 'metadata.namespace')) {
    for (const msg of dns1123LabelErrors(namespace)) f.invalid('metadata.namespace', namespace, msg);
  }
  return { f, namespace, name, meta };
}

// ---------------------------------------------------------------------------
// Names (k8s.io/apimachinery/pkg/util/validation). Each returns the reasons a
// value is not acceptable; empty when it is.

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

function maxLen(s: string, n: number): string[] {
  return s.length > n ? [`must be no more than ${n} characters`] : [];
}

export function dns1123LabelErrors(s: string): string[] {
  const errs = maxLen(s, 63);
  if (!DNS1123_LABEL.test(s)) {
    errs.push(
      "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name', or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
    );
  }
  return errs;
}

/** dns1123SubdomainErrors(s) is empty, without building it: for the per-endpoint fast path. */
export function isDns1123Subdomain(s: string): boolean {
  return s.length <= 253 && DNS1123_SUBDOMAIN.test(s);
}

export function dns1123SubdomainErrors(s: string): string[] {
  const errs = maxLen(s, 253);
  if (!DNS1123_SUBDOMAIN.test(s)) {
    errs.push(
      "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
    );
  }
  return errs;
}

export function dns1035LabelErrors(s: string): string[] {
  const errs = maxLen(s, 63);
  if (!DNS1035_LABEL.test(s)) {
    errs.push(
      "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name', or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
    );
  }
  return errs;
}

export function labelValueErrors(s: string): string[] {
  const errs = maxLen(s, 63);
  if (!LABEL_VALUE.test(s)) {
    errs.push(
      "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue', or 'my_value', or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
    );
  }
  return errs;
}

/** IANA_SVC_NAME (RFC 6335): what a named targetPort must look like. */
export function portNameErrors(s: string): string[] {
  const errs = maxLen(s, 15);
  if (!/^[-a-z0-9]+$/.test(s)) errs.push('must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)');
  if (!/[a-z]/.test(s)) errs.push('must contain at least one letter (a-z)');
  if (s.includes('--')) errs.push('must not contain consecutive hyphens');
  if (s.startsWith('-') || s.endsWith('-')) errs.push('must not begin or end with a hyphen');
  return errs;
}

export function isPortNumber(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= 65535;
}

// ---------------------------------------------------------------------------
// Addresses. kube-apiserver parses strictly for new objects: no leading zeros,
// no IPv4-mapped IPv6, no zones. Accepted text is canonicalized by the caller.

const IP_EXAMPLE = 'must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)';
const CIDR_EXAMPLE = 'must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)';

/** Why `s` is not an IP address kube-apiserver accepts, or null when it is one. */
export function ipSyntaxError(s: string): string | null {
  const fam = familyOf(s);
  if (!fam || s.includes('%')) return IP_EXAMPLE;
  if (fam === 'IPv6' && isIPv4Mapped(ipBytes(s))) return 'must not be an IPv4-mapped IPv6 address';
  return null;
}

function isIPv4Mapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/** Why an address is not one of `family` (IsValidIPv4Address / IsValidIPv6Address), from its parse; null when it is. */
export function familyError(parsed: ParsedIP | null, family: IPFamily): string | null {
  return parsed?.family === family ? null : `must be a valid ${family} address`;
}

/**
 * ValidateNonSpecialIP: what may not be an endpoint or an external IP. `ip`
 * must already be a valid address.
 */
export function specialIPError(ip: string): string | null {
  if (isUnspecified(ip)) return `may not be unspecified (${ip})`;
  if (isLoopback(ip)) return 'may not be in the loopback range (127.0.0.0/8, ::1/128)';
  if (isLinkLocal(ip)) return 'may not be in the link-local range (169.254.0.0/16, fe80::/10)';
  if (isLinkLocalMulticast(ip)) return 'may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)';
  return null;
}

export interface ParsedIP {
  /** Canonical text. */
  ip: string;
  family: IPFamily;
  /** IPv4: the address's 32 bits as a signed int32 (`| 0`); 0 for IPv6. See EndpointInfo.v4. */
  v4: number;
}

/** Parses an address kube-apiserver accepts into its canonical text, family and IPv4 number. */
export function parseIP(s: string): ParsedIP | null {
  // Dotted quad without leading zeros: valid, canonical as written, and by far the most common.
  const n = ipv4ToUint32(s);
  if (n >= 0) return { ip: s, family: 'IPv4', v4: n | 0 };
  if (ipSyntaxError(s) !== null) return null;
  const ip = canonicalIP(s);
  return ip && familyOf(s) === 'IPv6' ? { ip, family: 'IPv6', v4: 0 } : null;
}

/** Parses a CIDR kube-apiserver accepts; the result's text has its host bits cleared. */
export function parseCIDR(s: string): Cidr | string {
  const slash = s.indexOf('/');
  if (slash < 0) return CIDR_EXAMPLE;
  const addrErr = ipSyntaxError(s.slice(0, slash));
  if (addrErr !== null) return addrErr === IP_EXAMPLE ? CIDR_EXAMPLE : addrErr;
  if (!/^(0|[1-9]\d{0,2})$/.test(s.slice(slash + 1))) return CIDR_EXAMPLE;
  return parseCidr(s) ?? CIDR_EXAMPLE;
}
