// Loading the BPF objects, pinning their maps, attaching their programs, and
// removing all of it again (`bpfproxy cleanup`). One lifecycle, each step's
// failure named: open/load -> check layouts -> attach -> (run) -> close.
import { existsSync, mkdirSync, readdirSync, rmSync, statfsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { Logger } from '../../runtime/log.js';
import { BPF_OBJECT_DIR } from '../../util/paths.js';
import { checkConstants, checkLayouts } from './layout.js';
import { BpfMap } from './map.js';
import * as native from './native.js';
import { MAP_SIZE_SETTINGS } from './sizes.js';

const BPF_FS_MAGIC = 0xcafe4a11;

export interface LoadOptions {
  /** bpffs directory for pins (--bpf-fs). */
  pinDir: string;
  /** cgroup v2 directory the socket programs attach to (--cgroup-root). */
  cgroupRoot: string;
  /** By setting name (see MAP_SIZE_SETTINGS). */
  mapSizes: Readonly<Record<string, number>>;
  objectDir?: string;
  log: Logger;
}

export interface SockDatapath {
  maps: { fe: BpfMap; set: BpfMap; be: BpfMap; member: BpfMap; aff: BpfMap; skRnat: BpfMap; flow: BpfMap; stats: BpfMap };
  /** enum bpx_stat names by index, from the object's BTF. */
  statNames: string[];
  close(): void;
}

function isBpffs(path: string): boolean {
  try {
    return statfsSync(path).type === BPF_FS_MAGIC;
  } catch {
    return false;
  }
}

/** Makes sure `pinDir` lives on bpffs, mounting /sys/fs/bpf when it is not (like Cilium does). */
export function ensureBpffs(pinDir: string, log: Logger): void {
  if (existsSync(pinDir) && isBpffs(pinDir)) return;
  if (pinDir.startsWith('/sys/fs/bpf/') && !isBpffs('/sys/fs/bpf')) {
    log.info({ path: '/sys/fs/bpf' }, 'bpffs is not mounted: mounting it');
    execFileSync('mount', ['-t', 'bpf', 'bpf', '/sys/fs/bpf']);
  }
  mkdirSync(pinDir, { recursive: true });
  if (!isBpffs(pinDir)) throw new Error(`--bpf-fs ${pinDir} is not on a bpf filesystem (mount -t bpf bpf DIR)`);
}

export function loadSockDatapath(opts: LoadOptions): SockDatapath {
  const { pinDir, cgroupRoot, log } = opts;
  ensureBpffs(pinDir, log);
  mkdirSync(join(pinDir, 'links'), { recursive: true });
  const sizes: Record<string, number> = {};
  for (const [setting, n] of Object.entries(opts.mapSizes)) {
    for (const m of MAP_SIZE_SETTINGS[setting as keyof typeof MAP_SIZE_SETTINGS] ?? []) sizes[m] = n;
  }
  const path = join(opts.objectDir ?? BPF_OBJECT_DIR, 'sock.bpf.o');
  let loaded: native.LoadedObject;
  try {
    loaded = native.objectLoad(path, pinDir, sizes);
  } finally {
    const libbpfLog = native.takeLibbpfLog();
    if (libbpfLog) log.warn({ object: path, libbpf: libbpfLog }, 'libbpf said');
  }
  const h = loaded.handle;
  for (const note of loaded.notes) log.warn({ object: path }, note);
  try {
    const problems = [
      ...checkLayouts((name) => native.btfStruct(h, name)),
      ...checkConstants((name) => native.btfEnum(h, name)),
    ];
    if (problems.length > 0) {
      throw new Error(`${path} does not match this build's map codecs (rebuild with \`make build\`):\n  ${problems.join('\n  ')}`);
    }
    const statText = native.btfEnum(h, 'bpx_stat') ?? '';
    const statNames: string[] = [];
    for (const part of statText.split(';')) {
      const [name, value] = part.split('=') as [string, string];
      if (name && name !== 'BPX_STAT_MAX') statNames[Number(value)] = name.replace(/^BPX_STAT_/, '').toLowerCase();
    }
    const map = (name: string) => new BpfMap(name, native.objectMapFd(h, name));
    const maps = {
      fe: map('bpx_fe_v1'), set: map('bpx_set_v1'), be: map('bpx_be_v1'), member: map('bpx_member_v1'),
      aff: map('bpx_aff_v1'), skRnat: map('bpx_sk_rnat_v1'), flow: map('bpx_flow_v1'), stats: map('bpx_stats_v1'),
    };
    // Attach (or atomically replace) every program through a pinned link, so
    // the datapath outlives this process and a restart swaps programs in place.
    for (const prog of native.objectPrograms(h)) {
      const linkPath = join(pinDir, 'links', prog.name);
      const replaced = native.cgroupLink(native.objectProgFd(h, prog.name), cgroupRoot, prog.attachType, linkPath);
      log.debug({ program: prog.name, cgroup: cgroupRoot, replaced }, replaced ? 'program replaced in its link' : 'program attached');
    }
    return { maps, statNames, close: () => native.objectClose(h) };
  } catch (err) {
    native.objectClose(h);
    throw err;
  }
}

/**
 * Removes every pin under pinDir: links first (which detaches their
 * programs), then maps. Returns what it removed.
 */
export function cleanupPins(pinDir: string): string[] {
  if (!existsSync(pinDir)) return [];
  const removed: string[] = [];
  const links = join(pinDir, 'links');
  if (existsSync(links)) {
    for (const name of readdirSync(links)) {
      rmSync(join(links, name), { force: true });
      removed.push(join(links, name));
    }
  }
  for (const name of readdirSync(pinDir)) {
    rmSync(join(pinDir, name), { recursive: true, force: true });
    if (name !== 'links') removed.push(join(pinDir, name));
  }
  rmSync(pinDir, { recursive: true, force: true });
  return removed;
}
