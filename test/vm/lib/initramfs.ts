// The guest's initramfs: a static busybox, stage 1 (guest/init.sh) and the
// modules it needs to reach the host's files. Everything else comes from the
// host's root over 9p.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { exec } from './exec.js';

/** Drivers for virtio-9p-pci, the 9p filesystem and overlayfs; modprobe adds their dependencies. */
export const BOOT_MODULES = ['virtio_pci', '9pnet_virtio', '9p', 'overlay'] as const;

export const BUSYBOX = '/bin/busybox';

/**
 * The modules to insmod, in order, from `modprobe --show-depends -a` output:
 * dependencies come before their users, each module once (a module shared by
 * two closures is listed twice by modprobe), built-ins skipped.
 */
export function parseShowDepends(text: string): string[] {
  const seen = new Set<string>();
  for (const line of text.split('\n')) {
    const m = /^insmod (\S+)/.exec(line.trim());
    if (m?.[1]) seen.add(m[1]);
    else if (line.trim() && !line.startsWith('builtin ')) throw new Error(`vm: unexpected modprobe --show-depends line: ${line}`);
  }
  return [...seen];
}

/** A module's file name in the initramfs: numbered in load order, decompressed. */
export function initramfsModuleName(index: number, path: string): string {
  return `${String(index).padStart(2, '0')}-${basename(path).replace(/\.(xz|zst|gz)$/, '')}`;
}

export interface InitramfsEntry {
  path: string;
  from?: string;
  text?: string;
  mode: number;
}

/** Every file of the initramfs: where it goes, and what it is made of. */
export function initramfsEntries(modules: readonly string[], init: string): InitramfsEntry[] {
  const names = modules.map((m, i) => initramfsModuleName(i, m));
  return [
    { path: 'bin/busybox', from: BUSYBOX, mode: 0o755 },
    { path: 'init', from: init, mode: 0o755 },
    ...modules.map((m, i) => ({ path: `modules/${names[i]}`, from: m, mode: 0o644 })),
    { path: 'modules/order', text: names.map((n) => `${n}\n`).join(''), mode: 0o644 },
  ];
}

/** The module closure of BOOT_MODULES for the kernel extracted under root. */
export async function bootModules(root: string, kver: string): Promise<string[]> {
  return parseShowDepends(await exec(['modprobe', '-d', root, '-S', kver, '--show-depends', '-a', ...BOOT_MODULES], { timeoutMs: 30_000 }));
}

/** Writes the initramfs (a newc cpio archive, uncompressed: qemu loads it from memory) to out. */
export function buildInitramfs(entries: readonly InitramfsEntry[], out: string): void {
  const stage = mkdtempSync(join(tmpdir(), 'bpfproxy-vm-initramfs-'));
  try {
    for (const e of entries) {
      const dest = join(stage, e.path);
      mkdirSync(join(dest, '..'), { recursive: true });
      if (e.text !== undefined) writeFileSync(dest, e.text);
      else if (e.from && /\.(xz|zst|gz)$/.test(e.from)) writeFileSync(dest, decompress(e.from));
      else if (e.from) copyFileSync(e.from, dest);
      chmodSync(dest, e.mode);
    }
    // cpio wants the list on stdin, relative to the archive's root.
    execFileSync('sh', ['-c', `find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 > "$1"`, 'sh', out], { cwd: stage, stdio: ['ignore', 'inherit', 'inherit'] });
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

// busybox's insmod takes plain .ko files only (6.12's modules are .ko.xz).
function decompress(path: string): Buffer {
  const tool = path.endsWith('.xz') ? 'xz' : path.endsWith('.zst') ? 'zstd' : 'gzip';
  return execFileSync(tool, ['--decompress', '--stdout', path], { maxBuffer: 1 << 28 });
}
