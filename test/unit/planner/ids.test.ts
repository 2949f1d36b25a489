// Stable numeric IDs: the datapath's affinity and flow state names them, so
// they must not move while a service or backend exists, must survive a
// restart (restored from what the datapath holds), and must not be handed to
// something else right after being freed.
import { describe, expect, it } from 'vitest';
import { PROTOCOL_NUMBERS, type Protocol } from '../../../src/model/types.js';
import type { DesiredDataplane } from '../../../src/planner/types.js';
import { newIdHints, type IdHints } from '../../../src/planner/types.js';
import { familyOf, ipBytes } from '../../../src/util/ip.js';
import { Harness, service, slice } from './fixtures.js';

/** A readable key for this test's own bookkeeping. */
const keyOf = (protocol: Protocol, address: string, port: number) => `${protocol}/${address}/${port}`;

const web = service('demo', 'web', { type: 'NodePort', clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, nodePort: 30080 }, { name: 'dns', port: 53, protocol: 'UDP', nodePort: 30053 }] });
const webSlice = slice('demo', 'web-1', 'web', [{ name: 'http', port: 8080 }, { name: 'dns', port: 5353, protocol: 'UDP' }], [
  { ip: '10.244.1.10', node: 'node1' },
  { ip: '10.244.2.10', node: 'node2' },
]);
const api = service('demo', 'api', { clusterIP: '10.96.0.11', ports: [{ port: 8080 }] });
const apiSlice = slice('demo', 'api-1', 'api', [{ name: '', port: 8080 }], [{ ip: '10.244.1.10', node: 'node1' }, { ip: '10.244.3.10', node: 'node3' }]);

function serviceIds(d: DesiredDataplane): Map<string, number> {
  return new Map([...d.services].map(([k, s]) => [k, s.id]));
}

function backendIds(d: DesiredDataplane): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of d.services.values()) {
    for (const b of [...s.internal.backends, ...s.external.backends, ...s.cluster.backends]) {
      const key = keyOf(s.protocol, b.address, b.port);
      const have = out.get(key);
      if (have !== undefined && have !== b.id) throw new Error(`${key} has two IDs: ${have} and ${b.id}`);
      out.set(key, b.id);
    }
  }
  return out;
}

/** What a dataplane would read back from its pinned maps after a restart: (protocol number, family, address bytes, port) -> ID. */
function hintsFrom(d: DesiredDataplane): IdHints {
  const hints = newIdHints();
  const add = (table: IdHints['backends'], protocol: Protocol, address: string, port: number, id: number) =>
    table.add(PROTOCOL_NUMBERS[protocol], familyOf(address) === 'IPv4' ? 4 : 6, ipBytes(address), port, id);
  for (const s of d.services.values()) {
    for (const f of s.frontends) add(hints.frontends, s.protocol, f.address, f.port, s.id);
    for (const b of [...s.internal.backends, ...s.external.backends, ...s.cluster.backends]) add(hints.backends, s.protocol, b.address, b.port, b.id);
  }
  return hints;
}

describe('planner IDs', () => {
  it('keep their values across replans that change other things', () => {
    const h = new Harness().upsert(web, webSlice, api, apiSlice);
    const first = h.plan().desired;
    const svc = serviceIds(first);
    const be = backendIds(first);
    h.upsert(slice('demo', 'web-1', 'web', [{ name: 'http', port: 8080 }, { name: 'dns', port: 5353, protocol: 'UDP' }], [
      { ip: '10.244.1.10', node: 'node1' },
      { ip: '10.244.2.10', node: 'node2' },
      { ip: '10.244.2.11', node: 'node2' },
    ]));
    const second = h.plan().desired;
    expect(serviceIds(second)).toEqual(svc);
    for (const [k, id] of be) expect(backendIds(second).get(k), k).toBe(id);
  });

  it('give one backend ID to an address, port and protocol shared by two services', () => {
    const h = new Harness().upsert(web, webSlice, api, apiSlice);
    const d = h.plan().desired;
    const viaWeb = d.services.get('demo/web:http/IPv4')!.internal.backends.find((b) => b.address === '10.244.1.10')!;
    const viaApi = d.services.get('demo/api:/IPv4')!.internal.backends.find((b) => b.address === '10.244.1.10')!;
    expect(viaWeb.port).toBe(8080);
    expect(viaApi.port).toBe(8080);
    expect(viaWeb.id).toBe(viaApi.id);
    // The same address and port over UDP is another backend.
    const udp = d.services.get('demo/web:dns/IPv4')!.internal.backends.find((b) => b.address === '10.244.1.10')!;
    expect(udp.id).not.toBe(viaWeb.id);
  });

  it('keep a shared backend ID while one of its services still uses it', () => {
    const h = new Harness().upsert(web, webSlice, api, apiSlice);
    const before = h.plan().desired.services.get('demo/api:/IPv4')!.internal.backends.find((b) => b.address === '10.244.1.10')!.id;
    h.delete('Service', 'demo/web');
    const after = h.plan().desired.services.get('demo/api:/IPv4')!.internal.backends.find((b) => b.address === '10.244.1.10')!.id;
    expect(after).toBe(before);
  });

  it('are given back with the last service using them, whatever replans came between', () => {
    const h = new Harness().upsert(web, webSlice, api, apiSlice);
    h.plan();
    // web and api share 10.244.1.10:8080/TCP: 2 backends of web's http, 2 of its dns, 1 more of api.
    expect(h.planner.backendIdsInUse).toBe(5);
    // A replan that changes nothing, one that changes a backend's node, one that drops and one that adds an endpoint.
    h.upsert(web);
    h.plan();
    h.upsert(slice('demo', 'web-1', 'web', [{ name: 'http', port: 8080 }, { name: 'dns', port: 5353, protocol: 'UDP' }], [
      { ip: '10.244.1.10', node: 'node1' },
      { ip: '10.244.2.10', node: 'node9' },
    ]));
    h.plan();
    h.upsert(slice('demo', 'api-1', 'api', [{ name: '', port: 8080 }], [{ ip: '10.244.3.10', node: 'node3' }]));
    h.plan();
    expect(h.planner.backendIdsInUse).toBe(5);
    h.upsert(slice('demo', 'api-1', 'api', [{ name: '', port: 8080 }], [{ ip: '10.244.3.10', node: 'node3' }, { ip: '10.244.4.10', node: 'node4' }]));
    h.plan();
    expect(h.planner.backendIdsInUse).toBe(6);
    h.delete('Service', 'demo/web');
    h.plan();
    expect(h.planner.backendIdsInUse).toBe(2);
    h.delete('Service', 'demo/api');
    h.plan();
    expect(h.planner.backendIdsInUse).toBe(0);
  });

  it('are restored after a restart from hints, whatever order the services come in', () => {
    const old = new Harness().upsert(web, webSlice, api, apiSlice);
    const before = old.plan().desired;
    // Restart: a new planner with what the datapath holds, objects listed in another order,
    // plus a new service whose IDs must not collide with restored ones.
    const extra = service('demo', 'extra', { clusterIP: '10.96.0.12', ports: [{ port: 9000 }] });
    const extraSlice = slice('demo', 'extra-1', 'extra', [{ name: '', port: 9000 }], [{ ip: '10.244.4.10', node: 'node4' }]);
    const restarted = new Harness(hintsFrom(before)).upsert(extra, extraSlice, apiSlice, api, webSlice, web);
    const after = restarted.plan().desired;
    for (const [k, id] of serviceIds(before)) expect(serviceIds(after).get(k), k).toBe(id);
    for (const [k, id] of backendIds(before)) expect(backendIds(after).get(k), k).toBe(id);
    const oldServiceIds = new Set(serviceIds(before).values());
    const oldBackendIds = new Set(backendIds(before).values());
    expect(oldServiceIds.has(after.services.get('demo/extra:/IPv4')!.id)).toBe(false);
    expect(oldBackendIds.has(after.services.get('demo/extra:/IPv4')!.internal.backends[0]!.id)).toBe(false);
  });

  it('are not reused right after being freed', () => {
    const h = new Harness().upsert(web, webSlice, api, apiSlice);
    const first = h.plan().desired;
    const freedService = first.services.get('demo/api:/IPv4')!.id;
    const freedBackend = first.services.get('demo/api:/IPv4')!.internal.backends.find((b) => b.address === '10.244.3.10')!.id;
    h.delete('Service', 'demo/api').delete('EndpointSlice', 'demo/api-1');
    h.plan();
    const next = service('demo', 'next', { clusterIP: '10.96.0.13', ports: [{ port: 8080 }] });
    const nextSlice = slice('demo', 'next-1', 'next', [{ name: '', port: 8080 }], [{ ip: '10.244.5.10', node: 'node5' }]);
    const d = h.upsert(next, nextSlice).plan().desired;
    const planned = d.services.get('demo/next:/IPv4')!;
    expect(planned.id).not.toBe(freedService);
    expect(planned.internal.backends[0]!.id).not.toBe(freedBackend);
    expect(Math.max(...serviceIds(d).values())).toBeGreaterThan(freedService);
  });

  it('are restored for IPv6 frontends and backends too', () => {
    const v6 = service('demo', 'v6', { type: 'NodePort', clusterIP: 'fd00:96::10', ipFamilies: ['IPv6'], ports: [{ port: 80, nodePort: 30081 }] });
    const v6Slice = slice('demo', 'v6-1', 'v6', [{ name: '', port: 8080 }], [{ ip: 'fd00:244:1::10', node: 'node1' }, { ip: 'fd00:244:2::10', node: 'node2' }], 'IPv6');
    const before = new Harness().upsert(web, webSlice, v6, v6Slice).plan().desired;
    // Planned first after the restart (keys sort): without the hints it would take the old IDs.
    const early = service('demo', 'aaa', { clusterIP: 'fd00:96::9', ipFamilies: ['IPv6'], ports: [{ port: 80 }] });
    const earlySlice = slice('demo', 'aaa-1', 'aaa', [{ name: '', port: 8080 }], [{ ip: 'fd00:244:3::10', node: 'node3' }], 'IPv6');
    const restarted = new Harness(hintsFrom(before)).upsert(early, earlySlice, v6Slice, v6, webSlice, web).plan().desired;
    expect(restarted.services.get('demo/v6:/IPv6')!.internal.backends.map((b) => b.address)).toEqual(['fd00:244:1::10', 'fd00:244:2::10']);
    for (const [k, id] of serviceIds(before)) expect(serviceIds(restarted).get(k), k).toBe(id);
    for (const [k, id] of backendIds(before)) expect(backendIds(restarted).get(k), k).toBe(id);
  });
});

describe('planned addresses', () => {
  it('carry their IPv4 number next to the text, 0 for IPv6', () => {
    const v6 = service('demo', 'v6', { clusterIP: 'fd00:96::10', ipFamilies: ['IPv6'], ports: [{ port: 80 }] });
    const v6Slice = slice('demo', 'v6-1', 'v6', [{ name: '', port: 8080 }], [{ ip: 'fd00:244:1::10', node: 'node1' }], 'IPv6');
    const d = new Harness().upsert(web, webSlice, v6, v6Slice).plan().desired;
    const asNumber = (ip: string) => ip.split('.').reduce((n, b) => n * 256 + Number(b), 0);
    const web4 = d.services.get('demo/web:http/IPv4')!;
    for (const f of web4.frontends) expect(f.v4 >>> 0, f.address).toBe(asNumber(f.address));
    for (const b of web4.internal.backends) expect(b.v4 >>> 0, b.address).toBe(asNumber(b.address));
    const six = d.services.get('demo/v6:/IPv6')!;
    expect([...six.frontends.map((f) => f.v4), ...six.internal.backends.map((b) => b.v4)]).toEqual([0, 0]);
  });

  it('order IPv6 backends by address bytes, not text, and use a duplicated one once', () => {
    const v6 = service('demo', 'v6', { clusterIP: 'fd00:96::10', ipFamilies: ['IPv6'], ports: [{ port: 80 }] });
    const ips = ['fd00::10', 'fd00::9', 'fd00:0:0:1::', 'fd00::a:0', 'fd00::9'];
    const v6Slice = slice('demo', 'v6-1', 'v6', [{ name: '', port: 8080 }], ips.map((ip) => ({ ip, node: 'node2' })), 'IPv6');
    const d = new Harness().upsert(v6, v6Slice).plan().desired;
    expect(d.services.get('demo/v6:/IPv6')!.internal.backends.map((b) => b.address)).toEqual(['fd00::9', 'fd00::10', 'fd00::a:0', 'fd00:0:0:1::']);
  });
});
