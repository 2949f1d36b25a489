// The command line. kube-proxy's flag names where kube-proxy has the flag, so a
// DaemonSet written for kube-proxy starts bpfproxy unchanged:
//   bpfproxy --config /var/lib/kube-proxy/config.conf --hostname-override $(NODE_NAME)
// Unlike kube-proxy, which ignores most flags when --config is given, a flag given
// on the command line overrides the same field of the file.
import { Command, CommanderError, Option } from 'commander';
import {
  DEFAULT_HEALTHZ_PORT, DEFAULT_MAP_SIZES, DEFAULT_MAGLEV_TABLE_SIZE, DEFAULT_METRICS_PORT, DEFAULT_PIN_PATH,
  DEFAULT_SYNC_PERIOD_MS, DETECT_LOCAL_MODES, MAP_NAMES, PROXY_MODES, overridePaths, processEnvironment, resolveConfig,
  type ConfigOverrides, type Environment, type MapName, type ProxyConfig,
} from './config.js';
import { ConfigError } from './errors.js';
import { loadConfigFile } from './file.js';
import {
  LOG_LEVELS, formatDuration, parseBindAddress, parseCidrList, parseDuration, parseEnum, parseInteger, parseLogLevel,
  parseNodePortAddresses, parsePortRange, validateMaglevTableSize, verbosityToLevel,
} from './values.js';

export type CommandLine =
  | {
    command: 'run' | 'cleanup' | 'version';
    config: ProxyConfig;
    /** Dotted ProxyConfig paths set on the command line ("mode", "bpf.mapSizes.frontends"). */
    explicit: ReadonlySet<string>;
    /** kube-proxy fields of the config file that bpfproxy does not use, for one log line. */
    ignoredFileFields: string[];
  }
  | { command: 'help'; text: string };

/** Raw option values as commander leaves them (attribute names of the flags below). */
interface RawOptions {
  config?: string;
  proxyMode?: string;
  hostnameOverride?: string;
  nodeportAddresses?: string;
  minSyncPeriod?: string;
  syncPeriod?: string;
  healthzBindAddress?: string;
  metricsBindAddress?: string;
  clusterCidr?: string;
  detectLocalMode?: string;
  podBridgeInterface?: string;
  podInterfaceNamePrefix?: string;
  kubeconfig?: string;
  master?: string;
  cleanup?: boolean;
  serviceClusterIpRange?: string;
  serviceNodePortRange?: string;
  manifests?: string;
  bpfFs?: string;
  cgroupRoot?: string;
  bpfLbMaglevTableSize?: string;
  bpfMapSize?: string[];
  v?: string;
  logLevel?: string;
  version?: boolean;
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

function addProxyOptions(cmd: Command): Command {
  return cmd
    .option('--config <file>', 'KubeProxyConfiguration file (YAML or JSON); flags given on the command line override its fields')
    .addOption(new Option('--proxy-mode <mode>', 'which dataplane to program (default "bpf")').choices(PROXY_MODES))
    .option('--hostname-override <name>', 'name of this node (default: the host name)')
    .option('--nodeport-addresses <list>', 'comma-separated CIDRs whose node addresses serve NodePorts, or "primary" (default: all local addresses)')
    .option('--min-sync-period <duration>', 'shortest time between syncs, Go syntax such as "500ms" (default "0s" in bpf mode, "1s" otherwise)')
    .option('--sync-period <duration>', `longest time between full syncs (default "${formatDuration(DEFAULT_SYNC_PERIOD_MS)}")`)
    .option('--healthz-bind-address <ip:port>', `address of /healthz and /livez, "" to disable (default "0.0.0.0:${DEFAULT_HEALTHZ_PORT}")`)
    .option('--metrics-bind-address <ip:port>', `address of /metrics, "" to disable (default "127.0.0.1:${DEFAULT_METRICS_PORT}")`)
    .option('--cluster-cidr <cidrs>', 'pod CIDRs, at most one per family, comma-separated')
    .addOption(new Option('--detect-local-mode <mode>', 'how traffic from local pods is recognized (default "ClusterCIDR")').choices(DETECT_LOCAL_MODES))
    .option('--pod-bridge-interface <name>', 'bridge of local pods, for --detect-local-mode BridgeInterface')
    .option('--pod-interface-name-prefix <prefix>', 'interface name prefix of local pods, for --detect-local-mode InterfaceNamePrefix')
    .option('--kubeconfig <file>', 'kubeconfig file (default: in-cluster configuration)')
    .option('--master <url>', 'API server address, overriding the kubeconfig\'s')
    .option('--cleanup', 'remove everything bpfproxy (and kube-proxy) programmed, then exit')
    .option('--service-cluster-ip-range <cidrs>', 'service CIDRs, at most one per family: ClusterIPs outside are rejected')
    .option('--service-node-port-range <range>', 'NodePort range (default "30000-32767")')
    .option('--manifests <dir>', 'read Services, EndpointSlices and Nodes from this directory of YAML instead of the API server')
    .option('--bpf-fs <dir>', `bpffs directory for pinned maps and links (default "${DEFAULT_PIN_PATH}")`)
    .option('--cgroup-root <dir>', 'cgroup v2 directory for the socket programs (default: the cgroup2 mount in /proc/mounts)')
    .option('--bpf-lb-maglev-table-size <prime>', `Maglev table size, a prime <= 65521 (default ${DEFAULT_MAGLEV_TABLE_SIZE})`)
    .option('--bpf-map-size <name=entries>', `capacity of a pinned map, repeatable; names and defaults: ${MAP_NAMES.map((n) => `${n}=${DEFAULT_MAP_SIZES[n]}`).join(', ')}`, collect)
    .option('-v, --v <level>', 'log verbosity as in kube-proxy: 0-1 info, 2-3 debug, 4+ trace')
    .addOption(new Option('--log-level <level>', 'log level by name, overrides --v (default "info")').choices(LOG_LEVELS))
    .option('--version', 'print the version and exit');
}

const PRECEDENCE_NOTE = `
Configuration is merged from defaults, then the --config file, then the flags
given on the command line: a flag overrides the same field of the file (kube-proxy
ignores such flags when --config is given; bpfproxy does not). In the file, as in
kube-proxy, an empty healthzBindAddress or metricsBindAddress means the default;
on the command line, an empty value disables that server.`;

function flagOverrides(o: RawOptions): ConfigOverrides {
  const out: ConfigOverrides = {};
  const bpf: NonNullable<ConfigOverrides['bpf']> = {};
  if (o.proxyMode !== undefined) out.mode = parseEnum(o.proxyMode, PROXY_MODES, '--proxy-mode');
  if (o.hostnameOverride !== undefined && o.hostnameOverride.trim() !== '') out.nodeName = o.hostnameOverride;
  if (o.nodeportAddresses !== undefined) out.nodePortAddresses = parseNodePortAddresses(o.nodeportAddresses, '--nodeport-addresses');
  if (o.minSyncPeriod !== undefined) out.minSyncPeriodMs = parseDuration(o.minSyncPeriod, '--min-sync-period');
  if (o.syncPeriod !== undefined) out.syncPeriodMs = parseDuration(o.syncPeriod, '--sync-period');
  if (o.healthzBindAddress !== undefined) out.healthzBindAddress = parseBindAddress(o.healthzBindAddress, '--healthz-bind-address', DEFAULT_HEALTHZ_PORT);
  if (o.metricsBindAddress !== undefined) out.metricsBindAddress = parseBindAddress(o.metricsBindAddress, '--metrics-bind-address', DEFAULT_METRICS_PORT);
  if (o.clusterCidr !== undefined) out.clusterCIDRs = parseCidrList(o.clusterCidr, '--cluster-cidr', true);
  if (o.detectLocalMode !== undefined) out.detectLocalMode = parseEnum(o.detectLocalMode, DETECT_LOCAL_MODES, '--detect-local-mode');
  if (o.podBridgeInterface !== undefined) out.detectLocal = { ...out.detectLocal, bridgeInterface: o.podBridgeInterface };
  if (o.podInterfaceNamePrefix !== undefined) out.detectLocal = { ...out.detectLocal, interfaceNamePrefix: o.podInterfaceNamePrefix };
  if (o.kubeconfig !== undefined) out.kubeconfig = o.kubeconfig;
  if (o.master !== undefined) out.master = o.master;
  if (o.config !== undefined) out.configFile = o.config;
  if (o.serviceClusterIpRange !== undefined) out.serviceClusterIPRanges = parseCidrList(o.serviceClusterIpRange, '--service-cluster-ip-range', true);
  if (o.serviceNodePortRange !== undefined) out.serviceNodePortRange = parsePortRange(o.serviceNodePortRange, '--service-node-port-range');
  if (o.manifests !== undefined) out.manifests = o.manifests;
  if (o.bpfFs !== undefined) bpf.pinPath = o.bpfFs;
  if (o.cgroupRoot !== undefined) bpf.cgroupRoot = o.cgroupRoot;
  if (o.bpfLbMaglevTableSize !== undefined) {
    const field = '--bpf-lb-maglev-table-size';
    bpf.maglevTableSize = validateMaglevTableSize(parseInteger(o.bpfLbMaglevTableSize, field, 0, Number.MAX_SAFE_INTEGER), field);
  }
  for (const item of o.bpfMapSize ?? []) {
    const field = '--bpf-map-size';
    const m = /^([^=]+)=(.*)$/.exec(item);
    if (!m) throw new ConfigError(field, `invalid value ${JSON.stringify(item)}: want NAME=ENTRIES, e.g. backends=262144`);
    const name = m[1]!.trim() as MapName;
    if (!MAP_NAMES.includes(name)) throw new ConfigError(field, `unknown map ${JSON.stringify(m[1])}: want one of ${MAP_NAMES.join(', ')}`);
    bpf.mapSizes = { ...bpf.mapSizes, [name]: parseInteger(m[2]!, `${field} ${name}`, 1, 0xffffffff) };
  }
  if (Object.keys(bpf).length > 0) out.bpf = bpf;
  if (o.v !== undefined) out.logLevel = verbosityToLevel(parseInteger(o.v, '--v', 0, 100));
  if (o.logLevel !== undefined) out.logLevel = parseLogLevel(o.logLevel, '--log-level');
  return out;
}

/** pflag booleans take "=true"/"=false"; commander's do not. Rewrites the kube-proxy spelling. */
function normalizeBooleans(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (const a of argv) {
    const m = /^--(cleanup|version)=(.*)$/.exec(a);
    if (!m) { out.push(a); continue; }
    if (m[2] === 'true') out.push(`--${m[1]}`);
    else if (m[2] !== 'false') throw new ConfigError(`--${m[1]}`, `invalid value ${JSON.stringify(m[2])}: want true or false`);
  }
  return out;
}

/**
 * Parses the arguments after the program name. `bpfproxy [flags]` is `bpfproxy run [flags]`;
 * the other commands are `cleanup` (the same as --cleanup) and `version`.
 * Throws ConfigError naming the flag or file field at fault.
 */
export function parseCommandLine(argv: readonly string[], env: Environment = processEnvironment): CommandLine {
  let help = '';
  let command: 'run' | 'cleanup' | 'version' = 'run';
  const program = new Command('bpfproxy')
    .description('Kubernetes Service proxy: a kube-proxy replacement with a BPF dataplane')
    .exitOverride()
    .configureOutput({ writeOut: (s) => { help += s; }, writeErr: (s) => { help += s; }, outputError: () => {} })
    .showHelpAfterError(false)
    .allowExcessArguments(false);
  addProxyOptions(program).addHelpText('after', PRECEDENCE_NOTE);
  program.action(() => { command = 'run'; });
  program.command('run').description('program the dataplane and keep it in sync (the default)').action(() => { command = 'run'; });
  program.command('cleanup').description('remove everything bpfproxy programmed, then exit').action(() => { command = 'cleanup'; });
  program.command('version').description('print the version and exit').action(() => { command = 'version'; });

  try {
    program.parse(normalizeBooleans(argv), { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help') return { command: 'help', text: help };
      if (err.code === 'commander.excessArguments') {
        throw new ConfigError('', 'unexpected argument: the commands are run (the default), cleanup and version', { cause: err });
      }
      // "error: option '--proxy-mode <mode>' argument 'x' is invalid. ..." -> field "--proxy-mode", "argument 'x' is invalid. ..."
      const flag = /'(-[^' ]+)/.exec(err.message)?.[1] ?? '';
      const detail = err.message.replace(/^error: /, '').replace(/^option '[^']*' /, '');
      throw new ConfigError(flag, detail, { cause: err });
    }
    throw err;
  }

  const raw = program.opts<RawOptions>();
  if (raw.version) command = 'version';
  else if (raw.cleanup) command = 'cleanup';
  const flags = flagOverrides(raw);
  const file = raw.config !== undefined ? loadConfigFile(raw.config, env) : null;
  const config = resolveConfig(file, flags, env);
  return { command, config, explicit: overridePaths(flags), ignoredFileFields: file?.ignored ?? [] };
}
