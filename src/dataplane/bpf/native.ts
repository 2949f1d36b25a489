// FFI to libbpf and to our shim (native/bpfproxy.c), through koffi. Thin on
// purpose: every call returns what the C returns; errors become BpfError with
// the step that failed and libbpf's text for the errno.
import { createRequire } from 'node:module';
import { NATIVE_LIBRARY } from '../../util/paths.js';

// koffi ships as CommonJS.
const require = createRequire(import.meta.url);
// `async`: the same call on a libuv worker thread, the last argument a (err, result) callback.
type KoffiFn = ((...args: unknown[]) => unknown) & { async(...args: unknown[]): void };
interface KoffiLib { func(sig: string): KoffiFn }
interface Koffi { load(path: string): KoffiLib; opaque(name: string): unknown; pointer(t: unknown): unknown }
const koffi = require('koffi') as Koffi;

export class BpfError extends Error {
  constructor(
    readonly step: string,
    readonly errno: number,
    detail?: string,
  ) {
    super(`${step}: ${detail ?? strerror(errno)}`);
    this.name = 'BpfError';
  }
}

/** An opaque `struct bpf_object *`. */
export type ObjectHandle = { readonly __brand: 'bpf_object' };

let bound: ReturnType<typeof bind> | null = null;

function bind() {
  koffi.opaque('bpf_object');
  const shim = koffi.load(NATIVE_LIBRARY);
  const libbpf = koffi.load('libbpf.so.1');
  const libc = koffi.load('libc.so.6');
  return {
    objectLoad: shim.func('bpf_object *bpx_object_load(const char *path, const char *pin_dir, const char *sizes, void *notes, size_t notes_len, void *err, size_t err_len)'),
    objectOpen: shim.func('bpf_object *bpx_object_open(const char *path, void *err, size_t err_len)'),
    objectClose: shim.func('void bpx_object_close(bpf_object *obj)'),
    objectMapFd: shim.func('int bpx_object_map_fd(bpf_object *obj, const char *name)'),
    objectProgFd: shim.func('int bpx_object_prog_fd(bpf_object *obj, const char *name)'),
    objectPrograms: shim.func('int bpx_object_programs(bpf_object *obj, void *out, size_t out_len)'),
    btfStruct: shim.func('int bpx_btf_struct(bpf_object *obj, const char *name, void *out, size_t out_len)'),
    btfEnum: shim.func('int bpx_btf_enum(bpf_object *obj, const char *name, void *out, size_t out_len)'),
    logTake: shim.func('size_t bpx_log_take(void *out, size_t out_len)'),
    cgroupLink: shim.func('int bpx_cgroup_link(int prog_fd, const char *cgroup, int attach_type, const char *link_path, void *err, size_t err_len)'),
    mapInfo: shim.func('int bpx_map_info(int fd, void *out)'),
    updateBatch: shim.func('int bpx_map_update_batch(int fd, void *keys, void *values, void *count, uint64_t flags)'),
    deleteBatch: shim.func('int bpx_map_delete_batch(int fd, void *keys, void *count)'),
    dump: shim.func('int bpx_map_dump(int fd, void *keys, void *values, uint32_t max, void *count)'),
    dumpFp: shim.func('int bpx_map_dump_fp(int fd, void *keys, void *values, uint32_t max, void *count, void *fp)'),
    possibleCpus: shim.func('int bpx_num_possible_cpus(void)'),
    flatAdopt: shim.func('uint32_t bpx_flat_adopt(void *keys, uint32_t kw, void *values, uint32_t vw, void *owners, uint32_t n, void *buckets, uint32_t mask, void *used, void *fp)'),
    adviseHuge: shim.func('int bpx_advise_huge(void *p, size_t len)'),
    flatCountRefs: shim.func('void bpx_flat_count_refs(void *words, uint32_t stride, uint32_t off, uint32_t n, void *keys, uint32_t kw, void *buckets, uint32_t mask, void *refs)'),
    testRun: shim.func('int bpx_prog_test_run(int prog_fd, void *data_in, uint32_t size_in, void *data_out, uint32_t size_out, uint32_t repeat, void *out)'),
    testRunLive: shim.func('int bpx_prog_test_run_live(int prog_fd, void *data_in, uint32_t size_in, uint32_t repeat, uint32_t batch_size, _Out_ uint64_t *wall_ns)'),
    update: libbpf.func('int bpf_map_update_elem(int fd, void *key, void *value, uint64_t flags)'),
    lookup: libbpf.func('int bpf_map_lookup_elem(int fd, void *key, void *value)'),
    delete: libbpf.func('int bpf_map_delete_elem(int fd, void *key)'),
    objGet: libbpf.func('int bpf_obj_get(const char *path)'),
    strerror: libbpf.func('int libbpf_strerror(int err, void *buf, size_t size)'),
    close: libc.func('int close(int fd)'),
    // Device hooks and the loader's records (native/attach.c).
    xdpLink: shim.func('int bpx_xdp_link(int prog_fd, int ifindex, int mode, int keep_mode, const char *link_path, _Out_ int *mode_out, void *err, size_t err_len)'),
    tcxLink: shim.func('int bpx_tcx_link(int prog_fd, int ifindex, int egress, const char *link_path, void *err, size_t err_len)'),
    tcFilter: shim.func('int bpx_tc_filter(int prog_fd, int ifindex, int egress, uint32_t handle, uint32_t priority, _Out_ uint32_t *prog_id, void *err, size_t err_len)'),
    tcFilterRemove: shim.func('int bpx_tc_filter_remove(int ifindex, int egress, uint32_t handle, uint32_t priority)'),
    pinnedLinkInfo: shim.func('int bpx_pinned_link_info(const char *link_path, void *out)'),
    linkDetachPinned: shim.func('int bpx_link_detach_pinned(const char *link_path)'),
    stateMap: shim.func('int bpx_state_map(const char *path, const char *name, uint32_t key_size, uint32_t value_size, uint32_t max_entries, void *err, size_t err_len)'),
    objectPinnedMaps: shim.func('int bpx_object_pinned_maps(bpf_object *obj, void *out, size_t out_len)'),
    iterRun: shim.func('int bpx_iter_run(int prog_fd, const char *netns_path, void *out, size_t out_len, _Out_ uint64_t *total, void *err, size_t err_len)'),
    ifNameToIndex: libc.func('unsigned int if_nametoindex(const char *name)'),
    ifIndexToName: libc.func('char *if_indextoname(unsigned int ifindex, void *buf)'),
  };
}

function fns() {
  bound ??= bind();
  return bound;
}

function cstr(buf: Buffer): string {
  const end = buf.indexOf(0);
  return buf.toString('utf8', 0, end < 0 ? buf.length : end);
}

export function strerror(errno: number): string {
  const buf = Buffer.alloc(256);
  fns().strerror(-Math.abs(errno), buf, buf.length);
  return cstr(buf) || `errno ${Math.abs(errno)}`;
}

/** libbpf's warnings and verifier output since the last call. */
export function takeLibbpfLog(): string {
  const buf = Buffer.alloc(64 * 1024);
  fns().logTake(buf, buf.length);
  return cstr(buf).trim();
}

export interface LoadedObject {
  handle: ObjectHandle;
  notes: string[];
}

export function objectLoad(path: string, pinDir: string, sizes: Record<string, number>): LoadedObject {
  const notes = Buffer.alloc(4096);
  const err = Buffer.alloc(1024);
  const spec = Object.entries(sizes).map(([k, v]) => `${k}=${v}`).join(',');
  const h = fns().objectLoad(path, pinDir, spec, notes, notes.length, err, err.length) as ObjectHandle | null;
  if (!h) throw new BpfError(`load BPF object ${path}`, 0, cstr(err) || 'failed');
  return { handle: h, notes: cstr(notes).split(';').map((s) => s.trim()).filter(Boolean) };
}

/** Opens an object without loading it (reading its BTF needs no privileges). */
export function objectOpen(path: string): ObjectHandle {
  const err = Buffer.alloc(1024);
  const h = fns().objectOpen(path, err, err.length) as ObjectHandle | null;
  if (!h) throw new BpfError(`open BPF object ${path}`, 0, cstr(err) || 'failed');
  return h;
}

export function objectClose(h: ObjectHandle): void {
  fns().objectClose(h);
}

export function objectMapFd(h: ObjectHandle, name: string): number {
  const fd = fns().objectMapFd(h, name) as number;
  if (fd < 0) throw new BpfError(`find map ${name}`, fd);
  return fd;
}

export function objectProgFd(h: ObjectHandle, name: string): number {
  const fd = fns().objectProgFd(h, name) as number;
  if (fd < 0) throw new BpfError(`find program ${name}`, fd);
  return fd;
}

/** Every program of the object with the attach type libbpf derived from its section. */
export function objectPrograms(h: ObjectHandle): { name: string; attachType: number }[] {
  const out = Buffer.alloc(4096);
  fns().objectPrograms(h, out, out.length);
  return cstr(out).split(';').filter(Boolean).map((p) => {
    const [name, t] = p.split('=') as [string, string];
    return { name, attachType: Number(t) };
  });
}

export function btfStruct(h: ObjectHandle, name: string): string | null {
  const out = Buffer.alloc(4096);
  return (fns().btfStruct(h, name, out, out.length) as number) === 0 ? cstr(out) : null;
}

export function btfEnum(h: ObjectHandle, name: string): string | null {
  const out = Buffer.alloc(8192);
  return (fns().btfEnum(h, name, out, out.length) as number) === 0 ? cstr(out) : null;
}

/** Returns true when an existing pinned link got the new program, false when a link was created. */
export function cgroupLink(progFd: number, cgroup: string, attachType: number, linkPath: string): boolean {
  const err = Buffer.alloc(1024);
  const ret = fns().cgroupLink(progFd, cgroup, attachType, linkPath, err, err.length) as number;
  if (ret < 0) throw new BpfError(`attach to cgroup ${cgroup}`, ret, cstr(err));
  return ret === 1;
}

export interface MapInfo { type: number; keySize: number; valueSize: number; maxEntries: number; flags: number; id: number }

export function mapInfo(fd: number): MapInfo {
  const out = new Uint32Array(6);
  const ret = fns().mapInfo(fd, out) as number;
  if (ret < 0) throw new BpfError('map info', ret);
  return { type: out[0]!, keySize: out[1]!, valueSize: out[2]!, maxEntries: out[3]!, flags: out[4]!, id: out[5]! };
}

/** Updates `count` entries; returns how many were applied and the errno that stopped it (0 when all were). */
export function updateBatch(fd: number, keys: Buffer, values: Buffer, count: number): { done: number; errno: number } {
  const c = new Uint32Array([count]);
  const ret = fns().updateBatch(fd, keys, values, c, 0n) as number;
  return { done: ret === 0 ? count : c[0]!, errno: ret };
}

export function deleteBatch(fd: number, keys: Buffer, count: number): { done: number; errno: number } {
  const c = new Uint32Array([count]);
  const ret = fns().deleteBatch(fd, keys, c) as number;
  return { done: ret === 0 ? count : c[0]!, errno: ret };
}

export function dump(fd: number, keys: Buffer, values: Buffer, max: number): number {
  const c = new Uint32Array(1);
  const ret = fns().dump(fd, keys, values, max, c) as number;
  if (ret < 0) throw new BpfError('dump map', ret);
  return c[0]!;
}

/** Like dump(), with the map's order-independent fingerprint (fingerprint.ts). */
export function dumpFingerprinted(fd: number, keys: Buffer, values: Buffer, max: number): { count: number; fp: [number, number] } {
  const c = new Uint32Array(1);
  const fp = new Uint32Array(2);
  const ret = fns().dumpFp(fd, keys, values, max, c, fp) as number;
  if (ret < 0) throw new BpfError('dump map', ret);
  return { count: c[0]!, fp: [fp[0]!, fp[1]!] };
}

/**
 * dumpFingerprinted() on a libuv worker thread (koffi's async call): the
 * event loop goes on while the kernel copies the map out (issue 6: ~100 ms
 * at 10,000 services x 10 endpoints, more under load). bpx_map_dump_fp keeps
 * its state on its stack and in the caller's buffers (the shim's one static,
 * the libbpf log buffer, is for loading), so it is safe off the main thread.
 * The buffers must not be touched until the promise settles. Measured here
 * (10,000 x 10, 2 loaded cores): the call returns in ~0.1 ms, and during a
 * 25-65 ms dump of bpx_be_v1 the loop's longest gap is 1-5 ms (16 ms on the
 * first call, when koffi starts its worker threads).
 */
export function dumpFingerprintedAsync(fd: number, keys: Buffer, values: Buffer, max: number): Promise<{ count: number; fp: [number, number] }> {
  const c = new Uint32Array(1);
  const fp = new Uint32Array(2);
  return new Promise((resolve, reject) => {
    fns().dumpFp.async(fd, keys, values, max, c, fp, (err: unknown, ret: number) => {
      // c and fp are referenced here, so they outlive the call.
      if (err) reject(err instanceof Error ? err : new Error(String(err)));
      else if (ret < 0) reject(new BpfError('dump map', ret));
      else resolve({ count: c[0]!, fp: [fp[0]!, fp[1]!] });
    });
  });
}

/**
 * A first sync's batch registered as the hash index over itself and
 * fingerprinted, in one pass (native/flat.c, bpx_flat_adopt): returns how
 * many entries were kept (a repeated key is kept once; later entries move down).
 */
export function flatAdopt(
  keys: Uint32Array, kw: number, values: Uint32Array, vw: number, owners: Uint32Array, n: number,
  buckets: Int32Array, mask: number, used: Uint8Array, fp: Uint32Array,
): number {
  if (keys.length < n * kw || values.length < n * vw || owners.length < n || used.length < n || fp.length < 2) throw new Error('flatAdopt: arrays shorter than the batch');
  return fns().flatAdopt(keys, kw, values, vw, owners, n, buckets, mask, used, fp) as number;
}

/** refs[slot]++ for the key at word `off` of each of n entries (`stride` words apart) found in the index (native/flat.c). */
export function flatCountRefs(
  words: Uint32Array, stride: number, off: number, n: number, keys: Uint32Array, kw: number, buckets: Int32Array, mask: number, refs: Int32Array,
): void {
  if (words.length < n * stride || refs.length * kw > keys.length) throw new Error('flatCountRefs: arrays shorter than the entries');
  fns().flatCountRefs(words, stride, off, n, keys, kw, buckets, mask, refs);
}

/** madvise(MADV_HUGEPAGE) over the whole 2 MB pages of a typed array's memory (native/flat.c); 0 or -errno. */
export function adviseHuge(a: Uint8Array | Uint32Array | Int32Array): number {
  return fns().adviseHuge(a, a.byteLength) as number;
}

export function possibleCpus(): number {
  const n = fns().possibleCpus() as number;
  if (n < 0) throw new BpfError('count possible CPUs', n);
  return n;
}

/** BPF_PROG_TEST_RUN through the shim; see testrun.ts for the typed API. */
export function testRun(progFd: number, dataIn: Buffer, dataOut: Buffer, repeat: number, out: Uint32Array): number {
  return fns().testRun(progFd, dataIn, dataIn.length, dataOut, dataOut.length, repeat, out) as number;
}

/** BPF_PROG_TEST_RUN in live-frames mode; see testrun.ts. */
export function testRunLive(progFd: number, dataIn: Buffer, repeat: number, batchSize: number, wallNs: number[]): number {
  return fns().testRunLive(progFd, dataIn, dataIn.length, repeat, batchSize, wallNs) as number;
}

export function update(fd: number, key: Buffer, value: Buffer, flags = 0n): number {
  return fns().update(fd, key, value, flags) as number;
}

export function lookup(fd: number, key: Buffer, value: Buffer): boolean {
  return (fns().lookup(fd, key, value) as number) === 0;
}

export function remove(fd: number, key: Buffer): number {
  return fns().delete(fd, key) as number;
}

export function objGet(path: string): number {
  return fns().objGet(path) as number;
}

export function closeFd(fd: number): void {
  fns().close(fd);
}

// ---- device hooks and the loader's records (native/attach.c) ----

/** XDP attach modes of bpx_xdp_link. */
export const XDP_NATIVE = 1;
export const XDP_GENERIC = 2;

/** Attaches through a pinned XDP link; `replaced` when a pinned link got the program. Throws BpfError (errno kept). */
export function xdpLink(progFd: number, ifindex: number, mode: number, keepMode: boolean, linkPath: string, step: string): { replaced: boolean; mode: number } {
  const err = Buffer.alloc(1024);
  const out = [0];
  const ret = fns().xdpLink(progFd, ifindex, mode, keepMode ? 1 : 0, linkPath, out, err, err.length) as number;
  if (ret < 0) throw new BpfError(step, ret, cstr(err) || undefined);
  return { replaced: ret === 1, mode: out[0]! };
}

export function tcxLink(progFd: number, ifindex: number, egress: boolean, linkPath: string, step: string): boolean {
  const err = Buffer.alloc(1024);
  const ret = fns().tcxLink(progFd, ifindex, egress ? 1 : 0, linkPath, err, err.length) as number;
  if (ret < 0) throw new BpfError(step, ret, cstr(err) || undefined);
  return ret === 1;
}

export function tcFilter(progFd: number, ifindex: number, egress: boolean, handle: number, priority: number, step: string): { replaced: boolean; progId: number } {
  const err = Buffer.alloc(1024);
  const progId = [0];
  const ret = fns().tcFilter(progFd, ifindex, egress ? 1 : 0, handle, priority, progId, err, err.length) as number;
  if (ret < 0) throw new BpfError(step, ret, cstr(err) || undefined);
  return { replaced: ret === 1, progId: progId[0]! };
}

/** 0, or -errno; a filter that is gone already counts as removed. */
export function tcFilterRemove(ifindex: number, egress: boolean, handle: number, priority: number): number {
  return fns().tcFilterRemove(ifindex, egress ? 1 : 0, handle, priority) as number;
}

export interface LinkInfo { id: number; progId: number; type: number; ifindex: number }

/** The pinned link's ids, or null when nothing is pinned there. */
export function pinnedLinkInfo(linkPath: string): LinkInfo | null {
  const out = new Uint32Array(4);
  if ((fns().pinnedLinkInfo(linkPath, out) as number) < 0) return null;
  return { id: out[0]!, progId: out[1]!, type: out[2]!, ifindex: out[3]! };
}

/** Detaches the link pinned at linkPath, even while other fds hold it; 0 or -errno. */
export function linkDetachPinned(linkPath: string): number {
  return fns().linkDetachPinned(linkPath) as number;
}

/** Opens (or creates and pins) a hash map of the loader's own records; returns its fd. */
export function stateMap(path: string, name: string, keySize: number, valueSize: number, maxEntries: number): number {
  const err = Buffer.alloc(1024);
  const fd = fns().stateMap(path, name, keySize, valueSize, maxEntries, err, err.length) as number;
  if (fd < 0) throw new BpfError(`open state map ${path}`, fd, cstr(err) || undefined);
  return fd;
}

/** Names of the object's maps pinned by name. */
export function objectPinnedMaps(h: ObjectHandle): string[] {
  const out = Buffer.alloc(8192);
  const ret = fns().objectPinnedMaps(h, out, out.length) as number;
  if (ret < 0) throw new BpfError('list pinned maps', ret);
  return cstr(out).split(';').filter(Boolean);
}

/**
 * Runs an iterator program to its end over the network namespace at
 * netnsPath ("" for this process's) and returns its text output (the first
 * 64 KiB; the rest is read and dropped). Throws BpfError.
 */
export function iterRun(progFd: number, netnsPath: string, maxBytes = 64 * 1024): string {
  const out = Buffer.alloc(maxBytes);
  const err = Buffer.alloc(1024);
  const total = [0n];
  const ret = fns().iterRun(progFd, netnsPath, out, out.length, total, err, err.length) as number;
  if (ret < 0) throw new BpfError('run iterator', ret, cstr(err) || undefined);
  const n = Number(total[0]);
  return out.toString('utf8', 0, Math.min(n, out.length));
}

/** The interface's index in this process's network namespace, 0 when there is none. */
export function ifNameToIndex(name: string): number {
  return fns().ifNameToIndex(name) as number;
}

/** The interface name of ifindex in this process's network namespace, null when there is none. */
export function ifIndexToName(ifindex: number): string | null {
  const buf = Buffer.alloc(16);
  return fns().ifIndexToName(ifindex, buf) === null ? null : cstr(buf);
}
