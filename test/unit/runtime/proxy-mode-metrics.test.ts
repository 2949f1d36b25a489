// The proxy reports what its mode reports (kube-proxy's per-mode metrics) and
// runs the conntrack hygiene of the netfilter modes after each sync, without
// a kernel: a driven source, a fake iptables dataplane, a fake conntrack.
import { afterEach, describe, expect, it } from 'vitest';
import { parseCommandLine } from '../../../src/config/flags.js';
import type { StaleFlowRule } from '../../../src/dataplane/conntrack/plan.js';
import type { Dataplane, SyncOptions, SyncResult } from '../../../src/dataplane/types.js';
import type { KubeObject } from '../../../src/model/objects.js';
import type { DesiredDataplane } from '../../../src/planner/types.js';
import { EMPTY_ID_HINTS } from '../../../src/planner/types.js';
import { FakeClock } from '../../../src/util/clock.js';
import { silentLogger } from '../../../src/util/log.js';
import { Proxy } from '../../../src/runtime/proxy.js';
import type { Source, SourceListener } from '../../../src/sources/types.js';
import { get } from './net-helpers.js';

class DrivenSource implements Source {
  readonly name = 'driven';
  listener: SourceListener | null = null;
  async start(l: SourceListener): Promise<void> { this.listener = l; }
  async stop(): Promise<void> { this.listener = null; }
  upsert(obj: KubeObject): void {
    this.listener!({ type: 'upsert', kind: obj.kind as 'Service', key: `${obj.metadata!.namespace}/${obj.metadata!.name}`, object: obj, origin: 'test' });
  }
}

/** Fails the next sync when told to, as a refused iptables-restore does. */
class FakeIptables implements Dataplane {
  readonly mode = 'iptables' as const;
  failNext = false;
  async restore() { return EMPTY_ID_HINTS; }
  async sync(_d: DesiredDataplane, o: SyncOptions): Promise<SyncResult> {
    if (this.failNext) {
      this.failNext = false;
      return { full: o.full, upserts: 0, deletes: 0, errors: [{ service: '', code: 'IPTABLES_APPLY_FAILED', message: 'iptables-restore failed' }], unsupported: [] };
    }
    return { full: o.full, upserts: 1, deletes: 0, errors: [], unsupported: [] };
  }
  ruleCounts() { return [{ table: 'nat', total: 42, written: 5 }, { table: 'filter', total: 8, written: 0 }]; }
  async dispose() {}
}

const dns: KubeObject = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'dns', namespace: 't' }, spec: { clusterIP: '10.96.0.10', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] } };
const slice = (...ips: string[]): KubeObject => ({
  apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
  metadata: { name: 'dns-1', namespace: 't', labels: { 'kubernetes.io/service-name': 'dns' } },
  addressType: 'IPv4', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }], endpoints: ips.map((ip) => ({ addresses: [ip] })),
});

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('per-mode metrics and conntrack hygiene in the proxy', () => {
  let proxy: Proxy | undefined;
  afterEach(async () => { await proxy?.stop(); });

  it('iptables mode: restore failures, rule counts, and stale UDP flows cleared after the sync that removed an endpoint', async () => {
    const clock = new FakeClock();
    const src = new DrivenSource();
    const dp = new FakeIptables();
    const cleared: { family: number; rules: StaleFlowRule[] }[] = [];
    const cl = parseCommandLine(['--hostname-override', 'n1', '--healthz-bind-address', '', '--metrics-bind-address', '127.0.0.1:0', '--min-sync-period', '0s']);
    if (cl.command === 'help') throw new Error('help');
    proxy = await Proxy.start(cl.config, {
      log: silentLogger(), clock, sources: [src], dataplane: dp, localAddresses: () => [],
      conntrack: (family, rules) => { cleared.push({ family, rules: [...rules] }); return { deleted: 2, error: '' }; },
    });
    src.upsert(dns);
    src.upsert(slice('10.244.0.1', '10.244.0.2'));
    src.listener!({ type: 'synced', source: 'driven' });
    await clock.advance(0);
    // The first sync looks at every UDP service: flows a previous run left go.
    expect(cleared).toEqual([{ family: 4, rules: [{ family: 'IPv4', protocol: 'UDP', address: '10.96.0.10', port: 53, keep: ['10.244.0.1', '10.244.0.2'] }] }]);

    // A partial sync whose restore fails: counted as a failure and a partial one; nothing cleared before the rules are in.
    dp.failNext = true;
    src.upsert(slice('10.244.0.1'));
    await clock.advance(0);
    expect(cleared).toHaveLength(1);
    // The retry (full) succeeds and clears the removed endpoint's flows.
    await clock.advance(60_000);
    expect(cleared.at(-1)!.rules).toEqual([{ family: 'IPv4', protocol: 'UDP', address: '10.96.0.10', port: 53, keep: ['10.244.0.1'] }]);

    const text = (await get(proxy.httpAddress('metrics')!.port, '/metrics')).body;
    expect(sample(text, 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total')).toBe(1);
    expect(sample(text, 'kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total')).toBe(1);
    expect(sample(text, 'kubeproxy_sync_proxy_rules_iptables_total{table="nat"}')).toBe(42);
    expect(sample(text, 'kubeproxy_sync_proxy_rules_iptables_last{table="nat"}')).toBe(5);
    expect(sample(text, 'kubeproxy_conntrack_reconciler_deleted_entries_total{ip_family="IPv4"}')).toBe(4);
    expect(sample(text, 'kubeproxy_sync_proxy_rules_endpoint_changes_total')).toBeGreaterThanOrEqual(2);
    expect(sample(text, 'kubeproxy_sync_proxy_rules_last_timestamp_seconds')).toBeGreaterThan(0);
    expect(text).not.toContain('kubeproxy_sync_proxy_rules_nftables_sync_failures_total');
  });
});
