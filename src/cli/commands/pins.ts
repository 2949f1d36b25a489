// Reading a pin directory (--bpf-fs) as it is, with no proxy running: each
// pinned map opened by its path (bpf_obj_get), its info and its entries
// counted through the same dump the dataplane uses; the pinned links and the
// recorded clsact filters. Read only: nothing here writes to a map.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CLSACT_RECORDS, readRecords, type ClsactRecord } from '../../dataplane/bpf/clsact-records.js';
import { BpfMap } from '../../dataplane/bpf/map.js';
import * as native from '../../dataplane/bpf/native.js';

/** BPF map types by number (uapi bpf.h), for display. */
const MAP_TYPES: Readonly<Record<number, string>> = {
  1: 'hash', 2: 'array', 5: 'percpu_hash', 6: 'percpu_array', 9: 'lru_hash', 10: 'lru_percpu_hash', 12: 'array_of_maps', 13: 'hash_of_maps',
};
/** BPF link types by number (uapi bpf.h). */
const LINK_TYPES: Readonly<Record<number, string>> = { 2: 'tracing', 3: 'cgroup', 6: 'xdp', 11: 'tcx', 13: 'netkit' };

export interface PinnedMap {
  name: string;
  type: string;
  capacity: number;
  /** Entries now; null for arrays (always full) and per-CPU maps where counting says nothing. */
  entries: number | null;
  id: number;
}

export interface PinnedAttachment {
  /** The pin's name under links/ (program name for cgroup links, `xdp-DEV`, `tcx-ingress-DEV`), or the clsact record. */
  name: string;
  kind: string;
  linkId: number | null;
  progId: number | null;
  ifindex: number | null;
}

/** Whether `dir` holds bpfproxy's pins (a map of ours, or links). */
export function hasPins(dir: string): boolean {
  try {
    return statSync(dir).isDirectory() && readdirSync(dir).some((n) => n.startsWith('bpx_') || n === 'links');
  } catch {
    return false;
  }
}

/** The pinned map `name` under `dir`, opened read-write by path (bpffs has no read-only open for maps here); closed by the caller. */
export function openPinned(dir: string, name: string): BpfMap | null {
  const path = join(dir, name);
  if (!existsSync(path)) return null;
  const fd = native.objGet(path);
  if (fd < 0) throw new native.BpfError(`open the pinned map ${path}`, fd);
  return new BpfMap(name, fd);
}

export function closeMap(m: BpfMap | null): void {
  if (m) native.closeFd(m.fd);
}

/** With the map open for the length of fn. */
export function withPinned<T>(dir: string, name: string, fn: (m: BpfMap | null) => T): T {
  const m = openPinned(dir, name);
  try {
    return fn(m);
  } finally {
    closeMap(m);
  }
}

const ARRAYS = new Set([2, 6, 12]);

/** Every map pinned directly under `dir`, with its fill. */
export function pinnedMaps(dir: string): PinnedMap[] {
  const out: PinnedMap[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (name === 'links' || name === CLSACT_RECORDS) continue;
    let m: BpfMap | null;
    try {
      m = openPinned(dir, name);
    } catch {
      continue; // a pin that is not a map (a program), or gone meanwhile
    }
    if (!m) continue;
    try {
      const { type, maxEntries, id } = m.info;
      const entries = ARRAYS.has(type) ? null : m.dump().count;
      out.push({ name, type: MAP_TYPES[type] ?? `type ${type}`, capacity: maxEntries, entries, id });
    } finally {
      closeMap(m);
    }
  }
  return out;
}

/** The pinned links and the recorded clsact filters. */
export function pinnedAttachments(dir: string): PinnedAttachment[] {
  const out: PinnedAttachment[] = [];
  const links = join(dir, 'links');
  if (existsSync(links)) {
    for (const name of readdirSync(links).sort()) {
      const info = native.pinnedLinkInfo(join(links, name));
      out.push({
        name: decodePinName(name),
        kind: info ? LINK_TYPES[info.type] ?? `link type ${info.type}` : 'unreadable',
        linkId: info?.id ?? null, progId: info?.progId ?? null, ifindex: info && info.ifindex > 0 ? info.ifindex : null,
      });
    }
  }
  let records: ClsactRecord[] = [];
  try {
    records = readRecords(dir);
  } catch {
    records = [];
  }
  for (const r of records) out.push({ name: `clsact-${r.egress ? 'egress' : 'ingress'}-${r.ifname}`, kind: 'clsact filter', linkId: null, progId: null, ifindex: r.ifindex });
  return out;
}

/** attach.ts escapes dots and percents in device names (bpffs refuses dots). */
function decodePinName(name: string): string {
  return name.replace(/%2e/g, '.').replace(/%25/g, '%');
}
