// virtme-ng as the runner, when it is installed (`pip install virtme-ng` puts
// vng on the PATH) or its source is beside the project (../shared/tools).
// Under software emulation it takes about 33 s per boot here against about
// 5 s for the project's own runner, so the batch uses the latter unless told.
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { PACKAGE_ROOT } from '../../../src/util/paths.js';
import type { Accel } from './qemu.js';

export const VNG_SOURCE = join(PACKAGE_ROOT, '..', 'shared', 'tools', 'virtme-ng', 'vng');
/** Debian's interpreter: the python3 first on PATH here may be another build without Debian's modules. */
export const DEBIAN_PYTHON = '/usr/bin/python3';

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The vng to use: the one asked for, else one on PATH, else the source tree's; null when none. */
export function findVng(asked: string | undefined, env: NodeJS.ProcessEnv = process.env): string | null {
  if (asked) {
    if (!existsSync(asked)) throw new Error(`vm: --vng ${asked}: no such file`);
    return asked;
  }
  for (const dir of (env.PATH ?? '').split(delimiter)) if (dir && executable(join(dir, 'vng'))) return join(dir, 'vng');
  return existsSync(VNG_SOURCE) ? VNG_SOURCE : null;
}

/**
 * How to start vng. A script that asks for "whatever python3 is first on the
 * PATH" (a source checkout's) runs under Debian's, which has the modules it
 * needs; one installed by pip names its own interpreter and runs as it is.
 */
export function vngCommand(vng: string, shebang: string = readFileSync(vng, 'utf8').split('\n', 1)[0] ?? ''): string[] {
  return /^#!\s*\/usr\/bin\/env\s+python3?\s*$/.test(shebang) ? [DEBIAN_PYTHON, vng] : [vng];
}

export interface VngSpec {
  bzImage: string;
  resultsDir: string;
  runJob: string;
  memoryMiB: number;
  cpus: number;
  accel: Accel;
}

export function vngArgs(spec: VngSpec): string[] {
  return [
    '--run', spec.bzImage,
    ...(spec.accel === 'kvm' ? [] : ['--disable-kvm']),
    '--memory', `${spec.memoryMiB}M`,
    '--cpus', String(spec.cpus),
    '--rwdir', spec.resultsDir,
    '--exec', `sh ${spec.runJob} ${spec.resultsDir}`,
  ];
}
