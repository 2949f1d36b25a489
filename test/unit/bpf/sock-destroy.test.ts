// Which (service, backend) pairs a sync hands to the UDP socket iterator, and
// how they are keyed: only UDP backends the socket hooks could have used,
// only those the service no longer has, and nothing for a failed sync.
import { describe, expect, it } from 'vitest';
import type { Logger } from '../../../src/util/log.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeDeadKey, FORCE_ENV, removedUdpBackends, SockDestroyer } from '../../../src/dataplane/bpf/sock-destroy.js';
import { readUdpPathRecord } from '../../../src/dataplane/bpf/udp-path-record.js';
import { SK_DEAD_KEY } from '../../../src/dataplane/bpf/objects.js';
import { probeSockDestroy, type BpfHost } from '../../../src/dataplane/bpf/probe.js';
import { frontend, plannedBackend, plannedService } from '../../helpers/planned.js';

const a = plannedBackend(1, '10.244.1.10', 53);
const b = plannedBackend(2, '10.244.1.11', 53);
const c = plannedBackend(3, '10.244.2.10', 53);
const udp = (id: number, backends = [a, b], extra: { localExternal?: typeof backends } = {}) =>
  plannedService({ id, backends, frontends: [frontend('ClusterIP', '10.96.0.53', 53)], protocol: 'UDP', ...extra });
const byKey = (...svcs: ReturnType<typeof udp>[]) => new Map(svcs.map((s) => [s.key, s]));
const pairs = (r: ReturnType<typeof removedUdpBackends>) => r.map((x) => `${x.svcId}/${x.backend.id}`);

describe('removedUdpBackends', () => {
  it('names each backend a UDP service lost, under the service it was reached through', () => {
    const before = udp(7, [a, b, c]);
    const after = udp(7, [b]);
    expect(pairs(removedUdpBackends(byKey(before), byKey(after), [before.key]))).toEqual(['7/1', '7/3']);
  });

  it('names every backend of a removed service, and none of an unchanged or grown one', () => {
    const gone = udp(7);
    const grown = { ...udp(8, [a, b, c]), key: 'default/s8:/IPv4' };
    expect(pairs(removedUdpBackends(byKey(gone, udp(8)), byKey(grown), [gone.key, grown.key]))).toEqual(['7/1', '7/2']);
  });

  it('ignores TCP services (a TCP socket hears of a dead backend by itself) and services not touched', () => {
    const tcp = { ...udp(7), protocol: 'TCP' as const };
    expect(removedUdpBackends(byKey(tcp), byKey({ ...udp(7, []), protocol: 'TCP' }), [tcp.key])).toEqual([]);
    expect(removedUdpBackends(byKey(udp(7)), byKey(udp(7, [])), [])).toEqual([]);
  });

  it('keeps a backend the service still reaches from this node through its cluster set', () => {
    // The external-only set is XDP's business; the socket hooks use internal and cluster.
    const before = udp(7, [a, b], { localExternal: [a] });
    const after = udp(7, [a], { localExternal: [a] });
    expect(pairs(removedUdpBackends(byKey(before), byKey(after), [before.key]))).toEqual(['7/2']);
  });

  it('names nothing when the sync kept the old plan (a failed write)', () => {
    const before = udp(7);
    expect(removedUdpBackends(byKey(before), byKey(before), [before.key])).toEqual([]);
  });
});

describe('encodeDeadKey', () => {
  it('writes address, port, protocol, family and service where bpx_sk_dead_key has them', () => {
    const buf = Buffer.alloc(SK_DEAD_KEY.size);
    encodeDeadKey({ svcId: 0x01020304, svcKey: 'k', backend: a, family: 'IPv4' }, buf, 0);
    expect([...buf]).toEqual([10, 244, 1, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 53, 17, 4, 4, 3, 2, 1]);
    const v6 = plannedBackend(9, 'fd00:244:1::10', 53);
    encodeDeadKey({ svcId: 1, svcKey: 'k', backend: v6, family: 'IPv6' }, buf, 0);
    expect(buf.subarray(0, 16).toString('hex')).toBe('fd000244000100000000000000000010');
    expect(buf[19]).toBe(6);
  });
});

describe('probeSockDestroy', () => {
  const host = (release: string, btf: boolean): BpfHost => ({ effectiveCaps: () => 0n, kernelRelease: () => release, fsType: (p) => (btf || p !== '/sys/kernel/btf/vmlinux' ? 1 : null) });

  it('names the missing kernel feature', () => {
    expect(probeSockDestroy(host('6.1.0-13-amd64', true))).toMatch(/older than 6\.5.*bpf_sock_destroy/);
    expect(probeSockDestroy(host('6.18.0', false))).toMatch(/no BTF/);
    expect(probeSockDestroy(host('6.5.0', true))).toBeNull();
  });
});

describe('SockDestroyer.open', () => {
  const host = (release: string): BpfHost => ({ effectiveCaps: () => 0n, kernelRelease: () => release, fsType: () => 1 });
  const logged = () => {
    const lines: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
    const at = (level: string) => (fields: Record<string, unknown>, msg: string) => lines.push({ level, msg, fields });
    return { lines, log: { warn: at('warn'), info: at('info'), debug: at('debug'), error: at('error') } as unknown as Logger };
  };
  const nowhere = { pinDir: '/nonexistent', cgroupRoot: '/nonexistent', objectDir: '/nonexistent', record: null };
  const noDiag = () => 'sock_diag cannot destroy UDP sockets: Operation not supported (CONFIG_INET_DIAG_DESTROY is not set)';

  it('serves without either way where neither works, saying both whys in one line', () => {
    const old = logged();
    expect(SockDestroyer.open({ ...nowhere, log: old.log, host: host('6.1.0-13-amd64'), sockDiagProbe: noDiag })).toBeNull();
    expect(old.lines.map((l) => [l.level, l.msg])).toEqual([['warn', expect.stringMatching(
      /keep a removed backend until they reconnect: kernel 6\.1\.0-13-amd64 is older than 6\.5.*; sock_diag: .*CONFIG_INET_DIAG_DESTROY is not set/)]]);
    const missing = logged();
    expect(SockDestroyer.open({ ...nowhere, log: missing.log, host: host('6.18.0'), sockDiagProbe: noDiag })).toBeNull();
    expect(missing.lines.map((l) => [l.level, l.msg])).toEqual([['warn', expect.stringMatching(/keep a removed backend until they reconnect: loading \/nonexistent\/sockdestroy\.bpf\.o failed/)]]);
  });

  it('falls back to sock_diag when the iterator cannot load, and needs the datapath\'s pinned map for it', () => {
    const l = logged();
    // The probe answers, but nothing is pinned under /nonexistent: that is said, not thrown.
    expect(SockDestroyer.open({ ...nowhere, log: l.log, host: host('6.1.0-13-amd64'), sockDiagProbe: () => null })).toBeNull();
    expect(l.lines.map((x) => x.msg)).toEqual([expect.stringMatching(/older than 6\.5.*; sock_diag: cannot open \/nonexistent\/bpx_sk_rnat_v1/)]);
  });

  it(`takes one way only when ${FORCE_ENV} names it, and ignores a value it does not know`, () => {
    const forced = logged();
    let probed = false;
    expect(SockDestroyer.open({ ...nowhere, log: forced.log, host: host('6.1.0-13-amd64'), force: 'iterator', sockDiagProbe: () => { probed = true; return null; } })).toBeNull();
    expect(probed).toBe(false);
    expect(forced.lines.map((x) => x.msg)).toEqual([expect.stringMatching(new RegExp(`older than 6\\.5.*; sock_diag: not tried \\(${FORCE_ENV}=iterator\\)`))]);
    const diagOnly = logged();
    expect(SockDestroyer.open({ ...nowhere, log: diagOnly.log, host: host('6.18.0'), force: 'sock-diag', sockDiagProbe: noDiag })).toBeNull();
    expect(diagOnly.lines.map((x) => x.msg)).toEqual([expect.stringMatching(new RegExp(`reconnect: not tried \\(${FORCE_ENV}=sock-diag\\); sock_diag: .*CONFIG_INET_DIAG_DESTROY`))]);
    const typo = logged();
    SockDestroyer.open({ ...nowhere, log: typo.log, host: host('6.1.0-13-amd64'), force: 'sockdiag', sockDiagProbe: noDiag });
    expect(typo.lines.map((x) => x.level)).toEqual(['warn', 'warn']);
    expect(typo.lines[0]!.msg).toMatch(new RegExp(`${FORCE_ENV} is neither iterator nor sock-diag: ignored`));
  });

  it('records the outcome for `bpfproxy status`, with its pid', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bpfproxy-udp-record-'));
    try {
      const record = join(dir, 'x.udp-sockets.json');
      SockDestroyer.open({ ...nowhere, record, log: logged().log, host: host('6.1.0-13-amd64'), sockDiagProbe: noDiag });
      expect(readUdpPathRecord(record)).toEqual({ pid: process.pid, path: 'none', detail: expect.stringMatching(/^connected UDP sockets will keep a removed backend until they reconnect: kernel 6\.1/) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
