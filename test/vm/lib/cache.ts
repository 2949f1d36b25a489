// Debian kernels ready to boot, cached between runs under .cache/vm: the
// package extracted without installing it (nothing goes into /boot or
// /lib/modules), modules.dep made by depmod (the .deb ships none), the
// uncompressed vmlinux, and the initramfs. An entry counts only once its
// kernel.json is written, last.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exec } from './exec.js';
import { PACKAGE_ROOT } from '../../../src/util/paths.js';
import { kernelRelease, resolveKernel, type KernelPackage } from './debian.js';
import { bootModules, buildInitramfs, initramfsEntries } from './initramfs.js';
import { extractVmlinux } from './vmlinux.js';

export const CACHE_DIR = process.env.BPFPROXY_VM_CACHE ?? join(PACKAGE_ROOT, '.cache', 'vm');
export const STAGE1_INIT = join(PACKAGE_ROOT, 'test', 'vm', 'guest', 'init.sh');

export interface PreparedKernel extends KernelPackage {
  /** uname -r in the guest. */
  kver: string;
  /** The extracted package: boot/, lib/modules/KVER. */
  root: string;
  /** The compressed image as shipped (vng boots this one). */
  bzImage: string;
  /** The ELF kernel, booted through PVH. */
  vmlinux: string;
  /** lib/modules of the package, shared with the guest. */
  moduleDir: string;
  initramfs: string;
}

export function entryDir(pkg: KernelPackage): string {
  return join(CACHE_DIR, `${pkg.name}_${pkg.version}`.replace(/[^A-Za-z0-9._+-]/g, '_'));
}

/** Resolves a label, then downloads and unpacks its kernel unless the cache has it. */
export async function prepareKernel(label: string, log: (line: string) => void): Promise<PreparedKernel> {
  const pkg = await resolveKernel(label);
  const dir = entryDir(pkg);
  const stamp = join(dir, 'kernel.json');
  let kernel: PreparedKernel;
  if (existsSync(stamp)) {
    kernel = JSON.parse(readFileSync(stamp, 'utf8')) as PreparedKernel;
    log(`vm: ${label}: ${pkg.name} ${pkg.version} (cached)`);
  } else {
    const t0 = Date.now();
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    await exec(['apt-get', 'download', '-q', `${pkg.name}=${pkg.version}`], { timeoutMs: 600_000, cwd: dir });
    const deb = readdirSync(dir).find((f) => f.endsWith('.deb'));
    if (!deb) throw new Error(`vm: apt-get download ${pkg.name} left no .deb in ${dir}`);
    const root = join(dir, 'root');
    await exec(['dpkg-deb', '-x', join(dir, deb), root], { timeoutMs: 300_000 });
    rmSync(join(dir, deb));
    const kver = kernelRelease(readdirSync(join(root, 'lib', 'modules')));
    await exec(['depmod', '-b', root, kver], { timeoutMs: 300_000 });
    const bzImage = join(root, 'boot', `vmlinuz-${kver}`);
    const vmlinux = join(dir, 'vmlinux');
    writeFileSync(vmlinux, extractVmlinux(readFileSync(bzImage)));
    kernel = { ...pkg, kver, root, bzImage, vmlinux, moduleDir: join(root, 'lib', 'modules'), initramfs: '' };
    log(`vm: ${label}: ${pkg.name} ${pkg.version} fetched and unpacked in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  kernel.initramfs = await ensureInitramfs(kernel, dir);
  writeFileSync(`${stamp}.tmp`, JSON.stringify(kernel, null, 2));
  renameSync(`${stamp}.tmp`, stamp);
  pruneOlder(kernel, dir);
  return kernel;
}

// Keyed by stage 1's text, so that an edit to init.sh rebuilds it.
async function ensureInitramfs(k: PreparedKernel, dir: string): Promise<string> {
  const init = readFileSync(STAGE1_INIT);
  const out = join(dir, `initramfs-${createHash('sha256').update(init).digest('hex').slice(0, 12)}.cpio`);
  if (!existsSync(out)) {
    for (const f of readdirSync(dir)) if (/^initramfs-.*\.cpio$/.test(f)) rmSync(join(dir, f));
    buildInitramfs(initramfsEntries(await bootModules(k.root, k.kver), STAGE1_INIT), `${out}.tmp`);
    renameSync(`${out}.tmp`, out);
  }
  return out;
}

/** Removes cached kernels of the same label that the mirror has since replaced. */
function pruneOlder(k: PreparedKernel, keep: string): void {
  for (const name of readdirSync(CACHE_DIR)) {
    const dir = join(CACHE_DIR, name);
    if (dir === keep || !existsSync(join(dir, 'kernel.json'))) continue;
    try {
      if ((JSON.parse(readFileSync(join(dir, 'kernel.json'), 'utf8')) as KernelPackage).label === k.label) rmSync(dir, { recursive: true, force: true });
    } catch {
      // Not ours to judge: leave it.
    }
  }
}
