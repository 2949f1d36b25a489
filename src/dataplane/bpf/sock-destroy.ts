// Connected UDP sockets off removed backends, as Cilium does it.
//
// The socket hooks translate a connected UDP socket once, at connect(); the
// kernel then sends all its datagrams to that backend, whatever the maps say
// later (unconnected sockets are different: sendmsg picks again per datagram,
// and a removed backend is left at once). After a sync that removed UDP
// backends, the connected sockets our connect hook sent to them are
// destroyed: the application gets ECONNABORTED and reconnects, through the
// hook, to a live backend.
//
// Two ways, chosen once at start by what loads and answers here:
//   1. a socket iterator calling bpf_sock_destroy (kernel 6.5+ with BTF;
//      sock-destroy-iter.ts): the program picks and destroys;
//   2. NETLINK_SOCK_DIAG's SOCK_DESTROY (CONFIG_INET_DIAG_DESTROY, older
//      kernels; sock-destroy-diag.ts): a dump filtered by destination, the
//      same pick in TypeScript (sock-diag-select.ts), one request per socket.
// Where neither works, the proxy logs once that connected UDP sockets keep a
// removed backend until they reconnect. The choice is logged once and shown
// by `bpfproxy status` (udp-path-record.ts). BPFPROXY_SOCK_DESTROY=iterator
// or =sock-diag forces one way (the lab runs its cases over both).
//
// A socket iterator, like a sock_diag socket, sees the sockets of one network
// namespace: the one it is created in. Pods have their own, so each run
// visits the proxy's namespace and that of every process in the
// --cgroup-root tree (the sockets the hooks translate belong to those
// processes). A socket whose every owner left the cgroup, or a namespace no
// process of it is in, is not visited.
import type { Logger } from '../../util/log.js';
import type { BpfHost } from './probe.js';
import { DiagPath } from './sock-destroy-diag.js';
import { IteratorPath } from './sock-destroy-iter.js';
import { writeUdpPathRecord, type UdpSocketPath } from './udp-path-record.js';
import type { DestroyReport, RemovedBackend } from './udp-removed.js';

export { encodeDeadKey } from './sock-destroy-iter.js';
export { namespacesToVisit, removedUdpBackends, udpServices, type DestroyReport, type RemovedBackend } from './udp-removed.js';

/** The test seam that forces one way on a kernel that has both. */
export const FORCE_ENV = 'BPFPROXY_SOCK_DESTROY';
const FORCIBLE = ['iterator', 'sock-diag'] as const;
type Forced = (typeof FORCIBLE)[number];

const KEEP = 'connected UDP sockets will keep a removed backend until they reconnect';

export interface SockDestroyerOptions {
  pinDir: string;
  cgroupRoot: string;
  objectDir: string;
  log: Logger;
  host?: BpfHost;
  /** One way only (FORCE_ENV by default); unset: the iterator, else sock_diag. */
  force?: string;
  /** The sock_diag probe (native by default): why not, or null. */
  sockDiagProbe?: () => string | null;
  /** Where `bpfproxy status` reads the choice; null: not recorded. Default: beside the state file. */
  record?: string | null;
}

export class SockDestroyer {
  private constructor(private readonly way: IteratorPath | DiagPath) {}

  /** Which way this proxy moves connected UDP sockets. */
  get path(): Exclude<UdpSocketPath, 'none'> {
    return this.way instanceof IteratorPath ? 'iterator' : 'sock-diag';
  }

  /**
   * The first way that works here (load the iterator after the datapath: it
   * shares the sock object's reverse-translation map by its pin). Null, with
   * one log line saying why, when neither does; one log line naming the way
   * otherwise.
   */
  static open(opts: SockDestroyerOptions): SockDestroyer | null {
    const { log } = opts;
    const forced = forcedWay(opts.force ?? process.env[FORCE_ENV], log);
    const record = (path: UdpSocketPath, detail: string) => {
      if (opts.record === null) return;
      const err = writeUdpPathRecord(opts.pinDir, { pid: process.pid, path, detail }, opts.record);
      if (err) log.debug({ err }, 'cannot record the UDP socket path for `bpfproxy status`');
    };

    let iteratorWhy = `not tried (${FORCE_ENV}=${forced ?? ''})`;
    let libbpf: string | undefined;
    if (forced !== 'sock-diag') {
      const it = IteratorPath.open(opts);
      if ('path' in it) {
        const detail = `connected UDP sockets are moved off removed backends (${it.path.name})`;
        log.info({ path: 'iterator', object: it.object, ms: it.ms }, 'connected UDP sockets are moved off removed backends (socket iterator with bpf_sock_destroy)');
        record('iterator', detail);
        return new SockDestroyer(it.path);
      }
      iteratorWhy = it.why;
      libbpf = it.libbpf;
    }
    let diagWhy = `not tried (${FORCE_ENV}=${forced ?? ''})`;
    if (forced !== 'iterator') {
      const diag = DiagPath.open({ pinDir: opts.pinDir, cgroupRoot: opts.cgroupRoot, ...(opts.sockDiagProbe ? { probe: opts.sockDiagProbe } : {}) });
      if ('path' in diag) {
        const detail = `connected UDP sockets are moved off removed backends (${diag.path.name}; socket iterator: ${iteratorWhy})`;
        log.info({ path: 'sock-diag', iterator: iteratorWhy }, detail);
        record('sock-diag', detail);
        return new SockDestroyer(diag.path);
      }
      diagWhy = diag.why;
    }
    const why = `${iteratorWhy}; sock_diag: ${diagWhy}`;
    log.warn({ reason: why, ...(libbpf ? { libbpf } : {}) }, `${KEEP}: ${why}`);
    record('none', `${KEEP}: ${why}`);
    return null;
  }

  /** Destroys the connected UDP sockets that the connect hook sent to a removed backend, in every namespace to visit. */
  run(removed: readonly RemovedBackend[]): DestroyReport {
    return this.way.run(removed);
  }

  close(): void {
    this.way.close();
  }
}

function forcedWay(value: string | undefined, log: Logger): Forced | null {
  if (!value) return null;
  if ((FORCIBLE as readonly string[]).includes(value)) return value as Forced;
  log.warn({ [FORCE_ENV]: value }, `${FORCE_ENV} is neither ${FORCIBLE.join(' nor ')}: ignored`);
  return null;
}

/** Runs the destroyer after a sync and says what it did; never fails the sync (a socket left behind is logged). */
export function moveConnectedUdp(destroyer: SockDestroyer | null, removed: readonly RemovedBackend[], log: Logger): void {
  if (!destroyer || removed.length === 0) return;
  const started = performance.now();
  try {
    const r = destroyer.run(removed);
    const fields = { path: destroyer.path, removedBackends: removed.length, destroyed: r.destroyed, failed: r.failed, namespaces: r.namespaces, ms: Math.round((performance.now() - started) * 10) / 10 };
    if (r.failed > 0 || r.skipped.length > 0) log.warn({ ...fields, skipped: r.skipped }, 'some connected UDP sockets could not be moved off removed backends');
    else if (r.destroyed > 0) log.info(fields, 'closed connected UDP sockets of removed backends: their applications reconnect to live ones');
    else log.debug(fields, 'no connected UDP socket used the removed backends');
  } catch (err) {
    log.warn({ err, removedBackends: removed.length }, 'moving connected UDP sockets off removed backends failed: they keep them until they reconnect');
  }
}
