// EndpointSlice -> SliceInfo. Refuses what kube-apiserver's
// ValidateEndpointSlice refuses, then reads the slice the way kube-proxy's
// endpointslicecache.go does: slices without a service-name label and FQDN
// slices are none of its business, ports without a number are skipped, only
// the first address of an endpoint counts, and absent conditions mean
// ready and serving.
import { namespacedKey, type KubeObject } from './objects.js';
import type { IPFamily } from '../util/ip.js';
import { ipv6Words } from '../util/ip.js';
import { EndpointPacker, endpointMeta, placeId } from './packed-endpoints.js';
import { freezeList, SharedValues } from './shared-values.js';
import { LABEL_SERVICE_NAME, PROTOCOLS, type Protocol, type SliceInfo, type SlicePort, type Validated } from './types.js';
import {
  Findings,
  dns1123LabelErrors,
  dns1123SubdomainErrors,
  familyError,
  isDns1123Subdomain,
  labelValueErrors,
  parseIP,
  type ParsedIP,
  readBool,
  readList,
  readObject,
  readPortNumber,
  readString,
  readStringList,
  readStringMap,
  specialIPError,
  startObject,
  type JsonObject,
} from './validation.js';

const ADDRESS_TYPES = ['FQDN', 'IPv4', 'IPv6'];
const MAX_ENDPOINTS = 1000;
const MAX_ADDRESSES = 100;
/**
 * kube-apiserver's limit (pkg/apis/discovery/validation: maxPorts = 20000).
 * The API reference still says 100; the code has allowed 20000 since
 * Services with port ranges needed it.
 */
const MAX_PORTS = 20000;
const MAX_HINTS = 8;

export function sliceFromObject(obj: KubeObject): Validated<SliceInfo | null> {
  const { f, namespace, name, meta } = startObject(obj, 'EndpointSlice', dns1123SubdomainErrors);
  const labels = readStringMap(f, meta.labels, 'metadata.labels');
  if (f.failed) return f.reject();

  const labelPath = `metadata.labels[${LABEL_SERVICE_NAME}]`;
  const serviceName = labels[LABEL_SERVICE_NAME] ?? '';
  if (serviceName === '') {
    f.warn(labelPath, `ignored: no ${LABEL_SERVICE_NAME} label`);
    return f.accept(null);
  }
  for (const msg of labelValueErrors(serviceName)) f.invalid(labelPath, serviceName, msg);

  const addressType = readString(f, obj.addressType, 'addressType') ?? '';
  if (addressType === 'FQDN') {
    f.warn('addressType', 'ignored: kube-proxy does not program FQDN EndpointSlices');
    return f.accept(null);
  }
  if (addressType === '') f.required('addressType');
  else if (addressType !== 'IPv4' && addressType !== 'IPv6') f.notSupported('addressType', addressType, ADDRESS_TYPES);
  const family: IPFamily = addressType === 'IPv6' ? 'IPv6' : 'IPv4';

  const ports = readPorts(f, obj.ports);
  const packed = readEndpoints(f, obj.endpoints, family);
  return f.accept<SliceInfo>({
    namespace,
    name,
    key: namespacedKey(namespace, name),
    serviceKey: namespacedKey(namespace, serviceName),
    family,
    ports,
    packed,
  });
}

/** Port lists by their text: the slices of services with the same ports (most of a cluster's, often) share one. */
const portLists = new SharedValues<SlicePort[]>();

function sharedPorts(ports: SlicePort[]): SlicePort[] {
  const text = ports.map((p) => `${p.name}\u0000${p.protocol}\u0000${p.port}`).join('\u0001');
  return portLists.share(text, ports, freezeList);
}

function readPorts(f: Findings, v: unknown): SlicePort[] {
  const list = readList(f, v, 'ports');
  if (list.length > MAX_PORTS) {
    f.tooMany('ports', list.length, MAX_PORTS);
    return [];
  }
  const names = new Set<string>();
  const out: SlicePort[] = [];
  list.forEach((item, i) => {
    const path = `ports[${i}]`;
    const o = readObject(f, item, path);
    const name = readString(f, o.name, `${path}.name`) ?? '';
    if (name !== '') for (const msg of dns1123LabelErrors(name)) f.invalid(`${path}.name`, name, msg);
    if (names.has(name)) f.duplicate(`${path}.name`, name);
    names.add(name);
    const protocolName = readString(f, o.protocol, `${path}.protocol`) || 'TCP';
    const protocol = PROTOCOLS.find((p): p is Protocol => p === protocolName);
    if (!protocol) f.notSupported(`${path}.protocol`, protocolName, PROTOCOLS);
    const port = readPortNumber(f, o.port, `${path}.port`, false);
    if (o.port === undefined || o.port === null) {
      // The API reads a port without a number as "all ports"; kube-proxy has no way to program that.
      f.warn(`${path}.port`, 'ignored: no port number (kube-proxy skips such ports)');
    } else if (port !== undefined && protocol) {
      out.push({ name, protocol, port });
    }
  });
  return sharedPorts(out);
}

const packers = { IPv4: new EndpointPacker('IPv4'), IPv6: new EndpointPacker('IPv6') };
/** Scratch: an IPv6 address's four words. */
const words = new Uint32Array(4);

/** Packs the endpoint's first address (canonical text; `v4` its IPv4 number) and meta. */
function pack(p: EndpointPacker, ip: ParsedIP, meta: number): void {
  if (p.family === 'IPv4') p.add(ip.v4, 0, 0, 0, meta);
  else {
    ipv6Words(ip.ip, words, 0);
    p.add(words[0]!, words[1]!, words[2]!, words[3]!, meta);
  }
}

function readEndpoints(f: Findings, v: unknown, family: IPFamily): readonly number[] {
  const list = readList(f, v, 'endpoints');
  if (list.length > MAX_ENDPOINTS) {
    f.tooMany('endpoints', list.length, MAX_ENDPOINTS);
    return [];
  }
  const p = packers[family];
  p.finish(); // empty it, should an earlier call have thrown half way
  list.forEach((item, i) => {
    if (wellFormedEndpoint(p, item, family)) return;
    const path = `endpoints[${i}]`;
    const o = readObject(f, item, path);
    const first = readAddresses(f, o.addresses, `${path}.addresses`, family);
    const conditions = readObject(f, o.conditions, `${path}.conditions`);
    // Exactly kube-proxy's reading: an unknown readiness counts as ready.
    const ready = readBool(f, conditions.ready, `${path}.conditions.ready`) ?? true;
    const serving = readBool(f, conditions.serving, `${path}.conditions.serving`) ?? true;
    const terminating = readBool(f, conditions.terminating, `${path}.conditions.terminating`) ?? false;
    const nodeName = readString(f, o.nodeName, `${path}.nodeName`);
    if (nodeName !== undefined) for (const msg of dns1123SubdomainErrors(nodeName)) f.invalid(`${path}.nodeName`, nodeName, msg);
    const zone = readString(f, o.zone, `${path}.zone`);
    const hints = readObject(f, o.hints, `${path}.hints`);
    const zoneHints = readHints(f, hints.forZones, `${path}.hints.forZones`, labelValueErrors);
    const nodeHints = readHints(f, hints.forNodes, `${path}.hints.forNodes`, dns1123SubdomainErrors);
    if (first === null || f.failed) return;
    pack(p, first, endpointMeta(ready, serving, terminating, placeId(nodeName ?? null, zone ?? null, zoneHints, nodeHints)));
  });
  return p.finish();
}

/** A value that is absent (undefined or null) or a boolean: the boolean or `absent`; null when it is something else. */
function boolOr(v: unknown, absent: boolean): boolean | null {
  if (v === undefined || v === null) return absent;
  return typeof v === 'boolean' ? v : null;
}

/**
 * The common endpoint, read without the general readers: those build a
 * field path string per field read (a dozen per endpoint, 300,000
 * endpoints in a large cluster) to name problems there are none of. Only an
 * endpoint whose every field has its expected type and a valid value is
 * read (packed into `p`) here, with the same result the general reading
 * gives, and true returned; anything else, hints included, returns false,
 * packing nothing, and goes the general way, which names every problem.
 */
function wellFormedEndpoint(p: EndpointPacker, item: unknown, family: IPFamily): boolean {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) return false;
  const o = item as JsonObject;
  const addresses = o.addresses;
  if (!Array.isArray(addresses) || addresses.length === 0 || addresses.length > MAX_ADDRESSES) return false;
  let first: ParsedIP | null = null;
  for (let j = 0; j < addresses.length; j++) {
    const text: unknown = addresses[j];
    const parsed = typeof text === 'string' ? parseIP(text) : null;
    if (familyError(parsed, family) !== null || specialIPError(parsed!.ip) !== null) return false;
    if (j === 0) first = parsed;
  }
  const c = o.conditions;
  if (c !== undefined && c !== null && (typeof c !== 'object' || Array.isArray(c))) return false;
  const conditions = (c ?? NO_CONDITIONS) as JsonObject;
  const ready = boolOr(conditions.ready, true);
  const serving = boolOr(conditions.serving, true);
  const terminating = boolOr(conditions.terminating, false);
  if (ready === null || serving === null || terminating === null) return false;
  const nodeName = o.nodeName ?? null;
  if (nodeName !== null && (typeof nodeName !== 'string' || !isDns1123Subdomain(nodeName))) return false;
  const zone = o.zone ?? null;
  if (zone !== null && typeof zone !== 'string') return false;
  if (o.hints !== undefined && o.hints !== null) return false;
  pack(p, first!, endpointMeta(ready, serving, terminating, placeId(nodeName, zone as string | null, NO_HINTS, NO_HINTS)));
  return true;
}

const NO_CONDITIONS: JsonObject = Object.freeze({});

/** Validates every address; returns the canonical first one, which is all kube-proxy uses, and its IPv4 number. */
function readAddresses(f: Findings, v: unknown, path: string, family: IPFamily): ParsedIP | null {
  const addresses = readStringList(f, v, path);
  if (addresses.length === 0) f.required(path, 'must contain at least 1 address');
  else if (addresses.length > MAX_ADDRESSES) f.tooMany(path, addresses.length, MAX_ADDRESSES);
  let first: ParsedIP | null = null;
  addresses.forEach((text, j) => {
    const parsed = parseIP(text);
    const err = familyError(parsed, family) ?? specialIPError(parsed!.ip);
    if (err !== null) f.invalid(`${path}[${j}]`, text, err);
    else if (j === 0) first = parsed;
  });
  return first;
}

/** Shared by every endpoint without hints (nearly all of them): one array, not two per endpoint. */
const NO_HINTS: readonly string[] = Object.freeze([]);

/** hints.forZones / hints.forNodes: at most 8 distinct names; sorted for stable comparison. */
function readHints(f: Findings, v: unknown, path: string, nameErrors: (s: string) => string[]): readonly string[] {
  const list = readList(f, v, path);
  if (list.length === 0) return NO_HINTS;
  if (list.length > MAX_HINTS) {
    f.tooMany(path, list.length, MAX_HINTS);
    return NO_HINTS;
  }
  const names = new Set<string>();
  list.forEach((item, i) => {
    const namePath = `${path}[${i}].name`;
    const name = readString(f, readObject(f, item, `${path}[${i}]`).name, namePath) ?? '';
    for (const msg of nameErrors(name)) f.invalid(namePath, name, msg);
    if (names.has(name)) f.duplicate(namePath, name);
    names.add(name);
  });
  return [...names].sort();
}
