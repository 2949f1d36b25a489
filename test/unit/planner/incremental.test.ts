// Incremental planning equals planning from scratch: for any sequence of
// upserts and deletes of valid Services, EndpointSlices and the own Node,
// checked out and planned after random prefixes, every plan (and the final
// one) is the one a fresh ClusterState + Planner makes from the objects of
// that moment alone, and the keys each plan reports as changed are enough
// to bring an incremental dataplane to it.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../../../src/model/objects.js';
import { dumpDesired } from '../../../src/planner/dump.js';
import { Harness, keyOf, nodeObject, service, slice, type EndpointSpec, type Obj } from './fixtures.js';

// ---- a small universe of valid objects, without conflicts between them
// (who holds a contested port depends on history, on purpose) ----

const SERVICES = 4;
const NODES = ['node1', 'node2', 'node3'];

const serviceArb = fc.record({
  i: fc.integer({ min: 0, max: SERVICES - 1 }),
  type: fc.constantFrom('ClusterIP', 'ClusterIP', 'NodePort', 'LoadBalancer', 'LoadBalancer', 'ExternalName', 'Headless'),
  ports: fc.constantFrom([true, false], [false, true], [true, true], [true, true]),
  stack: fc.constantFrom('v4', 'v6', 'dual'),
  etpLocal: fc.boolean(),
  itpLocal: fc.boolean(),
  affinity: fc.constantFrom(null, 0, 60),
  externalIP: fc.boolean(),
  ingress: fc.boolean(),
});

type ServiceChoice = typeof serviceArb extends fc.Arbitrary<infer T> ? T : never;

function buildService(c: ServiceChoice): KubeObject {
  const name = `svc${c.i}`;
  if (c.type === 'ExternalName') return service('ns', name, { type: 'ExternalName', externalName: `${name}.example.com` });
  const v4 = `10.96.0.${10 + c.i}`;
  const v6 = `fd00:96::${10 + c.i}`;
  const addrs: Obj = c.type === 'Headless' ? { clusterIP: 'None' }
    : c.stack === 'v4' ? { clusterIPs: [v4] }
    : c.stack === 'v6' ? { clusterIPs: [v6] }
    : { clusterIPs: [v4, v6], ipFamilyPolicy: 'PreferDualStack' };
  const type = c.type === 'Headless' ? 'ClusterIP' : c.type;
  const withNodePorts = type === 'NodePort' || type === 'LoadBalancer';
  const ports: Obj[] = [];
  if (c.ports[0]) ports.push({ name: 'a', port: 80, targetPort: 8080, ...(withNodePorts ? { nodePort: 30000 + c.i * 10 } : {}) });
  if (c.ports[1]) ports.push({ name: 'b', port: 53, protocol: 'UDP', targetPort: 'dns', ...(withNodePorts ? { nodePort: 30001 + c.i * 10 } : {}) });
  const externalIPs = c.externalIP && c.type !== 'Headless' ? [`198.51.100.${c.i + 1}`, `2001:db8::${c.i + 1}`] : [];
  const external = withNodePorts || externalIPs.length > 0;
  const spec: Obj = {
    type,
    ...addrs,
    ports,
    ...(externalIPs.length ? { externalIPs } : {}),
    ...(c.itpLocal ? { internalTrafficPolicy: 'Local' } : {}),
    ...(external && c.etpLocal ? { externalTrafficPolicy: 'Local' } : {}),
    ...(type === 'LoadBalancer' && c.etpLocal ? { healthCheckNodePort: 31000 + c.i } : {}),
    ...(c.affinity === null ? {} : { sessionAffinity: 'ClientIP', ...(c.affinity ? { sessionAffinityConfig: { clientIP: { timeoutSeconds: c.affinity } } } : {}) }),
  };
  const status = type === 'LoadBalancer' && c.ingress ? { loadBalancer: { ingress: [{ ip: `192.0.2.${c.i + 1}` }, { ip: `2001:db8:1::${c.i + 1}` }] } } : undefined;
  return service('ns', name, spec, status);
}

const CONDITIONS = [
  undefined,
  { ready: true },
  { ready: false, serving: true, terminating: true },
  { ready: false, serving: false, terminating: true },
  { ready: false, serving: false, terminating: false },
];
const HINTS = [
  undefined,
  { forZones: [{ name: 'zone-a' }] },
  { forZones: [{ name: 'zone-b' }] },
  { forZones: [{ name: 'zone-a' }], forNodes: [{ name: 'node1' }] },
  { forZones: [{ name: 'zone-b' }], forNodes: [{ name: 'node2' }] },
];

const endpointArb = fc.record({
  pod: fc.integer({ min: 1, max: 5 }),
  node: fc.integer({ min: 0, max: NODES.length - 1 }),
  conditions: fc.integer({ min: 0, max: CONDITIONS.length - 1 }),
  hints: fc.integer({ min: 0, max: HINTS.length - 1 }),
});

const sliceArb = fc.record({
  i: fc.integer({ min: 0, max: SERVICES - 1 }),
  j: fc.integer({ min: 0, max: 1 }),
  family: fc.constantFrom('IPv4' as const, 'IPv6' as const),
  portA: fc.constantFrom(8080, 8080, 8081, null),
  portB: fc.boolean(),
  endpoints: fc.uniqueArray(endpointArb, { minLength: 1, maxLength: 5, selector: (e) => e.pod }),
});

type SliceChoice = typeof sliceArb extends fc.Arbitrary<infer T> ? T : never;

function buildSlice(c: SliceChoice): KubeObject {
  const ports: { name: string; port: number; protocol?: string }[] = [];
  if (c.portA !== null) ports.push({ name: 'a', port: c.portA });
  if (c.portB) ports.push({ name: 'b', port: 5353, protocol: 'UDP' });
  // Pods share addresses across services, so backends are shared too.
  const endpoints: EndpointSpec[] = c.endpoints.map((e) => ({
    ip: c.family === 'IPv4' ? `10.244.${e.node + 1}.${e.pod}` : `fd00:244:${e.node + 1}::${e.pod}`,
    node: NODES[e.node],
    zone: e.node === 2 ? 'zone-b' : 'zone-a',
    ...(CONDITIONS[e.conditions] ? { conditions: CONDITIONS[e.conditions] } : {}),
    ...(HINTS[e.hints] ? { hints: HINTS[e.hints] } : {}),
  }));
  return slice('ns', `svc${c.i}-${c.family === 'IPv4' ? 'v4' : 'v6'}-${c.j}`, `svc${c.i}`, ports, endpoints, c.family);
}

const nodeArb = fc.constantFrom(null, 'zone-a', 'zone-b');
const buildNode = (zone: string | null) => nodeObject('node1', zone ? { 'topology.kubernetes.io/zone': zone } : {}, ['172.18.0.11', 'fd00:18::11']);

const opArb = fc.oneof(
  { arbitrary: serviceArb.map((c) => ({ op: 'upsert' as const, obj: buildService(c) })), weight: 4 },
  { arbitrary: sliceArb.map((c) => ({ op: 'upsert' as const, obj: buildSlice(c) })), weight: 8 },
  { arbitrary: nodeArb.map((z) => ({ op: 'upsert' as const, obj: buildNode(z) })), weight: 1 },
  { arbitrary: fc.integer({ min: 0, max: SERVICES - 1 }).map((i) => ({ op: 'delete' as const, kind: 'Service' as const, key: `ns/svc${i}` })), weight: 1 },
  { arbitrary: sliceArb.map((c) => ({ op: 'delete' as const, kind: 'EndpointSlice' as const, key: keyOf(buildSlice(c)) })), weight: 1 },
  { arbitrary: fc.constant({ op: 'delete' as const, kind: 'Node' as const, key: 'node1' }), weight: 1 },
  { arbitrary: fc.constant({ op: 'plan' as const }), weight: 3 },
  { arbitrary: fc.constant({ op: 'sync' as const }), weight: 1 },
);

describe('incremental planning', () => {
  it('after every checkout equals a plan from scratch of the objects at that moment', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 10, maxLength: 60, size: 'max' }), (ops) => {
        const live = new Harness();
        const objects = new Map<string, KubeObject>();
        let synced = false;
        const check = () => {
          const got = live.plan().desired;
          expect(live.problems).toEqual([]);
          const want = new Harness().upsert(...objects.values()).plan().desired;
          expect(dumpDesired(got)).toBe(dumpDesired(want));
          expect([...got.services.keys()].sort()).toEqual([...want.services.keys()].sort());
          expect([...got.healthChecks.keys()].sort()).toEqual([...want.healthChecks.keys()].sort());
          // A dataplane that applies only what each plan reported as changed holds the plan.
          expect(new Map([...got.services].map(([k, v]) => [k, JSON.stringify(v)]))).toEqual(live.mirror);
        };
        for (const o of ops) {
          if (o.op === 'plan') {
            // Before the initial lists are complete nothing is in force yet.
            if (synced) check();
          } else if (o.op === 'sync') {
            synced = true;
            check();
          } else if (o.op === 'upsert') {
            objects.set(`${o.obj.kind}/${keyOf(o.obj)}`, o.obj);
            live.upsert(o.obj);
          } else {
            objects.delete(`${o.kind}/${o.key}`);
            live.delete(o.kind, o.key);
          }
        }
        check();
      }),
      { numRuns: 300 },
    );
  });
});
