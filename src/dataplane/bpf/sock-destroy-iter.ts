// The first way to move connected UDP sockets off removed backends (kernel
// 6.5+ with BTF): a socket iterator calling bpf_sock_destroy
// (bpf/sockdestroy.bpf.c). The control plane writes the removed (service,
// backend) pairs into the iterator's map and runs it once per network
// namespace; the program picks the sockets (its selection rule is the one
// sock-diag-select.ts follows for the other way) and destroys them.
import { join } from 'node:path';
import { ipBytes } from '../../util/ip.js';
import { FAMILY_V4, FAMILY_V6 } from './layout.js';
import { checkObject } from './loader.js';
import { BpfMap } from './map.js';
import * as native from './native.js';
import { SK_DEAD_KEY, SOCK_DESTROY_OBJECT } from './objects.js';
import { probeSockDestroy, type BpfHost, processHost } from './probe.js';
import { namespacesToVisit, type DestroyReport, type RemovedBackend } from './udp-removed.js';

const DEAD_MAP = 'bpx_sk_dead';
const PROGRAM = 'bpx_sock_destroy_udp';
const IPPROTO_UDP = 17;

/** Encodes a bpx_sk_dead_key at `off`. */
export function encodeDeadKey(r: RemovedBackend, buf: Buffer, off: number): void {
  const f = SK_DEAD_KEY.fields;
  if (r.family === 'IPv4') buf.writeUInt32BE(r.backend.v4 >>> 0, off + f.addr.offset);
  else buf.set(ipBytes(r.backend.address), off + f.addr.offset);
  buf.writeUInt16BE(r.backend.port, off + f.port.offset);
  buf[off + f.proto.offset] = IPPROTO_UDP;
  buf[off + f.family.offset] = r.family === 'IPv4' ? FAMILY_V4 : FAMILY_V6;
  buf.writeUInt32LE(r.svcId, off + f.svc_id.offset);
}

export class IteratorPath {
  readonly name = 'socket iterator (bpf_sock_destroy)';
  private closed = false;

  private constructor(private readonly handle: native.ObjectHandle, private readonly progFd: number, private readonly dead: BpfMap, private readonly cgroupRoot: string) {}

  /**
   * Loads the iterator object into pinDir (it shares the sock object's
   * reverse-translation map by its pin, so load it after the datapath).
   * Why it cannot, when this kernel cannot run it (libbpf's words apart).
   */
  static open(opts: { pinDir: string; cgroupRoot: string; objectDir: string; host?: BpfHost }): { path: IteratorPath; ms: number; object: string } | { why: string; libbpf?: string } {
    const problem = probeSockDestroy(opts.host ?? processHost);
    if (problem) return { why: problem };
    const path = join(opts.objectDir, SOCK_DESTROY_OBJECT.file);
    const started = performance.now();
    let libbpf = '';
    let handle: native.ObjectHandle | null = null;
    try {
      const problems = checkObject(SOCK_DESTROY_OBJECT, path);
      if (problems.length > 0) return { why: `${path} does not match this build (rebuild with \`make build\`): ${problems.join('; ')}` };
      try {
        handle = native.objectLoad(path, opts.pinDir, {}).handle;
      } finally {
        // The verifier's and libbpf's words go with the one line that says why it did not load.
        libbpf = native.takeLibbpfLog();
      }
      const progFd = native.objectProgFd(handle, PROGRAM);
      const dead = new BpfMap(DEAD_MAP, native.objectMapFd(handle, DEAD_MAP));
      return { path: new IteratorPath(handle, progFd, dead, opts.cgroupRoot), ms: Math.round(performance.now() - started), object: path };
    } catch (err) {
      if (handle) native.objectClose(handle);
      return { why: `loading ${path} failed: ${(err as Error).message}`, ...(libbpf ? { libbpf } : {}) };
    }
  }

  /**
   * Destroys the connected UDP sockets that the connect hook sent to a
   * removed backend, in every namespace to visit. In rounds of at most the
   * map's capacity; the map is empty again afterwards, also on failure.
   */
  run(removed: readonly RemovedBackend[]): DestroyReport {
    const report: DestroyReport = { destroyed: 0, failed: 0, namespaces: 0, skipped: [] };
    if (this.closed || removed.length === 0) return report;
    const namespaces = namespacesToVisit(this.cgroupRoot);
    report.namespaces = namespaces.length;
    const skipped = new Set<string>();
    const ks = this.dead.keySize;
    for (let start = 0; start < removed.length; start += this.dead.capacity) {
      const round = removed.slice(start, start + this.dead.capacity);
      const keys = Buffer.alloc(round.length * ks);
      round.forEach((r, i) => encodeDeadKey(r, keys, i * ks));
      try {
        const failures = this.dead.write(keys, Buffer.alloc(round.length * this.dead.valueSize, 1), round.length);
        if (failures.length > 0) throw new native.BpfError(`write ${DEAD_MAP}`, -failures[0]!.errno);
        for (const ns of namespaces) {
          try {
            // "cookie service errno" per socket; a line cut at the buffer's end is not counted.
            for (const line of native.iterRun(this.progFd, ns).split('\n')) {
              const fields = line.split(' ');
              if (fields.length !== 3) continue;
              if (fields[2] === '0') report.destroyed++;
              else report.failed++;
            }
          } catch (err) {
            skipped.add(`${ns || 'own'}: ${(err as Error).message}`);
          }
        }
      } finally {
        this.dead.remove(keys, round.length);
      }
    }
    report.skipped = [...skipped];
    return report;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    native.objectClose(this.handle);
  }
}
