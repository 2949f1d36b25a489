// What `bpfproxy version` prints and the start line logs: the package version and
// the commit it was built from. The commit comes from BPFPROXY_COMMIT (an image
// build sets it), else the git checkout the code runs from (read from .git
// directly: an image has no git binary), else "unknown".
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../util/paths.js';

export interface VersionInfo {
  version: string;
  commit: string;
  node: string;
}

function readGitCommit(root: string): string | null {
  const git = join(root, '.git');
  try {
    const head = readFileSync(join(git, 'HEAD'), 'utf8').trim();
    const ref = /^ref: (.+)$/.exec(head)?.[1];
    if (!ref) return /^[0-9a-f]{40}$/.test(head) ? head : null;
    if (existsSync(join(git, ref))) return readFileSync(join(git, ref), 'utf8').trim();
    const packed = readFileSync(join(git, 'packed-refs'), 'utf8');
    return packed.split('\n').find((l) => l.endsWith(` ${ref}`))?.split(' ')[0] ?? null;
  } catch {
    return null;
  }
}

export function versionInfo(root: string = PACKAGE_ROOT, env: NodeJS.ProcessEnv = process.env): VersionInfo {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
  const commit = env.BPFPROXY_COMMIT?.trim() || readGitCommit(root)?.slice(0, 12) || 'unknown';
  return { version: pkg.version, commit, node: process.version };
}

export function versionLine(v: VersionInfo = versionInfo()): string {
  return `bpfproxy ${v.version} (commit ${v.commit}, node ${v.node})`;
}
