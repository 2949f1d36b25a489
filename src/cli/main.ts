// bpfproxy's command line: `bpfproxy [run] [flags]`, `bpfproxy cleanup`
// (or --cleanup, as kube-proxy spells it), `bpfproxy version`.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../config/errors.js';
import { parseCommandLine } from '../config/flags.js';
import { cleanupPins } from '../dataplane/bpf/loader.js';
import { createLogger } from '../runtime/log.js';
import { Proxy } from '../runtime/proxy.js';
import { PACKAGE_ROOT } from '../util/paths.js';

function version(): string {
  const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string };
  return `bpfproxy ${pkg.version} (node ${process.version})`;
}

export async function main(argv: string[]): Promise<void> {
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
    process.stdout.write(`${version()}\n`);
    return;
  }
  const cfg = cl.config;
  const log = createLogger(cfg.logLevel);
  if (cl.ignoredFileFields.length > 0) log.info({ fields: cl.ignoredFileFields }, 'config file fields bpfproxy does not use');

  if (cl.command === 'cleanup') {
    const removed = cleanupPins(cfg.bpf.pinPath);
    log.info({ pinPath: cfg.bpf.pinPath, removed: removed.length }, removed.length > 0 ? 'removed every attachment and pin' : 'nothing to clean up');
    return;
  }

  let proxy: Proxy;
  try {
    proxy = await Proxy.start(cfg, { log });
  } catch (err) {
    log.fatal({ err: err instanceof Error ? { message: err.message } : err }, (err as Error).message ?? 'cannot start');
    process.exitCode = 1;
    return;
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    proxy.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
