// The endpoint rows of a draft end in address order, once per address and
// port, with the best copy of a duplicate kept (planner/endpoints.ts), for
// slices in any order: short ones take the insertion sort, long ones the
// general sort.
import { describe, expect, it } from 'vitest';
import { Harness, service, slice, type EndpointSpec } from './fixtures.js';

const num = (ip: string) => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);

function plan(count: number) {
  // Reversed and interleaved: far from address order.
  const ips = Array.from({ length: count }, (_, i) => `10.244.${1 + (i % 3)}.${count - i}`);
  const far: EndpointSpec[] = ips.map((ip) => ({ ip, node: 'node2' }));
  // The same address again in a second slice: on this node, so this copy must win.
  const dup = ips[Math.floor(count / 2)]!;
  const h = new Harness().upsert(
    service('ns', 'web', { clusterIP: '10.96.0.10', ports: [{ name: 'a', port: 80 }] }),
    slice('ns', 'web-a', 'web', [{ name: 'a', port: 8080 }], far),
    slice('ns', 'web-b', 'web', [{ name: 'a', port: 8080 }], [{ ip: dup, node: 'node1' }]),
  );
  const desired = h.plan().desired;
  expect(h.problems).toEqual([]);
  const svc = [...desired.services.values()].find((s) => s.name === 'web')!;
  return { ips, dup, backends: svc.internal.backends };
}

describe('endpoint rows', () => {
  for (const count of [2, 10, 32, 33, 80]) {
    it(`${count} endpoints out of order, one duplicated on this node: sorted by address, each once, the local copy kept`, () => {
      const { ips, dup, backends } = plan(count);
      expect(backends.map((b) => b.address)).toEqual([...ips].sort((a, b) => num(a) - num(b)));
      expect(backends.filter((b) => b.local).map((b) => b.address)).toEqual([dup]);
    });
  }
});
