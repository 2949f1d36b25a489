import { register as globalRegistry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../../src/runtime/metrics.js';

/** The value of one sample line, e.g. sample(text, 'x_total{code="200"}'). */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('Metrics', () => {
  it('exposes kube-proxy\'s metric names, types and help texts', async () => {
    const text = await new Metrics({ processMetrics: false }).text();
    const want: [string, string, string][] = [
      ['kubeproxy_sync_proxy_rules_duration_seconds', 'histogram', 'SyncProxyRules latency in seconds'],
      ['kubeproxy_sync_full_proxy_rules_duration_seconds', 'histogram', 'SyncProxyRules latency in seconds for full resyncs'],
      ['kubeproxy_sync_partial_proxy_rules_duration_seconds', 'histogram', 'SyncProxyRules latency in seconds for partial resyncs'],
      ['kubeproxy_sync_proxy_rules_last_timestamp_seconds', 'gauge', 'The last time proxy rules were successfully synced'],
      ['kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds', 'gauge', 'The last time a sync of proxy rules was queued'],
      ['kubeproxy_network_programming_duration_seconds', 'histogram', 'In Cluster Network Programming Latency in seconds'],
      ['kubeproxy_sync_proxy_rules_endpoint_changes_pending', 'gauge', 'Pending proxy rules Endpoint changes'],
      ['kubeproxy_sync_proxy_rules_endpoint_changes_total', 'counter', 'Cumulative proxy rules Endpoint changes'],
      ['kubeproxy_sync_proxy_rules_service_changes_pending', 'gauge', 'Pending proxy rules Service changes'],
      ['kubeproxy_sync_proxy_rules_service_changes_total', 'counter', 'Cumulative proxy rules Service changes'],
      ['kubeproxy_sync_proxy_rules_no_local_endpoints_total', 'gauge', 'Number of services with a Local traffic policy and no endpoints'],
      ['kubeproxy_proxy_healthz_total', 'counter', 'Cumulative proxy healthz HTTP status'],
      ['kubeproxy_proxy_livez_total', 'counter', 'Cumulative proxy livez HTTP status'],
      ['bpfproxy_sync_errors_total', 'counter', ''],
      ['bpfproxy_rejected_objects_total', 'counter', ''],
      ['bpfproxy_bpf_map_entries', 'gauge', ''],
      ['bpfproxy_bpf_map_capacity', 'gauge', ''],
      ['bpfproxy_datapath_drops_total', 'counter', ''],
      ['bpfproxy_datapath_events_total', 'counter', ''],
    ];
    for (const [name, type, help] of want) {
      expect(text).toContain(`# TYPE ${name} ${type}\n`);
      expect(text).toContain(`# HELP ${name} ${help}`);
    }
  });

  it('uses kube-proxy\'s sync buckets and sub-millisecond network programming buckets', async () => {
    const text = await new Metrics({ processMetrics: false }).text();
    const les = (name: string) => text.split('\n').filter((l) => l.startsWith(`${name}_bucket{`)).map((l) => /le="([^"]+)"/.exec(l)![1]);
    expect(les('kubeproxy_sync_proxy_rules_duration_seconds')).toEqual(
      ['0.001', '0.002', '0.004', '0.008', '0.016', '0.032', '0.064', '0.128', '0.256', '0.512', '1.024', '2.048', '4.096', '8.192', '16.384', '+Inf'],
    );
    expect(les('kubeproxy_network_programming_duration_seconds')).toEqual(
      ['0.001', '0.002', '0.005', '0.01', '0.02', '0.05', '0.1', '0.25', '0.5', '1', '2', '5', '10', '30', '60', '120', '300', '+Inf'],
    );
  });

  it('splits sync durations into full and partial, and records what the methods say', async () => {
    const m = new Metrics({ processMetrics: false });
    m.observeSync(0.003, true);
    m.observeSync(0.0002, false);
    m.observeSync(0.0004, false);
    m.synced(1_700_000_000_500);
    m.queued(1_700_000_000_250);
    m.observeNetworkProgramming(0.0008);
    m.setPendingChanges({ services: 2, endpoints: 5 });
    m.countChanges({ services: 3, endpoints: 7 });
    m.countChanges({ endpoints: 1 });
    m.setNoLocalEndpoints('external', 4);
    m.countHealthz(200);
    m.countHealthz(503);
    m.countHealthz(200);
    m.countLivez(200);
    m.countSyncError('map_full', 2);
    m.countRejected('Service');
    m.setMapUsage('backends', 10, 262144);
    const t = await m.text();
    expect(sample(t, 'kubeproxy_sync_proxy_rules_duration_seconds_count')).toBe(3);
    expect(sample(t, 'kubeproxy_sync_full_proxy_rules_duration_seconds_count')).toBe(1);
    expect(sample(t, 'kubeproxy_sync_partial_proxy_rules_duration_seconds_count')).toBe(2);
    expect(sample(t, 'kubeproxy_sync_partial_proxy_rules_duration_seconds_bucket{le="0.001"}')).toBe(2);
    expect(sample(t, 'kubeproxy_sync_proxy_rules_last_timestamp_seconds')).toBe(1_700_000_000.5);
    expect(sample(t, 'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds')).toBe(1_700_000_000.25);
    expect(sample(t, 'kubeproxy_network_programming_duration_seconds_bucket{le="0.001"}')).toBe(1);
    expect(sample(t, 'kubeproxy_sync_proxy_rules_service_changes_pending')).toBe(2);
    expect(sample(t, 'kubeproxy_sync_proxy_rules_endpoint_changes_pending')).toBe(5);
    expect(sample(t, 'kubeproxy_sync_proxy_rules_service_changes_total')).toBe(3);
    expect(sample(t, 'kubeproxy_sync_proxy_rules_endpoint_changes_total')).toBe(8);
    expect(sample(t, 'kubeproxy_sync_proxy_rules_no_local_endpoints_total{traffic_policy="external"}')).toBe(4);
    expect(sample(t, 'kubeproxy_proxy_healthz_total{code="200"}')).toBe(2);
    expect(sample(t, 'kubeproxy_proxy_healthz_total{code="503"}')).toBe(1);
    expect(sample(t, 'kubeproxy_proxy_livez_total{code="200"}')).toBe(1);
    expect(sample(t, 'bpfproxy_sync_errors_total{code="map_full"}')).toBe(2);
    expect(sample(t, 'bpfproxy_rejected_objects_total{kind="Service"}')).toBe(1);
    expect(sample(t, 'bpfproxy_bpf_map_entries{map="backends"}')).toBe(10);
    expect(sample(t, 'bpfproxy_bpf_map_capacity{map="backends"}')).toBe(262144);
  });

  it('reads datapath drops and events from collectors at scrape time, adding sources up', async () => {
    const m = new Metrics({ processMetrics: false });
    let truncated = 5n;
    let failing = false;
    m.addDatapathCollector(() => ({ drops: new Map([['truncated_l3', truncated]]), events: { sock_xlate: 100 } }));
    const remove = m.addDatapathCollector(async () => {
      if (failing) throw new Error('map gone');
      return { drops: new Map([['truncated_l3', 1n], ['invalid_l4', 2n]]) };
    });
    let t = await m.text();
    expect(sample(t, 'bpfproxy_datapath_drops_total{reason="truncated_l3"}')).toBe(6);
    expect(sample(t, 'bpfproxy_datapath_drops_total{reason="invalid_l4"}')).toBe(2);
    expect(sample(t, 'bpfproxy_datapath_events_total{event="sock_xlate"}')).toBe(100);
    // A drop reason is not an event, nor the other way round.
    expect(sample(t, 'bpfproxy_datapath_events_total{event="truncated_l3"}')).toBeUndefined();
    expect(sample(t, 'bpfproxy_datapath_drops_total{reason="sock_xlate"}')).toBeUndefined();

    truncated = 9n;
    failing = true;
    t = await m.text();
    expect(sample(t, 'bpfproxy_datapath_drops_total{reason="truncated_l3"}')).toBe(10);

    remove();
    t = await m.text();
    expect(sample(t, 'bpfproxy_datapath_drops_total{reason="truncated_l3"}')).toBe(9);
    expect(sample(t, 'bpfproxy_datapath_drops_total{reason="invalid_l4"}')).toBeUndefined();
  });

  it('keeps to a private registry, so several instances coexist', async () => {
    const a = new Metrics({ processMetrics: false });
    const b = new Metrics({ processMetrics: false });
    a.countRejected('Node');
    expect(sample(await b.text(), 'bpfproxy_rejected_objects_total{kind="Node"}')).toBeUndefined();
    expect(await globalRegistry.getSingleMetric('kubeproxy_proxy_healthz_total')).toBeUndefined();
  });

  it('includes the process metrics by default', async () => {
    const text = await new Metrics().text();
    expect(text).toContain('# TYPE process_cpu_seconds_total counter');
    expect(text).toContain('# TYPE nodejs_eventloop_lag_seconds gauge');
  });
});
