// bpfproxy's command line: `bpfproxy [run] [flags]`, `bpfproxy cleanup`
// (or --cleanup, as kube-proxy spells it), `bpfproxy version`, and the node-side
// views `bpfproxy status|services|trace|conntrack` (commands/node-view.ts).
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { ConfigError } from '../config/errors.js';
import { DEFAULT_OOM_SCORE_ADJ } from '../config/config.js';
import { nodeViewCommand, parseCommandLine } from '../config/flags.js';
import { watchConfigFile } from '../config/watch.js';
import { cleanupPins } from '../dataplane/bpf/loader.js';
import { describeProcess, statePathFor } from '../dataplane/state-file.js';
import { cleanupIptables } from '../dataplane/iptables/cleanup.js';
import { cleanupIpvs } from '../dataplane/ipvs/cleanup.js';
import { cleanupKubeProxy } from './kube-proxy-cleanup.js';
import { cleanupNftables } from '../dataplane/nftables/cleanup.js';
import { createLogger, type Logger } from '../util/log.js';
import { demoteHelperThreadsLogged } from '../util/thread-priority.js';
import { Proxy } from '../runtime/proxy.js';
import { datapathAfterFailedStart } from './failed-start.js';
import { runNodeView } from './commands/node-view.js';
import { versionInfo, versionLine } from './version.js';

/** kube-proxy writes its oomScoreAdj at start; a failure is worth a warning only when the value was not the default. */
function setOomScoreAdj(value: number, log: Logger): void {
  try {
    writeFileSync('/proc/self/oom_score_adj', String(value));
  } catch (err) {
    log[value === DEFAULT_OOM_SCORE_ADJ ? 'debug' : 'warn']({ err, oomScoreAdj: value }, 'cannot set oom_score_adj');
  }
}

export async function main(argv: string[]): Promise<void> {
  const view = nodeViewCommand(argv.slice(2));
  if (view) {
    process.exitCode = runNodeView(view.command, view.argv);
    return;
  }
  let cl;
  try {
    cl = parseCommandLine(argv.slice(2));
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`bpfproxy: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  if (cl.command === 'help') {
    process.stdout.write(cl.text);
    return;
  }
  if (cl.command === 'version') {
    process.stdout.write(`${versionLine()}\n`);
    return;
  }
  const cfg = cl.config;
  const log = createLogger(cfg.logLevel, cfg.logFormat);
  for (const n of cl.notices) log.warn({ field: n.field || undefined, config: n.field.startsWith('-') ? undefined : cfg.configFile ?? undefined }, n.message);
  if (cl.ignoredFileFields.length > 0) log.warn({ fields: cl.ignoredFileFields, mode: cfg.mode }, `config file fields that have no effect in ${cfg.mode} mode`);

  if (cl.command === 'cleanup' && cl.cleanupKubeProxy) {
    // kube-proxy's leftovers only: this runs on a node that bpfproxy already
    // serves (the migration's last step), so bpfproxy's own state stays.
    if (!(await cleanupKubeProxy({ nodePorts: cfg.serviceNodePortRange }, log))) process.exitCode = 1;
    return;
  }
  if (cl.command === 'cleanup') {
    const removed = cleanupPins(cfg.bpf.pinPath);
    rmSync(statePathFor(cfg.bpf.pinPath), { force: true });
    log.info({ pinPath: cfg.bpf.pinPath, removed: removed.length }, removed.length > 0 ? 'removed every attachment and pin' : 'nothing to clean up');
    const nft = await cleanupNftables();
    if (nft.ok) log.info('removed the nftables tables (ip and ip6 bpfproxy)');
    else log.warn({ error: nft.error }, 'could not remove the nftables tables');
    const xt = await cleanupIptables();
    if (xt.ok) log.info({ chains: xt.removed, kept: xt.kept.length > 0 ? xt.kept : undefined }, 'removed the iptables chains and jumps bpfproxy made');
    else log.warn({ error: xt.error }, 'could not remove the iptables chains');
    const vs = await cleanupIpvs();
    if (vs.ok) log.info({ virtualServers: vs.virtualServers, device: vs.device, chains: vs.chains, ipsets: vs.sets }, 'removed the ipvs state bpfproxy made');
    else log.warn({ error: vs.error }, 'could not remove all of the ipvs state');
    return;
  }

  const { version, commit } = versionInfo();
  describeProcess(version, commit);
  log.info({ version, commit, node: process.version, pid: process.pid }, `starting ${versionLine()}`);
  setOomScoreAdj(cfg.oomScoreAdj, log);
  // Before any Worker is made: those keep the event loop's priority.
  demoteHelperThreadsLogged(log);
  // Read now, so that an edit made while starting is noticed too.
  const configText = cfg.configFile ? readFileSync(cfg.configFile, 'utf8') : null;
  let proxy: Proxy;
  try {
    proxy = await Proxy.start(cfg, { log });
  } catch (err) {
    log.fatal({ err }, err instanceof Error ? err.message : 'cannot start');
    log.info({ pinPath: cfg.bpf.pinPath }, datapathAfterFailedStart(cfg.bpf.pinPath));
    process.exitCode = 1;
    return;
  }
  let stopping = false;
  // exitCode 1 on a config change, as kube-proxy's: a supervisor restarts a process that failed.
  const stop = (signal: string, exitCode = 0) => {
    if (stopping) return;
    stopping = true;
    configWatch?.close();
    if (exitCode === 0) log.info({ signal }, 'stopping');
    proxy.stop().then(
      () => process.exit(exitCode),
      (err: unknown) => {
        log.error({ err }, 'stop failed');
        process.exit(1);
      },
    );
  };
  const configWatch = cfg.configFile && configText !== null
    ? watchConfigFile(cfg.configFile, configText, (why) => {
      log.warn({ config: cfg.configFile }, `exiting because the config file changed: ${why}; the restarted proxy reads the new one`);
      stop('config file changed', 1);
    })
    : null;
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
