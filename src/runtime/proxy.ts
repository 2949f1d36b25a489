// The proxy: sources -> cluster state -> planner -> dataplane, driven by the
// bounded-frequency runner, with the health and metrics servers around it.
// It owns every long-lived resource and releases them in stop(); the
// datapath itself keeps serving after stop (that is the point of pinning).
import { networkInterfaces } from 'node:os';
import type { ProxyConfig } from '../config/config.js';
import { conntrackHygiene, openDataplane, removeOtherModes, type ConntrackClearer, type OpenedDataplane } from '../dataplane/select.js';
import type { Dataplane, SyncResult } from '../dataplane/types.js';
import { NodeStateWriter, statePathFor } from '../dataplane/state-file.js';
import { ClusterState, type Rejection, type Warning } from '../model/state.js';
import type { ValidationConfig } from '../model/types.js';
import { DEFAULT_PLANNER_LIMITS, Planner } from '../planner/planner.js';
import { hasExternalFrontends, type DesiredDataplane } from '../planner/types.js';
import type { Source, SourceEvent } from '../sources/types.js';
import { clip, clipOpt } from '../util/clip.js';
import { realClock, type Clock, type TimerHandle } from '../util/clock.js';
import { ServiceHealthServers } from './healthcheck.js';
import { healthTimeoutFor, HttpServers, ProxyHealth, type ServerRole } from './http.js';
import type { Logger } from '../util/log.js';
import { Metrics } from './metrics.js';
import { collectFirstSyncGarbage } from './first-sync-gc.js';
import { pinMallocMmapThreshold } from './malloc.js';
import { BoundedFrequencyRunner, type RunContext, type RunOutcome } from './runner.js';
import { plainEqual } from '../util/equal.js';

export interface ProxyDeps {
  log: Logger;
  clock?: Clock;
  /** Sources to use instead of the ones the config names (tests). */
  sources?: Source[];
  /** The addresses on this node's interfaces; default: os.networkInterfaces(). */
  localAddresses?: () => string[];
  /** A dataplane to use instead of opening the one the config names (tests); the planner's own limits apply. */
  dataplane?: Dataplane;
  /** Deletes conntrack entries; default: netlink in this process's namespace, and only for a dataplane this proxy opened (tests give a fake). */
  conntrack?: ConntrackClearer;
}

export function systemAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) out.push(a.address.split('%')[0]!);
  return out;
}

/** --nodeport-addresses as the planner takes it. */
function nodePortSpec(cfg: ProxyConfig): string[] {
  const n = cfg.nodePortAddresses;
  return n.kind === 'all' ? [] : n.kind === 'primary' ? ['primary'] : [...n.cidrs];
}

async function openSources(cfg: ProxyConfig, log: Logger): Promise<Source[]> {
  if (cfg.manifests) {
    const { ManifestSource } = await import('../sources/manifests.js');
    return [new ManifestSource({ dir: cfg.manifests, log: log.child({ source: 'manifests' }), limits: cfg.inputLimits })];
  }
  const { KubernetesSource } = await import('../sources/k8s.js');
  return [new KubernetesSource({ kubeconfig: cfg.kubeconfig || undefined, master: cfg.master || undefined, nodeName: cfg.nodeName, log: log.child({ source: 'k8s' }), limits: cfg.inputLimits })];
}

/** Settings that can be checked before anything touches the kernel: a start that would fail later leaves nothing behind. */
async function settingsProblem(cfg: ProxyConfig): Promise<string | null> {
  if (!cfg.manifests) return null;
  const { manifestDirProblem } = await import('../sources/manifests.js');
  return manifestDirProblem(cfg.manifests);
}

function openConfiguredDataplane(cfg: ProxyConfig, log: Logger): Promise<OpenedDataplane> {
  return openDataplane(cfg.mode, {
    fallback: cfg.fallback,
    bpf: { pinDir: cfg.bpf.pinPath, cgroupRoot: cfg.bpf.cgroupRoot, mapSizes: cfg.bpf.mapSizes, devices: cfg.bpf.devices,
      nodeIPs: cfg.bindAddress ? [cfg.bindAddress] : [], maglev: { tables: cfg.bpf.maglevMapMax, m: cfg.bpf.maglevTableSize } },
    nftables: { clusterCIDRs: cfg.clusterCIDRs, detectLocalMode: cfg.detectLocalMode },
    iptables: {
      masqueradeAll: cfg.masqueradeAll,
      masqueradeBit: cfg.iptablesMasqueradeBit,
      // As kube-proxy: only where NodePorts are on every local address (loopback is one of them).
      localhostNodePorts: cfg.iptablesLocalhostNodePorts && cfg.nodePortAddresses.kind === 'all',
    },
    ipvs: cfg.ipvs,
  }, log);
}

/** A dataplane handed in by the caller: its mode as it says, the planner's own limits. */
function givenDataplane(dataplane: Dataplane): OpenedDataplane {
  return {
    dataplane,
    mode: dataplane.mode,
    reason: 'given by the caller',
    capabilities: { packetDatapath: false, socketLB: false, counters: dataplane.readCounters !== undefined, mapUsage: dataplane.mapUsage !== undefined },
    limits: { maxServiceId: DEFAULT_PLANNER_LIMITS.maxServiceId },
  };
}

const RETRY_INITIAL_MS = 1000;
/** Reasons quote outside text (names, values) inside our own words: a longer clip than a bare name. */
const REASON_CLIP = 1024;
/** kube-proxy retries its health and metrics servers every 5 s. */
const HTTP_RETRY_MS = 5000;

export class Proxy {
  readonly metrics: Metrics;
  readonly health: ProxyHealth;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly state: ClusterState;
  private planner!: Planner;
  private dataplane!: Dataplane;
  /** The mode in use: the one asked for, or the one fallen back to. */
  private mode!: OpenedDataplane['mode'];
  private runner!: BoundedFrequencyRunner;
  /** Conntrack hygiene after each sync, in the modes whose service NAT is netfilter's. */
  private conntrack: ReturnType<typeof conntrackHygiene> = null;
  /** What other modes left is removed once this one has programmed the node (a dataplane this proxy opened only). */
  private otherModesPending = false;
  private http: HttpServers | null = null;
  private healthServers: ServiceHealthServers | null = null;
  private sources: Source[] = [];
  private readonly synced = new Set<string>();
  private everSynced = false;
  /** The Node's addresses the dataplane last followed (followNode). */
  private followedNodeAddresses: readonly { type: string; address: string }[] | null = null;
  /** When the oldest change not yet in the datapath arrived. */
  private pendingSince: number | null = null;
  private readonly logged = new Map<string, string>();
  /**
   * Planned services the last sync could not program (a full map, ...): they
   * go into every following sync until they succeed, and a timer of their own
   * retries them, backing off. They never hold back other changes.
   */
  private retryServices = new Set<string>();
  private retryTimer: TimerHandle | null = null;
  private retryDelayMs = RETRY_INITIAL_MS;
  private readonly localAddresses: () => string[];
  private stopped = false;

  private constructor(private readonly cfg: ProxyConfig, deps: ProxyDeps) {
    this.log = deps.log;
    this.clock = deps.clock ?? realClock;
    this.localAddresses = deps.localAddresses ?? systemAddresses;
    this.metrics = new Metrics({ logger: this.log });
    this.health = new ProxyHealth({ healthTimeoutMs: healthTimeoutFor(cfg.syncPeriodMs), clock: this.clock });
    const validation: ValidationConfig = {
      serviceClusterIPRanges: cfg.serviceClusterIPRanges,
      nodePortRange: { base: cfg.serviceNodePortRange.min, size: cfg.serviceNodePortRange.max - cfg.serviceNodePortRange.min + 1 },
    };
    this.state = new ClusterState(cfg.nodeName, validation, {
      rejected: (r) => this.onRejected(r),
      warned: (w) => this.onWarning(w),
    });
  }

  static async start(cfg: ProxyConfig, deps: ProxyDeps): Promise<Proxy> {
    // Before the first list: the tables it grows are freed back to the system when outgrown (malloc.ts).
    pinMallocMmapThreshold();
    const p = new Proxy(cfg, deps);
    try {
      await p.init(deps);
    } catch (err) {
      // A start that failed leaves no debris: the dataplane undoes what it made before stop() disposes it.
      await p.dataplane?.abandon?.().catch((e: unknown) => p.log.warn({ err: e }, 'undoing the failed start failed'));
      await p.stop();
      throw err;
    }
    return p;
  }

  private async init(deps: ProxyDeps): Promise<void> {
    const { cfg, log } = this;
    const problem = deps.sources ? null : await settingsProblem(cfg);
    if (problem) throw new Error(`${problem} (checked before touching the datapath: nothing was changed)`);
    const opened = deps.dataplane ? givenDataplane(deps.dataplane) : await openConfiguredDataplane(cfg, log);
    this.dataplane = opened.dataplane;
    this.mode = opened.mode;
    log.info({ mode: opened.mode, reason: opened.reason, capabilities: opened.capabilities }, `dataplane: ${opened.mode}`);
    this.metrics.setMode(opened.mode);
    this.otherModesPending = !deps.dataplane;
    if (!deps.dataplane || deps.conntrack) this.conntrack = conntrackHygiene(opened.mode, log.child({ component: 'conntrack' }), deps.conntrack);
    if (!deps.dataplane) this.dataplane.nodeState = new NodeStateWriter(statePathFor(cfg.bpf.pinPath), { mode: opened.mode, reason: opened.reason, node: cfg.nodeName, pinDir: cfg.bpf.pinPath }, { onError: (err) => log.warn({ err }, 'cannot write the state file for `bpfproxy status`') });
    const hints = await this.dataplane.restore();
    this.planner = new Planner({
      nodeName: cfg.nodeName,
      nodePortAddresses: nodePortSpec(cfg),
      maglevTableSize: cfg.bpf.maglevTableSize,
      maxServiceId: Math.min(opened.limits.maxServiceId, DEFAULT_PLANNER_LIMITS.maxServiceId),
      maxBackendId: DEFAULT_PLANNER_LIMITS.maxBackendId,
    }, hints);
    const counters = this.dataplane.readCounters?.bind(this.dataplane);
    if (counters) this.metrics.addDatapathCollector(counters);
    this.http = await HttpServers.start({
      healthz: cfg.healthzBindAddress,
      metrics: cfg.metricsBindAddress,
      health: this.health,
      metricsRegistry: this.metrics,
      mode: this.mode,
      logger: log,
      retryListenMs: cfg.bindAddressHardFail ? undefined : HTTP_RETRY_MS,
    });
    this.runner = new BoundedFrequencyRunner({
      name: 'sync',
      minIntervalMs: cfg.minSyncPeriodMs,
      maxIntervalMs: cfg.syncPeriodMs,
      clock: this.clock,
      logger: log,
      work: (ctx) => this.syncOnce(ctx),
    });
    // A background check of the datapath found it differs (the bpf periodic check, issue 6).
    this.dataplane.onFullSyncNeeded = () => this.runner.run({ full: true });
    this.sources = deps.sources ?? (await openSources(cfg, log));
    this.runner.start();
    for (const s of this.sources) await s.start((ev) => this.onEvent(s.name, ev));
    log.info({ node: cfg.nodeName, mode: this.mode, sources: this.sources.map((s) => s.name) }, 'bpfproxy started: waiting for every source to list');
  }

  /** The bound address of a server, for tests. */
  httpAddress(role: ServerRole): { address: string; port: number } | undefined {
    return this.http?.address(role);
  }

  // ---- events ----

  private onEvent(source: string, ev: SourceEvent): void {
    if (this.stopped) return;
    switch (ev.type) {
      case 'upsert':
        this.state.upsert(ev.kind, ev.key, ev.object, ev.origin);
        this.queued();
        break;
      case 'delete':
        this.state.delete(ev.kind, ev.key);
        this.logged.delete(`${ev.kind}/${ev.key}`);
        this.logged.delete(`${ev.kind}/${ev.key}#warn`);
        this.queued();
        break;
      case 'invalid':
        // Outside text: clipped, so a hostile name cannot make a huge line.
        this.log.warn({ origin: clip(ev.origin), kind: clipOpt(ev.kind), object: clipOpt(ev.key), reason: clip(ev.reason, REASON_CLIP) }, 'ignoring what could not be read');
        this.metrics.countRejected(ev.kind ?? 'other');
        break;
      case 'synced':
        this.synced.add(source);
        if (this.synced.size === this.sources.length) {
          this.state.markSynced();
          this.log.info('every source has listed: programming the dataplane');
          this.queued();
        }
        break;
    }
  }

  private queued(): void {
    const now = this.clock.now();
    this.pendingSince ??= now;
    this.health.queued();
    this.metrics.queued(now);
    this.metrics.setPendingChanges({ services: this.state.pendingServiceChanges, endpoints: this.state.pendingEndpointChanges });
    this.runner.run();
  }

  /** Logged once per object and reason, not on every resync. */
  private onRejected(r: Rejection): void {
    const k = `${r.kind}/${r.key}`;
    this.metrics.countRejected(r.kind);
    // Every occurrence: the source counts repeats into one Event's series.
    const note = `${r.reason} (${r.keptPrevious ? 'the last good version stays in force' : 'not programmed'})`;
    for (const s of this.sources) if (s.name === r.origin) s.reportRejected?.(r.kind, r.key, note);
    if (this.logged.get(k) === r.reason) return;
    this.logged.set(k, r.reason);
    this.log.error({ kind: r.kind, object: clip(r.key), origin: clip(r.origin), reason: clip(r.reason, REASON_CLIP), keptPrevious: r.keptPrevious },
      r.keptPrevious ? 'rejected: the last good version stays in force' : 'rejected');
  }

  private onWarning(w: Warning): void {
    const k = `${w.kind}/${w.key}#warn`;
    if (this.logged.get(k) === w.message) return;
    this.logged.set(k, w.message);
    this.log.warn({ kind: w.kind, object: clip(w.key), origin: clip(w.origin) }, clip(w.message, REASON_CLIP));
  }

  // ---- sync ----

  private async syncOnce(ctx: RunContext): Promise<RunOutcome> {
    if (this.synced.size < this.sources.length || this.stopped) return { ok: true };
    const started = this.clock.now();
    const first = !this.everSynced;
    const periodic = ctx.reason === 'periodic';
    const addressesChanged = first || periodic || ctx.forceFull ? this.planner.setLocalAddresses(this.localAddresses()) : false;
    const co = this.state.checkout();
    this.metrics.countChanges({ services: co.serviceChanges, endpoints: co.endpointChanges });
    const plan = this.planner.plan(this.state, co.services, { all: first || addressesChanged, nodeChanged: co.nodeChanged });
    // The devices were chosen before the Node was read: its addresses may add some (issue 7). Only when
    // they or the node's own addresses changed: following reads the node's links (a process), and a
    // Node changes for its labels and conditions far more often than for its addresses.
    const node = this.state.node;
    if (node && (first || addressesChanged || (co.nodeChanged && !plainEqual(node.addresses, this.followedNodeAddresses)))) {
      this.followedNodeAddresses = node.addresses;
      this.dataplane.followNode?.(node.addresses);
    }
    for (const w of plan.warnings) this.onWarning({ kind: 'Service', key: w.service, origin: 'planner', message: w.message });
    this.health.setNodeDeleting(this.state.node?.deleting ?? false);

    const full = first || ctx.forceFull || periodic || addressesChanged;
    const changed = new Set([...plan.changed, ...this.retryServices]);
    let res: SyncResult;
    try {
      res = full || changed.size > 0
        ? await this.dataplane.sync(plan.desired, { full, changed, periodic: periodic && !first && !addressesChanged })
        : { full: false, upserts: 0, deletes: 0, errors: [], unsupported: [] };
    } catch (err) {
      this.log.error({ err }, 'sync failed: the next sync is full');
      this.metrics.countSyncError('EXCEPTION');
      this.health.syncFailed();
      return { ok: false };
    }
    const now = this.clock.now();
    this.metrics.observeSync((now - started) / 1000, full);
    for (const c of this.dataplane.ruleCounts?.() ?? []) this.metrics.setIptablesRules(c.table, c.total, c.written);
    this.metrics.setPendingChanges({ services: this.state.pendingServiceChanges, endpoints: this.state.pendingEndpointChanges });
    for (const u of res.unsupported) this.log.warn({ service: u.service }, `not supported by the ${this.mode} dataplane yet: ${u.feature}`);
    if (full) this.fullSyncExtras(plan.desired);
    await this.syncHealthChecks(plan.desired);

    for (const e of res.errors) {
      this.metrics.countSyncError(e.code);
      const k = `sync/${e.service}/${e.code}`;
      if (this.logged.get(k) !== e.message) this.log.error({ service: e.service, code: e.code }, e.message);
      this.logged.set(k, e.message);
    }
    // A failure not confined to one service: the runner retries with a full
    // sync after its backoff, and /healthz turns unhealthy if it persists.
    if (res.errors.some((e) => e.service === '')) {
      this.metrics.countApplyFailure(!res.full, res.errors.find((e) => e.service === '')!.message);
      this.health.syncFailed();
      return { ok: false };
    }
    // A service that could not be programmed keeps its previous state and is
    // retried on its own; the node stays healthy for everything else (load
    // balancers probe /healthz to decide whether this node gets traffic).
    this.scheduleServiceRetry(new Set(res.errors.map((e) => e.service)));
    // After the rules are in: a flow deleted before would be re-created by the old rules.
    for (const c of this.conntrack?.afterSync(plan.desired, full ? 'all' : changed) ?? []) this.metrics.observeConntrackCleanup(c.family, c.seconds, c.deleted);
    this.everSynced = true;
    if (this.otherModesPending) {
      this.otherModesPending = false;
      await removeOtherModes(this.mode, { pinDir: this.cfg.bpf.pinPath }, this.log);
    }
    this.health.updated();
    this.metrics.synced(now);
    if (this.pendingSince !== null) {
      this.metrics.observeNetworkProgramming((now - this.pendingSince) / 1000);
      this.pendingSince = null;
    }
    // The first sync, and a full one that had to repair something, are news; a periodic
    // sync that found nothing to do is the steady state and not worth a line every syncPeriod.
    const level = first || (full && res.upserts + res.deletes > 0) ? 'info' : 'debug';
    this.log[level]({ full, services: plan.desired.services.size, changed: changed.size, upserts: res.upserts, deletes: res.deletes, failed: res.errors.length, ms: now - started }, 'synced');
    if (first) this.log.debug({ ms: collectFirstSyncGarbage() }, 'collected the garbage of the first sync');
    return { ok: true };
  }

  private scheduleServiceRetry(failed: Set<string>): void {
    this.retryServices = failed;
    if (this.retryTimer) this.clock.clearTimer(this.retryTimer);
    this.retryTimer = null;
    if (failed.size === 0) {
      this.retryDelayMs = RETRY_INITIAL_MS;
      return;
    }
    this.retryTimer = this.clock.setTimer(this.retryDelayMs, () => {
      this.retryTimer = null;
      this.runner.run();
    });
    this.retryDelayMs = Math.min(this.retryDelayMs * 2, this.cfg.syncPeriodMs);
  }

  /** Whole-cluster gauges, refreshed on full syncs (they cost a pass over every service). */
  private fullSyncExtras(desired: DesiredDataplane): void {
    let internal = 0;
    let external = 0;
    for (const s of desired.services.values()) {
      if (s.internal.backends.length === 0 && s.internal.onEmpty === 'drop') internal++;
      if (hasExternalFrontends(s.frontends) && s.external.backends.length === 0 && s.external.onEmpty === 'drop') external++;
    }
    this.metrics.setNoLocalEndpoints('internal', internal);
    this.metrics.setNoLocalEndpoints('external', external);
    for (const m of this.dataplane.mapUsage?.() ?? []) this.metrics.setMapUsage(m.name, m.entries, m.capacity);
  }

  private async syncHealthChecks(desired: DesiredDataplane): Promise<void> {
    if (desired.healthChecks.size === 0 && !this.healthServers) return;
    if (!this.healthServers) {
      const addresses = this.cfg.nodePortAddresses.kind === 'all' ? [] : [...desired.nodePortAddresses.IPv4, ...desired.nodePortAddresses.IPv6];
      this.healthServers = new ServiceHealthServers({ addresses, proxyHealth: this.health, logger: this.log });
    }
    const errors = await this.healthServers.sync(desired.healthChecks, this.health.isHealthy());
    for (const e of errors) this.log.error({ service: e.service, port: e.port, address: e.address }, `health check server: ${e.message}`);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.retryTimer) this.clock.clearTimer(this.retryTimer);
    await this.runner?.stop();
    for (const s of this.sources) await s.stop().catch((err: unknown) => this.log.warn({ err, source: s.name }, 'stopping a source failed'));
    await this.healthServers?.dispose();
    await this.http?.close();
    await this.dataplane?.dispose();
    this.dataplane?.nodeState?.dispose();
    // Only a datapath this run programmed can be said to keep serving.
    this.log.info(this.everSynced ? 'bpfproxy stopped; the datapath keeps serving' : 'bpfproxy stopped before programming the datapath');
  }
}
