// Which conntrack entries a sync leaves stale: computed from the plan before
// and after it, as kube-proxy matches them (original destination = a
// frontend, reply source not a serving endpoint of it).
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ConntrackJanitor } from '../../../src/dataplane/conntrack/janitor.js';
import { rulesText } from '../../../src/dataplane/conntrack/netlink.js';
import { serviceStaleFlows, staleFlowRules, type StaleFlowRule } from '../../../src/dataplane/conntrack/plan.js';
import type { DesiredDataplane, PlannedService } from '../../../src/planner/types.js';
import { frontend, plannedBackend, plannedService } from '../../helpers/planned.js';

const a = plannedBackend(1, '10.244.1.10', 53);
const b = plannedBackend(2, '10.244.1.11', 53);
const c = plannedBackend(3, '10.244.2.10', 53);

function dns(backends = [a, b, c], extra: Partial<PlannedService> = {}, id = 1): PlannedService {
  return {
    ...plannedService({
      id,
      protocol: 'UDP',
      backends,
      frontends: [frontend('ClusterIP', '10.96.0.10', 53), frontend('NodePort', '172.18.0.11', 30053)],
    }),
    ...extra,
  };
}

const rule = (address: string, port: number, keep: string[], protocol: StaleFlowRule['protocol'] = 'UDP'): StaleFlowRule =>
  ({ family: 'IPv4', protocol, address, port, keep });

describe('serviceStaleFlows', () => {
  it('clears the flows of every frontend of a UDP service that lost an endpoint, keeping the endpoints still serving', () => {
    expect(serviceStaleFlows(dns(), dns([a, c]))).toEqual([
      rule('10.96.0.10', 53, ['10.244.1.10', '10.244.2.10']),
      rule('172.18.0.11', 30053, ['10.244.1.10', '10.244.2.10']),
    ]);
  });

  it('clears flows that were never NATed when a service gains its first endpoint, and nothing when it only gains more', () => {
    expect(serviceStaleFlows(dns([]), dns([a]))).toEqual([rule('10.96.0.10', 53, ['10.244.1.10']), rule('172.18.0.11', 30053, ['10.244.1.10'])]);
    expect(serviceStaleFlows(dns([a]), dns([a, b]))).toEqual([]);
  });

  it('leaves TCP services alone, and an unchanged service costs nothing', () => {
    const tcp = dns([a, b], { protocol: 'TCP' });
    expect(serviceStaleFlows(tcp, { ...tcp, internal: { backends: [a], onEmpty: 'reject' } })).toEqual([]);
    const same = dns();
    expect(serviceStaleFlows(same, same)).toEqual([]);
  });

  it('handles SCTP as UDP', () => {
    expect(serviceStaleFlows(dns([a, b], { protocol: 'SCTP' }), dns([a], { protocol: 'SCTP' }))).toHaveLength(2);
  });

  it('clears every flow to a removed service or a removed frontend', () => {
    expect(serviceStaleFlows(dns(), undefined)).toEqual([rule('10.96.0.10', 53, []), rule('172.18.0.11', 30053, [])]);
    const noNodePort = dns(undefined, { frontends: [frontend('ClusterIP', '10.96.0.10', 53)] });
    expect(serviceStaleFlows(dns(), noNodePort)).toEqual([rule('172.18.0.11', 30053, [])]);
  });

  it('looks at a service seen for the first time (the first sync after a start): flows to other places go', () => {
    expect(serviceStaleFlows(undefined, dns([a]))).toEqual([rule('10.96.0.10', 53, ['10.244.1.10']), rule('172.18.0.11', 30053, ['10.244.1.10'])]);
  });

  it('keeps, per frontend, the endpoints of its own traffic policy: external frontends use the external set', () => {
    const local = (ext: typeof a[]) => ({
      ...dns([a, b, c]),
      external: { backends: ext, onEmpty: 'drop' as const },
      cluster: { backends: ext, onEmpty: 'reject' as const },
    });
    // Only the NodePort's set lost an endpoint: only the NodePort is looked at, and the ClusterIP's endpoints do not count for it.
    expect(serviceStaleFlows(local([a, b]), local([a]))).toEqual([rule('172.18.0.11', 30053, ['10.244.1.10'])]);
  });
});

describe('staleFlowRules', () => {
  it('a frontend that moved from a removed service to a new one keeps the new one\'s endpoints', () => {
    const old = dns([a], {}, 1);
    const renamed = { ...dns([b], {}, 2), key: 'default/renamed:/IPv4' };
    const rules = staleFlowRules(new Map([[old.key, old]]), new Map([[renamed.key, renamed]]), [old.key, renamed.key]);
    expect(rules).toEqual([rule('10.96.0.10', 53, ['10.244.1.11']), rule('172.18.0.11', 30053, ['10.244.1.11'])]);
  });

  it('does not clear a frontend a service outside the changed keys still has', () => {
    const old = dns([a], {}, 1);
    const other = { ...dns([b], {}, 2), key: 'default/other:/IPv4' };
    const rules = staleFlowRules(new Map([[old.key, old], [other.key, other]]), new Map([[other.key, other]]), [old.key]);
    expect(rules).toEqual([]);
  });
});

describe('ConntrackJanitor', () => {
  const log = pino({ level: 'silent' });
  const desired = (...services: PlannedService[]): DesiredDataplane =>
    ({ generation: 1, services: new Map(services.map((s) => [s.key, s])), healthChecks: new Map(), nodePortAddresses: { IPv4: [], IPv6: [] } });

  it('looks at every UDP service on a full sync, then only at the changed ones, and retries after a failure', () => {
    const calls: string[] = [];
    let fail = false;
    const j = new ConntrackJanitor(log, (family, rules) => {
      calls.push(`${family}: ${rulesText(rules)}`);
      return fail ? { deleted: 0, error: 'netlink: boom' } : { deleted: rules.length, error: '' };
    });
    const s = dns([a, b]);
    expect(j.afterSync(desired(s), 'all')).toMatchObject([{ family: 'IPv4', rules: 2, deleted: 2, error: '' }]);
    expect(calls).toEqual(['4: 17 10.96.0.10 53 10.244.1.10 10.244.1.11\n17 172.18.0.11 30053 10.244.1.10 10.244.1.11']);
    // Unchanged on the next full sync: nothing to do.
    expect(j.afterSync(desired(s), 'all')).toEqual([]);
    const shrunk = dns([a]);
    fail = true;
    expect(j.afterSync(desired(shrunk), new Set([s.key]))[0]).toMatchObject({ error: 'netlink: boom' });
    fail = false;
    calls.length = 0;
    // Nothing changed since, but the failed keys are looked at again.
    expect(j.afterSync(desired(shrunk), new Set())).toMatchObject([{ deleted: 2, error: '' }]);
    expect(calls).toEqual(['4: 17 10.96.0.10 53 10.244.1.10\n17 172.18.0.11 30053 10.244.1.10']);
  });
});
