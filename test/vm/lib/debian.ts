// Which Debian kernel package a label such as "6.1" or "6.12" means today.
// Resolved through the metapackage on every run: the versioned package name
// carries an ABI number that changes with each security update, and old ones
// leave the mirror (docs/vm.md).
import { exec } from './exec.js';

export interface KernelPackage {
  /** What the operator asked for: "6.1", "6.12". */
  label: string;
  /** The metapackage that named it: linux-image-amd64, linux-image-6.12-amd64. */
  meta: string;
  /** The versioned package: linux-image-6.1.0-57-amd64. */
  name: string;
  /** Its candidate version: 6.1.192-3. */
  version: string;
}

/**
 * The metapackages that may name a label's kernel, most specific first:
 * Debian 12 has linux-image-6.12-amd64 for its backported 6.12, while its own
 * 6.1 is only the unversioned linux-image-amd64.
 */
export function metapackageCandidates(label: string): string[] {
  if (!/^\d+\.\d+$/.test(label)) throw new Error(`vm: kernel label ${JSON.stringify(label)} is not MAJOR.MINOR (6.1, 6.12)`);
  return [`linux-image-${label}-amd64`, 'linux-image-amd64'];
}

/**
 * The linux-image-* package a metapackage depends on, from `apt-cache depends`
 * output; null when there is none (the metapackage is unknown, or depends on
 * a virtual package only).
 */
export function parseDepends(text: string): string | null {
  for (const line of text.split('\n')) {
    const m = /^\s*\|?Depends:\s+(linux-image-\S+)\s*$/.exec(line);
    if (m?.[1] && !m[1].startsWith('<')) return m[1];
  }
  return null;
}

/** Whether a versioned package is the label's kernel: linux-image-6.1.0-57-amd64 is 6.1, not 6.12. */
export function packageMatchesLabel(name: string, label: string): boolean {
  return name.startsWith(`linux-image-${label}.`) && !/-(dbg|unsigned)$/.test(name);
}

/** The Version: field of `apt-cache show --no-all-versions` output. */
export function parseVersion(text: string): string | null {
  return /^Version:\s*(\S+)\s*$/m.exec(text)?.[1] ?? null;
}

/** The kernel release of an extracted package: the one directory under lib/modules. */
export function kernelRelease(moduleDirs: readonly string[]): string {
  if (moduleDirs.length !== 1 || !moduleDirs[0]) throw new Error(`vm: expected one directory under lib/modules, found ${JSON.stringify(moduleDirs)}`);
  return moduleDirs[0];
}

const APT_TIMEOUT_MS = 60_000;

/** Asks apt (the local package lists: no network) which package and version a label means. */
export async function resolveKernel(label: string): Promise<KernelPackage> {
  const tried: string[] = [];
  for (const meta of metapackageCandidates(label)) {
    const depends = await exec(['apt-cache', 'depends', meta], { timeoutMs: APT_TIMEOUT_MS }).catch(() => '');
    const name = parseDepends(depends);
    tried.push(`${meta} -> ${name ?? 'nothing'}`);
    if (!name || !packageMatchesLabel(name, label)) continue;
    const version = parseVersion(await exec(['apt-cache', 'show', '--no-all-versions', name], { timeoutMs: APT_TIMEOUT_MS }));
    if (!version) throw new Error(`vm: apt-cache show ${name} gives no Version`);
    return { label, meta, name, version };
  }
  throw new Error(`vm: no Debian kernel package for ${label} in the apt lists (${tried.join('; ')}); run apt-get update`);
}
