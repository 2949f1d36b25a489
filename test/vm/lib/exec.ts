// Host tools the harness runs (apt, dpkg-deb, depmod, modprobe), bounded in
// time, with errors that name the command and carry its stderr.
import { execFile } from 'node:child_process';

export function exec(argv: readonly string[], opts: { cwd?: string; timeoutMs: number }): Promise<string> {
  const [file, ...args] = argv;
  return new Promise((resolve, reject) => {
    execFile(file!, args, { cwd: opts.cwd, timeout: opts.timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`vm: ${argv.join(' ')} failed: ${err.killed ? 'timed out' : stderr.trim() || err.message}`, { cause: err }));
      else resolve(stdout);
    });
  });
}
