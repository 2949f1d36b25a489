// `bpfproxy status`: what the proxy of this --bpf-fs last did (from the state
// file) and what is in place now (from the pins): mode and why, version, last
// sync, counts, each pinned map's fill against its capacity, the attachments.
import { readFileSync } from 'node:fs';
import { lockPathFor } from '../../dataplane/bpf/pindir.js';
import { readUdpPathRecord, udpPathRecordFor, type UdpPathRecord } from '../../dataplane/bpf/udp-path-record.js';
import type { NodeState } from '../../dataplane/state-file.js';
import { hasPins, pinnedAttachments, pinnedMaps, type PinnedAttachment, type PinnedMap } from './pins.js';
import { age, formatTable } from './table.js';

export interface Status {
  pinDir: string;
  statePath: string;
  /** Null when the state file is missing (the maps are still read). */
  state: Omit<NodeState, 'catalog'> | null;
  /** The proxy that wrote the state holds the pin directory's lock now. */
  running: boolean;
  maps: PinnedMap[];
  attachments: PinnedAttachment[];
  /** How the proxy that wrote the state moves connected UDP sockets off removed backends (bpf mode). */
  udpSockets: UdpPathRecord | null;
}

/**
 * Whether the proxy that wrote the state runs: in bpf mode it holds the pin
 * directory's lock (the lock file names its holder); the rule modes take no
 * lock, so there the pid must be a live bpfproxy (not a reused pid).
 */
function isRunning(pinDir: string, pid: number, mode: string): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    if (mode === 'bpf') return Number.parseInt(readFileSync(lockPathFor(pinDir), 'utf8'), 10) === pid;
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('bpfproxy');
  } catch {
    return false;
  }
}

export function readStatus(pinDir: string, statePath: string, state: NodeState | null): Status {
  const pins = hasPins(pinDir);
  let header: Status['state'] = null;
  if (state) {
    const { catalog: _catalog, ...rest } = state;
    header = rest;
  }
  return {
    pinDir,
    statePath,
    state: header,
    running: state !== null && isRunning(pinDir, state.pid, state.mode),
    maps: pins ? pinnedMaps(pinDir) : [],
    attachments: pins ? pinnedAttachments(pinDir) : [],
    udpSockets: udpPathOf(statePath, state),
  };
}

/** The record of the proxy that wrote this state, not of an earlier run (another pid). */
function udpPathOf(statePath: string, state: NodeState | null): UdpPathRecord | null {
  const rec = state?.mode === 'bpf' ? readUdpPathRecord(udpPathRecordFor(statePath)) : null;
  return rec && rec.pid === state?.pid ? rec : null;
}

function percent(entries: number | null, capacity: number): string {
  if (entries === null || capacity === 0) return '-';
  const p = (entries / capacity) * 100;
  return `${p < 0.1 && entries > 0 ? '<0.1' : p.toFixed(1)}%`;
}

export function formatStatus(s: Status, nowMs: number): string {
  const out: string[] = [];
  const field = (k: string, v: string) => out.push(`${`${k}:`.padEnd(15)}${v}`);
  const st = s.state;
  if (st) {
    field('Mode', `${st.mode} (${st.reason})`);
    field('Version', `bpfproxy ${st.version} (commit ${st.commit})`);
    field('Proxy', s.running ? `running (pid ${st.pid})` : `not running (last pid ${st.pid}); the datapath keeps what it last programmed`);
    if (st.node) field('Node', st.node);
    const ago = age((nowMs - st.sync.at) / 1000);
    field('Last sync', `${new Date(st.sync.at).toISOString()} (${ago} ago), ${st.sync.full ? 'full' : 'partial'}, ${st.sync.ms.toFixed(1)} ms` +
      `${st.sync.failed > 0 ? `, ${st.sync.failed} service${st.sync.failed === 1 ? '' : 's'} kept their previous state (see the log)` : ''}`);
    field('Counts', `${st.counts.services} services, ${st.counts.frontends} frontends, ${st.counts.backends} backends`);
    if (s.udpSockets) field('UDP sockets', s.udpSockets.detail);
  } else {
    field('Mode', `unknown: no state file at ${s.statePath} (written by the proxy after each sync); the pins below are what is in place`);
  }
  field('Pins', s.pinDir);
  if (s.maps.length > 0) {
    out.push('');
    out.push(formatTable([
      { title: 'MAP', min: 20 }, { title: 'TYPE', min: 12 }, { title: 'ENTRIES', min: 8, right: true }, { title: 'CAPACITY', min: 9, right: true }, { title: 'FILL', min: 6, right: true },
    ], s.maps.map((m) => [m.name, m.type, m.entries === null ? '-' : String(m.entries), String(m.capacity), percent(m.entries, m.capacity)])).trimEnd());
  } else if (st && st.mode !== 'bpf') {
    out.push('', `No pinned maps: the ${st.mode} mode keeps its rules in the kernel (\`bpfproxy services\` lists what they serve).`);
  }
  if (s.attachments.length > 0) {
    out.push('');
    out.push(formatTable([
      { title: 'ATTACHMENT', min: 24 }, { title: 'KIND', min: 13 }, { title: 'LINK', min: 6, right: true }, { title: 'PROG', min: 6, right: true }, { title: 'IFINDEX', min: 7, right: true },
    ], s.attachments.map((a) => [a.name, a.kind, a.linkId === null ? '-' : String(a.linkId), a.progId === null ? '-' : String(a.progId), a.ifindex === null ? '-' : String(a.ifindex)])).trimEnd());
  } else if (s.maps.length > 0) {
    out.push('', 'No attachments: the programs are not attached anywhere (nothing is translated).');
  }
  return out.join('\n') + '\n';
}
