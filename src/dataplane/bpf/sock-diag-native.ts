// The thin edge over native/sockdiag.c (NETLINK_SOCK_DIAG), through koffi.
// Synchronous on purpose, like the iterator's call: bpx_sockdiag_open enters
// a pod's network namespace on the calling thread and comes back before
// returning; the socket it returns keeps seeing that namespace.
import { createRequire } from 'node:module';
import { NATIVE_LIBRARY } from '../../util/paths.js';
import { BpfError, closeFd } from './native.js';

const require = createRequire(import.meta.url);
type Fn = (...args: unknown[]) => number;

let bound: ReturnType<typeof bind> | null = null;

function bind() {
  const koffi = require('koffi') as { load(path: string): { func(sig: string): unknown } };
  const shim = koffi.load(NATIVE_LIBRARY);
  const f = (sig: string) => shim.func(sig) as Fn;
  return {
    open: f('int bpx_sockdiag_open(const char *netns_path, void *err, size_t err_len)'),
    dump: f('int bpx_sockdiag_dump(int fd, int family, const char *targets, void *out, size_t out_len, _Out_ uint64_t *total, void *err, size_t err_len)'),
    destroy: f('int bpx_sockdiag_destroy(int fd, const char *sockets, void *out, size_t out_len, void *err, size_t err_len)'),
    probe: f('int bpx_sockdiag_probe(void *err, size_t err_len)'),
    encodeDump: f('int bpx_sockdiag_encode_dump(int family, const char *targets, uint32_t seq, void *out, size_t out_len)'),
    encodeDestroy: f('int bpx_sockdiag_encode_destroy(const char *socket, uint32_t seq, void *out, size_t out_len)'),
  };
}

const fns = () => (bound ??= bind());
const text = (buf: Buffer, len = buf.indexOf(0)) => buf.toString('utf8', 0, len < 0 ? buf.length : len);

/** A NETLINK_SOCK_DIAG socket of the namespace at netnsPath ("" for this process's). Throws BpfError. */
export function sockDiagOpen(netnsPath: string): number {
  const err = Buffer.alloc(512);
  const fd = fns().open(netnsPath, err, err.length);
  if (fd < 0) throw new BpfError('open sock_diag', fd, text(err) || undefined);
  return fd;
}

export const sockDiagClose = (fd: number): void => closeFd(fd);

/** Socket lines (sockdiag.h) of the connected UDP sockets of `family` whose peer is a target line. Throws BpfError. */
export function sockDiagDump(fd: number, family: 4 | 6, targets: string): string {
  let room = 64 * 1024;
  for (;;) {
    const out = Buffer.alloc(room);
    const err = Buffer.alloc(512);
    const total = [0n];
    const ret = fns().dump(fd, family, targets, out, out.length, total, err, err.length);
    const n = Number(total[0]);
    // The sockets outgrew the buffer: ask again with room for them and for some that came meanwhile.
    if (ret === -28 /* ENOSPC */ && room < n * 2) {
      room = n * 2;
      continue;
    }
    if (ret < 0) throw new BpfError('sock_diag dump', ret, text(err) || undefined);
    return out.toString('utf8', 0, n);
  }
}

/** Destroys each socket line; returns "cookie errno" per socket. Throws BpfError when a request could not be made. */
export function sockDiagDestroy(fd: number, sockets: string): string {
  const out = Buffer.alloc(Math.max(256, sockets.length));
  const err = Buffer.alloc(512);
  const ret = fns().destroy(fd, sockets, out, out.length, err, err.length);
  if (ret < 0) throw new BpfError('sock_diag destroy', ret, text(err) || undefined);
  return text(out);
}

/** Why this kernel cannot destroy UDP sockets over sock_diag, or null when it can. */
export function sockDiagProbe(): string | null {
  const err = Buffer.alloc(512);
  const ret = fns().probe(err, err.length);
  return ret === 0 ? null : text(err) || `sock_diag probe: error ${ret}`;
}

/** The dump request as sent (empty when no target is of the family). For tests. */
export function encodeDumpRequest(family: 4 | 6, targets: string, seq: number): Buffer {
  const out = Buffer.alloc(128 * 1024);
  const n = fns().encodeDump(family, targets, seq, out, out.length);
  if (n < 0) throw new BpfError('encode sock_diag dump', n);
  return out.subarray(0, n);
}

/** The SOCK_DESTROY request for a socket line, as sent. For tests. */
export function encodeDestroyRequest(socket: string, seq: number): Buffer {
  const out = Buffer.alloc(256);
  const n = fns().encodeDestroy(socket, seq, out, out.length);
  if (n < 0) throw new BpfError('encode sock_diag destroy', n);
  return out.subarray(0, n);
}
