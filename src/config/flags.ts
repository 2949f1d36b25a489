// The command line. kube-proxy's flag names where kube-proxy has the flag, so a
// DaemonSet written for kube-proxy starts bpfproxy unchanged:
//   bpfproxy --config /var/lib/kube-proxy/config.conf --hostname-override $(NODE_NAME)
// Every flag is one row of FLAGS: its parser (which names the flag in its errors)
// and what it sets. kube-proxy flags that mean nothing here are accepted with one
// warning each (NO_EFFECT_FLAGS). Unlike kube-proxy, which ignores most flags when
// --config is given, a flag given on the command line overrides the same field of
// the file.
import { Command, CommanderError, Option } from 'commander';
import {
  DEFAULT_HEALTHZ_PORT, DEFAULT_MAGLEV_MAP_MAX, DEFAULT_MAP_SIZES, MAX_MAGLEV_MAP_MAX, DEFAULT_METRICS_PORT, DEFAULT_PIN_PATH,
  DEFAULT_SYNC_PERIOD_MS, DETECT_LOCAL_MODES, MAP_NAMES, modeSectionPeriods, overridePaths, processEnvironment, resolveConfig,
  type ConfigNotice, type ConfigOverrides, type DetectLocalMode, type LogFormat, type Environment, type MapName, type ProxyConfig,
} from './config.js';
import { DEFAULT_INPUT_LIMITS, INPUT_LIMIT_FLAGS, type InputLimits } from '../util/input-limits.js';
import { DEFAULT_MAGLEV_M, MAX_MAGLEV_M } from '../util/maglev-size.js';
import { PROXY_MODES, type ProxyMode } from '../util/modes.js';
import { IPVS_SCHEDULERS, type IpvsScheduler } from '../util/ipvs-schedulers.js';
import { ConfigError } from './errors.js';
import { loadConfigFile } from './file.js';
import {
  LOG_FORMATS, LOG_LEVELS, formatDuration, parseBindAddress, parseCidrList, parseDuration, parseEnum, parseFeatureGates,
  parseGoBool, parseInteger, parseLogLevel, parseNodePortAddresses, parseNumber, parsePortRange, validateMaglevTableSize,
  parseBindIP, validateMaglevMapMax, verbosityToLevel,
} from './values.js';

export type CommandLine =
  | {
    command: 'run' | 'cleanup' | 'version';
    config: ProxyConfig;
    /** Dotted ProxyConfig paths set on the command line ("mode", "bpf.mapSizes.frontends"). */
    explicit: ReadonlySet<string>;
    /** kube-proxy fields of the config file that have no effect in the mode in force, for one warning line. */
    ignoredFileFields: string[];
    /** Unknown file fields and flags accepted without effect: one warning each. */
    notices: ConfigNotice[];
    /** cleanup --kube-proxy: remove what kube-proxy left on this node (and not bpfproxy's own state). */
    cleanupKubeProxy: boolean;
  }
  | { command: 'help'; text: string };

/** The commands that read what is programmed on this node; they work while the proxy is down. */
export const NODE_VIEW_COMMANDS = {
  status: { args: '', description: 'mode and why, last sync, counts, map fill and attachments on this node (reads the pins)' },
  services: { args: '', description: 'frontends, their type and flags, and their backends as the maps hold them (like ipvsadm -Ln)' },
  trace: { args: '<src> <dst:port/proto>', description: 'which backend a connection from SRC to a service would reach, and why' },
  conntrack: { args: '', description: 'flows the XDP datapath tracks: client, frontend, backend, NAT, age' },
} as const;
export type NodeViewCommand = keyof typeof NODE_VIEW_COMMANDS;

/**
 * `bpfproxy status|services|trace|conntrack ...`: the command and the
 * arguments after it, whose options are the command's own (src/cli/commands);
 * null for the proxy's commands, which parseCommandLine parses.
 */
export function nodeViewCommand(argv: readonly string[]): { command: NodeViewCommand; argv: string[] } | null {
  const name = argv[0];
  return name !== undefined && Object.hasOwn(NODE_VIEW_COMMANDS, name) ? { command: name as NodeViewCommand, argv: argv.slice(1) } : null;
}

/** What the flags contribute, before the file is read. */
interface FlagLayer {
  overrides: ConfigOverrides;
  notices: ConfigNotice[];
  /** Deprecated --healthz-port / --metrics-port: applied to the resolved bind address, as kube-proxy does. */
  ports: { healthz?: number; metrics?: number };
  cleanup: boolean;
  kubeProxy: boolean;
  version: boolean;
}

interface FlagDef<T = unknown> {
  /** commander's spelling: "--sync-period <duration>"; "[bool]" for a pflag boolean. */
  flags: string;
  help: string;
  /** Text to value; throws ConfigError naming `flag`. Absent: commander's own boolean. */
  parse?: (text: string, flag: string, previous: T | undefined) => T;
  apply: (value: T, out: FlagLayer) => void;
}

const def = <T>(d: FlagDef<T>): FlagDef => d as FlagDef;
const text = (s: string) => s;
const duration = (s: string, flag: string) => parseDuration(s, flag);
const goBool = (s: string, flag: string) => parseGoBool(s, flag);
const int = (min: number, max: number) => (s: string, flag: string) => parseInteger(s, flag, min, max);
const oneOf = <T extends string>(allowed: readonly T[]) => (s: string, flag: string) => parseEnum(s, allowed, flag);
const bpf = (out: FlagLayer) => (out.overrides.bpf ??= {});
const LIMIT_HELP: Readonly<Record<keyof InputLimits, string>> = {
  manifestMaxBytes: 'bytes per manifest file; a larger file is not read',
  manifestMaxDocuments: 'YAML documents per manifest file',
  objectMaxKeys: 'keys per mapping of an object (manifests and the API server)',
  objectMaxDepth: 'nesting depth of an object (manifests and the API server)',
  objectMaxStringLength: 'characters per string of an object (manifests and the API server)',
  objectMaxEndpoints: 'endpoints per EndpointSlice, kube-apiserver\'s own limit (manifests and the API server)',
};
/** One row per input limit: what exceeds it is refused, naming the file or object, the limit and the flag. */
const limitFlag = (key: keyof InputLimits) => def({
  flags: `${INPUT_LIMIT_FLAGS[key]} <n>`,
  help: `${LIMIT_HELP[key]} (default ${DEFAULT_INPUT_LIMITS[key]})`,
  parse: int(1, Number.MAX_SAFE_INTEGER),
  apply: (v, o) => { o.overrides.inputLimits = { ...o.overrides.inputLimits, [key]: v }; },
});

/**
 * Flags that do what they do in kube-proxy, and bpfproxy's own. A parser that
 * can mean "off" returns it boxed ({ addr: null }): commander turns a null into "".
 */
const FLAGS: FlagDef[] = [
  def({ flags: '--config <file>', help: 'KubeProxyConfiguration file (YAML or JSON); flags given on the command line override its fields; bpfproxy exits when it changes, as kube-proxy does', parse: text, apply: (v, o) => { o.overrides.configFile = v; } }),
  def<ProxyMode>({ flags: '--proxy-mode <mode>', help: `which dataplane to program: ${PROXY_MODES.join(', ')} (default "bpf")`, parse: oneOf(PROXY_MODES), apply: (v, o) => { o.overrides.mode = v; } }),
  def<boolean>({ flags: '--no-fallback', help: 'exit when the mode asked for cannot run here, instead of falling back to the next mode that can', apply: (v, o) => { if (!v) o.overrides.fallback = false; } }),
  def({ flags: '--hostname-override <name>', help: 'name of this node (default: the host name)', parse: text, apply: (v, o) => { if (v.trim() !== '') o.overrides.nodeName = v; } }),
  def({ flags: '--nodeport-addresses <list>', help: 'comma-separated CIDRs whose node addresses serve NodePorts, or "primary" (default: all local addresses)', parse: parseNodePortAddresses, apply: (v, o) => { o.overrides.nodePortAddresses = v; } }),
  def({ flags: '--min-sync-period <duration>', help: 'shortest time between syncs, Go syntax such as "500ms" (default "0s" in bpf mode, "1s" otherwise)', parse: duration, apply: (v, o) => { o.overrides.minSyncPeriodMs = v; } }),
  def({ flags: '--sync-period <duration>', help: `longest time between full syncs (default "${formatDuration(DEFAULT_SYNC_PERIOD_MS)}")`, parse: duration, apply: (v, o) => { o.overrides.syncPeriodMs = v; } }),
  def({ flags: '--healthz-bind-address <ip:port>', help: `address of /healthz and /livez, "" to disable (default "0.0.0.0:${DEFAULT_HEALTHZ_PORT}")`, parse: (s, f) => ({ addr: parseBindAddress(s, f, DEFAULT_HEALTHZ_PORT) }), apply: (v, o) => { o.overrides.healthzBindAddress = v.addr; } }),
  def({ flags: '--metrics-bind-address <ip:port>', help: `address of /metrics, "" to disable (default "127.0.0.1:${DEFAULT_METRICS_PORT}")`, parse: (s, f) => ({ addr: parseBindAddress(s, f, DEFAULT_METRICS_PORT) }), apply: (v, o) => { o.overrides.metricsBindAddress = v.addr; } }),
  def({ flags: '--healthz-port <port>', help: 'deprecated (kube-proxy too): the port of --healthz-bind-address, 0 to disable', parse: int(0, 65535), apply: (v, o) => { o.ports.healthz = v; o.notices.push(deprecated('--healthz-port', '--healthz-bind-address')); } }),
  def({ flags: '--metrics-port <port>', help: 'deprecated (kube-proxy too): the port of --metrics-bind-address, 0 to disable', parse: int(0, 65535), apply: (v, o) => { o.ports.metrics = v; o.notices.push(deprecated('--metrics-port', '--metrics-bind-address')); } }),
  def({ flags: '--bind-address-hard-fail [bool]', help: 'exit when the health or metrics port cannot be bound, instead of retrying every 5 s', parse: goBool, apply: (v, o) => { o.overrides.bindAddressHardFail = v; } }),
  def({ flags: '--masquerade-all [bool]', help: 'iptables mode: masquerade every connection to a ClusterIP', parse: goBool, apply: (v, o) => { o.overrides.masqueradeAll = v; } }),
  def({ flags: '--iptables-masquerade-bit <bit>', help: 'iptables mode: the packet-mark bit, 0-31, that asks for masquerading (default 14)', parse: int(0, 31), apply: (v, o) => { o.overrides.iptablesMasqueradeBit = v; } }),
  def({ flags: '--iptables-localhost-nodeports [bool]', help: 'iptables mode: NodePorts answer on 127.0.0.1 too, when no --nodeport-addresses are given (default true)', parse: goBool, apply: (v, o) => { o.overrides.iptablesLocalhostNodePorts = v; } }),
  def<IpvsScheduler>({ flags: '--ipvs-scheduler <name>', help: `ipvs mode: the scheduler of every virtual server: ${IPVS_SCHEDULERS.join(', ')} (default "rr"; mh gets the flags mh-fallback,mh-port, sh gets sh-fallback)`, parse: oneOf(IPVS_SCHEDULERS), apply: (v, o) => { o.overrides.ipvs = { ...o.overrides.ipvs, scheduler: v }; } }),
  def({ flags: '--ipvs-strict-arp [bool]', help: 'ipvs mode: arp_ignore=1 and arp_announce=2, so the node answers ARP only for addresses of the interface asked (not for those on kube-ipvs0)', parse: goBool, apply: (v, o) => { o.overrides.ipvs = { ...o.overrides.ipvs, strictARP: v }; } }),
  def({ flags: '--ipvs-tcp-timeout <duration>', help: 'ipvs mode: idle timeout of IPVS TCP connections, e.g. "900s" (default "0s": leave the kernel\'s)', parse: duration, apply: (v, o) => { o.overrides.ipvs = { ...o.overrides.ipvs, tcpTimeoutMs: v }; } }),
  def({ flags: '--ipvs-tcpfin-timeout <duration>', help: 'ipvs mode: timeout of IPVS TCP connections after a FIN (default "0s": leave the kernel\'s)', parse: duration, apply: (v, o) => { o.overrides.ipvs = { ...o.overrides.ipvs, tcpFinTimeoutMs: v }; } }),
  def({ flags: '--ipvs-udp-timeout <duration>', help: 'ipvs mode: timeout of IPVS UDP flows (default "0s": leave the kernel\'s)', parse: duration, apply: (v, o) => { o.overrides.ipvs = { ...o.overrides.ipvs, udpTimeoutMs: v }; } }),
  def({ flags: '--cluster-cidr <cidrs>', help: 'pod CIDRs, at most one per family, comma-separated', parse: (s, f) => parseCidrList(s, f, true), apply: (v, o) => { o.overrides.clusterCIDRs = v; } }),
  def<DetectLocalMode>({ flags: '--detect-local-mode <mode>', help: `how traffic from local pods is recognized: ${DETECT_LOCAL_MODES.join(', ')} (default "ClusterCIDR")`, parse: oneOf(DETECT_LOCAL_MODES), apply: (v, o) => { o.overrides.detectLocalMode = v; } }),
  def({ flags: '--pod-bridge-interface <name>', help: 'bridge of local pods, for --detect-local-mode BridgeInterface', parse: text, apply: (v, o) => { o.overrides.detectLocal = { ...o.overrides.detectLocal, bridgeInterface: v }; } }),
  def({ flags: '--pod-interface-name-prefix <prefix>', help: 'interface name prefix of local pods, for --detect-local-mode InterfaceNamePrefix', parse: text, apply: (v, o) => { o.overrides.detectLocal = { ...o.overrides.detectLocal, interfaceNamePrefix: v }; } }),
  def({ flags: '--kubeconfig <file>', help: 'kubeconfig file (default: in-cluster configuration)', parse: text, apply: (v, o) => { o.overrides.kubeconfig = v; } }),
  def({ flags: '--master <url>', help: 'API server address, overriding the kubeconfig\'s', parse: text, apply: (v, o) => { o.overrides.master = v; } }),
  def({ flags: '--kube-proxy [bool]', help: 'with cleanup (or --cleanup): remove what kube-proxy left on this node instead of what bpfproxy made: its KUBE-* iptables chains and the jumps to them, its nftables tables (ip and ip6 kube-proxy), its ipvs virtual servers, kube-ipvs0 and ipsets; bpfproxy keeps serving (in iptables mode its own chains, which carry kube-proxy\'s names, come back at the next full sync)', parse: goBool, apply: (v, o) => { o.kubeProxy = v; } }),
  def({ flags: '--cleanup [bool]', help: 'remove everything bpfproxy programmed, then exit (the same as the cleanup command)', parse: goBool, apply: (v, o) => { o.cleanup = v; } }),
  def({ flags: '--oom-score-adj <value>', help: 'the process\'s oom_score_adj, -1000 to 1000 (default -999)', parse: int(-1000, 1000), apply: (v, o) => { o.overrides.oomScoreAdj = v; } }),
  def({ flags: '--service-cluster-ip-range <cidrs>', help: 'service CIDRs, at most one per family: ClusterIPs outside are rejected', parse: (s, f) => parseCidrList(s, f, true), apply: (v, o) => { o.overrides.serviceClusterIPRanges = v; } }),
  def({ flags: '--service-node-port-range <range>', help: 'NodePort range (default "30000-32767")', parse: parsePortRange, apply: (v, o) => { o.overrides.serviceNodePortRange = v; } }),
  def({ flags: '--manifests <dir>', help: 'read Services, EndpointSlices and Nodes from this directory of YAML instead of the API server', parse: text, apply: (v, o) => { o.overrides.manifests = v; } }),
  def({ flags: '--bpf-fs <dir>', help: `bpffs directory for pinned maps and links (default "${DEFAULT_PIN_PATH}")`, parse: text, apply: (v, o) => { bpf(o).pinPath = v; } }),
  def({
    flags: '--devices <list>',
    help: 'comma-separated node devices to attach the XDP and TC programs to (NodePort/ExternalIP/LoadBalancer and routed ClusterIP traffic from outside, IPv4 TCP/UDP so far); '
      + 'default: the devices of the proxy\'s network namespace that hold the node\'s addresses (--bind-address when specific, else every global unicast address; plus, once the Node object is read, the devices holding its InternalIP and ExternalIP; loopback, bridges, bridge and bond ports and devices without Ethernet headers excluded), logged at start; \'\' for none',
    parse: (s) => s.split(',').map((d) => d.trim()).filter((d) => d !== ''),
    apply: (v, o) => { bpf(o).devices = v; },
  }),
  def({
    flags: '--bpf-lb-maglev-map-max <tables>',
    help: `Maglev tables the XDP datapath holds, one per service with external frontends (Cilium's name); services beyond get random picks, logged. The array takes tables x M x 4 bytes (16 MiB at the default ${DEFAULT_MAGLEV_MAP_MAX} x ${DEFAULT_MAGLEV_M}), allocated at load and logged; at most ${MAX_MAGLEV_MAP_MAX}. A pinned array of another size keeps its size until \`bpfproxy cleanup\` and a restart`,
    parse: (s, f) => validateMaglevMapMax(parseInteger(s, f, 0, Number.MAX_SAFE_INTEGER), f, MAX_MAGLEV_MAP_MAX),
    apply: (v, o) => { bpf(o).maglevMapMax = v; },
  }),
  def({ flags: '--bind-address <ip>', help: 'this node\'s IP (kube-proxy\'s flag): when specific, the default --devices is the device holding it; "0.0.0.0" or "::" (the default) mean none given', parse: parseBindIP, apply: (v, o) => { o.overrides.bindAddress = v; } }),
  def({ flags: '--cgroup-root <dir>', help: 'cgroup v2 directory for the socket programs (default: the cgroup2 mount in /proc/mounts)', parse: text, apply: (v, o) => { bpf(o).cgroupRoot = v; } }),
  def({ flags: '--bpf-lb-maglev-table-size <prime>', help: `Maglev table size, a prime <= ${MAX_MAGLEV_M} (default ${DEFAULT_MAGLEV_M})`, parse: (s, f) => validateMaglevTableSize(parseInteger(s, f, 0, Number.MAX_SAFE_INTEGER), f), apply: (v, o) => { bpf(o).maglevTableSize = v; } }),
  def<Partial<Record<MapName, number>>>({
    flags: '--bpf-map-size <name=entries>',
    help: `capacity of a pinned map, repeatable; names and defaults: ${MAP_NAMES.map((n) => `${n}=${DEFAULT_MAP_SIZES[n]}`).join(', ')}`,
    parse: parseMapSize,
    apply: (v, o) => { bpf(o).mapSizes = v; },
  }),
  ...(Object.keys(INPUT_LIMIT_FLAGS) as (keyof InputLimits)[]).map(limitFlag),
  // pflag takes "-v=2"; commander hands a short option's "=2" over as the value.
  def({ flags: '-v, --v <level>', help: 'log verbosity as in kube-proxy: 0-1 info, 2-3 debug, 4+ trace', parse: (s, f) => parseInteger(s.replace(/^=/, ''), f, 0, 100), apply: (v, o) => { o.overrides.logLevel ??= verbosityToLevel(v); } }),
  def({ flags: '--log-level <level>', help: `log level by name, overrides --v: ${LOG_LEVELS.join(', ')} (default "info")`, parse: parseLogLevel, apply: (v, o) => { o.overrides.logLevel = v; } }),
  def<LogFormat>({ flags: '--logging-format <format>', help: 'json (one JSON object a line, the default) or text (klog-like lines for a terminal)', parse: oneOf(LOG_FORMATS), apply: (v, o) => { o.overrides.logFormat = v; } }),
  def({ flags: '--version [bool]', help: 'print the version and the commit, then exit ("raw" is taken as true)', parse: (s, f) => (s === 'raw' ? true : parseGoBool(s, f)), apply: (v, o) => { o.version = v; } }),
];

/** kube-proxy flags that bpfproxy accepts and that change nothing here. */
interface NoEffectFlag {
  flags: string;
  parse: (text: string, flag: string) => unknown;
  /** The value that asks for nothing (kube-proxy's "leave it alone"): no warning for it. */
  quiet?: (value: unknown) => boolean;
  why: string;
}

const CONNTRACK = 'bpfproxy does not tune the kernel\'s conntrack table: its socket datapath creates no NAT entries';
const CLIENT = 'bpfproxy\'s client lists once and then watches; it sends no stream of requests to throttle';
const zero = (v: unknown) => v === 0 || v === false;

const NO_EFFECT_FLAGS: NoEffectFlag[] = [
  { flags: '--conntrack-max-per-core <n>', parse: int(0, 2 ** 31 - 1), quiet: zero, why: CONNTRACK },
  { flags: '--conntrack-min <n>', parse: int(0, 2 ** 31 - 1), quiet: zero, why: CONNTRACK },
  { flags: '--conntrack-tcp-timeout-established <duration>', parse: duration, quiet: zero, why: CONNTRACK },
  { flags: '--conntrack-tcp-timeout-close-wait <duration>', parse: duration, quiet: zero, why: CONNTRACK },
  { flags: '--conntrack-tcp-be-liberal [bool]', parse: goBool, quiet: zero, why: CONNTRACK },
  { flags: '--conntrack-udp-timeout <duration>', parse: duration, quiet: zero, why: CONNTRACK },
  { flags: '--conntrack-udp-timeout-stream <duration>', parse: duration, quiet: zero, why: CONNTRACK },
  { flags: '--feature-gates <gates>', parse: parseFeatureGates, quiet: (v) => Object.keys(v as object).length === 0, why: 'bpfproxy has no feature gates' },
  { flags: '--kube-api-qps <qps>', parse: (s, f) => parseNumber(s, f, 0), why: CLIENT },
  { flags: '--kube-api-burst <n>', parse: int(0, 2 ** 31 - 1), why: CLIENT },
  { flags: '--kube-api-content-type <type>', parse: text, why: 'bpfproxy\'s client speaks JSON' },
  { flags: '--profiling [bool]', parse: goBool, quiet: zero, why: 'bpfproxy serves no /debug/pprof' },
  { flags: '--ipvs-exclude-cidrs <list>', parse: (s, f) => parseCidrList(s, f, false), quiet: (v) => (v as unknown[]).length === 0, why: 'bpfproxy\'s ipvs mode never touches virtual servers it did not make' },
  { flags: '--log-flush-frequency <duration>', parse: duration, why: 'bpfproxy writes each log line at once' },
  // Removed from kube-proxy in 1.26; older installs (charms) still pass them.
  { flags: '--logtostderr [bool]', parse: goBool, quiet: (v) => v === true, why: 'bpfproxy always logs to stderr' },
  { flags: '--alsologtostderr [bool]', parse: goBool, quiet: (v) => v === true, why: 'bpfproxy always logs to stderr' },
];

function deprecated(flag: string, use: string): ConfigNotice {
  return { field: flag, message: `${flag} is deprecated, as in kube-proxy: use ${use}` };
}

function parseMapSize(item: string, field: string, previous: Partial<Record<MapName, number>> | undefined): Partial<Record<MapName, number>> {
  const m = /^([^=]+)=(.*)$/.exec(item);
  if (!m) throw new ConfigError(field, `invalid value ${JSON.stringify(item)}: want NAME=ENTRIES, e.g. backends=262144`);
  const name = m[1]!.trim() as MapName;
  if (!MAP_NAMES.includes(name)) throw new ConfigError(field, `unknown map ${JSON.stringify(m[1])}: want one of ${MAP_NAMES.join(', ')}`);
  return { ...previous, [name]: parseInteger(m[2]!, `${field} ${name}`, 1, 0xffffffff) };
}

/** A pflag boolean: "--flag" alone is true, "--flag=false" is false. */
function optionFor(flags: string, help: string, parse?: (text: string, flag: string, previous: unknown) => unknown): Option {
  const o = new Option(flags, help);
  if (flags.endsWith('[bool]')) o.preset('true');
  if (parse) o.argParser((value: string, previous: unknown) => parse(value, o.long ?? flags, previous));
  return o;
}

function addProxyOptions(cmd: Command): Command {
  for (const d of FLAGS) cmd.addOption(optionFor(d.flags, d.help, d.parse));
  for (const d of NO_EFFECT_FLAGS) cmd.addOption(optionFor(d.flags, `kube-proxy's; accepted, no effect here: ${d.why}`, d.parse));
  return cmd.addHelpText('after', PRECEDENCE_NOTE);
}

const PRECEDENCE_NOTE = `
Configuration is merged from defaults, then the --config file, then the flags
given on the command line: a flag overrides the same field of the file (kube-proxy
ignores such flags when --config is given; bpfproxy does not). In the file, as in
kube-proxy, an empty healthzBindAddress or metricsBindAddress means the default;
on the command line, an empty value disables that server.`;

/** Options commander collected, by attribute name ("syncPeriod" for --sync-period). */
type RawOptions = Record<string, unknown>;

function attributeOf(flags: string): string {
  return new Option(flags).attributeName();
}

function flagLayer(raw: RawOptions): FlagLayer {
  const out: FlagLayer = { overrides: {}, notices: [], ports: {}, cleanup: false, kubeProxy: false, version: false };
  // --log-level wins over --v whatever their order: apply it first, --v only fills in.
  const ordered = [...FLAGS].sort((a, b) => Number(b.flags.startsWith('--log-level')) - Number(a.flags.startsWith('--log-level')));
  for (const d of ordered) {
    const v = raw[attributeOf(d.flags)];
    if (v !== undefined) d.apply(v, out);
  }
  for (const d of NO_EFFECT_FLAGS) {
    const v = raw[attributeOf(d.flags)];
    if (v === undefined || d.quiet?.(v)) continue;
    const flag = new Option(d.flags).long!;
    out.notices.push({ field: flag, message: `${flag} has no effect here: ${d.why}` });
  }
  return out;
}

/** kube-proxy's deprecated port flags replace the port of the resolved bind address; 0 disables the server. */
function applyDeprecatedPorts(c: ProxyConfig, ports: FlagLayer['ports']): void {
  if (ports.healthz !== undefined) c.healthzBindAddress = ports.healthz === 0 ? null : { host: c.healthzBindAddress?.host ?? '0.0.0.0', port: ports.healthz };
  if (ports.metrics !== undefined) c.metricsBindAddress = ports.metrics === 0 ? null : { host: c.metricsBindAddress?.host ?? '127.0.0.1', port: ports.metrics };
}

/** A commander error (unknown option, missing value) as a ConfigError naming the option it quotes. */
function fromCommander(err: CommanderError): ConfigError {
  if (err.code === 'commander.excessArguments' || err.code === 'commander.unknownCommand') {
    return new ConfigError('', `unexpected argument: the commands are run (the default), cleanup, version, ${Object.keys(NODE_VIEW_COMMANDS).join(', ')}`, { cause: err });
  }
  const message = err.message.replace(/^error: /, '');
  return new ConfigError(/'(-[^' ]+)/.exec(message)?.[1] ?? '', message.replace(/^option '[^']*' /, ''), { cause: err });
}

/**
 * Parses the arguments after the program name. `bpfproxy [flags]` is `bpfproxy run [flags]`;
 * the other commands are `cleanup` (the same as --cleanup) and `version`.
 * Throws ConfigError naming the flag or file field at fault.
 */
export function parseCommandLine(argv: readonly string[], env: Environment = processEnvironment): CommandLine {
  let help = '';
  let command: 'run' | 'cleanup' | 'version' = 'run';
  let sub: Command | null = null;
  const configure = (c: Command) => c
    .exitOverride()
    .configureOutput({ writeOut: (s) => { help += s; }, writeErr: (s) => { help += s; }, outputError: () => {} })
    .showHelpAfterError(false)
    .allowExcessArguments(false);
  const program = configure(new Command('bpfproxy'))
    .description('Kubernetes Service proxy: a kube-proxy replacement with a BPF dataplane')
    // Options after a command name belong to that command, so `bpfproxy run --help` lists them.
    .enablePositionalOptions();
  addProxyOptions(program);
  program.action(() => { command = 'run'; });
  const run = configure(addProxyOptions(program.command('run').description('program the dataplane and keep it in sync (the default)')));
  run.action(() => { command = 'run'; sub = run; });
  const cleanup = configure(addProxyOptions(program.command('cleanup').description('remove everything bpfproxy programmed, then exit')));
  cleanup.action(() => { command = 'cleanup'; sub = cleanup; });
  configure(program.command('version').description('print the version and the commit, then exit')).action(() => { command = 'version'; });
  // Listed for --help; nodeViewCommand() takes them before this parser runs.
  for (const [name, d] of Object.entries(NODE_VIEW_COMMANDS)) program.command(`${name}${d.args ? ` ${d.args}` : ''}`).description(`${d.description} (--help for its options)`);

  try {
    program.parse([...argv], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help') return { command: 'help', text: help };
      throw fromCommander(err);
    }
    throw err;
  }

  const raw: RawOptions = { ...program.opts(), ...(sub as Command | null)?.opts() };
  const flags = flagLayer(raw);
  if (flags.version) command = 'version';
  else if (flags.cleanup) command = 'cleanup';
  if (flags.kubeProxy && command !== 'cleanup') flags.notices.push({ field: '--kube-proxy', message: '--kube-proxy has an effect only with cleanup (or --cleanup)' });
  const configFile = flags.overrides.configFile;
  const file = configFile ? loadConfigFile(configFile, env) : null;
  const config = resolveConfig(file, flags.overrides, env);
  applyDeprecatedPorts(config, flags.ports);
  const ignoredFileFields = file ? [...file.ignored, ...modeSectionPeriods(file, config.mode).unused] : [];
  return { command, config, explicit: overridePaths(flags.overrides), ignoredFileFields, notices: [...(file?.unknown ?? []), ...flags.notices], cleanupKubeProxy: command === 'cleanup' && flags.kubeProxy };
}
