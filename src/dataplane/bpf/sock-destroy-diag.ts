// The second way to move connected UDP sockets off removed backends, for
// kernels without bpf_sock_destroy (before 6.5, Debian 12's 6.1 among
// them): NETLINK_SOCK_DIAG, as `ss -K` does (native/sockdiag.c). Per network
// namespace: dump the connected UDP sockets whose peer is a removed backend
// (the kernel filters by destination), pick those the socket iterator would
// pick (sock-diag-select.ts, reading bpx_sk_rnat_v1 through its pin), and
// destroy them with SOCK_DESTROY: the application gets ECONNABORTED, as with
// the iterator.
import { join } from 'node:path';
import { BpfMap } from './map.js';
import * as native from './native.js';
import { parseSocketLines, rnatKey, rnatService, selectSockets, targetLines, type DiagSocket } from './sock-diag-select.js';
import { sockDiagClose, sockDiagDestroy, sockDiagDump, sockDiagOpen, sockDiagProbe } from './sock-diag-native.js';
import { namespacesToVisit, type DestroyReport, type RemovedBackend } from './udp-removed.js';

const RNAT_MAP = 'bpx_sk_rnat_v1';
const ENOENT = 2;

export class DiagPath {
  readonly name = 'sock_diag (SOCK_DESTROY)';
  private closed = false;

  private constructor(private readonly rnat: BpfMap, private readonly cgroupRoot: string) {}

  /** Probes the kernel (inet_diag, udp_diag, CONFIG_INET_DIAG_DESTROY) and opens the pinned reverse-translation map; why not, when either fails. */
  static open(opts: { pinDir: string; cgroupRoot: string; probe?: () => string | null }): { path: DiagPath } | { why: string } {
    const problem = (opts.probe ?? sockDiagProbe)();
    if (problem) return { why: problem };
    const pin = join(opts.pinDir, RNAT_MAP);
    const fd = native.objGet(pin);
    if (fd < 0) return { why: `cannot open ${pin} (the socket datapath's map, which names each socket's service): ${native.strerror(fd)}` };
    try {
      return { path: new DiagPath(new BpfMap(RNAT_MAP, fd), opts.cgroupRoot) };
    } catch (err) {
      native.closeFd(fd);
      return { why: `cannot read ${pin}: ${(err as Error).message}` };
    }
  }

  run(removed: readonly RemovedBackend[]): DestroyReport {
    const report: DestroyReport = { destroyed: 0, failed: 0, namespaces: 0, skipped: [] };
    if (this.closed || removed.length === 0) return report;
    const targets = targetLines(removed);
    const anyV4 = removed.some((r) => r.family === 'IPv4');
    const serviceOf = (cookie: bigint, peer: Parameters<typeof rnatKey>[1]) => {
      const v = this.rnat.lookup(rnatKey(cookie, peer));
      return v ? rnatService(v) : 0;
    };
    const namespaces = namespacesToVisit(this.cgroupRoot);
    report.namespaces = namespaces.length;
    for (const ns of namespaces) {
      let fd = -1;
      try {
        fd = sockDiagOpen(ns);
        // IPv6 sockets too when only IPv4 backends left: an IPv4-mapped peer is one.
        const sockets: DiagSocket[] = [
          ...(anyV4 ? parseSocketLines(sockDiagDump(fd, 4, targets)) : []),
          ...parseSocketLines(sockDiagDump(fd, 6, targets)),
        ];
        const doomed = selectSockets(sockets, removed, serviceOf);
        if (doomed.length === 0) continue;
        for (const line of sockDiagDestroy(fd, doomed.map((d) => d.socket.line).join('\n')).split('\n')) {
          const errno = Number(line.split(' ')[1] ?? 'NaN');
          if (errno === 0) report.destroyed++;
          // ENOENT: closed (or reconnected) between the dump and the request, which is the goal.
          else if (errno !== ENOENT && !Number.isNaN(errno)) report.failed++;
        }
      } catch (err) {
        report.skipped.push(`${ns || 'own'}: ${(err as Error).message}`);
      } finally {
        if (fd >= 0) sockDiagClose(fd);
      }
    }
    return report;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    native.closeFd(this.rnat.fd);
  }
}
