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
//   logged once (docs/findings.md).
//
// When it refreshes (issue 7: it used to run ip, bridge and nft
// synchronously every 2 s, blocking the event loop for the whole read):
// - while local backends exist, `ip monitor` and `nft monitor` run as
//   triggers (link-monitor.ts); an event that can matter (a link, address
//   or route; a neighbour or bridge entry of a local backend) asks for a
//   refresh, debounced by DEBOUNCE_MS, coalesced, and at most one every
//   MIN_INTERVAL_MS (refresh-scheduler.ts);
// - a change of the local backends (update) asks for one at once, and
//   entries of backends that left are removed at once, without reading;
// - what no event here reports is polled: a veth's XDP features every
//   FEATURES_POLL_MS (one netlink dump of every device, no process: GRO or XDP
//   switched in the pod's namespace), and everything every SAFETY_REFRESH_MS
//   (legacy iptables, a monitor that died, anything missed);
// - the reads (two processes: one `ip -batch`, one `bridge`) run in a
//   worker thread (off-loop-exec.ts): nothing spawns on the event loop; the
//   maps are written on it, from the parsed result.
// A deleted veth leaves the devmap by itself (the kernel removes it), so a
// stale entry makes the program fall back to the stack, never redirect elsewhere.
import type { Clock, TimerHandle } from '../../util/clock.js';
import { canonicalIP, ipBytes, familyOf } from '../../util/ip.js';
import type { Logger } from '../../util/log.js';
import type { DesiredDataplane } from '../../planner/types.js';
import { IP_ADDRESS_ARGV, parseIpAddressJson } from './devices.js';
import { LOCAL_EP, LOCAL_EP_KEY } from './layout.js';
import { ChildWatch, IP_MONITOR_ARGV, NFT_MONITOR_ARGV, isNftRulesetChange, monitorEventMatters, parseIpMonitorLine, type Spawn } from './link-monitor.js';
import type { BpfMap } from './map.js';
import * as native from './native.js';
import { indexSnapshot, parseFdb, parseNeighbours, parseRoutes, resolveLocalEndpoint, splitJsonValues, type LocalEndpoint, type NodeNetSnapshot, type RedirectCheck, type SnapLink } from './local-endpoints.js';
import { netfilterForwardProblem } from './netfilter-forward.js';
import { OffLoopExec, type Exec } from './off-loop-exec.js';
import { RefreshScheduler } from './refresh-scheduler.js';
import { XDP_ACT_NDO_XMIT, xdpFeatures, xdpFeaturesAll } from './xdp-features-native.js';

/** Events closer together than this share one refresh. */
export const DEBOUNCE_MS = 75;
/** Refreshes asked for by events start at least this far apart (a node whose routes churn: BGP, many pods). */
export const MIN_INTERVAL_MS = 500;
/** How often the XDP features of the veths in use (or refused) are asked again. */
export const FEATURES_POLL_MS = 2000;
/** How often everything is read again, events or not. */
export const SAFETY_REFRESH_MS = 30_000;

// `ip -batch` takes its options once, for every line (docs/findings.md): the
// address listing's (devices.ts reads that one). `-d` adds nothing the route
// and neighbour parsers read but "table": "main", which parseRoutes expects.
// `route show table all` lists both families (a table named and no family
// would mean IPv4 only), and still works where the namespace has IPv6 off.
const [, ...ADDRESS_ARGS] = IP_ADDRESS_ARGV;
/** The one `ip` process of a read, with IP_BATCH_INPUT on its stdin. */
export const IP_BATCH_ARGV = ['ip', ...ADDRESS_ARGS.filter((a) => a.startsWith('-')), '-batch', '-'] as const;
export const IP_BATCH_INPUT = `${ADDRESS_ARGS.filter((a) => !a.startsWith('-')).join(' ')}\nroute show table all\nneigh show\n`;

/** The node's links, routes, neighbours and bridge forwarding entries: one `ip -batch` and one `bridge`, through `exec`. */
export async function readSnapshot(exec: Exec): Promise<NodeNetSnapshot> {
  const [ip, fdb] = await Promise.all([exec(IP_BATCH_ARGV, IP_BATCH_INPUT), exec(['bridge', '-j', 'fdb', 'show'])]);
  // An empty listing prints `[]`, so each line of input prints one value.
  const values = splitJsonValues(ip.stdout);
  if (values.length !== 3) throw new Error(`${IP_BATCH_ARGV.join(' ')}: ${values.length} JSON values printed, not 3 (addresses, routes, neighbours)`);
  const [links, routes, neigh] = values as [string, string, string];
  return { links: parseIpAddressJson(links), routes: parseRoutes(routes), neighbours: parseNeighbours(neigh), fdb: parseFdb(fdb.stdout) };
}

/** The process clock with timers that do not keep the process alive (the owner disposes them). */
const unrefClock: Clock = {
  now: () => performance.now(),
  setTimer: (ms, fn) => setTimeout(fn, Math.max(0, ms)).unref() as unknown as TimerHandle,
  clearTimer: (h) => clearTimeout(h as unknown as NodeJS.Timeout),
};

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
export const kernelRedirectCheck: RedirectCheck = (link) => answerFor(xdpFeatures(link.ifindex));

const NO_NAPI = `its peer (the pod's eth0) runs no NAPI: neither an XDP program nor GRO on it, so redirected frames would be dropped`;
const answerFor = (f: bigint | null): string | null => (f === null ? CANNOT_TELL : f & XDP_ACT_NDO_XMIT ? null : NO_NAPI);

/**
 * kernelRedirectCheck for many veths with one netlink dump of every device
 * (the poll's way). Measured in a namespace of 100 veth pairs, idle: one dump
 * of its 201 devices 0.16 ms, 100 per-device queries (a socket and a family
 * lookup each) 0.75 ms, on the event loop every 2 s; the 0.25 ms per veth
 * noted earlier was on a loaded machine. An ifindex the dump does not list
 * is 'gone'.
 */
export function kernelRedirectChecks(ifindexes: Iterable<number>): Map<number, string | null> {
  const all = xdpFeaturesAll();
  const out = new Map<number, string | null>();
  for (const i of ifindexes) out.set(i, all === null ? CANNOT_TELL : all.has(i) ? answerFor(all.get(i)!) : 'gone');
  return out;
}

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
  /** Tests inject these; the defaults read this network namespace (through a worker thread). */
  readNode?: () => Promise<NodeNetSnapshot>;
  check?: RedirectCheck;
  /** Why forwarded traffic would meet netfilter here (netfilter-forward.ts); null when nothing hooks it. */
  netfilter?: () => Promise<string | null>;
  /** Starts the monitors (link-monitor.ts); false: none, only the periodic refreshes. */
  spawn?: Spawn | false;
  clock?: Clock;
  debounceMs?: number;
  featuresPollMs?: number;
  safetyMs?: number;
}

const canonical = (a: string) => canonicalIP(a) ?? a;

export class LocalRedirect {
  /** The local backends of the plan, canonical. */
  private addresses = new Set<string>();
  /** What the maps hold: address -> the value written. */
  private readonly written = new Map<string, { ep: LocalEndpoint; value: string }>();
  private readonly devs = new Set<number>();
  /** The last reason logged per address, so a reason is logged once, not every refresh. */
  private readonly reasons = new Map<string, string>();
  /** The veths asked about at the last refresh and the kernel's answer, polled (FEATURES_POLL_MS). */
  private checked = new Map<number, { link: SnapLink; answer: string | null }>();
  private kernelCannotTell = false;
  /** Set when the kernel cannot tell whether a veth takes redirected frames: nothing is ever redirected. */
  private disabled = false;
  private closed = false;
  /** The last refresh failure logged ('' when the last refresh went through). */
  private failure = '';
  /** The netfilter problem in force ('' when none); null until read. */
  private gate: string | null = null;
  /** The gate must be read again (an nftables change, the safety period). */
  private gateStale = true;
  private readonly clock: Clock;
  private readonly exec: OffLoopExec | null;
  private readonly scheduler: RefreshScheduler;
  private readonly watches: ChildWatch[] = [];
  private pollTimer: TimerHandle | null = null;
  private safetyTimer: TimerHandle | null = null;
  /** Refreshes run, for tests and the numbers in the report. */
  refreshes = 0;

  constructor(private readonly o: LocalRedirectOptions) {
    this.clock = o.clock ?? unrefClock;
    this.exec = o.readNode && o.netfilter ? null : new OffLoopExec();
    this.scheduler = new RefreshScheduler(() => this.refreshLogged(), this.clock, o.debounceMs ?? DEBOUNCE_MS, MIN_INTERVAL_MS);
    // Entries of an earlier run: taken over, then kept or removed by the first refresh.
    const d = o.eps.dump();
    for (let i = 0; i < d.count; i++) {
      const ifindex = d.values.readUInt32LE(i * d.valueStride + LOCAL_EP.fields.ifindex.offset);
      this.devs.add(ifindex);
      native.remove(o.eps.fd, d.keys.subarray(i * LOCAL_EP_KEY.size, (i + 1) * LOCAL_EP_KEY.size));
    }
    // A kernel that cannot tell (before 6.3) never gets an entry: nothing is watched or read.
    if (!o.check && !kernelCanTell()) {
      this.disabled = true;
      this.noteReason('', CANNOT_TELL);
    }
    if (o.spawn !== false && !this.disabled) {
      const spawn = o.spawn;
      const ip = new ChildWatch({ argv: IP_MONITOR_ARGV, log: o.log, clock: this.clock, spawn, onLine: (l) => this.onIpLine(l), onRestart: () => this.scheduler.request() });
      const nft = new ChildWatch({
        argv: NFT_MONITOR_ARGV, log: o.log, clock: this.clock, spawn,
        onLine: (l) => { if (isNftRulesetChange(l)) this.gateChanged(); },
        onRestart: () => this.gateChanged(),
      });
      this.watches.push(ip, nft);
    }
    if (this.devs.size > 0) this.scheduler.request(0);
  }

  /** The local backends of a new plan: entries of those that left go now, the others are read again soon. */
  update(desired: DesiredDataplane): void {
    if (this.closed) return;
    const next = new Set([...localBackendAddresses(desired)].map(canonical));
    if (next.size === this.addresses.size && [...next].every((a) => this.addresses.has(a))) return;
    this.addresses = next;
    this.prune(new Set([...this.written.keys()].filter((a) => next.has(a))));
    if (this.disabled) return;
    if (next.size > 0) this.watch();
    else this.unwatch();
    this.scheduler.request(0);
  }

  /** The entries in force (address -> veth), for tests and `status`. */
  entries(): ReadonlyMap<string, LocalEndpoint> {
    return new Map([...this.written].map(([a, w]) => [a, w.ep]));
  }

  /** Resolves once no refresh is waiting or running (tests). */
  settled(): Promise<void> {
    return this.scheduler.idle();
  }

  /** Whether the monitors run (they do while local backends exist). */
  get watching(): boolean {
    return this.watches.some((w) => w.running);
  }

  /**
   * Reads the node and rewrites what differs. Throws when the node cannot be
   * read. The reads are awaited; the maps are written after them, against the
   * local backends of that moment.
   */
  async refresh(): Promise<void> {
    if (this.closed || this.disabled || (this.addresses.size === 0 && this.written.size === 0 && this.devs.size === 0)) return;
    this.refreshes++;
    if (this.addresses.size > 0 && this.gateStale) {
      this.gateStale = false;
      const nf = await (this.o.netfilter ?? (() => netfilterForwardProblem(this.exec!.run)))();
      if (this.closed) return;
      this.setGate(nf ?? '');
    }
    // With the gate closed, or nothing to resolve, the node's links and routes are not read.
    const read = this.addresses.size > 0 && !this.gate;
    const snap = read ? indexSnapshot(await (this.o.readNode ?? (() => readSnapshot(this.exec!.run)))()) : null;
    if (this.closed) return;
    const check = this.o.check ?? kernelRedirectCheck;
    const checked = new Map<number, { link: SnapLink; answer: string | null }>();
    const recording: RedirectCheck = (link) => {
      const answer = check(link);
      checked.set(link.ifindex, { link, answer });
      return answer;
    };
    const want = new Map<string, LocalEndpoint>();
    for (const address of this.addresses) {
      if (!snap) {
        if (this.gate) this.reasons.set(address, this.gate);
        continue;
      }
      const r = resolveLocalEndpoint(address, snap, recording);
      if (r.ok) {
        want.set(address, r.ep);
        this.reasons.delete(address);
      } else {
        this.noteReason(address, r.reason);
      }
    }
    if (snap) this.checked = checked;
    this.write(want);
  }

  dispose(): void {
    this.closed = true;
    this.scheduler.stop();
    this.unwatch();
    this.exec?.close();
  }

  /** Devices first, then the entries naming them; removals the other way round. */
  private write(want: Map<string, LocalEndpoint>): void {
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
      this.o.log.info({ backend: address, device: ep.device, ifindex: ep.ifindex, mac: ep.mac }, 'local backend reached by XDP redirect into its veth');
    }
    this.prune(new Set(want.keys()));
  }

  /** Removes the entries not kept, then the devices no entry names. */
  private prune(keep: ReadonlySet<string>): void {
    for (const address of [...this.written.keys()]) {
      if (keep.has(address)) continue;
      native.remove(this.o.eps.fd, epKey(address));
      this.written.delete(address);
      const reason = this.addresses.has(address) ? this.reasons.get(address) : undefined;
      this.o.log.info({ backend: address, reason: reason ?? 'no longer a local backend' }, 'local backend no longer reached by XDP redirect: through the node\'s stack (XDP_PASS)');
    }
    const inUse = new Set([...this.written.values()].map((w) => w.ep.ifindex));
    for (const ifindex of [...this.devs]) {
      if (inUse.has(ifindex)) continue;
      native.remove(this.o.devs.fd, u32(ifindex)); // gone already when the device was deleted
      this.devs.delete(ifindex);
    }
  }

  private setGate(nf: string): void {
    if (nf === this.gate) return;
    const before = this.gate;
    this.gate = nf;
    if (nf) this.o.log.info({ reason: nf }, 'local backends are reached through the node\'s stack (XDP_PASS), not by XDP redirect');
    else if (before !== null) this.o.log.info('nothing in the node\'s netfilter hooks forwarded traffic: local backends may be reached by XDP redirect');
  }

  private gateChanged(): void {
    this.gateStale = true;
    this.scheduler.request();
  }

  private onIpLine(line: string): void {
    const ev = parseIpMonitorLine(line);
    if (ev && monitorEventMatters(ev, this.view)) this.scheduler.request();
  }

  private readonly view = {
    isBackend: (a: string) => this.addresses.has(canonical(a)),
    writtenMac: (a: string) => this.written.get(canonical(a))?.ep.mac,
    writesMac: (mac: string) => [...this.written.values()].some((w) => w.ep.mac === mac),
    anyUnresolved: () => this.written.size < this.addresses.size,
  };

  /** The monitors and the polls, while local backends exist. */
  private watch(): void {
    for (const w of this.watches) w.start();
    const poll = this.o.featuresPollMs ?? FEATURES_POLL_MS;
    if (!this.pollTimer && poll > 0) this.pollTimer = this.clock.setTimer(poll, () => this.pollFeatures(poll));
    const safety = this.o.safetyMs ?? SAFETY_REFRESH_MS;
    if (!this.safetyTimer && safety > 0) this.safetyTimer = this.clock.setTimer(safety, () => this.safetyRefresh(safety));
  }

  private unwatch(): void {
    for (const w of this.watches) w.stop();
    if (this.pollTimer) this.clock.clearTimer(this.pollTimer);
    if (this.safetyTimer) this.clock.clearTimer(this.safetyTimer);
    this.pollTimer = this.safetyTimer = null;
  }

  private safetyRefresh(ms: number): void {
    this.safetyTimer = this.clock.setTimer(ms, () => this.safetyRefresh(ms));
    this.gateStale = true;
    this.scheduler.request(0);
  }

  /** Asks the kernel again about the veths of the last refresh: GRO or XDP in a pod changes the answer without an event here. */
  private pollFeatures(ms: number): void {
    this.pollTimer = this.clock.setTimer(ms, () => this.pollFeatures(ms));
    if (this.checked.size === 0) return;
    // The kernel's answers for every veth at once (one dump), unless a check was given (tests).
    let answers: Map<number, string | null> | null = null;
    if (!this.o.check) {
      try {
        answers = kernelRedirectChecks([...this.checked.values()].map((c) => c.link.ifindex));
      } catch {
        this.scheduler.request(); // the dump failed: the refresh asks per veth and says why
        return;
      }
    }
    const check = this.o.check ?? kernelRedirectCheck;
    for (const { link, answer } of this.checked.values()) {
      let now: string | null;
      try {
        now = answers ? answers.get(link.ifindex)! : check(link);
      } catch {
        now = 'gone'; // the device left: the refresh says what now
      }
      if (now !== answer) {
        this.scheduler.request();
        return;
      }
    }
  }

  private async refreshLogged(): Promise<void> {
    try {
      await this.refresh();
      this.failure = '';
    } catch (err) {
      if (this.closed) return;
      // Once per distinct failure, not every refresh; the next event or the safety period tries again.
      const msg = (err as Error).message;
      if (msg !== this.failure) this.o.log.warn({ err }, 'local redirect: could not read the node\'s links and neighbours; entries kept as they were');
      this.failure = msg;
      this.gateStale = true;
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
