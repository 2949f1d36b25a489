// The pin directory (--bpf-fs) as something one proxy owns.
//
// Ownership and mode: a directory another user created, or one others may
// write to, lets that user unlink a map pin; after a restart the proxy then
// pinned a fresh map beside programs still using the old one (issue 12: 16
// programs attached instead of 8). So the directory is created root-owned
// (this process's user) with mode 0700, and one that is owned by another user
// or writable by group or others is refused with what to do about it.
//
// One proxy per directory: two proxies on one --bpf-fs pruned each other's
// services on every full sync. A lock cannot live in the pin directory: bpffs
// holds pins and directories, no regular files (open(O_CREAT) of one fails:
// EACCES measured here on 6.18, EPERM seen by a colleague). /sys/fs/bpf itself
// is mode 1777 here, so any user can pre-create a directory in it. So the lock is a file elsewhere, keyed by the pin
// directory's path: /run/bpfproxy/locks/<the path, percent-escaped>.lock.
// flock(2), not an O_EXCL pidfile: the kernel drops the lock when its holder
// dies however it dies (SIGKILL, OOM), so there is no stale lock to detect and
// no pid reuse to be fooled by. The holder writes its pid into the file, which
// the refusal quotes. a lock and an unlock through koffi cost about 11 us together, measured here.
// The file is removed on release; a taker checks that the file it locked is
// still the one at the path (same inode), so a removal racing a take cannot
// leave two holders.
import { closeSync, constants, fstatSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { NoFallbackError } from '../types.js';

// koffi ships as CommonJS; libc's flock needs no options struct, so no shim.
const require = createRequire(import.meta.url);
const koffi = require('koffi') as { load(path: string): { func(sig: string): unknown }; errno(): number };

export const LOCK_DIR = '/run/bpfproxy/locks';
const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;
const EWOULDBLOCK = 11;

let flockFn: ((fd: number, op: number) => number) | null = null;
function flock(fd: number, op: number): number {
  flockFn ??= koffi.load('libc.so.6').func('int flock(int fd, int operation)') as (fd: number, op: number) => number;
  return flockFn(fd, op);
}

/** Why a directory this proxy would trust is not safe to trust, or null. */
export function ownershipProblem(path: string, what: string): string | null {
  const st = statSync(path);
  const me = process.getuid?.() ?? 0;
  if (st.uid !== me) {
    return `${what} ${path} is owned by uid ${st.uid}, not by this process's user (uid ${me}): another user could remove its pins; remove it or chown it to uid ${me}`;
  }
  if ((st.mode & 0o022) !== 0) {
    return `${what} ${path} is writable by ${(st.mode & 0o020) !== 0 ? 'its group' : 'others'} (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}): others could remove its pins; chmod go-w it`;
  }
  return null;
}

/** Creates `dir` (and missing parents) with mode 0700, then checks it as ownershipProblem does; throws with the message. */
export function ensureOwnedDir(dir: string, what: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const problem = ownershipProblem(dir, what);
  if (problem) throw new Error(problem);
}

export interface PinDirLock {
  readonly path: string;
  release(): void;
}

/** The lock file for a pin directory: its absolute path, escaped into one file name. */
export function lockPathFor(pinDir: string, lockDir = LOCK_DIR): string {
  return join(lockDir, `${encodeURIComponent(resolve(pinDir))}.lock`);
}

/**
 * Takes the lock of `pinDir`, or throws naming the proxy that holds it.
 * Held until release() or the end of the process.
 */
export function lockPinDir(pinDir: string, lockDir = LOCK_DIR): PinDirLock {
  ensureOwnedDir(lockDir, 'lock directory');
  const path = lockPathFor(pinDir, lockDir);
  for (let attempt = 0; attempt < 3; attempt++) {
    const fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
    const ret = flock(fd, LOCK_EX | LOCK_NB);
    if (ret !== 0) {
      const errno = koffi.errno();
      closeSync(fd);
      if (errno !== EWOULDBLOCK) throw new Error(`lock ${path} for --bpf-fs ${pinDir}: flock failed (errno ${errno})`);
      const holder = readHolder(path);
      throw new NoFallbackError(`--bpf-fs ${pinDir} is in use by another bpfproxy${holder ? ` (pid ${holder})` : ''}: two proxies on one pin directory delete each other's services; give each its own --bpf-fs (lock ${path})`);
    }
    // The file may have been removed by a holder releasing between our open and flock: then it locks nothing.
    if (!sameFile(fd, path)) {
      closeSync(fd);
      continue;
    }
    ftruncateSync(fd, 0);
    writeSync(fd, `${process.pid}\n`, 0);
    let held = true;
    return {
      path,
      release() {
        if (!held) return;
        held = false;
        try {
          unlinkSync(path);
        } finally {
          flock(fd, LOCK_UN);
          closeSync(fd);
        }
      },
    };
  }
  throw new Error(`lock ${path} for --bpf-fs ${pinDir}: the lock file kept being replaced`);
}

function sameFile(fd: number, path: string): boolean {
  try {
    const a = fstatSync(fd);
    const b = statSync(path);
    return a.ino === b.ino && a.dev === b.dev;
  } catch {
    return false;
  }
}

function readHolder(path: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8'), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Whether `pinDir` holds anything an earlier run pinned (a map, or a link under links/). */
export function holdsPins(pinDir: string): boolean {
  let names: string[];
  try {
    names = readdirSync(pinDir);
  } catch {
    return false;
  }
  return names.some((n) => n !== 'links' || readdirSync(join(pinDir, n)).length > 0);
}

/** Why --cgroup-root cannot take the socket programs, before anything is loaded (the probe checked its filesystem). */
export function cgroupRootProblem(cgroupRoot: string): string | null {
  try {
    return statSync(cgroupRoot).isDirectory() ? null : `--cgroup-root ${cgroupRoot} is not a directory (a cgroup v2 directory is needed)`;
  } catch (err) {
    return `--cgroup-root ${cgroupRoot} cannot be used: ${(err as Error).message}`;
  }
}
