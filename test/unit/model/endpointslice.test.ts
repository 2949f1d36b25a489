import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { sliceFromObject } from '../../../src/model/endpointslice.js';
import { unpackEndpoints } from '../../../src/model/packed-endpoints.js';
import type { EndpointInfo, SliceInfo } from '../../../src/model/types.js';
import type { KubeObject } from '../../../src/sources/types.js';

type Obj = Record<string, unknown>;

/** A distinct valid pod address for each i < 62500. */
const podIP = (i: number) => `10.244.${Math.floor(i / 250)}.${(i % 250) + 1}`;
const endpoint = (over: Obj = {}): Obj => ({ addresses: ['10.244.1.5'], conditions: { ready: true }, ...over });

function slice(over: Obj = {}, meta: Obj = {}): KubeObject {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'web-abc12', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' }, ...meta },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: [endpoint()],
    ...over,
  };
}

const endpointsOf = (s: SliceInfo): EndpointInfo[] => unpackEndpoints(s.packed, s.family);

function accept(obj: KubeObject): { value: SliceInfo | null; warnings: string[] } {
  const r = sliceFromObject(obj);
  if (!r.ok) throw new Error(`rejected: ${r.reason}`);
  return { value: r.value, warnings: r.warnings };
}

function acceptSlice(obj: KubeObject): SliceInfo & { warnings: string[] } {
  const { value, warnings } = accept(obj);
  if (value === null) throw new Error(`ignored: ${warnings.join(' | ')}`);
  return { ...value, warnings };
}

/** The reason names the slice, and one of its errors is `path: ...rule...`. */
function expectRejected(obj: KubeObject, path: string, rule: string): void {
  const r = sliceFromObject(obj);
  if (r.ok) throw new Error(`accepted: ${JSON.stringify(r.value)}`);
  const meta = obj.metadata ?? {};
  const subject = `EndpointSlice ${meta.namespace || 'default'}/${meta.name || '<unnamed>'}: `;
  expect(r.reason.startsWith(subject), r.reason).toBe(true);
  const errors = r.reason.slice(subject.length).split('; ');
  expect(errors.some((e) => e.startsWith(`${path}: `) && e.includes(rule)), r.reason).toBe(true);
}

describe('sliceFromObject: rejects what kube-apiserver rejects', () => {
  const many = <T>(n: number, make: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => make(i));
  const cases: [string, KubeObject, string, string][] = [
    ['wrong apiVersion', slice({ apiVersion: 'discovery.k8s.io/v1beta1' }), 'apiVersion', 'Unsupported value: "discovery.k8s.io/v1beta1"'],
    ['name not a DNS subdomain', slice({}, { name: 'Web_Slice' }), 'metadata.name', 'RFC 1123 subdomain'],
    ['addressType missing', slice({ addressType: undefined }), 'addressType', 'Required value'],
    ['addressType unknown', slice({ addressType: 'IP' }), 'addressType', 'Unsupported value: "IP"'],
    ['more than 1000 endpoints', slice({ endpoints: many(1001, (i) => endpoint({ addresses: [podIP(i)] })) }),
      'endpoints', 'Too many: 1001: must have at most 1000 items'],
    ['more ports than the API allows', slice({ ports: many(20001, (i) => ({ name: `p${i}`, port: 1 + (i % 65535) })) }),
      'ports', 'Too many: 20001: must have at most 20000 items'],
    ['port name not a DNS label', slice({ ports: [{ name: 'HTTP', port: 80 }] }), 'ports[0].name', 'RFC 1123 label'],
    ['port names repeat', slice({ ports: [{ port: 80 }, { port: 81 }] }), 'ports[1].name', 'Duplicate value: ""'],
    ['protocol unknown', slice({ ports: [{ port: 80, protocol: 'QUIC' }] }), 'ports[0].protocol', 'Unsupported value: "QUIC"'],
    ['port above 65535', slice({ ports: [{ port: 65536 }] }), 'ports[0].port', 'must be between 1 and 65535, inclusive'],
    ['port 0', slice({ ports: [{ port: 0 }] }), 'ports[0].port', 'Invalid value: 0'],
    ['endpoint without addresses', slice({ endpoints: [endpoint({ addresses: [] })] }), 'endpoints[0].addresses',
      'Required value: must contain at least 1 address'],
    ['endpoint with 101 addresses', slice({ endpoints: [endpoint({ addresses: many(101, (i) => `10.244.0.${i + 1}`) })] }),
      'endpoints[0].addresses', 'Too many: 101'],
    ['IPv6 address in an IPv4 slice', slice({ endpoints: [endpoint(), endpoint({ addresses: ['2001:db8::5'] })] }),
      'endpoints[1].addresses[0]', 'must be a valid IPv4 address'],
    ['IPv4 address in an IPv6 slice', slice({ addressType: 'IPv6' }), 'endpoints[0].addresses[0]', 'must be a valid IPv6 address'],
    ['not an address', slice({ endpoints: [endpoint({ addresses: ['pod-a'] })] }), 'endpoints[0].addresses[0]', 'must be a valid IPv4'],
    ['loopback endpoint', slice({ endpoints: [endpoint({ addresses: ['127.0.0.1'] })] }), 'endpoints[0].addresses[0]', 'loopback range'],
    ['unspecified endpoint', slice({ endpoints: [endpoint({ addresses: ['0.0.0.0'] })] }), 'endpoints[0].addresses[0]', 'may not be unspecified'],
    ['link-local endpoint', slice({ endpoints: [endpoint({ addresses: ['169.254.169.254'] })] }), 'endpoints[0].addresses[0]', 'link-local range'],
    ['IPv6 link-local endpoint', slice({ addressType: 'IPv6', endpoints: [endpoint({ addresses: ['fe80::1'] })] }),
      'endpoints[0].addresses[0]', 'link-local range'],
    ['link-local multicast endpoint', slice({ endpoints: [endpoint({ addresses: ['224.0.0.1'] })] }), 'endpoints[0].addresses[0]',
      'link-local multicast'],
    ['a later address is bad too', slice({ endpoints: [endpoint({ addresses: ['10.244.1.5', '127.0.0.1'] })] }),
      'endpoints[0].addresses[1]', 'loopback range'],
    ['nodeName not a DNS subdomain', slice({ endpoints: [endpoint({ nodeName: 'Node_1' })] }), 'endpoints[0].nodeName', 'RFC 1123 subdomain'],
    ['ready is not a boolean', slice({ endpoints: [endpoint({ conditions: { ready: 'yes' } })] }), 'endpoints[0].conditions.ready',
      'must be a boolean'],
    ['more than 8 zone hints', slice({ endpoints: [endpoint({ hints: { forZones: many(9, (i) => ({ name: `z${i}` })) } })] }),
      'endpoints[0].hints.forZones', 'Too many: 9: must have at most 8 items'],
    ['zone hint repeated', slice({ endpoints: [endpoint({ hints: { forZones: [{ name: 'a' }, { name: 'a' }] } })] }),
      'endpoints[0].hints.forZones[1].name', 'Duplicate value: "a"'],
    ['service-name label not a label value', slice({}, { labels: { 'kubernetes.io/service-name': 'web/api' } }),
      'metadata.labels[kubernetes.io/service-name]', 'a valid label must be'],
  ];

  it.each(cases)('%s', (_what, obj, path, rule) => {
    expectRejected(obj, path, rule);
  });
});

describe('sliceFromObject: what kube-proxy reads', () => {
  it('reads a plain slice', () => {
    const s = acceptSlice(slice({
      endpoints: [endpoint({ nodeName: 'node-1', zone: 'zone-a', hints: { forZones: [{ name: 'zone-b' }, { name: 'zone-a' }], forNodes: [{ name: 'node-1' }] } })],
    }));
    const { packed: _packed, ...rest } = s;
    expect(rest).toEqual({
      namespace: 'default',
      name: 'web-abc12',
      key: 'default/web-abc12',
      serviceKey: 'default/web',
      family: 'IPv4',
      ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
      warnings: [],
    });
    expect(endpointsOf(s)).toEqual([{
        address: '10.244.1.5',
        v4: (10 << 24) | (244 << 16) | (1 << 8) | 5,
        ready: true,
        serving: true,
        terminating: false,
        nodeName: 'node-1',
        zone: 'zone-a',
        zoneHints: ['zone-a', 'zone-b'],
        nodeHints: ['node-1'],
    }]);
  });

  it('packs endpoints into small integers, sharing one record per node and zone', () => {
    const s = acceptSlice(slice({ endpoints: [
      endpoint({ addresses: ['10.244.1.5'], nodeName: 'node-1', zone: 'zone-a' }),
      endpoint({ addresses: ['10.244.1.6'], nodeName: 'node-1', zone: 'zone-a', conditions: { ready: false, terminating: true } }),
      endpoint({ addresses: ['10.244.2.7'], nodeName: 'node-2', zone: 'zone-a' }),
    ] }));
    // Two numbers per IPv4 endpoint, every one an int32 (what V8 keeps unboxed).
    expect(s.packed).toHaveLength(6);
    for (const n of s.packed) expect(n).toBe(n | 0);
    const [a, b, c] = endpointsOf(s);
    expect([a!.address, b!.address, c!.address]).toEqual(['10.244.1.5', '10.244.1.6', '10.244.2.7']);
    expect([b!.ready, b!.serving, b!.terminating]).toEqual([false, true, true]);
    expect([c!.nodeName, c!.zone]).toEqual(['node-2', 'zone-a']);
    // The same node, zone and hints: the same (interned) hints arrays, not one per endpoint.
    const again = endpointsOf(acceptSlice(slice({ endpoints: [endpoint({ nodeName: 'node-9', hints: { forZones: [{ name: 'z' }] } })] })));
    const other = endpointsOf(acceptSlice(slice({ endpoints: [endpoint({ addresses: ['10.244.3.3'], nodeName: 'node-9', hints: { forZones: [{ name: 'z' }] } })] })));
    expect(again[0]!.zoneHints).toEqual(['z']);
    expect(other[0]!.zoneHints).toBe(again[0]!.zoneHints);
    // Sharing never mixes up values: an empty zone is not an absent one, another zone is another place.
    const zones = endpointsOf(acceptSlice(slice({ endpoints: [
      endpoint({ addresses: ['10.244.1.5'], nodeName: 'node-1', zone: '' }),
      endpoint({ addresses: ['10.244.1.6'], nodeName: 'node-1' }),
      endpoint({ addresses: ['10.244.1.7'], nodeName: 'node-1', zone: 'zone-b' }),
    ] })));
    expect(zones.map((e) => [e.nodeName, e.zone])).toEqual([['node-1', ''], ['node-1', null], ['node-1', 'zone-b']]);
  });

  it('ignores a slice without the service-name label, saying why', () => {
    const { value, warnings } = accept(slice({}, { labels: { app: 'web' } }));
    expect(value).toBeNull();
    expect(warnings).toEqual([
      'EndpointSlice default/web-abc12: metadata.labels[kubernetes.io/service-name]: ignored: no kubernetes.io/service-name label',
    ]);
  });

  it('ignores FQDN slices, saying why', () => {
    const { value, warnings } = accept(slice({ addressType: 'FQDN', endpoints: [endpoint({ addresses: ['db.example.com'] })] }));
    expect(value).toBeNull();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^EndpointSlice default\/web-abc12: addressType: ignored: .*FQDN/);
  });

  it('uses only the first address, canonical', () => {
    const s = acceptSlice(slice({ addressType: 'IPv6', endpoints: [endpoint({ addresses: ['2001:DB8::0:1', '2001:db8::2'] })] }));
    expect(s.family).toBe('IPv6');
    expect(endpointsOf(s).map((e) => e.address)).toEqual(['2001:db8::1']);
    expect(endpointsOf(s)[0]!.v4).toBe(0);
    expect(s.packed).toHaveLength(5); // four address words and the meta
  });

  it('keeps an IPv4 address parsed: its 32 bits as a signed int32, so that V8 keeps it a small integer', () => {
    const s = acceptSlice(slice({ endpoints: [endpoint({ addresses: ['192.168.7.9'] })] }));
    expect(s.packed[0]).toBe((0xc0a80709 | 0));
    expect(endpointsOf(s)[0]!.v4 >>> 0).toBe(0xc0a80709);
    expect(endpointsOf(s)[0]!.v4).toBeLessThan(0);
  });

  const conditions: [string, unknown, [boolean, boolean, boolean]][] = [
    ['absent', undefined, [true, true, false]],
    ['empty', {}, [true, true, false]],
    ['explicit nulls', { ready: null, serving: null, terminating: null }, [true, true, false]],
    ['not ready, serving unknown', { ready: false }, [false, true, false]],
    ['terminating but serving', { ready: false, serving: true, terminating: true }, [false, true, true]],
    ['terminating, not serving', { ready: false, serving: false, terminating: true }, [false, false, true]],
  ];
  it.each(conditions)('conditions %s -> ready/serving/terminating', (_what, cond, [ready, serving, terminating]) => {
    const e = endpointsOf(acceptSlice(slice({ endpoints: [{ addresses: ['10.244.1.5'], conditions: cond }] })))[0]!;
    expect([e.ready, e.serving, e.terminating]).toEqual([ready, serving, terminating]);
  });

  it('defaults port name and protocol and drops ports without a number, with a warning', () => {
    const s = acceptSlice(slice({ ports: [{ port: 8080 }, { name: 'dns', protocol: 'UDP', port: 53, appProtocol: 'dns' }, { name: 'any' }] }));
    expect(s.ports).toEqual([
      { name: '', protocol: 'TCP', port: 8080 },
      { name: 'dns', protocol: 'UDP', port: 53 },
    ]);
    expect(s.warnings).toEqual(['EndpointSlice default/web-abc12: ports[2].port: ignored: no port number (kube-proxy skips such ports)']);
  });

  it('defaults the namespace and takes the service from the same namespace', () => {
    const s = acceptSlice(slice({}, { namespace: undefined }));
    expect(s.key).toBe('default/web-abc12');
    const other = acceptSlice(slice({}, { namespace: 'shop' }));
    expect(other.serviceKey).toBe('shop/web');
  });

  it('accepts a slice with no endpoints and no ports', () => {
    const s = acceptSlice(slice({ ports: [], endpoints: [] }));
    expect([s.ports, s.packed]).toEqual([[], []]);
  });

  it('accepts the largest slice the API allows', () => {
    const endpoints = Array.from({ length: 1000 }, (_, i) => endpoint({ addresses: [podIP(i)] }));
    expect(endpointsOf(acceptSlice(slice({ endpoints })))).toHaveLength(1000);
  });
});

describe('sliceFromObject: the fast path for well-formed endpoints', () => {
  // An endpoint with `hints: {}` always takes the general path and means the
  // same as one without hints: the two readings must agree on everything.
  const field = (...values: unknown[]) => fc.constantFrom(...values);
  const anEndpoint = fc.record({
    addresses: field(['10.244.1.5'], ['10.244.1.5', '10.244.1.6'], [], ['10.244.1.500'], ['2001:db8::1'], ['127.0.0.1'], [5], 'x', ['10.244.1.5', '0.0.0.0']),
    conditions: field(undefined, null, {}, { ready: false }, { ready: true, serving: false, terminating: true }, { ready: 'yes' }, [], 3),
    nodeName: field(undefined, null, 'node-1', '', 'Node_1', 7),
    zone: field(undefined, null, 'zone-a', 1),
  }, { requiredKeys: [] });

  it('reads exactly what the general reading reads, and rejects exactly what it rejects', () => {
    fc.assert(fc.property(fc.array(anEndpoint, { maxLength: 4 }), (endpoints) => {
      const fast = sliceFromObject(slice({ endpoints }));
      const general = sliceFromObject(slice({ endpoints: endpoints.map((e) => ({ ...e, hints: {} })) }));
      expect(fast).toEqual(general);
    }), { numRuns: 1000 });
  });
});
