// Which way the running proxy moves connected UDP sockets off removed
// backends, for `bpfproxy status`: a small JSON file beside the state file
// (same directory, same name stem, so a lab's teardown removes it with the
// state file). The state file's writer knows nothing of it; status shows it
// only when the pid matches the state file's, so a file from an earlier run
// of another mode says nothing.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { statePathFor } from '../state-file.js';

export type UdpSocketPath = 'iterator' | 'sock-diag' | 'none';

export interface UdpPathRecord {
  pid: number;
  path: UdpSocketPath;
  /** One line for an operator: the way chosen, or why there is none. */
  detail: string;
}

/** The record of the proxy whose state file is statePath. */
export function udpPathRecordFor(statePath: string): string {
  return `${statePath.replace(/\.msgpack$/, '')}.udp-sockets.json`;
}

/** Writes the record of the proxy pinning under pinDir; an error is returned, not thrown (status is not worth a failed start). */
export function writeUdpPathRecord(pinDir: string, rec: UdpPathRecord, file = udpPathRecordFor(statePathFor(pinDir))): Error | null {
  try {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(`${file}.tmp`, JSON.stringify(rec));
    renameSync(`${file}.tmp`, file);
    return null;
  } catch (err) {
    return err as Error;
  }
}

export function readUdpPathRecord(file: string): UdpPathRecord | null {
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as Partial<UdpPathRecord>;
    return typeof r.pid === 'number' && typeof r.path === 'string' && typeof r.detail === 'string' ? (r as UdpPathRecord) : null;
  } catch {
    return null;
  }
}
