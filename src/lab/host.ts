// What the lab needs from the machine: where cgroup2 and bpffs are mounted, and
// a snapshot of the root namespace to prove the lab left it alone.
import { readFileSync, mkdirSync } from 'node:fs';
import { run, runSync, LabError } from './commands.js';

export const BPFFS_MOUNT = '/sys/fs/bpf';

interface Mount {
  source: string;
  target: string;
  fstype: string;
}

function mounts(): Mount[] {
  return readFileSync('/proc/mounts', 'utf8').split('\n').filter(Boolean).map((line) => {
    const [source = '', target = '', fstype = ''] = line.split(' ');
    // /proc/mounts escapes spaces and friends as octal.
    return { source, target: target.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))), fstype };
  });
}

/** The cgroup2 mount point (/sys/fs/cgroup on unified hosts, /sys/fs/cgroup/unified on hybrid ones). */
export function cgroup2Mount(): string {
  const m = mounts().find((x) => x.fstype === 'cgroup2');
  if (!m) throw new LabError('lab: no cgroup2 filesystem in /proc/mounts; cgroup programs need cgroup v2');
  return m.target;
}

export function isBpffsMounted(at: string = BPFFS_MOUNT): boolean {
  return mounts().some((m) => m.fstype === 'bpf' && m.target === at);
}

/** Mounts bpffs at /sys/fs/bpf when nothing is there yet. */
export function ensureBpffs(): string {
  if (!isBpffsMounted()) {
    mkdirSync(BPFFS_MOUNT, { recursive: true });
    runSync(['mount', '-t', 'bpf', 'bpf', BPFFS_MOUNT]);
  }
  return BPFFS_MOUNT;
}

/** What the root namespace looks like: interface names and routes, one string each. */
export interface RootSnapshot {
  links: string[];
  routes: string[];
}

export async function snapshotRoot(): Promise<RootSnapshot> {
  const [links, v4, v6] = await Promise.all([
    run(['ip', '-o', 'link', 'show']),
    run(['ip', '-4', 'route', 'show', 'table', 'all']),
    run(['ip', '-6', 'route', 'show', 'table', 'main']),
  ]);
  // "3: eth0@if2: <...> ..." -> "3: eth0@if2": link state and counters change on their own.
  const linkNames = links.split('\n').filter(Boolean).map((l) => l.split(':').slice(0, 2).join(':').trim());
  const routes = [...v4.split('\n'), ...v6.split('\n')].map((r) => r.trim()).filter(Boolean)
    // Kernel-managed and expiring details are not changes the lab made.
    .map((r) => r.replace(/\s+(expires|metric|pref|linkdown)\b.*$/, ''));
  return { links: linkNames.sort(), routes: routes.sort() };
}

/** Pid's start time in clock ticks since boot, or null when the pid does not exist: tells a live owner from a reused pid. */
export function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19] ?? null;
  } catch {
    return null;
  }
}
