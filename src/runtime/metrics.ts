// Prometheus metrics. kube-proxy's names, types and help texts, so dashboards and
// alerts written for kube-proxy keep working; ours are prefixed bpfproxy_.
// A private registry: tests and embedders can hold several without clashes.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { OBJECT_KINDS } from '../model/objects.js';
import type { Logger } from '../util/log.js';

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
