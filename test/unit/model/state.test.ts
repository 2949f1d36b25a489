// ClusterState: validation at the door, the last good version kept,
// conflicts settled like the API server's allocators, and checkouts that
// name exactly the services to plan again.
import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../../../src/model/objects.js';
import { ClusterState, type Rejection } from '../../../src/model/state.js';
import { DEFAULT_VALIDATION } from '../../../src/model/types.js';

type Obj = Record<string, unknown>;

function service(name: string, spec: Obj, created = '2024-01-01T00:00:00Z'): KubeObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'ns', creationTimestamp: created }, spec };
}
const clusterIP = (name: string, ip: string, created?: string) => service(name, { clusterIP: ip, ports: [{ port: 80 }] }, created);
const nodePort = (name: string, ip: string, port: number, created?: string) =>
  service(name, { type: 'NodePort', clusterIP: ip, ports: [{ port: 80, nodePort: port }] }, created);

function slice(name: string, svc: string, addresses: string[]): KubeObject {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace: 'ns', labels: { 'kubernetes.io/service-name': svc } },
    addressType: 'IPv4',
    ports: [{ name: '', port: 8080, protocol: 'TCP' }],
    endpoints: addresses.map((a) => ({ addresses: [a] })),
  };
}

function node(labels: Record<string, string>): KubeObject {
  return { apiVersion: 'v1', kind: 'Node', metadata: { name: 'node1', labels }, status: { addresses: [{ type: 'InternalIP', address: '172.18.0.11' }] } };
}

function setup(synced = true) {
  const rejected: Rejection[] = [];
  const state = new ClusterState('node1', DEFAULT_VALIDATION, { rejected: (r) => rejected.push(r), warned: () => {} });
  if (synced) state.markSynced();
  const upsert = (o: KubeObject) => state.upsert(o.kind as 'Service', `ns/${o.metadata!.name}`, o, 'test');
  return { state, rejected, upsert };
}

describe('ClusterState', () => {
  it('keeps the last good version of a service when a bad one arrives, and reports nothing to plan', () => {
    const { state, rejected, upsert } = setup();
    upsert(clusterIP('web', '10.96.0.10'));
    expect([...state.checkout().services]).toEqual(['ns/web']);
    upsert(service('web', { clusterIP: '10.96.0.10', ports: [{ port: 0 }] }));
    expect(rejected).toHaveLength(1);
    expect(rejected[0]).toMatchObject({ kind: 'Service', key: 'ns/web', keptPrevious: true });
    expect(rejected[0]!.reason).toContain('spec.ports[0].port');
    expect(state.services.get('ns/web')?.ports[0]?.port).toBe(80);
    expect(state.checkout().services.size).toBe(0);
  });

  it('says the last good version is kept when a bad one arrives before the initial lists are complete', () => {
    const { state, rejected, upsert } = setup(false);
    upsert(clusterIP('web', '10.96.0.10'));
    upsert(service('web', { clusterIP: 'bad' }));
    expect(rejected[0]?.keptPrevious).toBe(true);
    state.markSynced();
    expect(state.services.get('ns/web')?.clusterIPs).toEqual(['10.96.0.10']);
  });

  it('admits the services listed at start oldest first, whatever the listing order', () => {
    for (const order of [[0, 1], [1, 0]]) {
      const { state, rejected, upsert } = setup(false);
      const objs = [nodePort('young', '10.96.0.11', 30080, '2024-02-01T00:00:00Z'), nodePort('old', '10.96.0.10', 30080, '2024-01-01T00:00:00Z')];
      for (const i of order) upsert(objs[i]!);
      state.markSynced();
      expect([...state.services.keys()]).toEqual(['ns/old']);
      expect(rejected.map((r) => r.key)).toEqual(['ns/young']);
      expect(rejected[0]!.reason).toContain('provided port is already allocated (to Service ns/old)');
    }
  });

  it('hands a contested nodePort to the waiting service when the holder is deleted', () => {
    const { state, upsert } = setup();
    upsert(nodePort('a', '10.96.0.10', 30080));
    upsert(nodePort('b', '10.96.0.11', 30080));
    state.checkout();
    expect(state.services.has('ns/b')).toBe(false);
    state.delete('Service', 'ns/a');
    expect(state.services.get('ns/b')?.ports[0]?.nodePort).toBe(30080);
    expect([...state.checkout().services].sort()).toEqual(['ns/a', 'ns/b']);
  });

  it('goes round again when admitting a waiting update releases what an earlier-waiting one needs', () => {
    const { state, upsert } = setup();
    upsert(nodePort('a', '10.96.0.10', 30001, '2024-01-02T00:00:00Z'));
    upsert(nodePort('d', '10.96.0.13', 30005, '2024-01-03T00:00:00Z'));
    // b, older than a, asks for 30001 after a got it: it waits.
    upsert(nodePort('b', '10.96.0.11', 30001, '2024-01-01T00:00:00Z'));
    // a's update moves to 30005, held by d: it waits, a keeps 30001.
    upsert(nodePort('a', '10.96.0.10', 30005, '2024-01-02T00:00:00Z'));
    expect(state.services.get('ns/a')?.ports[0]?.nodePort).toBe(30001);
    expect(state.services.has('ns/b')).toBe(false);
    // d goes: a's update is admitted, releasing 30001, which b (older, so checked first) waits for.
    state.delete('Service', 'ns/d');
    expect(state.services.get('ns/a')?.ports[0]?.nodePort).toBe(30005);
    expect(state.services.get('ns/b')?.ports[0]?.nodePort).toBe(30001);
  });

  it('names the service of a changed slice, and both services when a slice changes owner', () => {
    const { state, upsert } = setup();
    upsert(clusterIP('a', '10.96.0.10'));
    upsert(clusterIP('b', '10.96.0.11'));
    state.checkout();
    state.upsert('EndpointSlice', 'ns/s1', slice('s1', 'a', ['10.244.1.1']), 'test');
    expect([...state.checkout().services]).toEqual(['ns/a']);
    state.upsert('EndpointSlice', 'ns/s1', slice('s1', 'b', ['10.244.1.1']), 'test');
    const co = state.checkout();
    expect([...co.services].sort()).toEqual(['ns/a', 'ns/b']);
    expect(co.endpointChanges).toBe(1);
    expect(state.slicesOf('ns/a')).toEqual([]);
    expect(state.slicesOf('ns/b').map((s) => s.key)).toEqual(['ns/s1']);
  });

  it('drops a slice change that is undone before the checkout', () => {
    const { state } = setup();
    state.upsert('EndpointSlice', 'ns/s1', slice('s1', 'a', ['10.244.1.1']), 'test');
    state.checkout();
    state.upsert('EndpointSlice', 'ns/s1', slice('s1', 'a', ['10.244.1.2']), 'test');
    state.upsert('EndpointSlice', 'ns/s1', slice('s1', 'a', ['10.244.1.1']), 'test');
    expect(state.pendingEndpointChanges).toBe(0);
    expect(state.checkout().services.size).toBe(0);
  });

  it('reports a change of its own node, not of others, and not an identical resend', () => {
    const { state } = setup();
    state.upsert('Node', 'node1', node({ 'topology.kubernetes.io/zone': 'a' }), 'test');
    expect(state.checkout().nodeChanged).toBe(true);
    state.upsert('Node', 'node1', node({ 'topology.kubernetes.io/zone': 'a' }), 'test');
    state.upsert('Node', 'node2', { ...node({}), metadata: { name: 'node2' } }, 'test');
    expect(state.checkout().nodeChanged).toBe(false);
    state.delete('Node', 'node1');
    expect(state.checkout().nodeChanged).toBe(true);
    expect(state.node).toBeNull();
  });
});
