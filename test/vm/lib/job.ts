// The job a guest runs, as a shell script the host writes into the results
// share: the working directory, the environment it passes on, the command.

export interface Job {
  cwd: string;
  env: Record<string, string>;
  argv: readonly string[];
}

export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=+@%-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export function jobScript(job: Job): string {
  if (job.argv.length === 0) throw new Error('vm: the guest job has no command');
  const env = Object.entries(job.env).map(([k, v]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`vm: bad environment variable name ${JSON.stringify(k)}`);
    return `export ${k}=${shellQuote(v)}`;
  });
  return ['#!/bin/sh', `cd ${shellQuote(job.cwd)} || exit 127`, ...env, job.argv.map(shellQuote).join(' '), ''].join('\n');
}

/**
 * What the guest inherits from the host: PATH and HOME so the same tools are
 * found, plus BPFPROXY_VM naming the guest kernel, by which tests know they
 * are in a VM, and the lab's time scale.
 */
export function guestEnv(kver: string, host: NodeJS.ProcessEnv, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: host.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: host.HOME ?? '/root',
    LANG: 'C.UTF-8',
    // The serial console is a terminal; colour codes would clutter the log kept on the host.
    NO_COLOR: '1',
    BPFPROXY_VM: kver,
    // Userland in the guest runs about 10x slower: the lab's waits stretch by as much (src/lab/time-scale.ts).
    BPFPROXY_LAB_TIME_SCALE: '10',
    ...extra,
  };
}
