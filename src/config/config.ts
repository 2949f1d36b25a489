// ProxyConfig: everything the proxy is told, with its defaults, and the merge
// of defaults <- config file <- command-line flags. Parsing lives in file.ts and
// flags.ts; this file owns the shape, the defaults and the rules across fields.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { DEFAULT_INPUT_LIMITS, type InputLimits } from '../util/input-limits.js';
import { DEFAULT_IPVS_SCHEDULER, type IpvsScheduler } from '../util/ipvs-schedulers.js';
import { DEFAULT_MAGLEV_M } from '../util/maglev-size.js';
import type { ProxyMode } from '../util/modes.js';
import { ConfigError } from './errors.js';
import type { BindAddress, LogFormat, LogLevel, NodePortAddresses, PortRange } from './values.js';

export type { BindAddress, LogFormat, LogLevel, NodePortAddresses, PortRange } from './values.js';
export { ConfigError } from './errors.js';

export type DetectLocalMode = 'ClusterCIDR' | 'NodeCIDR' | 'BridgeInterface' | 'InterfaceNamePrefix';
export const DETECT_LOCAL_MODES: readonly DetectLocalMode[] = ['ClusterCIDR', 'NodeCIDR', 'BridgeInterface', 'InterfaceNamePrefix'];

/**
 * Maglev tables the packet datapath holds by default: 256 x M slots of 4
 * bytes, 16 MiB at the default M, allocated whole at load (one mmapable
 * array, not a map per service as Cilium's). Enough for clusters with up to
 * 256 services that have NodePort/LoadBalancer/ExternalIP frontends; the
 * rest get random picks, logged once each.
 */
export const DEFAULT_MAGLEV_MAP_MAX = 256;
/** The rows map (bpx_maglev_row_v1) is sized to the same number: Cilium's default for its outer map. */
export const MAX_MAGLEV_MAP_MAX = 16384;

/**
 * The pinned maps whose capacity is configurable. The bpf dataplane keeps its
 * own list (src/dataplane/bpf/sizes.ts) and takes sizes as plain numbers by
 * name; test/unit/bpf/sizes.test.ts checks that the two lists agree.
 */
export const MAP_NAMES = ['frontends', 'backendSets', 'backends', 'socketRevNat', 'affinity', 'conntrack', 'nat'] as const;
export type MapName = (typeof MAP_NAMES)[number];

export interface BpfConfig {
  /** bpffs directory the maps and links are pinned under. */
  pinPath: string;
  /** cgroup v2 directory the socket programs attach to. */
  cgroupRoot: string;
  /** Prime, <= MAX_MAGLEV_M (util/maglev-size.ts). */
  maglevTableSize: number;
  /**
   * Node devices the XDP/TC packet programs attach to (--devices). 'auto' (the
   * default): the devices of the proxy's network namespace that hold the
   * node's addresses (src/dataplane/bpf/devices.ts); an empty list: none
   * (`--devices ''`, the socket programs only).
   */
  devices: string[] | 'auto';
  /** Maglev tables the packet datapath holds (--bpf-lb-maglev-map-max); services beyond get random picks. */
  maglevMapMax: number;
  mapSizes: Record<MapName, number>;
}

export interface ProxyConfig {
  mode: ProxyMode;
  /** When the mode asked for cannot run here, fall back to the next one that can (--no-fallback: exit instead). */
  fallback: boolean;
  /** This node's name: --hostname-override, else the host name, lower-cased as kube-proxy does. */
  nodeName: string;
  nodePortAddresses: NodePortAddresses;
  /** Longest time between full syncs (kube-proxy syncPeriod). */
  syncPeriodMs: number;
  /** Shortest time between syncs (kube-proxy minSyncPeriod). */
  minSyncPeriodMs: number;
  /** null: disabled. */
  healthzBindAddress: BindAddress | null;
  metricsBindAddress: BindAddress | null;
  /** Pod CIDRs, at most one per family. */
  clusterCIDRs: string[];
  detectLocalMode: DetectLocalMode;
  detectLocal: { bridgeInterface: string; interfaceNamePrefix: string };
  /** "" when not given: in-cluster configuration. */
  kubeconfig: string;
  /** API server URL overriding the kubeconfig's, "" when not given. */
  master: string;
  /** The --config file, null when none. */
  configFile: string | null;
  /** Service CIDRs for validating ClusterIPs without an API server; empty = no check. */
  serviceClusterIPRanges: string[];
  serviceNodePortRange: PortRange;
  /** Directory of manifests to read instead of the API server, null when none. */
  manifests: string | null;
  logLevel: LogLevel;
  /** json (pino lines) or text (klog-like lines for a terminal). */
  logFormat: LogFormat;
  /** A health or metrics port that cannot be bound is fatal (kube-proxy --bind-address-hard-fail); otherwise retried. */
  bindAddressHardFail: boolean;
  /** --bind-address: a specific address names the node's IP for the default --devices; "" or unspecified: none given. */
  bindAddress: string;
  /** Written to /proc/self/oom_score_adj at start, as kube-proxy does. */
  oomScoreAdj: number;
  /** The iptables mode (kube-proxy's --masquerade-all, --iptables-masquerade-bit, --iptables-localhost-nodeports). */
  masqueradeAll: boolean;
  iptablesMasqueradeBit: number;
  iptablesLocalhostNodePorts: boolean;
  /** The ipvs mode (kube-proxy's --ipvs-scheduler, --ipvs-strict-arp, --ipvs-tcp-timeout, --ipvs-tcpfin-timeout, --ipvs-udp-timeout; 0 ms: leave the kernel's). */
  ipvs: { scheduler: IpvsScheduler; strictARP: boolean; tcpTimeoutMs: number; tcpFinTimeoutMs: number; udpTimeoutMs: number };
  /** What the sources accept (--manifest-max-bytes, --object-max-keys, ...): util/input-limits.ts. */
  inputLimits: InputLimits;
  bpf: BpfConfig;
}

/** A layer of configuration: what a file or the flags set. */
export type ConfigOverrides = Partial<Omit<ProxyConfig, 'bpf' | 'detectLocal' | 'inputLimits' | 'ipvs'>> & {
  ipvs?: Partial<ProxyConfig['ipvs']>;
  inputLimits?: Partial<InputLimits>;
  bpf?: Partial<Omit<BpfConfig, 'mapSizes'>> & { mapSizes?: Partial<Record<MapName, number>> };
  detectLocal?: Partial<ProxyConfig['detectLocal']>;
};

export type SyncPeriodKey = 'syncPeriodMs' | 'minSyncPeriodMs';

/** A sync period set in a mode's section of the file, with the field it came from. */
export type SyncPeriods = Partial<Record<SyncPeriodKey, { ms: number; field: string }>>;

/** Something in the configuration that is accepted with a warning. */
export interface ConfigNotice {
  /** The file field ("conntrack.max") or flag ("--profiling"). */
  field: string;
  message: string;
}

/** What a config file contributes. */
export interface FileLayer {
  overrides: ConfigOverrides;
  /**
   * kube-proxy v1alpha1 keeps the sync periods per mode (iptables.syncPeriod,
   * ipvs.minSyncPeriod, ...); see modeSectionPeriods for which section applies.
   */
  modeSyncPeriods: Partial<Record<ProxyMode, SyncPeriods>>;
  /** The file's `mode` as kube-proxy would read it: "" is kube-proxy's default on Linux, iptables. */
  kubeProxyMode: ProxyMode;
  /** kube-proxy fields present in the file that bpfproxy accepts and does not use. */
  ignored: string[];
  /** Fields kube-proxy does not know either (v1alpha1 decoding is lenient): one notice each. */
  unknown: ConfigNotice[];
}

/** What defaults depend on, injectable for tests. */
export interface Environment {
  hostname(): string;
  /** Contents of /proc/mounts. */
  procMounts(): string;
  readFile(path: string): string;
}

export const processEnvironment: Environment = {
  hostname: () => hostname(),
  procMounts: () => {
    try {
      return readFileSync('/proc/mounts', 'utf8');
    } catch {
      return '';
    }
  },
  readFile: (path) => readFileSync(path, 'utf8'),
};

export const DEFAULT_HEALTHZ_PORT = 10256;
export const DEFAULT_METRICS_PORT = 10249;
export const DEFAULT_SYNC_PERIOD_MS = 30_000;
/** kube-proxy's default oomScoreAdj. */
export const DEFAULT_OOM_SCORE_ADJ = -999;
export const DEFAULT_PIN_PATH = '/sys/fs/bpf/bpfproxy';
export const DEFAULT_MAP_SIZES: Readonly<Record<MapName, number>> = {
  frontends: 131072,
  backendSets: 524288,
  backends: 262144,
  socketRevNat: 262144,
  affinity: 131072,
  /** Packet conntrack (bpx_ct_v1): two entries per translated flow. */
  conntrack: 262144,
  /** SNAT ports held (bpx_nat_v1): one per flow to a remote backend. */
  nat: 65536,
};

/**
 * bpf mode syncs at every change: a sync writes only what changed, a few map
 * updates at about 1.5 us each. The rule-based modes rewrite rule sets, so they
 * keep kube-proxy's 1 s.
 */
export function defaultMinSyncPeriodMs(mode: ProxyMode): number {
  return mode === 'bpf' ? 0 : 1000;
}

/** The first cgroup v2 mount point in /proc/mounts text; /sys/fs/cgroup when there is none. */
export function detectCgroupRoot(procMounts: string): string {
  for (const line of procMounts.split('\n')) {
    const [, mountPoint, fsType] = line.split(' ');
    // /proc/mounts escapes spaces and friends as octal (\040).
    if (fsType === 'cgroup2' && mountPoint) return mountPoint.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  }
  return '/sys/fs/cgroup';
}

/** kube-proxy's node name rule: trimmed and lower-cased; the host name when empty. */
export function nodeNameFrom(override: string | undefined, env: Environment): string {
  const name = (override ?? '').trim().toLowerCase() || env.hostname().trim().toLowerCase();
  if (name === '') throw new ConfigError('--hostname-override', 'empty, and the host name is empty too');
  return name;
}

export function defaultConfig(mode: ProxyMode = 'bpf', env: Environment = processEnvironment): ProxyConfig {
  return {
    mode,
    fallback: true,
    nodeName: nodeNameFrom(undefined, env),
    nodePortAddresses: { kind: 'all' },
    syncPeriodMs: DEFAULT_SYNC_PERIOD_MS,
    minSyncPeriodMs: defaultMinSyncPeriodMs(mode),
    healthzBindAddress: { host: '0.0.0.0', port: DEFAULT_HEALTHZ_PORT },
    metricsBindAddress: { host: '127.0.0.1', port: DEFAULT_METRICS_PORT },
    clusterCIDRs: [],
    detectLocalMode: 'ClusterCIDR',
    detectLocal: { bridgeInterface: '', interfaceNamePrefix: '' },
    kubeconfig: '',
    master: '',
    configFile: null,
    serviceClusterIPRanges: [],
    serviceNodePortRange: { min: 30000, max: 32767 },
    manifests: null,
    logLevel: 'info',
    logFormat: 'json',
    bindAddressHardFail: false,
    bindAddress: '',
    oomScoreAdj: DEFAULT_OOM_SCORE_ADJ,
    masqueradeAll: false,
    iptablesMasqueradeBit: 14,
    iptablesLocalhostNodePorts: true,
    ipvs: { scheduler: DEFAULT_IPVS_SCHEDULER, strictARP: false, tcpTimeoutMs: 0, tcpFinTimeoutMs: 0, udpTimeoutMs: 0 },
    inputLimits: { ...DEFAULT_INPUT_LIMITS },
    bpf: {
      pinPath: DEFAULT_PIN_PATH,
      cgroupRoot: detectCgroupRoot(env.procMounts()),
      maglevTableSize: DEFAULT_MAGLEV_M,
      devices: 'auto',
      maglevMapMax: DEFAULT_MAGLEV_MAP_MAX,
      mapSizes: { ...DEFAULT_MAP_SIZES },
    },
  };
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function applyLayer(c: ProxyConfig, layer: ConfigOverrides): void {
  const { bpf, detectLocal, inputLimits, ipvs, ...top } = layer;
  Object.assign(c, definedOnly(top));
  if (detectLocal) Object.assign(c.detectLocal, definedOnly(detectLocal));
  if (ipvs) Object.assign(c.ipvs, definedOnly(ipvs));
  if (inputLimits) Object.assign(c.inputLimits, definedOnly(inputLimits));
  if (bpf) {
    const { mapSizes, ...bpfTop } = bpf;
    Object.assign(c.bpf, definedOnly(bpfTop));
    if (mapSizes) Object.assign(c.bpf.mapSizes, definedOnly(mapSizes));
  }
}

/** Dotted paths of every value a layer sets ("mode", "bpf.mapSizes.frontends"). */
export function overridePaths(layer: ConfigOverrides): Set<string> {
  const { bpf, detectLocal, inputLimits, ipvs, ...top } = layer;
  const { mapSizes, ...bpfTop } = bpf ?? {};
  return new Set([
    ...Object.keys(definedOnly(top)),
    ...Object.keys(definedOnly(inputLimits ?? {})).map((k) => `inputLimits.${k}`),
    ...Object.keys(definedOnly(detectLocal ?? {})).map((k) => `detectLocal.${k}`),
    ...Object.keys(definedOnly(ipvs ?? {})).map((k) => `ipvs.${k}`),
    ...Object.keys(definedOnly(bpfTop)).map((k) => `bpf.${k}`),
    ...Object.keys(definedOnly(mapSizes ?? {})).map((k) => `bpf.mapSizes.${k}`),
  ]);
}

/**
 * The sync periods a file's mode sections give the mode in force, and the section
 * fields that therefore have no effect. A period means the same in every mode, so
 * the section of the mode in force applies, else the section of the mode kube-proxy
 * would run with this file (kubeadm writes `mode: ""`, which is iptables, and an
 * operator tunes `iptables.minSyncPeriod`): bpf mode has no section of its own.
 */
export function modeSectionPeriods(file: FileLayer, mode: ProxyMode): { periods: ConfigOverrides; unused: string[] } {
  const order = [...new Set([mode, file.kubeProxyMode])];
  const periods: ConfigOverrides = {};
  const used = new Set<string>();
  for (const key of ['syncPeriodMs', 'minSyncPeriodMs'] as const) {
    const from = order.map((m) => file.modeSyncPeriods[m]?.[key]).find((p) => p !== undefined);
    if (from) { periods[key] = from.ms; used.add(from.field); }
  }
  const unused = Object.values(file.modeSyncPeriods)
    .flatMap((s) => Object.values(s ?? {}).map((p) => p.field))
    .filter((f) => !used.has(f));
  return { periods, unused };
}

/**
 * defaults <- file <- flags. The mode is settled first because defaults depend on it;
 * then the sync periods, whose file value may sit in the section of a mode.
 */
export function resolveConfig(file: FileLayer | null, flags: ConfigOverrides, env: Environment = processEnvironment): ProxyConfig {
  const fileOverrides = file?.overrides ?? {};
  const mode = flags.mode ?? fileOverrides.mode ?? 'bpf';
  const config = defaultConfig(mode, env);
  if (file) applyLayer(config, modeSectionPeriods(file, mode).periods);
  applyLayer(config, fileOverrides);
  applyLayer(config, flags);
  config.nodeName = nodeNameFrom(config.nodeName, env);
  validateConfig(config);
  return config;
}

/** Rules across fields. Field names in errors are the config file's. */
export function validateConfig(c: ProxyConfig): void {
  if (c.syncPeriodMs <= 0) throw new ConfigError('syncPeriod', 'must be greater than 0');
  if (c.minSyncPeriodMs > c.syncPeriodMs) {
    throw new ConfigError('minSyncPeriod', `${c.minSyncPeriodMs} ms is longer than syncPeriod (${c.syncPeriodMs} ms)`);
  }
  if (c.detectLocalMode === 'BridgeInterface' && c.detectLocal.bridgeInterface === '') {
    throw new ConfigError('detectLocal.bridgeInterface', 'required when detectLocalMode is BridgeInterface (flag --pod-bridge-interface)');
  }
  if (c.detectLocalMode === 'InterfaceNamePrefix' && c.detectLocal.interfaceNamePrefix === '') {
    throw new ConfigError('detectLocal.interfaceNamePrefix', 'required when detectLocalMode is InterfaceNamePrefix (flag --pod-interface-name-prefix)');
  }
}
