// Removing a lab from its record, synchronously, so the same code serves
// teardown(), process exit handlers and the cleanup of crashed runs.
// Order: processes, pins, cgroups, namespaces, record.
import { existsSync, readFileSync, readdirSync, readlinkSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runSync, sleepSync, LabError } from './commands.js';
import { BPFFS_MOUNT, cgroup2Mount, processStartTime } from './host.js';
import { labDirName, netnsPath } from './plan.js';
import { readRecords, removeRecord, type LabRecord } from './state.js';
import { removeStateFilesUnder } from '../dataplane/state-file.js';

const KILL_WAIT_MS = 3_000;
const POLL_MS = 10;

/**
 * Removes everything the record names. Each step runs even when an earlier one
 * failed; the record is removed only when nothing failed, so a later cleanup
 * can retry. Throws a LabError listing what could not be removed.
 */
export function destroyLabSync(record: LabRecord): void {
  const errors: string[] = [];
  const step = (what: string, fn: () => void): void => {
    try {
      fn();
    } catch (err) {
      errors.push(`${what}: ${(err as Error).message}`);
    }
  };
  const expected = expectedPaths(record.runId);
  const cgroupRoot = record.cgroupRoot === expected.cgroupRoot ? record.cgroupRoot : null;
  if (!cgroupRoot) errors.push(`cgroupRoot ${record.cgroupRoot}: not ${expected.cgroupRoot}, left alone`);
  const bpffsRoot = record.bpffsRoot === expected.bpffsRoot ? record.bpffsRoot : null;
  if (!bpffsRoot) errors.push(`bpffsRoot ${record.bpffsRoot}: not ${expected.bpffsRoot}, left alone`);
  const nsPrefix = `bpx-${record.runId}-`;
  const namespaces = record.namespaces.filter((ns) => {
    const ok = ns.startsWith(nsPrefix) && /^[a-z0-9-]+$/.test(ns);
    if (!ok) errors.push(`namespace ${ns}: not a name of lab ${record.runId}, left alone`);
    return ok;
  });

  step('killing lab processes', () => killLabProcesses(cgroupRoot, namespaces));
  if (bpffsRoot) step(`removing ${bpffsRoot}`, () => rmSync(bpffsRoot, { recursive: true, force: true }));
  // The state files the proxies of its nodes wrote for `bpfproxy status` (keyed by their pin directories).
  if (bpffsRoot) step('removing the state files of its pin directories', () => removeStateFilesUnder(bpffsRoot));
  if (cgroupRoot) step(`removing cgroup ${cgroupRoot}`, () => removeCgroupTree(cgroupRoot));
  const existing = namespaces.filter((ns) => existsSync(netnsPath(ns)));
  if (existing.length > 0) {
    // One ip for all; -force keeps going past a failure, which stderr names.
    step('deleting namespaces', () => runSync(['ip', '-force', '-batch', '-'], { input: existing.map((ns) => `netns delete ${ns}\n`).join('') }));
  }
  if (errors.length > 0) throw new LabError(`lab ${record.runId}: teardown incomplete: ${errors.join('; ')}`);
  removeRecord(record.runId);
}

export interface CleanupReport {
  /** Labs whose owner was gone and that are now removed. */
  removed: string[];
  /** Labs whose owner still runs. */
  live: string[];
  errors: string[];
}

/** Removes labs whose owner process is dead (a crashed or killed run). Live labs are left alone. */
export function cleanupStaleLabs(): CleanupReport {
  const report: CleanupReport = { removed: [], live: [], errors: [] };
  const { records, unreadable } = readRecords();
  report.errors.push(...unreadable.map((u) => `unreadable lab record ${u}`));
  for (const record of records) {
    if (ownerAlive(record)) {
      report.live.push(record.runId);
      continue;
    }
    try {
      destroyLabSync(record);
      report.removed.push(record.runId);
    } catch (err) {
      report.errors.push((err as Error).message);
    }
  }
  return report;
}

export function ownerAlive(record: LabRecord): boolean {
  const start = processStartTime(record.pid);
  return start !== null && (record.pidStart === null || start === record.pidStart);
}

function expectedPaths(runId: string): { cgroupRoot: string; bpffsRoot: string } {
  return { cgroupRoot: join(cgroup2Mount(), labDirName(runId)), bpffsRoot: join(BPFFS_MOUNT, labDirName(runId)) };
}

/**
 * Kills every process in the lab's cgroups and every process living in a lab
 * namespace (a namespace stays alive, addresses and all, while a process is in it).
 */
function killLabProcesses(cgroupRoot: string | null, namespaces: string[]): void {
  const killAll = (): number => {
    let found = 0;
    if (cgroupRoot && existsSync(cgroupRoot)) {
      const pids = cgroupPids(cgroupRoot);
      found += pids.length;
      if (pids.length > 0) {
        // cgroup.kill (5.14+) takes the whole subtree at once, forks in flight included.
        if (existsSync(join(cgroupRoot, 'cgroup.kill'))) writeFileSync(join(cgroupRoot, 'cgroup.kill'), '1');
        else pids.forEach(killPid);
      }
    }
    const inNamespaces = pidsInNamespaces(namespaces);
    found += inNamespaces.length;
    inNamespaces.forEach(killPid);
    return found;
  };
  const deadline = Date.now() + KILL_WAIT_MS;
  while (killAll() > 0) {
    if (Date.now() > deadline) throw new LabError(`processes still alive after ${KILL_WAIT_MS} ms`);
    sleepSync(POLL_MS);
  }
}

function killPid(pid: number): void {
  if (pid === process.pid) throw new LabError(`the lab owner (pid ${pid}) is inside a lab cgroup or namespace`);
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

function cgroupPids(dir: string): number[] {
  const own = readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  return [...own, ...subdirs(dir).flatMap((d) => cgroupPids(d))];
}

function subdirs(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => join(dir, e.name));
}

/** rmdir of a cgroup works only on an empty leaf: children first. */
function removeCgroupTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const child of subdirs(dir)) removeCgroupTree(child);
  const deadline = Date.now() + KILL_WAIT_MS;
  for (;;) {
    try {
      rmdirSync(dir);
      return;
    } catch (err) {
      // EBUSY while the last killed task is still leaving the cgroup.
      if ((err as NodeJS.ErrnoException).code !== 'EBUSY' || Date.now() > deadline) throw err;
      sleepSync(POLL_MS);
    }
  }
}

function pidsInNamespaces(namespaces: string[]): number[] {
  const inodes = new Set<string>();
  for (const ns of namespaces) {
    try {
      inodes.add(`net:[${statSync(netnsPath(ns)).ino}]`);
    } catch {
      // Not there (never created or already deleted).
    }
  }
  if (inodes.size === 0) return [];
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (inodes.has(readlinkSync(`/proc/${entry}/ns/net`))) pids.push(Number(entry));
    } catch {
      // Exited while we looked, or a kernel thread.
    }
  }
  return pids;
}
