// One JSON file per live lab under /run/bpfproxy-lab, written before the lab
// creates anything: whatever a crashed run leaves behind can be found again.
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RUN_ID_PATTERN } from './plan.js';

export const STATE_DIR = process.env.BPFPROXY_LAB_STATE_DIR ?? '/run/bpfproxy-lab';

export interface LabRecord {
  version: 1;
  runId: string;
  /** Owner process and its start time (a reused pid is not the owner). */
  pid: number;
  pidStart: string | null;
  createdAt: string;
  namespaces: string[];
  /** Leaves first, the lab's cgroup root last. */
  cgroups: string[];
  cgroupRoot: string;
  /** The lab's bpffs directory; node directories live inside it. */
  bpffsRoot: string;
  bpffsDirs: string[];
}

export const statePath = (runId: string): string => join(STATE_DIR, `${runId}.json`);

export function writeRecord(record: LabRecord): void {
  mkdirSync(STATE_DIR, { recursive: true, mode: 0o700 });
  const path = statePath(record.runId);
  writeFileSync(`${path}.tmp`, JSON.stringify(record, null, 2) + '\n', { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}

export function removeRecord(runId: string): void {
  rmSync(statePath(runId), { force: true });
}

export function recordExists(runId: string): boolean {
  try {
    readFileSync(statePath(runId));
    return true;
  } catch {
    return false;
  }
}

/** Every readable record; a file that does not parse is reported, not guessed at. */
export function readRecords(): { records: LabRecord[]; unreadable: string[] } {
  let files: string[];
  try {
    files = readdirSync(STATE_DIR).filter((f) => f.endsWith('.json'));
  } catch {
    return { records: [], unreadable: [] };
  }
  const records: LabRecord[] = [];
  const unreadable: string[] = [];
  for (const f of files) {
    const path = join(STATE_DIR, f);
    try {
      records.push(parseRecord(JSON.parse(readFileSync(path, 'utf8')) as unknown, path));
    } catch (err) {
      unreadable.push(`${path}: ${(err as Error).message}`);
    }
  }
  return { records, unreadable };
}

function parseRecord(v: unknown, where: string): LabRecord {
  const o = v as Partial<Record<keyof LabRecord, unknown>> | null;
  const strings = (x: unknown, field: string): string[] => {
    if (!Array.isArray(x) || !x.every((s) => typeof s === 'string')) throw new Error(`${where}: ${field} must be a list of strings`);
    return x as string[];
  };
  if (!o || o.version !== 1) throw new Error(`${where}: version must be 1`);
  if (typeof o.runId !== 'string' || !RUN_ID_PATTERN.test(o.runId)) throw new Error(`${where}: runId must be 6 hex digits`);
  if (typeof o.pid !== 'number' || !Number.isInteger(o.pid)) throw new Error(`${where}: pid must be an integer`);
  if (typeof o.cgroupRoot !== 'string' || typeof o.bpffsRoot !== 'string') throw new Error(`${where}: cgroupRoot and bpffsRoot must be strings`);
  return {
    version: 1,
    runId: o.runId,
    pid: o.pid,
    pidStart: typeof o.pidStart === 'string' ? o.pidStart : null,
    createdAt: typeof o.createdAt === 'string' ? o.createdAt : '',
    namespaces: strings(o.namespaces, 'namespaces'),
    cgroups: strings(o.cgroups, 'cgroups'),
    cgroupRoot: o.cgroupRoot,
    bpffsRoot: o.bpffsRoot,
    bpffsDirs: strings(o.bpffsDirs, 'bpffsDirs'),
  };
}
