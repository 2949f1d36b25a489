// Test helpers for the config: an Environment with a fixed host name, a fixed
// /proc/mounts and in-memory files, and a catcher for ConfigErrors.
import { ConfigError, type Environment } from '../../../src/config/config.js';
import { parseCommandLine, type CommandLine } from '../../../src/config/flags.js';

export function fakeEnv(files: Record<string, string> = {}, host = 'Node-A'): Environment {
  return {
    hostname: () => host,
    procMounts: () => 'cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\n',
    readFile: (path) => {
      const text = files[path];
      if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' });
      return text;
    },
  };
}

/** The ConfigError `fn` throws; fails the test when it throws nothing or something else. */
export function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

export type Run = Exclude<CommandLine, { command: 'help' }>;

/** The command line parsed against fakeEnv(files); fails the test on `help`. */
export function parseRun(argv: string[], files: Record<string, string> = {}): Run {
  const r = parseCommandLine(argv, fakeEnv(files));
  if (r.command === 'help') throw new Error('unexpected help');
  return r;
}

/** The ConfigError parsing argv throws. */
export function flagError(argv: string[], files: Record<string, string> = {}): ConfigError {
  return errorOf(() => parseCommandLine(argv, fakeEnv(files)));
}
