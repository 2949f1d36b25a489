// The metrics each mode reports beyond the common set, registered only in
// that mode as kube-proxy's RegisterMetrics(mode) does, read from /metrics text.
import { describe, expect, it } from 'vitest';
import { addOwned, addWritten, zeroCounts } from '../../../src/dataplane/iptables/counts.js';
import { newOwned } from '../../../src/dataplane/iptables/objects.js';
import { builtinJumps } from '../../../src/dataplane/iptables/render-base.js';
import { Metrics } from '../../../src/runtime/metrics.js';

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const IPTABLES = [
  'kubeproxy_sync_proxy_rules_iptables_restore_failures_total',
  'kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total',
  'kubeproxy_sync_proxy_rules_iptables_total',
  'kubeproxy_sync_proxy_rules_iptables_last',
];
const NFTABLES = ['kubeproxy_sync_proxy_rules_nftables_sync_failures_total', 'kubeproxy_sync_proxy_rules_nftables_cleanup_failures_total'];
const CONNTRACK = ['kubeproxy_conntrack_reconciler_deleted_entries_total', 'kubeproxy_conntrack_reconciler_sync_duration_seconds'];
const COMMON = [
  'kubeproxy_sync_proxy_rules_duration_seconds',
  'kubeproxy_sync_proxy_rules_last_timestamp_seconds',
  'kubeproxy_sync_proxy_rules_endpoint_changes_total',
  'kubeproxy_sync_proxy_rules_service_changes_total',
  'kubeproxy_network_programming_duration_seconds',
];

const registered = (text: string, name: string) => text.includes(`# TYPE ${name} `);

describe('per-mode metrics', () => {
  it.each([
    { mode: 'iptables', want: [...IPTABLES, ...CONNTRACK], not: NFTABLES },
    { mode: 'nftables', want: [...NFTABLES, ...CONNTRACK], not: IPTABLES },
    { mode: 'ipvs', want: [IPTABLES[0]!, ...CONNTRACK], not: [...IPTABLES.slice(1), ...NFTABLES] },
    { mode: 'bpf', want: [], not: [...IPTABLES, ...NFTABLES, ...CONNTRACK] },
  ] as const)('$mode mode reports its own and the common metrics, and no other mode\'s', async ({ mode, want, not }) => {
    const m = new Metrics({ processMetrics: false });
    m.setMode(mode);
    const text = await m.text();
    for (const name of [...COMMON, ...want]) expect(registered(text, name), name).toBe(true);
    for (const name of not) expect(registered(text, name), name).toBe(false);
  });

  it('counts iptables-restore failures, partial ones apart, and the rules owned and written per table', async () => {
    const m = new Metrics({ processMetrics: false });
    m.setMode('iptables');
    m.countApplyFailure(false, 'iptables-restore failed: line 3 failed');
    m.countApplyFailure(true, 'ip6tables-restore failed: line 9 failed');
    m.countApplyFailure(true, 'iptables-save failed: permission denied');
    m.setIptablesRules('nat', 120, 7);
    m.setIptablesRules('filter', 9, 0);
    const text = await m.text();
    expect(sample(text, 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total')).toBe(2);
    // Any failed partial sync counts as a partial restore failure, as kube-proxy's deferred check does.
    expect(sample(text, 'kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total')).toBe(2);
    expect(sample(text, 'kubeproxy_sync_proxy_rules_iptables_total{table="nat"}')).toBe(120);
    expect(sample(text, 'kubeproxy_sync_proxy_rules_iptables_last{table="nat"}')).toBe(7);
    expect(sample(text, 'kubeproxy_sync_proxy_rules_iptables_total{table="filter"}')).toBe(9);
  });

  it('counts nft transaction failures, and conntrack entries deleted per family', async () => {
    const m = new Metrics({ processMetrics: false });
    m.setMode('nftables');
    m.countApplyFailure(true, 'nft -f failed: Error: No such file or directory');
    m.observeConntrackCleanup('IPv4', 0.002, 3);
    m.observeConntrackCleanup('IPv6', 0.001, 0);
    const text = await m.text();
    expect(sample(text, 'kubeproxy_sync_proxy_rules_nftables_sync_failures_total')).toBe(1);
    expect(sample(text, 'kubeproxy_conntrack_reconciler_deleted_entries_total{ip_family="IPv4"}')).toBe(3);
    expect(sample(text, 'kubeproxy_conntrack_reconciler_deleted_entries_total{ip_family="IPv6"}')).toBe(0);
    expect(sample(text, 'kubeproxy_conntrack_reconciler_sync_duration_seconds_count{ip_family="IPv4"}')).toBe(1);
  });

  it('a proxy runs one mode: registering another one is an error', () => {
    const m = new Metrics({ processMetrics: false });
    m.setMode('nftables');
    m.setMode('nftables');
    expect(() => m.setMode('iptables')).toThrow(/nftables mode already/);
  });
});

describe('iptables rule counts', () => {
  it('counts the -A and -I lines of a restore per table, and what the owners hold with our jumps', () => {
    const written = zeroCounts();
    addWritten(written, '*nat\n:KUBE-SVC-X - [0:0]\n-A KUBE-SVC-X -j KUBE-SEP-Y\n-A KUBE-SERVICES -j KUBE-SVC-X\n-X KUBE-OLD\nCOMMIT\n*filter\n-I INPUT 1 -j KUBE-FIREWALL\n-D INPUT -j KUBE-OLD\nCOMMIT\n');
    expect(written).toEqual({ nat: 2, filter: 1 });
    const o = newOwned();
    o.chains.nat.set('KUBE-SVC-X', ['-j KUBE-SEP-Y', '-j KUBE-SEP-Z']);
    o.chains.nat.set('KUBE-SERVICES', ['never written: the index rules stand in for it']);
    o.index.nat.set('KUBE-SERVICES', ['-d 10.96.0.1/32 -j KUBE-SVC-X']);
    const total = zeroCounts();
    addOwned(total, [o], builtinJumps());
    const jumps = builtinJumps();
    expect(total).toEqual({ nat: 3 + jumps.filter((j) => j.table === 'nat').length, filter: jumps.filter((j) => j.table === 'filter').length });
  });
});
