import { describe, expect, it } from 'vitest';
import { nodeFromObject } from '../../../src/model/node.js';
import type { NodeInfo } from '../../../src/model/types.js';
import type { KubeObject } from '../../../src/sources/types.js';

type Obj = Record<string, unknown>;

function node(over: { meta?: Obj; spec?: Obj; status?: Obj; top?: Obj } = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: 'node-1', labels: { 'topology.kubernetes.io/zone': 'zone-a' }, ...over.meta },
    spec: { podCIDRs: ['10.244.1.0/24'], ...over.spec },
    status: { addresses: [{ type: 'InternalIP', address: '172.18.0.2' }], ...over.status },
    ...over.top,
  };
}

function accept(obj: KubeObject): NodeInfo & { warnings: string[] } {
  const r = nodeFromObject(obj);
  if (!r.ok) throw new Error(`rejected: ${r.reason}`);
  return { ...r.value, warnings: r.warnings };
}

function expectRejected(obj: KubeObject, path: string, rule: string): void {
  const r = nodeFromObject(obj);
  if (r.ok) throw new Error(`accepted: ${JSON.stringify(r.value)}`);
  const subject = `Node ${obj.metadata?.name || '<unnamed>'}: `;
  expect(r.reason.startsWith(subject), r.reason).toBe(true);
  const errors = r.reason.slice(subject.length).split('; ');
  expect(errors.some((e) => e.startsWith(`${path}: `) && e.includes(rule)), r.reason).toBe(true);
}

describe('nodeFromObject', () => {
  it('reads name, labels, addresses and pod CIDRs', () => {
    expect(accept(node())).toEqual({
      name: 'node-1',
      labels: { 'topology.kubernetes.io/zone': 'zone-a' },
      addresses: [{ type: 'InternalIP', address: '172.18.0.2' }],
      podCIDRs: ['10.244.1.0/24'],
      deleting: false,
      warnings: [],
    });
  });

  it('puts InternalIP addresses first, keeps the rest in order, canonical, and leaves out host names', () => {
    const n = accept(node({
      status: {
        addresses: [
          { type: 'Hostname', address: 'node-1' },
          { type: 'ExternalIP', address: '203.0.113.5' },
          { type: 'InternalIP', address: '172.18.0.2' },
          { type: 'ExternalIP', address: '2001:DB8::0:7' },
          { type: 'InternalIP', address: 'FD00::0:2' },
        ],
      },
    }));
    expect(n.addresses).toEqual([
      { type: 'InternalIP', address: '172.18.0.2' },
      { type: 'InternalIP', address: 'fd00::2' },
      { type: 'ExternalIP', address: '203.0.113.5' },
      { type: 'ExternalIP', address: '2001:db8::7' },
    ]);
    expect(n.warnings).toEqual([]);
  });

  it('skips an invalid address with a warning and keeps the node', () => {
    const n = accept(node({ status: { addresses: [{ type: 'InternalIP', address: '172.18.0.300' }, { type: 'InternalIP', address: '172.18.0.3' }] } }));
    expect(n.addresses).toEqual([{ type: 'InternalIP', address: '172.18.0.3' }]);
    expect(n.warnings).toHaveLength(1);
    expect(n.warnings[0]).toMatch(/^Node node-1: status\.addresses\[0\]: ignored: .*172\.18\.0\.300/);
  });

  it('canonicalizes pod CIDRs, dual-stack', () => {
    expect(accept(node({ spec: { podCIDRs: ['10.244.1.7/24', 'FD00:10:244:1::5/64'] } })).podCIDRs)
      .toEqual(['10.244.1.0/24', 'fd00:10:244:1::/64']);
  });

  it('falls back to the single spec.podCIDR', () => {
    expect(accept(node({ spec: { podCIDRs: undefined, podCIDR: '10.244.2.0/24' } })).podCIDRs).toEqual(['10.244.2.0/24']);
    expect(accept(node({ spec: { podCIDRs: undefined } })).podCIDRs).toEqual([]);
  });

  it('marks a node with a deletionTimestamp as deleting', () => {
    expect(accept(node({ meta: { deletionTimestamp: '2024-05-01T10:00:00Z' } })).deleting).toBe(true);
  });

  const rejected: [string, KubeObject, string, string][] = [
    ['no name', node({ meta: { name: undefined } }), 'metadata.name', 'Required value'],
    ['name not a DNS subdomain', node({ meta: { name: 'Node_1' } }), 'metadata.name', 'RFC 1123 subdomain'],
    ['wrong kind', node({ top: { kind: 'Service' } }), 'kind', 'Unsupported value: "Service"'],
    ['label value not a string', node({ meta: { labels: { rack: 7 } } }), 'metadata.labels[rack]', 'must be a string'],
    ['pod CIDR invalid', node({ spec: { podCIDRs: ['10.244.1.0/33'] } }), 'spec.podCIDRs[0]', 'must be a valid CIDR value'],
    ['two pod CIDRs of one family', node({ spec: { podCIDRs: ['10.244.1.0/24', '10.245.1.0/24'] } }), 'spec.podCIDRs',
      'may specify no more than one CIDR for each IP family'],
    ['same pod CIDR twice', node({ spec: { podCIDRs: ['10.244.1.0/24', '10.244.1.0/24'] } }), 'spec.podCIDRs[1]', 'Duplicate value'],
    ['single podCIDR invalid', node({ spec: { podCIDRs: undefined, podCIDR: '10.244.1.0' } }), 'spec.podCIDR', 'must be a valid CIDR value'],
  ];
  it.each(rejected)('rejects: %s', (_what, obj, path, rule) => {
    expectRejected(obj, path, rule);
  });
});
