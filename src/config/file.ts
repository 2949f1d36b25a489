// The --config file: kube-proxy's KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1),
// YAML or JSON, plus a `bpf:` section and a few top-level fields of ours.
//
// Decoding is kube-proxy's for v1alpha1: strict first, lenient when strict fails.
// A field kube-proxy does not know (`resourceContainer`, `conntrack.max`, removed
// long ago but still in old files) gives one notice naming it, and loading goes on;
// a value of the wrong type or out of range is an error naming its field. The
// kube-proxy fields bpfproxy has no use for are accepted and listed in `ignored`.
// As in kube-proxy, an empty string or null means "not set": the default applies.
//
// The schema below is a table of fields with a parser each, walked by a few lines
// (walk). A generic schema library (zod, ajv) was weighed: it would replace the
// type checks, but not the two things this table is for, the "used / ignored /
// empty" verdict per field and kube-proxy's "0s means default" in mode sections.
import { distance } from 'fastest-levenshtein';
import { PROXY_MODES, type ProxyMode } from '../util/modes.js';
import { yaml } from '../util/yaml.js';
import { IPVS_SCHEDULERS } from '../util/ipvs-schedulers.js';
import {
  DEFAULT_HEALTHZ_PORT, DEFAULT_METRICS_PORT, DETECT_LOCAL_MODES, MAP_NAMES, MAX_MAGLEV_MAP_MAX,
  type Environment, type FileLayer, type MapName,
} from './config.js';
import { ConfigError } from './errors.js';
import {
  checkInteger, LOG_FORMATS, parseBindAddress, parseCidrList, parseDuration, parseEnum, parseNodePortAddresses,
  parseBindIP, parsePortRange, validateMaglevMapMax, validateMaglevTableSize, verbosityToLevel,
} from './values.js';

export const CONFIG_API_VERSION = 'kubeproxy.config.k8s.io/v1alpha1';
export const CONFIG_KIND = 'KubeProxyConfiguration';

/** Handles one field: checks its value, applies it, and says what became of it. */
type Apply = (value: unknown, out: FileLayer, path: string) => 'used' | 'ignored' | 'empty';

type Spec = { kind: 'leaf'; apply: Apply } | { kind: 'object'; fields: Readonly<Record<string, Spec>> };

function describe(v: unknown): string {
  if (Array.isArray(v)) return `a list ${JSON.stringify(v)}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${JSON.stringify(v)}`;
}

function typeError(path: string, want: string, v: unknown): ConfigError {
  return new ConfigError(path, `want ${want}, got ${describe(v)}`);
}

function asString(v: unknown, path: string): string {
  if (typeof v !== 'string') throw typeError(path, 'a string', v);
  return v;
}

function asBool(v: unknown, path: string): boolean {
  if (typeof v !== 'boolean') throw typeError(path, 'true or false', v);
  return v;
}

function asNumber(v: unknown, path: string): number {
  if (typeof v !== 'number') throw typeError(path, 'a number', v);
  return v;
}

function asInt(v: unknown, path: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw typeError(path, 'an integer', v);
  return v;
}

function asStringList(v: unknown, path: string): string[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw typeError(path, 'a list of strings', v);
  return v as string[];
}

function asMap(v: unknown, path: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw typeError(path, 'an object', v);
  return v as Record<string, unknown>;
}

function isEmpty(v: unknown): boolean {
  return v === false || v === 0 || v === '' || (Array.isArray(v) && v.length === 0)
    || (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0);
}

/** A field bpfproxy uses: parse, then apply. Empty strings are "not set". */
function use<T>(check: (v: unknown, path: string) => T, apply: (v: T, out: FileLayer, path: string) => void): Spec {
  return {
    kind: 'leaf',
    apply: (v, out, path) => {
      const value = check(v, path);
      if (value === '') return 'empty';
      apply(value, out, path);
      return 'used';
    },
  };
}

/** A kube-proxy field bpfproxy accepts (type-checked) and does not use. */
function accept(check: (v: unknown, path: string) => unknown): Spec {
  return { kind: 'leaf', apply: (v, _out, path) => (isEmpty(check(v, path)) ? 'empty' : 'ignored') };
}

function obj(fields: Record<string, Spec>): Spec {
  return { kind: 'object', fields };
}

const anything = (v: unknown) => v;
const durationString = (v: unknown, path: string) => parseDuration(asString(v, path), path);
/** kube-proxy's logging.flushFrequency takes a duration string or nanoseconds. */
const durationOrNanos = (v: unknown, path: string) => (typeof v === 'number' ? asInt(v, path) : durationString(v, path));

/**
 * kube-proxy defaults a zero duration in these sections (kubeadm writes "0s" for
 * every one of them), so "0s" here means "not set". Our top-level fields take 0 as 0.
 */
function modeSyncPeriod(mode: ProxyMode, key: 'syncPeriodMs' | 'minSyncPeriodMs'): Spec {
  return use(durationString, (ms, out, field) => {
    if (ms === 0) return;
    out.modeSyncPeriods[mode] = { ...out.modeSyncPeriods[mode], [key]: { ms, field } };
  });
}

const mapSizeFields = Object.fromEntries(MAP_NAMES.map((name): [MapName, Spec] => [name, use(
  (v, path) => checkInteger(asInt(v, path), path, 1, 0xffffffff),
  (n, out) => { out.overrides.bpf = { ...out.overrides.bpf, mapSizes: { ...out.overrides.bpf?.mapSizes, [name]: n } }; },
)]));

const SCHEMA: Readonly<Record<string, Spec>> = {
  // Checked before the walk.
  apiVersion: use(anything, () => {}),
  kind: use(anything, () => {}),
  featureGates: accept(asMap),
  clientConnection: obj({
    kubeconfig: use(asString, (v, out) => { out.overrides.kubeconfig = v; }),
    acceptContentTypes: accept(asString),
    contentType: accept(asString),
    qps: accept(asNumber),
    burst: accept(asInt),
  }),
  logging: obj({
    format: use(asString, (v, out, path) => { out.overrides.logFormat = parseEnum(v, LOG_FORMATS, path); }),
    flushFrequency: accept(durationOrNanos),
    verbosity: use(asInt, (v, out, path) => {
      if (v < 0) throw new ConfigError(path, `want 0 or more, got ${v}`);
      out.overrides.logLevel = verbosityToLevel(v);
    }),
    vmodule: accept(anything),
    options: accept(asMap),
  }),
  hostnameOverride: use(asString, (v, out) => { out.overrides.nodeName = v; }),
  // Unspecified (kube-proxy's default 0.0.0.0) counts as not set.
  bindAddress: use((v, path) => parseBindIP(asString(v, path), path), (v, out) => { out.overrides.bindAddress = v; }),
  // In the file (as in kube-proxy) "" means the default address; the flag's "" disables.
  healthzBindAddress: use(asString, (v, out, path) => { out.overrides.healthzBindAddress = parseBindAddress(v, path, DEFAULT_HEALTHZ_PORT); }),
  metricsBindAddress: use(asString, (v, out, path) => { out.overrides.metricsBindAddress = parseBindAddress(v, path, DEFAULT_METRICS_PORT); }),
  bindAddressHardFail: use(asBool, (v, out) => { out.overrides.bindAddressHardFail = v; }),
  enableProfiling: accept(asBool),
  showHiddenMetricsForVersion: accept(asString),
  mode: use(asString, (v, out, path) => { out.overrides.mode = out.kubeProxyMode = parseEnum(v, PROXY_MODES, path); }),
  iptables: obj({
    masqueradeBit: use(asInt, (v, out, path) => { out.overrides.iptablesMasqueradeBit = checkInteger(v, path, 0, 31); }),
    masqueradeAll: use(asBool, (v, out) => { out.overrides.masqueradeAll = v; }),
    localhostNodePorts: use(asBool, (v, out) => { out.overrides.iptablesLocalhostNodePorts = v; }),
    snatNodeInternalIP: accept(asBool),
    syncPeriod: modeSyncPeriod('iptables', 'syncPeriodMs'),
    minSyncPeriod: modeSyncPeriod('iptables', 'minSyncPeriodMs'),
  }),
  ipvs: obj({
    syncPeriod: modeSyncPeriod('ipvs', 'syncPeriodMs'),
    minSyncPeriod: modeSyncPeriod('ipvs', 'minSyncPeriodMs'),
    scheduler: use(asString, (v, out, path) => { out.overrides.ipvs = { ...out.overrides.ipvs, scheduler: parseEnum(v, IPVS_SCHEDULERS, path) }; }),
    // bpfproxy's ipvs mode never touches virtual servers it did not make: nothing to exclude.
    excludeCIDRs: accept(asStringList),
    strictARP: use(asBool, (v, out) => { out.overrides.ipvs = { ...out.overrides.ipvs, strictARP: v }; }),
    tcpTimeout: use(durationString, (v, out) => { out.overrides.ipvs = { ...out.overrides.ipvs, tcpTimeoutMs: v }; }),
    tcpFinTimeout: use(durationString, (v, out) => { out.overrides.ipvs = { ...out.overrides.ipvs, tcpFinTimeoutMs: v }; }),
    udpTimeout: use(durationString, (v, out) => { out.overrides.ipvs = { ...out.overrides.ipvs, udpTimeoutMs: v }; }),
  }),
  nftables: obj({
    masqueradeBit: accept(asInt),
    masqueradeAll: accept(asBool),
    syncPeriod: modeSyncPeriod('nftables', 'syncPeriodMs'),
    minSyncPeriod: modeSyncPeriod('nftables', 'minSyncPeriodMs'),
  }),
  winkernel: obj({
    networkName: accept(asString),
    sourceVip: accept(asString),
    enableDSR: accept(asBool),
    rootHnsEndpointName: accept(asString),
    forwardHealthCheckVip: accept(asBool),
  }),
  detectLocalMode: use(asString, (v, out, path) => { out.overrides.detectLocalMode = parseEnum(v, DETECT_LOCAL_MODES, path); }),
  detectLocal: obj({
    bridgeInterface: use(asString, (v, out) => { out.overrides.detectLocal = { ...out.overrides.detectLocal, bridgeInterface: v }; }),
    interfaceNamePrefix: use(asString, (v, out) => { out.overrides.detectLocal = { ...out.overrides.detectLocal, interfaceNamePrefix: v }; }),
  }),
  clusterCIDR: use(asString, (v, out, path) => { out.overrides.clusterCIDRs = parseCidrList(v, path, true); }),
  nodePortAddresses: use(asStringList, (v, out, path) => { out.overrides.nodePortAddresses = parseNodePortAddresses(v, path); }),
  oomScoreAdj: use(asInt, (v, out, path) => { out.overrides.oomScoreAdj = checkInteger(v, path, -1000, 1000); }),
  conntrack: obj({
    maxPerCore: accept(asInt),
    min: accept(asInt),
    tcpEstablishedTimeout: accept(durationString),
    tcpCloseWaitTimeout: accept(durationString),
    tcpBeLiberal: accept(asBool),
    udpTimeout: accept(durationString),
    udpStreamTimeout: accept(durationString),
  }),
  configSyncPeriod: accept(durationString),
  portRange: accept(asString),
  windowsRunAsService: accept(asBool),
  // Removed from kube-proxy in 1.23; old files still carry it.
  udpIdleTimeout: accept(durationString),

  // bpfproxy's own fields. syncPeriod and minSyncPeriod apply to every mode and win
  // over the per-mode sections above.
  syncPeriod: use(durationString, (ms, out) => { out.overrides.syncPeriodMs = ms; }),
  minSyncPeriod: use(durationString, (ms, out) => { out.overrides.minSyncPeriodMs = ms; }),
  serviceClusterIPRange: use(
    (v, path) => (Array.isArray(v) ? asStringList(v, path) : asString(v, path)),
    (v, out, path) => { out.overrides.serviceClusterIPRanges = parseCidrList(v, path, true); },
  ),
  serviceNodePortRange: use(asString, (v, out, path) => { out.overrides.serviceNodePortRange = parsePortRange(v, path); }),
  manifests: use(asString, (v, out) => { out.overrides.manifests = v; }),
  // false: a mode that cannot run here is fatal (--no-fallback).
  fallback: use(asBool, (v, out) => { out.overrides.fallback = v; }),
  bpf: obj({
    pinPath: use(asString, (v, out) => { out.overrides.bpf = { ...out.overrides.bpf, pinPath: v }; }),
    cgroupRoot: use(asString, (v, out) => { out.overrides.bpf = { ...out.overrides.bpf, cgroupRoot: v }; }),
    devices: use(asStringList, (v, out) => { out.overrides.bpf = { ...out.overrides.bpf, devices: [...v] }; }),
    maglevMapMax: use(asInt, (v, out, path) => { out.overrides.bpf = { ...out.overrides.bpf, maglevMapMax: validateMaglevMapMax(v, path, MAX_MAGLEV_MAP_MAX) }; }),
    maglevTableSize: use(asInt, (v, out, path) => { out.overrides.bpf = { ...out.overrides.bpf, maglevTableSize: validateMaglevTableSize(v, path) }; }),
    mapSizes: obj(mapSizeFields),
  }),
};

/** Names within this distance of a known field are offered as "did you mean". */
const SUGGEST_WITHIN = 3;

function unknownField(path: string, name: string, known: readonly string[]): { field: string; message: string } {
  let best: string | null = null;
  let bestDist = SUGGEST_WITHIN + 1;
  for (const k of known) {
    const d = distance(name.toLowerCase(), k.toLowerCase());
    if (d < bestDist) { best = k; bestDist = d; }
  }
  return { field: path, message: `unknown field ${path}: ignored, as kube-proxy ignores it${best ? ` (did you mean ${JSON.stringify(best)}?)` : ''}` };
}

function walk(fields: Readonly<Record<string, Spec>>, value: Record<string, unknown>, prefix: string, out: FileLayer): void {
  for (const [name, v] of Object.entries(value)) {
    const path = prefix + name;
    const spec = Object.hasOwn(fields, name) ? fields[name] : undefined;
    if (!spec) { out.unknown.push(unknownField(path, name, Object.keys(fields))); continue; }
    if (v === null || v === undefined) continue;
    if (spec.kind === 'object') {
      walk(spec.fields, asMap(v, path), `${path}.`, out);
      continue;
    }
    if (spec.apply(v, out, path) === 'ignored') out.ignored.push(path);
  }
}

/** Parses the text of a config file; `source` names it in errors. */
export function parseConfigFile(text: string, source: string): FileLayer {
  const docs = yaml().parseAllDocuments(text, { uniqueKeys: true });
  if (!Array.isArray(docs)) throw new ConfigError('', 'empty file', { source });
  const real = docs.filter((d) => d.contents !== null);
  if (real.length !== 1) throw new ConfigError('', real.length === 0 ? 'empty file' : `${real.length} YAML documents; want one KubeProxyConfiguration`, { source });
  const doc = real[0]!;
  // A repeated key fails kube-proxy's strict decoding and passes its lenient one (the last wins).
  const problem = doc.errors.find((e) => e.code !== 'DUPLICATE_KEY');
  if (problem) throw new ConfigError('', `not valid YAML or JSON: ${problem.message}`, { source, cause: problem });
  const out: FileLayer = { overrides: {}, modeSyncPeriods: {}, kubeProxyMode: 'iptables', ignored: [], unknown: [] };
  for (const dup of doc.errors) {
    out.unknown.push({ field: '', message: `repeated key: the last value is used, as kube-proxy does (${dup.message.split('\n')[0]})` });
  }
  try {
    const root = asMap(doc.toJS(), '(top level)');
    if (root.apiVersion !== CONFIG_API_VERSION) {
      throw new ConfigError('apiVersion', `want ${JSON.stringify(CONFIG_API_VERSION)}, got ${root.apiVersion === undefined ? 'nothing' : JSON.stringify(root.apiVersion)}`);
    }
    if (root.kind !== CONFIG_KIND) {
      throw new ConfigError('kind', `want ${JSON.stringify(CONFIG_KIND)}, got ${root.kind === undefined ? 'nothing' : JSON.stringify(root.kind)}`);
    }
    walk(SCHEMA, root, '', out);
  } catch (err) {
    if (err instanceof ConfigError) throw err.in(source);
    throw err;
  }
  return out;
}

export function loadConfigFile(path: string, env: Environment): FileLayer {
  let text: string;
  try {
    text = env.readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError('--config', `cannot read ${path}: ${code}`, { cause: err });
  }
  return parseConfigFile(text, path);
}
