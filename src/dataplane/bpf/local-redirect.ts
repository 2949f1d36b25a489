// Keeps the local-redirect maps (bpf/lib/redirect-local.h) current: for
// every local backend address, the pod's host-side veth and MACs
// (local-endpoints.ts), written into bpx_local_ep_v1, and the veth into the
// devmap bpx_local_dev_v1. A backend without an entry keeps the XDP_PASS
// path through the node's stack, so every doubt ends there:
// - the node's netfilter must have no rule on the forward path: the reply
//   of a redirected request still crosses it, and conntrack never saw the
//   request (netfilter-forward.ts);
// - the veth must take redirected frames: on 6.3+ the kernel says so
//   (NETDEV_XDP_ACT_NDO_XMIT of the host-side veth: its peer, the pod's
//   eth0, runs NAPI because it has an XDP program or GRO on); a kernel that
//   cannot say (before 6.3, e.g. Debian's 6.1) gets no redirect at all,
//   logged once (docs/findings.md);
// - refreshed after every sync that changes the local backends and every
//   REFRESH_MS (neighbour entries appear after the first packets, pods come
//   and go, GRO or XDP on a pod's eth0 may change). A deleted veth leaves
//   the devmap by itself (the kernel removes it), so a stale entry makes
//   the program fall back to the stack, never redirect elsewhere.
import { execFileSync } from 'node:child_process';
import { ipBytes, familyOf } from '../../util/ip.js';
import type { Logger } from '../../util/log.js';
import type { DesiredDataplane } from '../../planner/types.js';
import { LOCAL_EP, LOCAL_EP_KEY } from './layout.js';
import type { BpfMap } from './map.js';
import * as native from './native.js';
import { parseFdb, parseLinks, parseNeighbours, parseRoutes, resolveLocalEndpoint, type LocalEndpoint, type NodeNetSnapshot, type RedirectCheck } from './local-endpoints.js';
import { netfilterForwardProblem } from './netfilter-forward.js';
import { XDP_ACT_NDO_XMIT, xdpFeatures } from './xdp-features-native.js';

/** How often the entries are checked against the node's links, neighbours and routes. */
export const REFRESH_MS = 2000;

const run = (argv: string[]) => execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });

/** IPv6 routes, or none where this namespace has IPv6 off (`ip -6` fails there). */
function routes6(): string {
  try {
    return run(['ip', '-6', '-j', 'route', 'show', 'table', 'main']);
  } catch {
    return '[]';
  }
}

/** The node's links, routes, neighbours and bridge forwarding entries, read with `ip` and `bridge`. */
export function readSnapshot(): NodeNetSnapshot {
  return {
    links: parseLinks(run(['ip', '-j', '-d', 'link', 'show'])),
    routes: [...parseRoutes(run(['ip', '-j', 'route', 'show', 'table', 'main']), 4), ...parseRoutes(routes6(), 6)],
    neighbours: parseNeighbours(run(['ip', '-j', 'neigh', 'show'])),
    fdb: parseFdb(run(['bridge', '-j', 'fdb', 'show'])),
  };
}

const CANNOT_TELL = 'this kernel cannot tell whether the veth takes redirected frames (no netdev XDP features before 6.3)';

/** Whether the kernel answers the XDP features query at all (6.3+), asked of the loopback device every namespace has. */
function kernelCanTell(): boolean {
  try {
    return xdpFeatures(1) !== null;
  } catch {
    return true; // it answered, with an error about the device: the per-veth check decides
  }
}

/** The kernel's answer for a veth: null when frames redirected into it are delivered. */
export const kernelRedirectCheck: RedirectCheck = (link) => {
  const f = xdpFeatures(link.ifindex);
  if (f === null) return CANNOT_TELL;
  return f & XDP_ACT_NDO_XMIT ? null : `its peer (the pod's eth0) runs no NAPI: neither an XDP program nor GRO on it, so redirected frames would be dropped`;
};

/** The addresses of every local backend of the plan. */
export function localBackendAddresses(desired: DesiredDataplane): Set<string> {
  const out = new Set<string>();
  for (const svc of desired.services.values()) {
    for (const set of [svc.external, svc.internal, svc.cluster]) for (const b of set.backends) if (b.local) out.add(b.address);
  }
  return out;
}

function epKey(address: string): Buffer {
  const k = Buffer.alloc(LOCAL_EP_KEY.size);
  k.set(ipBytes(address), LOCAL_EP_KEY.fields.addr.offset);
  k.writeUInt8(familyOf(address) === 'IPv6' ? 6 : 4, LOCAL_EP_KEY.fields.family.offset);
  return k;
}

function epValue(ep: LocalEndpoint): Buffer {
  const v = Buffer.alloc(LOCAL_EP.size);
  v.writeUInt32LE(ep.ifindex, LOCAL_EP.fields.ifindex.offset);
  Buffer.from(ep.mac.replace(/:/g, ''), 'hex').copy(v, LOCAL_EP.fields.mac.offset);
  Buffer.from(ep.srcMac.replace(/:/g, ''), 'hex').copy(v, LOCAL_EP.fields.src_mac.offset);
  return v;
}

const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };

export interface LocalRedirectOptions {
  eps: BpfMap;
  devs: BpfMap;
  log: Logger;
  /** Tests inject these; the defaults read this network namespace. */
  snapshot?: () => NodeNetSnapshot;
  check?: RedirectCheck;
  /** Why forwarded traffic would meet netfilter here (netfilter-forward.ts); null when nothing hooks it. */
  netfilter?: () => string | null;
  refreshMs?: number;
}

export class LocalRedirect {
  private addresses = new Set<string>();
  /** What the maps hold: address -> the value written. */
  private readonly written = new Map<string, { ep: LocalEndpoint; value: string }>();
  private readonly devs = new Set<number>();
  /** The last reason logged per address, so a reason is logged once, not every refresh. */
  private readonly reasons = new Map<string, string>();
  private timer: NodeJS.Timeout | null = null;
  private kernelCannotTell = false;
  /** Set when the kernel cannot tell whether a veth takes redirected frames: nothing is ever redirected. */
  private disabled = false;
  /** The last refresh failure logged ('' when the last refresh went through). */
  private failure = '';
  /** The netfilter problem last logged ('' when none). */
  private gate = '';

  constructor(private readonly o: LocalRedirectOptions) {
    // Entries of an earlier run: taken over, then kept or removed by the first refresh.
    const d = o.eps.dump();
    for (let i = 0; i < d.count; i++) {
      const ifindex = d.values.readUInt32LE(i * d.valueStride + LOCAL_EP.fields.ifindex.offset);
      this.devs.add(ifindex);
      native.remove(o.eps.fd, d.keys.subarray(i * LOCAL_EP_KEY.size, (i + 1) * LOCAL_EP_KEY.size));
    }
    // A kernel that cannot tell (before 6.3) never gets an entry: no refresh at all,
    // which would read the node's links, routes and rules every REFRESH_MS for nothing.
    if (!o.check && !kernelCanTell()) {
      this.disabled = true;
      this.noteReason('', CANNOT_TELL);
    }
    const ms = o.refreshMs ?? REFRESH_MS;
    if (ms > 0 && !this.disabled) {
      this.timer = setInterval(() => this.refreshLogged(), ms);
      this.timer.unref();
    }
  }

  /** The local backends of a new plan; refreshes when they changed. */
  update(desired: DesiredDataplane): void {
    const next = localBackendAddresses(desired);
    if (next.size === this.addresses.size && [...next].every((a) => this.addresses.has(a))) return;
    this.addresses = next;
    this.refreshLogged();
  }

  /** The entries in force (address -> veth), for tests and `status`. */
  entries(): ReadonlyMap<string, LocalEndpoint> {
    return new Map([...this.written].map(([a, w]) => [a, w.ep]));
  }

  /** Reads the node and rewrites what differs. Throws when the node cannot be read. */
  refresh(): void {
    if (this.disabled || (this.addresses.size === 0 && this.written.size === 0 && this.devs.size === 0)) return;
    const check = this.o.check ?? kernelRedirectCheck;
    const want = new Map<string, LocalEndpoint>();
    const nf = this.addresses.size > 0 ? (this.o.netfilter ?? netfilterForwardProblem)() : null;
    // With the gate closed no address is resolved: the node's links and routes are not read.
    const snap = nf ? null : (this.o.snapshot ?? readSnapshot)();
    if ((nf ?? '') !== this.gate) {
      this.gate = nf ?? '';
      if (nf) this.o.log.info({ reason: nf }, 'local backends are reached through the node\'s stack (XDP_PASS), not by XDP redirect');
      else this.o.log.info('nothing in the node\'s netfilter hooks forwarded traffic: local backends may be reached by XDP redirect');
    }
    for (const address of this.addresses) {
      if (nf) {
        this.reasons.set(address, nf);
        continue;
      }
      const r = resolveLocalEndpoint(address, snap!, check);
      if (r.ok) {
        want.set(address, r.ep);
        this.reasons.delete(address);
      } else {
        this.noteReason(address, r.reason);
      }
    }
    // Devices first, then the entries naming them; removals the other way round.
    for (const ep of want.values()) {
      if (this.devs.has(ep.ifindex)) continue;
      const ret = native.update(this.o.devs.fd, u32(ep.ifindex), u32(ep.ifindex));
      if (ret < 0) {
        this.noteReason(ep.address, `devmap ${this.o.devs.name} refused ${ep.device}: ${native.strerror(-ret)}`);
        want.delete(ep.address);
        continue;
      }
      this.devs.add(ep.ifindex);
    }
    for (const [address, ep] of want) {
      const value = epValue(ep).toString('hex');
      if (this.written.get(address)?.value === value) continue;
      const ret = native.update(this.o.eps.fd, epKey(address), Buffer.from(value, 'hex'));
      if (ret < 0) {
        this.noteReason(address, `map ${this.o.eps.name}: ${native.strerror(-ret)}`);
        continue;
      }
      this.written.set(address, { ep, value });
      this.o.log.info({ backend: address, device: ep.device, mac: ep.mac }, 'local backend reached by XDP redirect into its veth');
    }
    for (const address of [...this.written.keys()]) {
      if (want.has(address)) continue;
      native.remove(this.o.eps.fd, epKey(address));
      this.written.delete(address);
      this.o.log.info({ backend: address, reason: this.reasons.get(address) ?? 'no longer a local backend' }, 'local backend no longer reached by XDP redirect: through the node\'s stack (XDP_PASS)');
    }
    const inUse = new Set([...this.written.values()].map((w) => w.ep.ifindex));
    for (const ifindex of [...this.devs]) {
      if (inUse.has(ifindex)) continue;
      native.remove(this.o.devs.fd, u32(ifindex)); // gone already when the device was deleted
      this.devs.delete(ifindex);
    }
  }

  dispose(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private refreshLogged(): void {
    try {
      this.refresh();
      this.failure = '';
    } catch (err) {
      // Once per distinct failure, not every REFRESH_MS.
      const msg = (err as Error).message;
      if (msg !== this.failure) this.o.log.warn({ err }, 'local redirect: could not read the node\'s links and neighbours; entries kept as they were');
      this.failure = msg;
    }
  }

  private noteReason(address: string, reason: string): void {
    if (reason.startsWith('this kernel cannot tell')) {
      if (!this.kernelCannotTell) this.o.log.info({ reason }, 'local backends are reached through the node\'s stack (XDP_PASS), not by XDP redirect');
      this.kernelCannotTell = true;
      return;
    }
    if (this.reasons.get(address) === reason) return;
    this.reasons.set(address, reason);
    this.o.log.debug({ backend: address, reason }, 'local backend reached through the node\'s stack (XDP_PASS), not by XDP redirect');
  }
}
