// `bpfproxy status` says how the running proxy moves connected UDP sockets
// off removed backends, from the record the proxy wrote at start, and says
// nothing from a record an earlier run (another pid, another mode) left.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { udpPathRecordFor } from '../../../src/dataplane/bpf/udp-path-record.js';
import type { NodeState } from '../../../src/dataplane/state-file.js';
import { formatStatus, readStatus } from '../../../src/cli/commands/status.js';

describe('bpfproxy status: the UDP socket line', () => {
  let dir = '';
  let statePath = '';
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'bpfproxy-status-udp-'));
    statePath = join(dir, 'node.msgpack');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const state = (mode: string, pid: number) => ({
    format: 1, version: 'v', commit: 'c', pid, node: 'n', mode, reason: `--proxy-mode ${mode}`, pinDir: join(dir, 'pins'),
    sync: { at: 0, ms: 1, full: true, generation: 1, upserts: 0, deletes: 0, failed: 0 }, counts: { services: 0, frontends: 0, backends: 0 },
    catalog: { services: [], nodes: [], backends: new Uint8Array() },
  }) as NodeState;
  const record = (pid: number, detail: string) => writeFileSync(udpPathRecordFor(statePath), JSON.stringify({ pid, path: 'sock-diag', detail }));
  const line = (text: string) => text.split('\n').find((l) => l.startsWith('UDP sockets:'));

  it('shows the way the proxy that wrote the state chose', () => {
    record(4242, 'connected UDP sockets are moved off removed backends (sock_diag (SOCK_DESTROY); socket iterator: kernel 6.1.0 is older than 6.5)');
    expect(line(formatStatus(readStatus(join(dir, 'pins'), statePath, state('bpf', 4242)), 0)))
      .toBe('UDP sockets:   connected UDP sockets are moved off removed backends (sock_diag (SOCK_DESTROY); socket iterator: kernel 6.1.0 is older than 6.5)');
  });

  it('ignores a record of another run or mode', () => {
    record(4242, 'connected UDP sockets are moved off removed backends (socket iterator (bpf_sock_destroy))');
    expect(line(formatStatus(readStatus(join(dir, 'pins'), statePath, state('bpf', 4343)), 0))).toBeUndefined();
    expect(line(formatStatus(readStatus(join(dir, 'pins'), statePath, state('nftables', 4242)), 0))).toBeUndefined();
  });
});
