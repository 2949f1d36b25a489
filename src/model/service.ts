// Service -> ServiceInfo. Mirrors what kube-apiserver checks on create
// (ValidateService in pkg/apis/core/validation, plus the defaults it fills in
// and the checks its IP and nodePort allocators make), so an object that a
// real cluster would have refused is refused here, with the same wording.
// Where the API server would allocate something (a cluster IP, a nodePort, a
// health-check port), we have no allocator and say so.
import { cidrContains, familyOf, parseCidr, type Cidr, type IPFamily } from '../util/ip.js';
import { namespacedKey, type KubeObject } from './objects.js';
import { freezeList, SharedValues } from './shared-values.js';
import {
  DEFAULT_AFFINITY_TIMEOUT,
  MAX_AFFINITY_TIMEOUT,
  PROTOCOLS,
  type Protocol,
  type ServiceInfo,
  type ServicePortSpec,
  type ServiceType,
  type TrafficPolicy,
  type Validated,
  type ValidationConfig,
} from './types.js';
import {
  Findings,
  NO_ALLOCATOR,
  PORT_RANGE,
  dns1035LabelErrors,
  dns1123LabelErrors,
  dns1123SubdomainErrors,
  ipSyntaxError,
  isPortNumber,
  parseCIDR,
  parseIP,
  portNameErrors,
  readBool,
  readInt,
  readList,
  readObject,
  readPortNumber,
  readString,
  readStringList,
  readTimestamp,
  specialIPError,
  startObject,
  type JsonObject,
} from './validation.js';

/** Read by kube-proxy when spec.loadBalancerSourceRanges is empty. */
export const ANNOTATION_LB_SOURCE_RANGES = 'service.beta.kubernetes.io/load-balancer-source-ranges';

const SERVICE_TYPES: readonly ServiceType[] = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'];
const IP_FAMILIES: readonly IPFamily[] = ['IPv4', 'IPv6'];
const IP_FAMILY_POLICIES = ['SingleStack', 'PreferDualStack', 'RequireDualStack'] as const;
type IPFamilyPolicy = (typeof IP_FAMILY_POLICIES)[number];
const TRAFFIC_POLICIES: readonly TrafficPolicy[] = ['Cluster', 'Local'];
const AFFINITIES = ['ClientIP', 'None'];
const LB_IP_MODES = ['Proxy', 'VIP'];
const TRAFFIC_DISTRIBUTIONS = ['PreferClose', 'PreferSameNode', 'PreferSameZone'];

export function serviceFromObject(obj: KubeObject, cfg: ValidationConfig): Validated<ServiceInfo> {
  const { f, namespace, name, meta } = startObject(obj, 'Service', dns1035LabelErrors);
  const spec = readObject(f, obj.spec, 'spec');
  const status = readObject(f, obj.status, 'status');

  const type = readType(f, spec);
  const addrs = readClusterIPs(f, spec, type, cfg);
  if (type === 'ExternalName') checkExternalName(f, spec);
  const ports = readPorts(f, spec, type, addrs.headless);
  const allocateNodePorts = readAllocateLoadBalancerNodePorts(f, spec, type);
  checkNodePorts(f, ports, type, allocateNodePorts, cfg.nodePortRange);
  const externalIPs = readExternalIPs(f, spec);
  const sessionAffinityTimeout = readSessionAffinity(f, spec);
  const policies = readTrafficPolicies(f, spec, type, externalIPs.length > 0, ports, cfg.nodePortRange);
  const trafficDistribution = readTrafficDistribution(f, spec);
  const loadBalancerSourceRanges = readSourceRanges(f, meta, spec, type);
  const loadBalancerIPs = readLoadBalancerIPs(f, status, type);
  if (f.failed) return f.reject();

  const notProxied = type === 'ExternalName' ? 'ExternalName' : addrs.headless ? 'headless' : null;
  if (notProxied === null) warnOtherFamilies(f, addrs.ipFamilies, externalIPs, loadBalancerIPs, loadBalancerSourceRanges);
  // Every field written out (a spread in the middle of a literal gave each
  // of 30,000 services an out-of-object property array), and the lists most
  // services leave empty shared (a heap snapshot, bench/heap-breakdown.ts).
  return f.accept<ServiceInfo>({
    namespace,
    name,
    key: namespacedKey(namespace, name),
    type,
    notProxied,
    clusterIPs: addrs.clusterIPs,
    ipFamilies: familyLists.share(addrs.ipFamilies.join(), addrs.ipFamilies, freezeList),
    externalIPs: orNone(externalIPs),
    loadBalancerIPs: orNone(loadBalancerIPs),
    loadBalancerSourceRanges: orNone(loadBalancerSourceRanges),
    sessionAffinityTimeout,
    externalTrafficPolicy: policies.externalTrafficPolicy,
    internalTrafficPolicy: policies.internalTrafficPolicy,
    healthCheckNodePort: policies.healthCheckNodePort,
    trafficDistribution,
    ports: portLists.share(ports.map((p) => `${p.name}\u0000${p.protocol}\u0000${p.port}\u0000${p.targetPort}\u0000${typeof p.targetPort}\u0000${p.nodePort}`).join('\u0001'), ports, freezeList),
    creationTimestamp: readTimestamp(meta.creationTimestamp),
  });
}

/** One frozen empty list for every service without externalIPs, load balancer IPs or source ranges. */
const NONE: readonly string[] = Object.freeze([]);
/** Lists most services hold alike (shared-values.ts). */
const familyLists = new SharedValues<IPFamily[]>(16);
const portLists = new SharedValues<ServicePortSpec[]>();

const orNone = (list: string[]): readonly string[] => (list.length === 0 ? NONE : list);

function readType(f: Findings, spec: JsonObject): ServiceType {
  const raw = readString(f, spec.type, 'spec.type') || 'ClusterIP';
  const type = SERVICE_TYPES.find((t) => t === raw);
  if (!type) f.notSupported('spec.type', raw, SERVICE_TYPES);
  return type ?? 'ClusterIP';
}

function checkExternalName(f: Findings, spec: JsonObject): void {
  // The value (a CNAME) may end in a dot to mark it fully qualified.
  const cname = (readString(f, spec.externalName, 'spec.externalName') ?? '').replace(/\.$/, '');
  if (cname === '') f.required('spec.externalName');
  else for (const msg of dns1123SubdomainErrors(cname)) f.invalid('spec.externalName', cname, msg);
}

// ---------------------------------------------------------------------------
// clusterIP, clusterIPs, ipFamilies, ipFamilyPolicy

interface ServiceAddresses {
  /** clusterIPs is ["None"]. */
  headless: boolean;
  clusterIPs: string[];
  ipFamilies: IPFamily[];
}

function readClusterIPs(f: Findings, spec: JsonObject, type: ServiceType, cfg: ValidationConfig): ServiceAddresses {
  const clusterIP = readString(f, spec.clusterIP, 'spec.clusterIP') ?? '';
  const listed = readStringList(f, spec.clusterIPs, 'spec.clusterIPs');
  const familyNames = readStringList(f, spec.ipFamilies, 'spec.ipFamilies');
  const policyName = readString(f, spec.ipFamilyPolicy, 'spec.ipFamilyPolicy');
  const none: ServiceAddresses = { headless: false, clusterIPs: [], ipFamilies: [] };

  // The API server's create strategy fills whichever of the two is missing from the other.
  const raw = clusterIP !== '' && listed.length === 0 ? [clusterIP] : listed;
  if (clusterIP !== '' && raw[0] !== clusterIP) f.invalid('spec.clusterIPs', raw, 'first value must match `clusterIP`');

  if (type === 'ExternalName') {
    if (raw.length > 0) f.forbidden('spec.clusterIPs', 'may not be set for ExternalName services');
    if (familyNames.length > 0) f.forbidden('spec.ipFamilies', 'may not be set for ExternalName services');
    if (policyName !== undefined) f.forbidden('spec.ipFamilyPolicy', 'may not be set for ExternalName services');
    return none;
  }
  const headless = raw.length === 1 && raw[0] === 'None';
  if (headless && (type === 'NodePort' || type === 'LoadBalancer')) {
    f.invalid('spec.clusterIPs[0]', 'None', `may not be set to 'None' for ${type} services`);
  }

  const errorsBefore = f.errorCount;
  const families: IPFamily[] = [];
  familyNames.forEach((name, i) => {
    const fam = IP_FAMILIES.find((x) => x === name);
    if (!fam) f.notSupported(`spec.ipFamilies[${i}]`, name, IP_FAMILIES);
    else if (families.includes(fam)) f.duplicate(`spec.ipFamilies[${i}]`, name);
    else families.push(fam);
  });
  const policy = policyName === undefined ? undefined : IP_FAMILY_POLICIES.find((p) => p === policyName);
  if (policyName !== undefined && !policy) f.notSupported('spec.ipFamilyPolicy', policyName, IP_FAMILY_POLICIES);

  const ips: { ip: string; family: IPFamily; text: string }[] = [];
  raw.forEach((text, i) => {
    if (i === 0 && text === 'None') {
      if (raw.length > 1) f.invalid('spec.clusterIPs', raw, "'None' must be the first and only value");
      return;
    }
    const parsed = parseIP(text);
    if (parsed) ips.push({ ...parsed, text });
    else f.invalid(`spec.clusterIPs[${i}]`, text, ipSyntaxError(text) ?? 'must be a valid IP address');
  });
  if (raw.length > 2) f.invalid('spec.clusterIPs', raw, 'may only hold up to 2 values');
  // Bad addresses would only skew the family checks below.
  if (f.errorCount > errorsBefore) return none;

  if (ips.length > 1 && new Set(ips.map((a) => a.family)).size < ips.length) {
    f.invalid('spec.clusterIPs', raw, 'may specify no more than one IP for each IP family');
  }
  if (headless) return { headless, clusterIPs: [], ipFamilies: families };
  ips.forEach((a, i) => {
    const want = families[i];
    if (want && want !== a.family) {
      f.invalid(`spec.clusterIPs[${i}]`, a.text, `expected an ${want} value as indicated by \`ipFamilies[${i}]\``);
    }
  });
  if (f.errorCount > errorsBefore) return none;

  // What the allocator does next (pkg/registry/core/service/storage/alloc.go):
  // clusterIPs imply the families not listed, two families imply
  // RequireDualStack, and anything still missing would be allocated.
  for (let i = families.length; i < ips.length; i++) families.push(ips[i]!.family);
  const effective: IPFamilyPolicy = policy ?? (families.length === 2 ? 'RequireDualStack' : 'SingleStack');
  if (effective === 'SingleStack' && families.length > 1) {
    const what = ips.length > 1 ? 'clusterIPs' : 'ipFamilies';
    f.invalid('spec.ipFamilyPolicy', policyName, `must be RequireDualStack or PreferDualStack when multiple '${what}' are specified`);
  }
  if (ips.length === 0) {
    f.required('spec.clusterIP', NO_ALLOCATOR);
  } else if (families.length > ips.length) {
    f.required(`spec.clusterIPs[${ips.length}]`, `an ${families[ips.length]} address for ipFamilies[${ips.length}]: ${NO_ALLOCATOR}`);
  } else if (effective === 'RequireDualStack' && ips.length < 2) {
    f.required('spec.clusterIPs[1]', `ipFamilyPolicy RequireDualStack needs an address of each family: ${NO_ALLOCATOR}`);
  }
  checkServiceRanges(f, ips, cfg.serviceClusterIPRanges);
  return { headless, clusterIPs: ips.map((a) => a.ip), ipFamilies: families.slice(0, ips.length) };
}

function checkServiceRanges(f: Findings, ips: { ip: string; text: string }[], ranges: string[]): void {
  if (ranges.length === 0) return;
  const cidrs = ranges.map((r) => parseCidr(r)).filter((c): c is Cidr => c !== null);
  ips.forEach((a, i) => {
    if (!cidrs.some((c) => cidrContains(c, a.ip))) {
      f.invalid(`spec.clusterIPs[${i}]`, a.text, `provided IP is not in the valid range. The range of valid IPs is ${ranges.join(', ')}`);
    }
  });
}

// ---------------------------------------------------------------------------
// ports and nodePorts

function readPorts(f: Findings, spec: JsonObject, type: ServiceType, headless: boolean): ServicePortSpec[] {
  const list = readList(f, spec.ports, 'spec.ports');
  if (list.length === 0 && !headless && type !== 'ExternalName') f.required('spec.ports');
  const names = new Set<string>();
  const pairs = new Set<string>();
  const out: ServicePortSpec[] = [];
  list.forEach((item, i) => {
    const path = `spec.ports[${i}]`;
    const o = readObject(f, item, path);
    const name = readString(f, o.name, `${path}.name`) ?? '';
    if (name === '' && list.length > 1) {
      f.required(`${path}.name`);
    } else if (name !== '') {
      for (const msg of dns1123LabelErrors(name)) f.invalid(`${path}.name`, name, msg);
      if (names.has(name)) f.duplicate(`${path}.name`, name);
      names.add(name);
    }
    const port = readPortNumber(f, o.port, `${path}.port`, true) ?? 0;
    const protocol = readProtocol(f, o.protocol, `${path}.protocol`);
    const targetPort = readTargetPort(f, o.targetPort, `${path}.targetPort`) ?? port;
    const nodePort = readInt(f, o.nodePort, `${path}.nodePort`) ?? 0;
    const pair = `${port}/${protocol}`;
    if (pairs.has(pair)) f.duplicate(path, { port, protocol });
    pairs.add(pair);
    out.push({ name, protocol, port, targetPort, nodePort });
  });
  return out;
}

function readProtocol(f: Findings, v: unknown, path: string): Protocol {
  const raw = readString(f, v, path) || 'TCP';
  const protocol = PROTOCOLS.find((p) => p === raw);
  if (!protocol) f.notSupported(path, raw, PROTOCOLS);
  return protocol ?? 'TCP';
}

/** A number or an IANA service name; absent, 0 and "" mean "same as port" (the API default). */
function readTargetPort(f: Findings, v: unknown, path: string): number | string | undefined {
  if (v === undefined || v === null || v === 0 || v === '') return undefined;
  if (typeof v === 'string') {
    for (const msg of portNameErrors(v)) f.invalid(path, v, msg);
    return v;
  }
  const n = readInt(f, v, path);
  if (n !== undefined && !isPortNumber(n)) f.invalid(path, n, PORT_RANGE);
  return n;
}

function readAllocateLoadBalancerNodePorts(f: Findings, spec: JsonObject, type: ServiceType): boolean {
  const v = readBool(f, spec.allocateLoadBalancerNodePorts, 'spec.allocateLoadBalancerNodePorts');
  if (v !== undefined && type !== 'LoadBalancer') {
    f.forbidden('spec.allocateLoadBalancerNodePorts', "may only be used when `type` is 'LoadBalancer'");
  }
  return v ?? true;
}

/**
 * The nodePort rules of ValidateService and of the nodePort allocator. A
 * port without a nodePort takes the one requested by another entry with the
 * same port number (53/TCP and 53/UDP share one), as the allocator does;
 * anything else would need allocating.
 */
function checkNodePorts(
  f: Findings,
  ports: ServicePortSpec[],
  type: ServiceType,
  allocateLoadBalancerNodePorts: boolean,
  range: ValidationConfig['nodePortRange'],
): void {
  if (type === 'ClusterIP') {
    ports.forEach((p, i) => {
      if (p.nodePort !== 0) f.forbidden(`spec.ports[${i}].nodePort`, "may not be used when `type` is 'ClusterIP'");
    });
  }
  if (type !== 'NodePort' && type !== 'LoadBalancer') return;
  const needed = type === 'NodePort' || allocateLoadBalancerNodePorts;
  const first = range.base;
  const last = range.base + range.size - 1;
  const byProtocol = new Set<string>();
  const portOf = new Map<number, number>();
  ports.forEach((p, i) => {
    const path = `spec.ports[${i}].nodePort`;
    if (p.nodePort === 0) {
      if (!needed) return;
      const shared = ports.find((q) => q.port === p.port && q.nodePort !== 0);
      if (shared) p.nodePort = shared.nodePort;
      else f.required(path, NO_ALLOCATOR);
      return;
    }
    const key = `${p.protocol}/${p.nodePort}`;
    if (byProtocol.has(key)) {
      f.duplicate(path, p.nodePort);
      return;
    }
    byProtocol.add(key);
    if (p.nodePort < first || p.nodePort > last) {
      f.invalid(path, p.nodePort, `provided port is not in the valid range. The range of valid ports is ${first}-${last}`);
      return;
    }
    const owner = portOf.get(p.nodePort);
    if (owner !== undefined && owner !== p.port) f.invalid(path, p.nodePort, 'provided port is already allocated');
    portOf.set(p.nodePort, p.port);
  });
}

// ---------------------------------------------------------------------------
// externalIPs, load balancer addresses and source ranges

function readExternalIPs(f: Findings, spec: JsonObject): string[] {
  const out: string[] = [];
  readStringList(f, spec.externalIPs, 'spec.externalIPs').forEach((text, i) => {
    const path = `spec.externalIPs[${i}]`;
    const parsed = parseIP(text);
    const err = parsed ? specialIPError(parsed.ip) : ipSyntaxError(text);
    if (err !== null || !parsed) f.invalid(path, text, err ?? 'must be a valid IP address');
    else if (!out.includes(parsed.ip)) out.push(parsed.ip);
  });
  return out;
}

/**
 * status.loadBalancer.ingress[].ip, as kube-proxy uses it: hostname-only
 * entries carry nothing to program, and ipMode Proxy means the load balancer
 * delivers to the node itself, so kube-proxy does not capture that address.
 */
function readLoadBalancerIPs(f: Findings, status: JsonObject, type: ServiceType): string[] {
  const lb = readObject(f, status.loadBalancer, 'status.loadBalancer');
  const ingress = readList(f, lb.ingress, 'status.loadBalancer.ingress');
  if (ingress.length === 0) return [];
  if (type !== 'LoadBalancer') {
    f.warn('status.loadBalancer.ingress', `ignored: only used when spec.type is LoadBalancer, not ${type}`);
    return [];
  }
  const out: string[] = [];
  ingress.forEach((item, i) => {
    const path = `status.loadBalancer.ingress[${i}]`;
    const o = readObject(f, item, path);
    const ip = readString(f, o.ip, `${path}.ip`) ?? '';
    const mode = readString(f, o.ipMode, `${path}.ipMode`);
    const hostname = readString(f, o.hostname, `${path}.hostname`) ?? '';
    const parsed = ip === '' ? null : parseIP(ip);
    if (ip !== '' && !parsed) f.invalid(`${path}.ip`, ip, ipSyntaxError(ip) ?? 'must be a valid IP address');
    if (mode !== undefined && ip === '') f.forbidden(`${path}.ipMode`, 'may not be specified when `ip` is not set');
    else if (mode !== undefined && !LB_IP_MODES.includes(mode)) f.notSupported(`${path}.ipMode`, mode, LB_IP_MODES);
    if (hostname !== '') {
      for (const msg of dns1123SubdomainErrors(hostname)) f.invalid(`${path}.hostname`, hostname, msg);
      if (ipSyntaxError(hostname) === null) f.invalid(`${path}.hostname`, hostname, 'must be a DNS name, not an IP address');
    }
    if (parsed && (mode ?? 'VIP') === 'VIP' && !out.includes(parsed.ip)) out.push(parsed.ip);
  });
  return out;
}

/** spec.loadBalancerSourceRanges, or the legacy annotation when the field is empty. */
function readSourceRanges(f: Findings, meta: JsonObject, spec: JsonObject, type: ServiceType): string[] {
  const field = readStringList(f, spec.loadBalancerSourceRanges, 'spec.loadBalancerSourceRanges');
  let entries: { path: string; text: string }[];
  if (field.length > 0) {
    if (type !== 'LoadBalancer') f.forbidden('spec.loadBalancerSourceRanges', "may only be used when `type` is 'LoadBalancer'");
    // Space padding is tolerated: a leftover from the annotation days.
    entries = field.map((text, i) => ({ path: `spec.loadBalancerSourceRanges[${i}]`, text: text.trim() }));
  } else {
    const path = `metadata.annotations[${ANNOTATION_LB_SOURCE_RANGES}]`;
    const annotations = readObject(f, meta.annotations, 'metadata.annotations');
    const value = readString(f, annotations[ANNOTATION_LB_SOURCE_RANGES], path);
    if (value === undefined) return [];
    if (type !== 'LoadBalancer') f.forbidden(path, "may only be used when `type` is 'LoadBalancer'");
    const trimmed = value.trim();
    entries = trimmed === '' ? [] : trimmed.split(',').map((text) => ({ path, text: text.trim() }));
  }
  const out: string[] = [];
  for (const { path, text } of entries) {
    const cidr = parseCIDR(text);
    if (typeof cidr === 'string') f.invalid(path, text, cidr);
    else if (!out.includes(cidr.text)) out.push(cidr.text);
  }
  return out;
}

// ---------------------------------------------------------------------------
// affinity and traffic policies

/** Seconds of ClientIP affinity, or null for None. */
function readSessionAffinity(f: Findings, spec: JsonObject): number | null {
  const affinity = readString(f, spec.sessionAffinity, 'spec.sessionAffinity') || 'None';
  if (!AFFINITIES.includes(affinity)) f.notSupported('spec.sessionAffinity', affinity, AFFINITIES);
  const config = spec.sessionAffinityConfig;
  if (affinity !== 'ClientIP') {
    if (config !== undefined && config !== null) {
      f.forbidden('spec.sessionAffinityConfig', 'must not be set when session affinity is None');
    }
    return null;
  }
  const clientIP = readObject(f, readObject(f, config, 'spec.sessionAffinityConfig').clientIP, 'spec.sessionAffinityConfig.clientIP');
  const path = 'spec.sessionAffinityConfig.clientIP.timeoutSeconds';
  const timeout = readInt(f, clientIP.timeoutSeconds, path) ?? DEFAULT_AFFINITY_TIMEOUT;
  if (timeout <= 0 || timeout > MAX_AFFINITY_TIMEOUT) {
    f.invalid(path, timeout, `must be greater than 0 and less than ${MAX_AFFINITY_TIMEOUT}`);
  }
  return timeout;
}

interface TrafficPolicies {
  externalTrafficPolicy: TrafficPolicy;
  internalTrafficPolicy: TrafficPolicy;
  healthCheckNodePort: number;
}

function readTrafficPolicies(
  f: Findings,
  spec: JsonObject,
  type: ServiceType,
  hasExternalIPs: boolean,
  ports: ServicePortSpec[],
  range: ValidationConfig['nodePortRange'],
): TrafficPolicies {
  // Externally accessible, as the API server defines it: kube-proxy applies
  // the external policy to externalIPs of ClusterIP services as well.
  const external = type === 'NodePort' || type === 'LoadBalancer' || (type === 'ClusterIP' && hasExternalIPs);
  const etpPath = 'spec.externalTrafficPolicy';
  const etpName = readString(f, spec.externalTrafficPolicy, etpPath) ?? '';
  let externalTrafficPolicy: TrafficPolicy = 'Cluster';
  if (!external) {
    if (etpName !== '') f.invalid(etpPath, etpName, 'may only be set for externally-accessible services');
  } else if (etpName !== '') {
    const p = TRAFFIC_POLICIES.find((x) => x === etpName);
    if (p) externalTrafficPolicy = p;
    else f.notSupported(etpPath, etpName, TRAFFIC_POLICIES);
  }

  const hcPath = 'spec.healthCheckNodePort';
  let healthCheckNodePort = readInt(f, spec.healthCheckNodePort, hcPath) ?? 0;
  if (!(type === 'LoadBalancer' && externalTrafficPolicy === 'Local')) {
    if (healthCheckNodePort !== 0) {
      f.invalid(hcPath, healthCheckNodePort, "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'");
    }
    healthCheckNodePort = 0;
  } else if (healthCheckNodePort === 0) {
    f.required(hcPath, NO_ALLOCATOR);
  } else if (!isPortNumber(healthCheckNodePort)) {
    f.invalid(hcPath, healthCheckNodePort, PORT_RANGE);
  } else if (healthCheckNodePort < range.base || healthCheckNodePort > range.base + range.size - 1) {
    // kube-apiserver allocates it from the NodePort range, like a nodePort.
    f.invalid(hcPath, healthCheckNodePort, `provided port is not in the valid range. The range of valid ports is ${range.base}-${range.base + range.size - 1}`);
  } else if (ports.some((p) => p.nodePort === healthCheckNodePort)) {
    f.invalid(hcPath, healthCheckNodePort, 'provided port is already allocated');
  }

  const itpPath = 'spec.internalTrafficPolicy';
  const itpName = readString(f, spec.internalTrafficPolicy, itpPath) || 'Cluster';
  const internalTrafficPolicy = TRAFFIC_POLICIES.find((x) => x === itpName);
  if (!internalTrafficPolicy) f.notSupported(itpPath, itpName, TRAFFIC_POLICIES);

  return { externalTrafficPolicy, internalTrafficPolicy: internalTrafficPolicy ?? 'Cluster', healthCheckNodePort };
}

function readTrafficDistribution(f: Findings, spec: JsonObject): string | null {
  const v = readString(f, spec.trafficDistribution, 'spec.trafficDistribution');
  if (v === undefined) return null;
  if (!TRAFFIC_DISTRIBUTIONS.includes(v)) f.notSupported('spec.trafficDistribution', v, TRAFFIC_DISTRIBUTIONS);
  return v;
}

/**
 * Addresses of a family the service has no cluster IP of are legal (a
 * dual-stack cluster shares its load balancers), but kube-proxy programs
 * them for no one; the planner drops them, we say so once.
 */
function warnOtherFamilies(
  f: Findings,
  families: IPFamily[],
  externalIPs: string[],
  loadBalancerIPs: string[],
  sourceRanges: string[],
): void {
  const check = (path: string, list: string[], what: string) => {
    for (const item of list) {
      const fam = familyOf(item.split('/')[0] ?? item);
      if (fam && !families.includes(fam)) {
        f.warn(path, `${what} ${item} is ${fam} but the service has only ${families.join(', ')}: not programmed`);
      }
    }
  };
  check('spec.externalIPs', externalIPs, 'external IP');
  check('status.loadBalancer.ingress', loadBalancerIPs, 'load balancer IP');
  check('spec.loadBalancerSourceRanges', sourceRanges, 'source range');
}
