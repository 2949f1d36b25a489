// Prometheus metrics. kube-proxy's names, types and help texts, so dashboards and
// alerts written for kube-proxy keep working; ours are prefixed bpfproxy_.
// A private registry: tests and embedders can hold several without clashes.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { OBJECT_KINDS } from '../model/objects.js';
import type { Logger } from '../util/log.js';
import type { ProxyMode } from '../util/modes.js';

export type TrafficPolicyScope = 'internal' | 'external';

/** Cumulative counts by label (bigint as the BPF counters are read). */
export type LabelCounts = Readonly<Record<string, number | bigint>> | ReadonlyMap<string, number | bigint>;
/** Cumulative datapath counts read at scrape time: drops by reason, events by name (src/dataplane/bpf/reasons.ts). */
export interface DatapathCounts { drops?: LabelCounts; events?: LabelCounts }
export type DatapathCollector = () => DatapathCounts | Promise<DatapathCounts>;
type Totals = { drops: Map<string, number>; events: Map<string, number> };

/** kube-proxy's sync histograms: 1 ms doubling to about 16 s. */
const SYNC_BUCKETS = Array.from({ length: 15 }, (_, i) => 0.001 * 2 ** i);
/**
 * kube-proxy starts this histogram at 0.25 s; bpfproxy aims below a millisecond,
 * so the low end is finer. The top (5 min) is kube-proxy's.
 */
const NETWORK_PROGRAMMING_BUCKETS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300];

/**
 * What a mode reports beyond the common set, registered only in that mode, as
 * kube-proxy's RegisterMetrics(mode) does (pkg/proxy/metrics/metrics.go): a
 * dashboard that finds kubeproxy_sync_proxy_rules_iptables_total knows the
 * node runs iptables. Names, types and help texts are kube-proxy's (before
 * 1.33 added an ip_family label to some of them). ipvs counts the
 * iptables-restore that installs its masquerade rules, as kube-proxy's does.
 */
interface ModeMetrics {
  restoreFailures?: Counter;
  partialRestoreFailures?: Counter;
  iptablesRules?: Gauge<'table'>;
  iptablesLast?: Gauge<'table'>;
  nftSyncFailures?: Counter;
  nftCleanupFailures?: Counter;
  conntrackDeleted?: Counter<'ip_family'>;
  conntrackDuration?: Histogram<'ip_family'>;
}

export interface MetricsOptions {
  /** prom-client's process and Node.js metrics (process_cpu_seconds_total, nodejs_*). Default true. */
  processMetrics?: boolean;
  logger?: Logger;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly logger: Logger | undefined;
  private readonly collectors = new Map<DatapathCollector, Totals>();

  private readonly syncDuration: Histogram;
  private readonly syncFullDuration: Histogram;
  private readonly syncPartialDuration: Histogram;
  private readonly lastSync: Gauge;
  private readonly lastQueued: Gauge;
  private readonly networkProgramming: Histogram;
  private readonly endpointChangesPending: Gauge;
  private readonly endpointChangesTotal: Counter;
  private readonly serviceChangesPending: Gauge;
  private readonly serviceChangesTotal: Counter;
  private readonly noLocalEndpoints: Gauge<'traffic_policy'>;
  private readonly healthzTotal: Counter<'code'>;
  private readonly livezTotal: Counter<'code'>;
  private readonly syncErrors: Counter<'code'>;
  private readonly rejectedObjects: Counter<'kind'>;
  private readonly mapEntries: Gauge<'map'>;
  private readonly mapCapacity: Gauge<'map'>;
  private mode: ProxyMode | null = null;
  private modeMetrics: ModeMetrics = {};

  constructor(opts: MetricsOptions = {}) {
    this.logger = opts.logger;
    const registers = [this.registry];
    const histogram = (name: string, help: string, buckets: number[]) => new Histogram({ name, help, buckets, registers });

    this.syncDuration = histogram('kubeproxy_sync_proxy_rules_duration_seconds', 'SyncProxyRules latency in seconds', SYNC_BUCKETS);
    this.syncFullDuration = histogram('kubeproxy_sync_full_proxy_rules_duration_seconds', 'SyncProxyRules latency in seconds for full resyncs', SYNC_BUCKETS);
    this.syncPartialDuration = histogram('kubeproxy_sync_partial_proxy_rules_duration_seconds', 'SyncProxyRules latency in seconds for partial resyncs', SYNC_BUCKETS);
    this.lastSync = new Gauge({ name: 'kubeproxy_sync_proxy_rules_last_timestamp_seconds', help: 'The last time proxy rules were successfully synced', registers });
    this.lastQueued = new Gauge({ name: 'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds', help: 'The last time a sync of proxy rules was queued', registers });
    this.networkProgramming = histogram('kubeproxy_network_programming_duration_seconds', 'In Cluster Network Programming Latency in seconds', NETWORK_PROGRAMMING_BUCKETS);
    this.endpointChangesPending = new Gauge({ name: 'kubeproxy_sync_proxy_rules_endpoint_changes_pending', help: 'Pending proxy rules Endpoint changes', registers });
    this.endpointChangesTotal = new Counter({ name: 'kubeproxy_sync_proxy_rules_endpoint_changes_total', help: 'Cumulative proxy rules Endpoint changes', registers });
    this.serviceChangesPending = new Gauge({ name: 'kubeproxy_sync_proxy_rules_service_changes_pending', help: 'Pending proxy rules Service changes', registers });
    this.serviceChangesTotal = new Counter({ name: 'kubeproxy_sync_proxy_rules_service_changes_total', help: 'Cumulative proxy rules Service changes', registers });
    this.noLocalEndpoints = new Gauge({
      name: 'kubeproxy_sync_proxy_rules_no_local_endpoints_total',
      help: 'Number of services with a Local traffic policy and no endpoints',
      labelNames: ['traffic_policy'],
      registers,
    });
    this.healthzTotal = new Counter({ name: 'kubeproxy_proxy_healthz_total', help: 'Cumulative proxy healthz HTTP status', labelNames: ['code'], registers });
    this.livezTotal = new Counter({ name: 'kubeproxy_proxy_livez_total', help: 'Cumulative proxy livez HTTP status', labelNames: ['code'], registers });

    this.syncErrors = new Counter({ name: 'bpfproxy_sync_errors_total', help: 'Services that could not be programmed, by error code', labelNames: ['code'], registers });
    this.rejectedObjects = new Counter({ name: 'bpfproxy_rejected_objects_total', help: 'API objects rejected as invalid, by kind; the last good version stays in force', labelNames: ['kind'], registers });
    this.mapEntries = new Gauge({ name: 'bpfproxy_bpf_map_entries', help: 'Entries in a pinned BPF map', labelNames: ['map'], registers });
    this.mapCapacity = new Gauge({ name: 'bpfproxy_bpf_map_capacity', help: 'Capacity (max_entries) of a pinned BPF map', labelNames: ['map'], registers });
    const datapathDrops: Counter<'reason'> = new Counter({
      name: 'bpfproxy_datapath_drops_total',
      help: 'Packets the BPF programs dropped, by reason, read from per-CPU counters at scrape time',
      labelNames: ['reason'],
      registers,
      collect: async () => {
        const { drops } = await this.collectDatapath();
        datapathDrops.reset();
        for (const [reason, value] of drops) datapathDrops.inc({ reason }, value);
      },
    });
    const datapathEvents: Counter<'event'> = new Counter({
      name: 'bpfproxy_datapath_events_total',
      help: 'Events the BPF programs counted (translations, packets passed to the stack and why, ...), read from per-CPU counters at scrape time',
      labelNames: ['event'],
      registers,
      collect: async () => {
        const { events } = await this.collectDatapath();
        datapathEvents.reset();
        for (const [event, value] of events) datapathEvents.inc({ event }, value);
      },
    });

    // prom-client offers no way to stop these (an event-loop delay monitor and a GC
    // observer, neither keeps the process alive); unit tests turn them off.
    if (opts.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** Registers the metrics of the mode in force (once: a proxy runs one mode). */
  setMode(mode: ProxyMode): void {
    if (this.mode !== null) {
      if (this.mode !== mode) throw new Error(`metrics are registered for ${this.mode} mode already`);
      return;
    }
    this.mode = mode;
    const registers = [this.registry];
    const counter = (name: string, help: string) => new Counter({ name: `kubeproxy_sync_proxy_rules_${name}`, help, registers });
    const m: ModeMetrics = {};
    if (mode === 'iptables' || mode === 'ipvs') m.restoreFailures = counter('iptables_restore_failures_total', 'Cumulative proxy iptables restore failures');
    if (mode === 'iptables') {
      m.partialRestoreFailures = counter('iptables_partial_restore_failures_total', 'Cumulative proxy iptables partial restore failures');
      m.iptablesRules = new Gauge({ name: 'kubeproxy_sync_proxy_rules_iptables_total', help: 'Total number of iptables rules owned by kube-proxy', labelNames: ['table'], registers });
      m.iptablesLast = new Gauge({ name: 'kubeproxy_sync_proxy_rules_iptables_last', help: 'Number of iptables rules written by kube-proxy in last sync', labelNames: ['table'], registers });
    }
    if (mode === 'nftables') {
      m.nftSyncFailures = counter('nftables_sync_failures_total', 'Cumulative proxy nftables sync failures');
      // kube-proxy deletes stale chains in a later transaction of its own; here they go in the sync's own transaction, so this stays 0 unless that cleanup is ever split out.
      m.nftCleanupFailures = counter('nftables_cleanup_failures_total', 'Cumulative proxy nftables cleanup failures');
    }
    if (mode !== 'bpf') {
      m.conntrackDeleted = new Counter({
        name: 'kubeproxy_conntrack_reconciler_deleted_entries_total',
        help: 'Cumulative conntrack flows deleted by conntrack reconciler',
        labelNames: ['ip_family'],
        registers,
      });
      m.conntrackDuration = new Histogram({
        name: 'kubeproxy_conntrack_reconciler_sync_duration_seconds',
        help: 'ReconcileConntrackFlowsLatency latency in seconds',
        labelNames: ['ip_family'],
        buckets: SYNC_BUCKETS,
        registers,
      });
    }
    this.modeMetrics = m;
  }

  /**
   * A sync failed as a whole; `message` names the step ("iptables-restore failed: ...").
   * As kube-proxy counts: a failed iptables-restore (iptables and ipvs modes),
   * any failed partial sync (iptables), any failed sync (nftables).
   */
  countApplyFailure(partial: boolean, message: string): void {
    const m = this.modeMetrics;
    if (/^ip6?tables-restore\b/.test(message)) m.restoreFailures?.inc();
    if (partial) m.partialRestoreFailures?.inc();
    m.nftSyncFailures?.inc();
  }

  /** iptables rules we own in `table` (nat, filter), and how many the last sync wrote. */
  setIptablesRules(table: string, total: number, written: number): void {
    this.modeMetrics.iptablesRules?.set({ table }, total);
    this.modeMetrics.iptablesLast?.set({ table }, written);
  }

  /** One family's conntrack clean-up after a sync (the netfilter modes' conntrack hygiene): how long, how many entries deleted. */
  observeConntrackCleanup(family: 'IPv4' | 'IPv6', seconds: number, deleted: number): void {
    this.modeMetrics.conntrackDuration?.observe({ ip_family: family }, seconds);
    this.modeMetrics.conntrackDeleted?.inc({ ip_family: family }, deleted);
  }

  /** One sync of the dataplane took `seconds`. */
  observeSync(seconds: number, full: boolean): void {
    this.syncDuration.observe(seconds);
    (full ? this.syncFullDuration : this.syncPartialDuration).observe(seconds);
  }

  /** A sync succeeded at this time (epoch ms). */
  synced(atMs: number): void {
    this.lastSync.set(atMs / 1000);
  }

  /** A change was queued for the next sync at this time (epoch ms). */
  queued(atMs: number): void {
    this.lastQueued.set(atMs / 1000);
  }

  /** From the change's trigger time (EndpointSlice last-change-trigger-time) to it being in the datapath. */
  observeNetworkProgramming(seconds: number): void {
    this.networkProgramming.observe(seconds);
  }

  /** Objects changed and not yet synced. */
  setPendingChanges(pending: { services: number; endpoints: number }): void {
    this.serviceChangesPending.set(pending.services);
    this.endpointChangesPending.set(pending.endpoints);
  }

  /** Changes seen from the sources. */
  countChanges(seen: { services?: number; endpoints?: number }): void {
    if (seen.services) this.serviceChangesTotal.inc(seen.services);
    if (seen.endpoints) this.endpointChangesTotal.inc(seen.endpoints);
  }

  /** Services with a Local policy of this scope and no local endpoint, after a sync. */
  setNoLocalEndpoints(scope: TrafficPolicyScope, services: number): void {
    this.noLocalEndpoints.set({ traffic_policy: scope }, services);
  }

  countHealthz(status: number): void {
    this.healthzTotal.inc({ code: String(status) });
  }

  countLivez(status: number): void {
    this.livezTotal.inc({ code: String(status) });
  }

  /** A SyncError code (dataplane/errors.ts). */
  countSyncError(code: string, n = 1): void {
    this.syncErrors.inc({ code }, n);
  }

  /**
   * An object rejected by validation. The kind may come straight from a file:
   * label values are the known kinds and "other", so a file cannot grow the
   * series without bound (or put a NUL byte into the exposition).
   */
  countRejected(kind: string): void {
    this.rejectedObjects.inc({ kind: (OBJECT_KINDS as readonly string[]).includes(kind) ? kind : 'other' });
  }

  setMapUsage(map: string, entries: number, capacity: number): void {
    this.mapEntries.set({ map }, entries);
    this.mapCapacity.set({ map }, capacity);
  }

  /**
   * Adds a source of datapath drop and event counts, read at every scrape (the bpf dataplane
   * sums its per-CPU counters). Counts of several sources add up. A source that
   * fails keeps its last counts. Returns the function that removes it.
   */
  addDatapathCollector(collector: DatapathCollector): () => void {
    this.collectors.set(collector, { drops: new Map(), events: new Map() });
    return () => { this.collectors.delete(collector); };
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text, as served on /metrics. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  private async collectDatapath(): Promise<Totals> {
    const totals: Totals = { drops: new Map(), events: new Map() };
    for (const [collector, last] of this.collectors) {
      try {
        const counts = await collector();
        copyCounts(counts.drops, last.drops);
        copyCounts(counts.events, last.events);
      } catch (err) {
        this.logger?.warn({ err }, 'datapath metrics collector failed; serving its last counts');
      }
      for (const kind of ['drops', 'events'] as const) {
        for (const [label, value] of last[kind]) totals[kind].set(label, (totals[kind].get(label) ?? 0) + value);
      }
    }
    return totals;
  }
}

/** Replaces `into` with the valid counts of `from`. */
function copyCounts(from: LabelCounts | undefined, into: Map<string, number>): void {
  into.clear();
  if (!from) return;
  const entries = from instanceof Map ? from.entries() : Object.entries(from);
  for (const [label, raw] of entries) {
    const value = Number(raw);
    if (Number.isFinite(value) && value >= 0) into.set(label, value);
  }
}
