// Connected UDP sockets off removed backends, as Cilium does it.
//
// The socket hooks translate a connected UDP socket once, at connect(); the
// kernel then sends all its datagrams to that backend, whatever the maps say
// later (unconnected sockets are different: sendmsg picks again per datagram,
// and a removed backend is left at once). After a sync that removed UDP
// backends, this module writes the removed (service, backend) pairs into the
// iterator's map and runs bpf/sockdestroy.bpf.c, which destroys the connected
// sockets our connect hook sent to them: the application gets ECONNABORTED
// and reconnects, through the hook, to a live backend.
//
// A socket iterator sees the sockets of one network namespace: the one it is
// created in. Pods have their own, so each run visits the proxy's namespace
// and that of every process in the --cgroup-root tree (the sockets the hooks
// translate belong to those processes). A socket whose every owner left the
// cgroup, or a namespace no process of it is in, is not visited.
//
// Optional: it needs kernel BTF (CO-RE) and bpf_sock_destroy (6.5+). Where it
// cannot load, the proxy logs why once and serves without it: connected UDP
// sockets then keep a removed backend until they reconnect.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../../util/log.js';
import type { PlannedBackend, PlannedService } from '../../planner/types.js';
import { ipBytes } from '../../util/ip.js';
import { FAMILY_V4, FAMILY_V6 } from './layout.js';
import { checkObject } from './loader.js';
import { BpfMap } from './map.js';
import * as native from './native.js';
import { SK_DEAD_KEY, SOCK_DESTROY_OBJECT } from './objects.js';
import { probeSockDestroy, type BpfHost, processHost } from './probe.js';

const DEAD_MAP = 'bpx_sk_dead';
const PROGRAM = 'bpx_sock_destroy_udp';
const IPPROTO_UDP = 17;

/** A backend a sync took out of a UDP service. */
export interface RemovedBackend {
  svcId: number;
  svcKey: string;
  backend: PlannedBackend;
  family: 'IPv4' | 'IPv6';
}

/** The backends the socket hooks could have sent a connection to: ClusterIP (internal) and external frontends reached from this node (cluster). */
function hookBackends(svc: PlannedService): PlannedBackend[] {
  return svc.cluster === svc.internal ? svc.internal.backends : [...svc.internal.backends, ...svc.cluster.backends];
}

/** The UDP services among `keys`, as `applied` has them: what removedUdpBackends compares against. */
export function udpServices(applied: ReadonlyMap<string, PlannedService>, keys: Iterable<string>): Map<string, PlannedService> {
  const out = new Map<string, PlannedService>();
  for (const key of keys) {
    const svc = applied.get(key);
    if (svc?.protocol === 'UDP') out.set(key, svc);
  }
  return out;
}

/**
 * The UDP backends each of `keys` had in `before` and no longer has in
 * `after` (all of them when the service is gone). Pure. A service whose
 * sync failed keeps its old plan in `after`, so it removes nothing.
 */
export function removedUdpBackends(before: ReadonlyMap<string, PlannedService>, after: ReadonlyMap<string, PlannedService>, keys: Iterable<string>): RemovedBackend[] {
  const out: RemovedBackend[] = [];
  for (const key of keys) {
    const old = before.get(key);
    if (!old || old.protocol !== 'UDP') continue;
    const now = after.get(key);
    if (now === old) continue; // unchanged: the planner reuses the object
    const live = new Set<number>(now && now.id === old.id ? hookBackends(now).map((b) => b.id) : []);
    const seen = new Set<number>();
    for (const b of hookBackends(old)) {
      if (live.has(b.id) || seen.has(b.id)) continue;
      seen.add(b.id);
      out.push({ svcId: old.id, svcKey: key, backend: b, family: old.family });
    }
  }
  return out;
}

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

/**
 * The network namespaces to visit: "" (the proxy's own) and one
 * /proc/PID/ns/net path per other namespace a process of the cgroup tree is
 * in. Processes come and go while this reads: one that is gone is skipped.
 */
export function namespacesToVisit(cgroupRoot: string): string[] {
  const own = nsId('/proc/self/ns/net');
  const seen = new Set<string>(own ? [own] : []);
  const out = [''];
  const walk = (dir: string) => {
    let procs: string[] = [];
    try {
      procs = readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n');
    } catch {
      return; // removed meanwhile
    }
    for (const pid of procs) {
      if (!pid) continue;
      const path = `/proc/${pid}/ns/net`;
      const id = nsId(path);
      if (!id || seen.has(id)) continue;
      seen.add(id);
      out.push(path);
    }
    let children: string[] = [];
    try {
      children = readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
    } catch {
      return;
    }
    for (const c of children) walk(join(dir, c));
  };
  walk(cgroupRoot);
  return out;
}

function nsId(path: string): string | null {
  try {
    const st = statSync(path);
    return `${st.dev}:${st.ino}`;
  } catch {
    return null;
  }
}

export interface DestroyReport {
  /** Sockets destroyed. */
  destroyed: number;
  /** Sockets that matched but bpf_sock_destroy refused, with its errno. */
  failed: number;
  /** Network namespaces visited. */
  namespaces: number;
  /** Namespaces that could not be visited (gone meanwhile, or an error), with why. */
  skipped: string[];
}

export class SockDestroyer {
  private closed = false;

  private constructor(private readonly handle: native.ObjectHandle, private readonly progFd: number, private readonly dead: BpfMap, private readonly cgroupRoot: string) {}

  /**
   * Loads the iterator object into pinDir (it shares the sock object's
   * reverse-translation map by its pin, so load it after the datapath).
   * Null, with one log line saying why, when this kernel cannot run it.
   */
  static open(opts: { pinDir: string; cgroupRoot: string; objectDir: string; log: Logger; host?: BpfHost }): SockDestroyer | null {
    const { log } = opts;
    let libbpf = '';
    const without = (why: string) => {
      log.warn({ reason: why, ...(libbpf ? { libbpf } : {}) }, `connected UDP sockets will keep a removed backend until they reconnect: ${why}`);
      return null;
    };
    const problem = probeSockDestroy(opts.host ?? processHost);
    if (problem) return without(problem);
    const path = join(opts.objectDir, SOCK_DESTROY_OBJECT.file);
    const started = performance.now();
    let handle: native.ObjectHandle | null = null;
    try {
      const problems = checkObject(SOCK_DESTROY_OBJECT, path);
      if (problems.length > 0) return without(`${path} does not match this build (rebuild with \`make build\`): ${problems.join('; ')}`);
      try {
        handle = native.objectLoad(path, opts.pinDir, {}).handle;
      } finally {
        // The verifier's and libbpf's words go with the one line that says why it did not load.
        libbpf = native.takeLibbpfLog();
      }
      const progFd = native.objectProgFd(handle, PROGRAM);
      const dead = new BpfMap(DEAD_MAP, native.objectMapFd(handle, DEAD_MAP));
      log.info({ object: path, ms: Math.round(performance.now() - started) }, 'connected UDP sockets are moved off removed backends (socket iterator with bpf_sock_destroy)');
      return new SockDestroyer(handle, progFd, dead, opts.cgroupRoot);
    } catch (err) {
      if (handle) native.objectClose(handle);
      return without(`loading ${path} failed: ${(err as Error).message}`);
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

/** Runs the destroyer after a sync and says what it did; never fails the sync (a socket left behind is logged). */
export function moveConnectedUdp(destroyer: SockDestroyer | null, removed: readonly RemovedBackend[], log: Logger): void {
  if (!destroyer || removed.length === 0) return;
  const started = performance.now();
  try {
    const r = destroyer.run(removed);
    const fields = { removedBackends: removed.length, destroyed: r.destroyed, failed: r.failed, namespaces: r.namespaces, ms: Math.round((performance.now() - started) * 10) / 10 };
    if (r.failed > 0 || r.skipped.length > 0) log.warn({ ...fields, skipped: r.skipped }, 'some connected UDP sockets could not be moved off removed backends');
    else if (r.destroyed > 0) log.info(fields, 'closed connected UDP sockets of removed backends: their applications reconnect to live ones');
    else log.debug(fields, 'no connected UDP socket used the removed backends');
  } catch (err) {
    log.warn({ err, removedBackends: removed.length }, 'moving connected UDP sockets off removed backends failed: they keep them until they reconnect');
  }
}
