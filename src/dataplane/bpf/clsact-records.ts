// The clsact filters the loader attached, recorded beside the pins. A clsact
// filter is not a link: it outlives every fd and nothing in bpffs says it is
// there, so cleanup learns from this record what to remove.
//
// The record is a pinned hash map, not a file: bpffs refuses regular files
// (EPERM, measured), and the pin directory is the one place that lives exactly
// as long as the datapath does (a DaemonSet mounts the host's bpffs; a file in
// the container's /run would vanish with the container while the filters stay).
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BpfMap } from './map.js';
import * as native from './native.js';

export const CLSACT_RECORDS = 'bpx_clsact_filters';

// key: ifindex u32, egress u32. value: netns inode u64, handle u32, priority u32, ifname char[16].
const KEY_SIZE = 8;
const VALUE_SIZE = 32;
const MAX_RECORDS = 1024;

export interface ClsactRecord {
  ifindex: number;
  egress: boolean;
  /** Inode of the network namespace the ifindex belongs to. */
  netns: bigint;
  handle: number;
  priority: number;
  ifname: string;
}

/** This process's network namespace (its /proc/self/ns/net inode). */
export function currentNetns(): bigint {
  return statSync('/proc/self/ns/net', { bigint: true }).ino;
}

function key(ifindex: number, egress: boolean): Buffer {
  const k = Buffer.alloc(KEY_SIZE);
  k.writeUInt32LE(ifindex, 0);
  k.writeUInt32LE(egress ? 1 : 0, 4);
  return k;
}

function decode(k: Buffer, kOff: number, v: Buffer, vOff: number): ClsactRecord {
  const name = v.subarray(vOff + 16, vOff + 32);
  const end = name.indexOf(0);
  return {
    ifindex: k.readUInt32LE(kOff),
    egress: k.readUInt32LE(kOff + 4) === 1,
    netns: v.readBigUInt64LE(vOff),
    handle: v.readUInt32LE(vOff + 8),
    priority: v.readUInt32LE(vOff + 12),
    ifname: name.toString('utf8', 0, end < 0 ? 16 : end),
  };
}

/** The record map of pinDir, opened (created when absent) for the length of fn. */
function withRecords<T>(pinDir: string, fn: (fd: number) => T): T {
  const fd = native.stateMap(join(pinDir, CLSACT_RECORDS), CLSACT_RECORDS, KEY_SIZE, VALUE_SIZE, MAX_RECORDS);
  try {
    return fn(fd);
  } finally {
    native.closeFd(fd);
  }
}

export function putRecord(pinDir: string, r: ClsactRecord): void {
  const v = Buffer.alloc(VALUE_SIZE);
  v.writeBigUInt64LE(r.netns, 0);
  v.writeUInt32LE(r.handle, 8);
  v.writeUInt32LE(r.priority, 12);
  v.write(r.ifname.slice(0, 15), 16, 'utf8');
  withRecords(pinDir, (fd) => {
    const ret = native.update(fd, key(r.ifindex, r.egress), v);
    if (ret < 0) throw new native.BpfError(`record the clsact filter on ${r.ifname}`, ret);
  });
}

/** The recorded filter of this device and direction, if any. */
export function findRecord(pinDir: string, ifindex: number, egress: boolean): ClsactRecord | null {
  if (!existsSync(join(pinDir, CLSACT_RECORDS))) return null;
  return withRecords(pinDir, (fd) => {
    const k = key(ifindex, egress);
    const v = Buffer.alloc(VALUE_SIZE);
    return native.lookup(fd, k, v) ? decode(k, 0, v, 0) : null;
  });
}

export function deleteRecord(pinDir: string, ifindex: number, egress: boolean): void {
  if (!existsSync(join(pinDir, CLSACT_RECORDS))) return;
  withRecords(pinDir, (fd) => native.remove(fd, key(ifindex, egress)));
}

/** Every recorded filter; none when nothing was ever recorded. */
export function readRecords(pinDir: string): ClsactRecord[] {
  if (!existsSync(join(pinDir, CLSACT_RECORDS))) return [];
  return withRecords(pinDir, (fd) => {
    const d = new BpfMap(CLSACT_RECORDS, fd).dump();
    return Array.from({ length: d.count }, (_, i) => decode(d.keys, i * KEY_SIZE, d.values, i * d.valueStride));
  });
}
