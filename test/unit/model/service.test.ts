import { describe, expect, it } from 'vitest';
import { serviceFromObject } from '../../../src/model/service.js';
import type { ServiceInfo, ValidationConfig } from '../../../src/model/types.js';
import type { KubeObject } from '../../../src/sources/types.js';

type Obj = Record<string, unknown>;

const cfg: ValidationConfig = {
  serviceClusterIPRanges: ['10.96.0.0/16', '2001:db8::/64'],
  nodePortRange: { base: 30000, size: 2768 },
};

function svc(spec: Obj = {}, opts: { meta?: Obj; status?: Obj; top?: Obj } = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: 'default', ...opts.meta },
    spec: { clusterIP: '10.96.0.10', ports: [{ port: 80 }], ...spec },
    ...(opts.status ? { status: opts.status } : {}),
    ...opts.top,
  };
}
const nodePortSvc = (spec: Obj = {}) => svc({ type: 'NodePort', ports: [{ port: 80, nodePort: 30080 }], ...spec });
const lbSvc = (spec: Obj = {}, status?: Obj) =>
  svc({ type: 'LoadBalancer', ports: [{ port: 80, nodePort: 30080 }], ...spec }, status ? { status } : {});
const twoPorts = (a: Obj, b: Obj) => [{ name: 'a', ...a }, { name: 'b', ...b }];

function accept(obj: KubeObject, c: ValidationConfig = cfg): ServiceInfo & { warnings: string[] } {
  const r = serviceFromObject(obj, c);
  if (!r.ok) throw new Error(`rejected: ${r.reason}`);
  return { ...r.value, warnings: r.warnings };
}

/** The reason names the object, and one of its errors is `path: ...rule...`. */
function expectRejected(obj: KubeObject, path: string, rule: string, c: ValidationConfig = cfg): string {
  const r = serviceFromObject(obj, c);
  if (r.ok) throw new Error(`accepted: ${JSON.stringify(r.value)}`);
  const meta = obj.metadata ?? {};
  const subject = `Service ${meta.namespace || 'default'}/${meta.name || '<unnamed>'}: `;
  expect(r.reason.startsWith(subject), r.reason).toBe(true);
  const errors = r.reason.slice(subject.length).split('; ');
  expect(errors.some((e) => e.startsWith(`${path}: `) && e.includes(rule)), r.reason).toBe(true);
  return r.reason;
}

describe('serviceFromObject: rejects what kube-apiserver rejects', () => {
  const cases: [string, KubeObject, string, string][] = [
    // metadata
    ['name is not a DNS-1035 label (leading digit)', svc({}, { meta: { name: '1web' } }), 'metadata.name', 'DNS-1035 label'],
    ['name longer than 63', svc({}, { meta: { name: 'a'.repeat(64) } }), 'metadata.name', 'must be no more than 63 characters'],
    ['name missing', svc({}, { meta: { name: undefined } }), 'metadata.name', 'Required value'],
    ['namespace not a DNS-1123 label', svc({}, { meta: { namespace: 'Team_A' } }), 'metadata.namespace', 'RFC 1123 label'],
    ['wrong apiVersion', svc({}, { top: { apiVersion: 'v2' } }), 'apiVersion', 'Unsupported value: "v2"'],
    ['wrong kind', svc({}, { top: { kind: 'Pod' } }), 'kind', 'Unsupported value: "Pod"'],
    // type and ports
    ['unknown type', svc({ type: 'Internal' }), 'spec.type', 'Unsupported value: "Internal"'],
    ['no ports', svc({ ports: [] }), 'spec.ports', 'Required value'],
    ['ports not a list', svc({ ports: { port: 80 } }), 'spec.ports', 'must be a list'],
    ['port above 65535', svc({ ports: twoPorts({ port: 80 }, { port: 70000 }) }), 'spec.ports[1].port',
      'Invalid value: 70000: must be between 1 and 65535, inclusive'],
    ['port missing', svc({ ports: [{ name: 'x' }] }), 'spec.ports[0].port', 'Invalid value: 0: must be between 1'],
    ['port as a string', svc({ ports: [{ port: '80' }] }), 'spec.ports[0].port', 'must be an integer'],
    ['protocol unknown', svc({ ports: [{ port: 80, protocol: 'ICMP' }] }), 'spec.ports[0].protocol', 'Unsupported value: "ICMP"'],
    ['second port unnamed', svc({ ports: [{ name: 'a', port: 80 }, { port: 81 }] }), 'spec.ports[1].name', 'Required value'],
    ['port names repeat', svc({ ports: [{ name: 'a', port: 80 }, { name: 'a', port: 81 }] }), 'spec.ports[1].name',
      'Duplicate value: "a"'],
    ['port name not a DNS label', svc({ ports: [{ name: 'HTTP', port: 80 }] }), 'spec.ports[0].name', 'RFC 1123 label'],
    ['same port and protocol twice', svc({ ports: twoPorts({ port: 80 }, { port: 80 }) }), 'spec.ports[1]',
      'Duplicate value: {"port":80,"protocol":"TCP"}'],
    ['targetPort out of range', svc({ ports: [{ port: 80, targetPort: 70000 }] }), 'spec.ports[0].targetPort', 'between 1 and 65535'],
    ['targetPort name with --', svc({ ports: [{ port: 80, targetPort: 'web--http' }] }), 'spec.ports[0].targetPort',
      'must not contain consecutive hyphens'],
    ['targetPort digits as a string', svc({ ports: [{ port: 80, targetPort: '8080' }] }), 'spec.ports[0].targetPort',
      'must contain at least one letter'],
    ['targetPort name over 15 chars', svc({ ports: [{ port: 80, targetPort: 'metrics-endpoint' }] }), 'spec.ports[0].targetPort',
      'must be no more than 15 characters'],
    // nodePorts
    ['nodePort on a ClusterIP service', svc({ ports: [{ port: 80, nodePort: 30080 }] }), 'spec.ports[0].nodePort',
      "Forbidden: may not be used when `type` is 'ClusterIP'"],
    ['nodePort one below the range', nodePortSvc({ ports: [{ port: 80, nodePort: 29999 }] }), 'spec.ports[0].nodePort',
      'Invalid value: 29999: provided port is not in the valid range. The range of valid ports is 30000-32767'],
    ['nodePort one above the range', nodePortSvc({ ports: [{ port: 80, nodePort: 32768 }] }), 'spec.ports[0].nodePort',
      'not in the valid range'],
    ['NodePort without a nodePort', nodePortSvc({ ports: [{ port: 80 }] }), 'spec.ports[0].nodePort',
      'Required value: bpfproxy without an API server cannot allocate one'],
    ['LoadBalancer without a nodePort', lbSvc({ ports: [{ port: 80 }] }), 'spec.ports[0].nodePort',
      'bpfproxy without an API server cannot allocate one'],
    ['allocateLoadBalancerNodePorts on NodePort', nodePortSvc({ allocateLoadBalancerNodePorts: false }),
      'spec.allocateLoadBalancerNodePorts', "may only be used when `type` is 'LoadBalancer'"],
    ['same nodePort twice for TCP',
      nodePortSvc({ ports: twoPorts({ port: 80, nodePort: 30080 }, { port: 81, nodePort: 30080 }) }),
      'spec.ports[1].nodePort', 'Duplicate value: 30080'],
    ['same nodePort for different port numbers over TCP and UDP',
      nodePortSvc({ ports: twoPorts({ port: 80, nodePort: 30080 }, { port: 81, protocol: 'UDP', nodePort: 30080 }) }),
      'spec.ports[1].nodePort', 'provided port is already allocated'],
    // cluster IPs and families
    ['no clusterIP', svc({ clusterIP: undefined }), 'spec.clusterIP', 'Required value: bpfproxy without an API server cannot allocate one'],
    ['clusterIP not an IP', svc({ clusterIP: '10.96.0.300' }), 'spec.clusterIPs[0]', 'must be a valid IP address'],
    ['clusterIP with leading zeros', svc({ clusterIP: '10.96.0.010' }), 'spec.clusterIPs[0]', 'must be a valid IP address'],
    ['clusterIP with an IPv6 zone', svc({ clusterIP: '2001:db8::1%eth0' }), 'spec.clusterIPs[0]', 'must be a valid IP address'],
    ['IPv4-mapped IPv6 clusterIP', svc({ clusterIP: '::ffff:10.96.0.10' }), 'spec.clusterIPs[0]', 'IPv4-mapped'],
    ['clusterIPs[0] differs from clusterIP', svc({ clusterIPs: ['10.96.0.11'] }), 'spec.clusterIPs', 'first value must match `clusterIP`'],
    ['None mixed with an address', svc({ clusterIP: 'None', clusterIPs: ['None', '10.96.0.10'] }), 'spec.clusterIPs',
      "'None' must be the first and only value"],
    ['three clusterIPs', svc({ clusterIPs: ['10.96.0.10', '2001:db8::a', '10.96.0.11'] }), 'spec.clusterIPs', 'may only hold up to 2 values'],
    ['two IPv4 clusterIPs', svc({ clusterIPs: ['10.96.0.10', '10.96.0.11'] }), 'spec.clusterIPs',
      'may specify no more than one IP for each IP family'],
    ['ipFamilies disagrees with the address', svc({ ipFamilies: ['IPv6'] }), 'spec.clusterIPs[0]',
      'expected an IPv6 value as indicated by `ipFamilies[0]`'],
    ['ipFamilies disagrees with the secondary address',
      svc({ clusterIPs: ['10.96.0.10', '2001:db8::a'], ipFamilies: ['IPv4', 'IPv4'] }), 'spec.ipFamilies[1]', 'Duplicate value: "IPv4"'],
    ['unknown ipFamily', svc({ ipFamilies: ['IPv5'] }), 'spec.ipFamilies[0]', 'Unsupported value: "IPv5"'],
    ['unknown ipFamilyPolicy', svc({ ipFamilyPolicy: 'DualStack' }), 'spec.ipFamilyPolicy', 'Unsupported value: "DualStack"'],
    ['SingleStack with two addresses',
      svc({ clusterIPs: ['10.96.0.10', '2001:db8::a'], ipFamilyPolicy: 'SingleStack' }), 'spec.ipFamilyPolicy',
      "must be RequireDualStack or PreferDualStack when multiple 'clusterIPs' are specified"],
    ['SingleStack with two families', svc({ ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'SingleStack' }), 'spec.ipFamilyPolicy',
      "when multiple 'ipFamilies' are specified"],
    ['RequireDualStack with one address', svc({ ipFamilyPolicy: 'RequireDualStack' }), 'spec.clusterIPs[1]',
      'Required value: ipFamilyPolicy RequireDualStack needs an address of each family: bpfproxy without an API server cannot allocate one'],
    ['two families, one address', svc({ ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'PreferDualStack' }), 'spec.clusterIPs[1]',
      'an IPv6 address for ipFamilies[1]'],
    ['clusterIP outside the service range', svc({ clusterIP: '10.97.0.1' }), 'spec.clusterIPs[0]',
      'provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/16, 2001:db8::/64'],
    ['headless NodePort', nodePortSvc({ clusterIP: 'None' }), 'spec.clusterIPs[0]', "may not be set to 'None' for NodePort services"],
    // ExternalName
    ['ExternalName without externalName', svc({ type: 'ExternalName', clusterIP: undefined }), 'spec.externalName', 'Required value'],
    ['ExternalName not a DNS name', svc({ type: 'ExternalName', clusterIP: undefined, externalName: 'DB_host' }), 'spec.externalName',
      'RFC 1123 subdomain'],
    ['ExternalName with a clusterIP', svc({ type: 'ExternalName', externalName: 'db.example.com' }), 'spec.clusterIPs',
      'Forbidden: may not be set for ExternalName services'],
    ['ExternalName with ipFamilies', svc({ type: 'ExternalName', clusterIP: undefined, externalName: 'db', ipFamilies: ['IPv4'] }),
      'spec.ipFamilies', 'Forbidden'],
    // externalIPs
    ['externalIP not an IP', svc({ externalIPs: ['192.0.2.1', 'example.com'] }), 'spec.externalIPs[1]', 'must be a valid IP address'],
    ['externalIP unspecified', svc({ externalIPs: ['0.0.0.0'] }), 'spec.externalIPs[0]', 'may not be unspecified'],
    ['externalIP IPv6 unspecified', svc({ externalIPs: ['::'] }), 'spec.externalIPs[0]', 'may not be unspecified'],
    ['externalIP loopback', svc({ externalIPs: ['127.0.0.53'] }), 'spec.externalIPs[0]', 'loopback range'],
    ['externalIP IPv6 loopback', svc({ externalIPs: ['::1'] }), 'spec.externalIPs[0]', 'loopback range'],
    ['externalIP link-local', svc({ externalIPs: ['169.254.169.254'] }), 'spec.externalIPs[0]', 'link-local range'],
    ['externalIP IPv6 link-local', svc({ externalIPs: ['fe80::1'] }), 'spec.externalIPs[0]', 'link-local range'],
    ['externalIP link-local multicast', svc({ externalIPs: ['224.0.0.251'] }), 'spec.externalIPs[0]', 'link-local multicast'],
    ['externalIP IPv6 link-local multicast', svc({ externalIPs: ['ff02::fb'] }), 'spec.externalIPs[0]', 'link-local multicast'],
    // load balancer status and source ranges
    ['ingress ip not an IP', lbSvc({}, { loadBalancer: { ingress: [{ ip: '192.0.2.300' }] } }), 'status.loadBalancer.ingress[0].ip',
      'must be a valid IP address'],
    ['ingress ipMode unknown', lbSvc({}, { loadBalancer: { ingress: [{ ip: '192.0.2.10', ipMode: 'DSR' }] } }),
      'status.loadBalancer.ingress[0].ipMode', 'Unsupported value: "DSR"'],
    ['ingress ipMode without ip', lbSvc({}, { loadBalancer: { ingress: [{ hostname: 'lb.example.com', ipMode: 'VIP' }] } }),
      'status.loadBalancer.ingress[0].ipMode', 'Forbidden: may not be specified when `ip` is not set'],
    ['ingress hostname that is an IP', lbSvc({}, { loadBalancer: { ingress: [{ hostname: '192.0.2.10' }] } }),
      'status.loadBalancer.ingress[0].hostname', 'must be a DNS name, not an IP address'],
    ['source range prefix too long', lbSvc({ loadBalancerSourceRanges: ['10.0.0.0/33'] }), 'spec.loadBalancerSourceRanges[0]',
      'must be a valid CIDR value'],
    ['source range without a prefix', lbSvc({ loadBalancerSourceRanges: ['192.0.2.0/24', '10.0.0.1'] }),
      'spec.loadBalancerSourceRanges[1]', 'must be a valid CIDR value'],
    ['source ranges on a NodePort service', nodePortSvc({ loadBalancerSourceRanges: ['10.0.0.0/8'] }), 'spec.loadBalancerSourceRanges',
      "Forbidden: may only be used when `type` is 'LoadBalancer'"],
    ['bad source range in the annotation',
      svc({ type: 'LoadBalancer', ports: [{ port: 80, nodePort: 30080 }] },
        { meta: { annotations: { 'service.beta.kubernetes.io/load-balancer-source-ranges': '10.0.0.0/8,bogus' } } }),
      'metadata.annotations[service.beta.kubernetes.io/load-balancer-source-ranges]', 'Invalid value: "bogus": must be a valid CIDR'],
    ['source-range annotation on a ClusterIP service',
      svc({}, { meta: { annotations: { 'service.beta.kubernetes.io/load-balancer-source-ranges': '10.0.0.0/8' } } }),
      'metadata.annotations[service.beta.kubernetes.io/load-balancer-source-ranges]', 'Forbidden'],
    // affinity
    ['unknown sessionAffinity', svc({ sessionAffinity: 'Cookie' }), 'spec.sessionAffinity', 'Unsupported value: "Cookie"'],
    ['affinity timeout 0', svc({ sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 0 } } }),
      'spec.sessionAffinityConfig.clientIP.timeoutSeconds', 'Invalid value: 0: must be greater than 0 and less than 86400'],
    ['affinity timeout over a day', svc({ sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 86401 } } }),
      'spec.sessionAffinityConfig.clientIP.timeoutSeconds', 'Invalid value: 86401'],
    ['affinity config with None', svc({ sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } } }), 'spec.sessionAffinityConfig',
      'Forbidden: must not be set when session affinity is None'],
    // traffic policies
    ['externalTrafficPolicy on an internal-only service', svc({ externalTrafficPolicy: 'Local' }), 'spec.externalTrafficPolicy',
      'may only be set for externally-accessible services'],
    ['unknown externalTrafficPolicy', nodePortSvc({ externalTrafficPolicy: 'Node' }), 'spec.externalTrafficPolicy',
      'Unsupported value: "Node"'],
    ['unknown internalTrafficPolicy', svc({ internalTrafficPolicy: 'Node' }), 'spec.internalTrafficPolicy', 'Unsupported value: "Node"'],
    ['healthCheckNodePort without Local', lbSvc({ healthCheckNodePort: 30100 }), 'spec.healthCheckNodePort',
      "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"],
    ['healthCheckNodePort on NodePort+Local', nodePortSvc({ externalTrafficPolicy: 'Local', healthCheckNodePort: 30100 }),
      'spec.healthCheckNodePort', 'may only be set when'],
    ['LoadBalancer+Local without healthCheckNodePort', lbSvc({ externalTrafficPolicy: 'Local' }), 'spec.healthCheckNodePort',
      'Required value: bpfproxy without an API server cannot allocate one'],
    ['healthCheckNodePort out of range', lbSvc({ externalTrafficPolicy: 'Local', healthCheckNodePort: 70000 }),
      'spec.healthCheckNodePort', 'must be between 1 and 65535'],
    ['healthCheckNodePort outside the NodePort range', lbSvc({ externalTrafficPolicy: 'Local', healthCheckNodePort: 10256 }),
      'spec.healthCheckNodePort', 'provided port is not in the valid range. The range of valid ports is 30000-32767'],
    ['healthCheckNodePort equal to a nodePort', lbSvc({ externalTrafficPolicy: 'Local', healthCheckNodePort: 30080 }),
      'spec.healthCheckNodePort', 'provided port is already allocated'],
    ['unknown trafficDistribution', svc({ trafficDistribution: 'PreferSameRegion' }), 'spec.trafficDistribution',
      'Unsupported value: "PreferSameRegion"'],
  ];

  it.each(cases)('%s', (_what, obj, path, rule) => {
    expectRejected(obj, path, rule);
  });

  it('reports every error of an object, not just the first', () => {
    const reason = expectRejected(svc({ ports: [{ port: 0 }], sessionAffinity: 'Sticky' }), 'spec.ports[0].port', 'between 1 and 65535');
    expect(reason).toContain('spec.sessionAffinity: Unsupported value: "Sticky"');
  });
});

describe('serviceFromObject: accepted services', () => {
  it('fills the API defaults of a minimal ClusterIP service', () => {
    const s = accept(svc({}, { meta: { namespace: undefined, creationTimestamp: '2024-05-01T10:00:00Z' } }));
    expect(s).toEqual({
      namespace: 'default',
      name: 'web',
      key: 'default/web',
      type: 'ClusterIP',
      notProxied: null,
      clusterIPs: ['10.96.0.10'],
      ipFamilies: ['IPv4'],
      externalIPs: [],
      loadBalancerIPs: [],
      loadBalancerSourceRanges: [],
      sessionAffinityTimeout: null,
      externalTrafficPolicy: 'Cluster',
      internalTrafficPolicy: 'Cluster',
      healthCheckNodePort: 0,
      trafficDistribution: null,
      ports: [{ name: '', protocol: 'TCP', port: 80, targetPort: 80, nodePort: 0 }],
      creationTimestamp: '2024-05-01T10:00:00Z',
      warnings: [],
    });
  });

  it('canonicalizes cluster IPs', () => {
    const s = accept(svc({ clusterIP: '2001:DB8::0:1' }));
    expect(s.clusterIPs).toEqual(['2001:db8::1']);
    expect(s.ipFamilies).toEqual(['IPv6']);
  });

  it('takes clusterIPs alone, and ignores no range when none is configured', () => {
    const s = accept(svc({ clusterIP: undefined, clusterIPs: ['172.30.0.1'] }), { ...cfg, serviceClusterIPRanges: [] });
    expect(s.clusterIPs).toEqual(['172.30.0.1']);
  });

  const dualStack: [string, Obj, string[], string[]][] = [
    ['two addresses, no policy', { clusterIPs: ['10.96.0.10', '2001:db8::a'] }, ['10.96.0.10', '2001:db8::a'], ['IPv4', 'IPv6']],
    ['IPv6 primary', { clusterIP: '2001:db8::a', clusterIPs: ['2001:db8::a', '10.96.0.10'], ipFamilyPolicy: 'RequireDualStack' },
      ['2001:db8::a', '10.96.0.10'], ['IPv6', 'IPv4']],
    ['PreferDualStack with both', { clusterIPs: ['10.96.0.10', '2001:db8::a'], ipFamilyPolicy: 'PreferDualStack', ipFamilies: ['IPv4', 'IPv6'] },
      ['10.96.0.10', '2001:db8::a'], ['IPv4', 'IPv6']],
    ['PreferDualStack on a single-stack cluster', { ipFamilyPolicy: 'PreferDualStack' }, ['10.96.0.10'], ['IPv4']],
    ['SingleStack with a matching family', { ipFamilyPolicy: 'SingleStack', ipFamilies: ['IPv4'] }, ['10.96.0.10'], ['IPv4']],
    ['families implied past the listed one', { clusterIPs: ['10.96.0.10', '2001:db8::a'], ipFamilies: ['IPv4'] },
      ['10.96.0.10', '2001:db8::a'], ['IPv4', 'IPv6']],
  ];
  it.each(dualStack)('dual-stack: %s', (_what, spec, ips, families) => {
    const s = accept(svc(spec));
    expect(s.clusterIPs).toEqual(ips);
    expect(s.ipFamilies).toEqual(families);
  });

  it('keeps headless services, unproxied, with or without ports', () => {
    for (const spec of [{ clusterIP: 'None', ports: [] }, { clusterIP: undefined, clusterIPs: ['None'], ports: [{ port: 5432 }] }]) {
      const s = accept(svc(spec));
      expect(s.notProxied).toBe('headless');
      expect(s.clusterIPs).toEqual([]);
    }
  });

  it('keeps ExternalName services, unproxied', () => {
    const s = accept(svc({ type: 'ExternalName', clusterIP: undefined, externalName: 'db.example.com.', ports: [] }));
    expect(s.notProxied).toBe('ExternalName');
    expect(s.type).toBe('ExternalName');
    expect(s.clusterIPs).toEqual([]);
  });

  it('accepts the first and last port of the nodePort range', () => {
    const s = accept(nodePortSvc({ ports: twoPorts({ port: 80, nodePort: 30000 }, { port: 443, nodePort: 32767 }) }));
    expect(s.ports.map((p) => p.nodePort)).toEqual([30000, 32767]);
    expect(s.externalTrafficPolicy).toBe('Cluster');
  });

  it('honours a custom nodePort range', () => {
    const narrow = { ...cfg, nodePortRange: { base: 31000, size: 10 } };
    expect(accept(nodePortSvc({ ports: [{ port: 80, nodePort: 31009 }] }), narrow).ports[0]!.nodePort).toBe(31009);
    expectRejected(nodePortSvc({ ports: [{ port: 80, nodePort: 31010 }] }), 'spec.ports[0].nodePort', 'range of valid ports is 31000-31009', narrow);
  });

  it('lets TCP and UDP of the same port share a nodePort, and fills it in for the one that omits it', () => {
    const shared = accept(nodePortSvc({ ports: twoPorts({ port: 53, nodePort: 30053 }, { port: 53, protocol: 'UDP', nodePort: 30053 }) }));
    expect(shared.ports.map((p) => `${p.port}/${p.protocol}:${p.nodePort}`)).toEqual(['53/TCP:30053', '53/UDP:30053']);
    const inherited = accept(nodePortSvc({ ports: twoPorts({ port: 53 }, { port: 53, protocol: 'UDP', nodePort: 30053 }) }));
    expect(inherited.ports.map((p) => p.nodePort)).toEqual([30053, 30053]);
  });

  it('lets a LoadBalancer without node ports omit them', () => {
    const s = accept(lbSvc({ allocateLoadBalancerNodePorts: false, ports: [{ port: 80 }] }));
    expect(s.ports[0]!.nodePort).toBe(0);
  });

  it('keeps named target ports', () => {
    expect(accept(svc({ ports: [{ port: 80, targetPort: 'http' }] })).ports[0]!.targetPort).toBe('http');
  });

  it('uses ingress IPs in VIP mode only, skips hostnames, canonicalizes', () => {
    const s = accept(lbSvc({}, {
      loadBalancer: {
        ingress: [
          { ip: '192.0.2.10' },
          { ip: '192.0.2.11', ipMode: 'Proxy' },
          { hostname: 'lb.example.com' },
          { ip: '192.0.2.12', ipMode: 'VIP' },
        ],
      },
    }));
    expect(s.loadBalancerIPs).toEqual(['192.0.2.10', '192.0.2.12']);
    expect(s.warnings).toEqual([]);
  });

  it('ignores load balancer status on other types, with a warning', () => {
    const s = accept(svc({}, { status: { loadBalancer: { ingress: [{ ip: '192.0.2.10' }] } } }));
    expect(s.loadBalancerIPs).toEqual([]);
    expect(s.warnings).toHaveLength(1);
    expect(s.warnings[0]).toMatch(/^Service default\/web: status\.loadBalancer\.ingress: ignored/);
  });

  it('canonicalizes source ranges, tolerating padding', () => {
    const s = accept(lbSvc({ loadBalancerSourceRanges: ['10.0.0.5/8', ' 192.168.1.0/24 '] }));
    expect(s.loadBalancerSourceRanges).toEqual(['10.0.0.0/8', '192.168.1.0/24']);
  });

  it('reads the legacy source-range annotation when the field is empty', () => {
    const annotations = { 'service.beta.kubernetes.io/load-balancer-source-ranges': ' 10.0.0.5/8, 2001:DB8::/32 ' };
    const dual = { clusterIPs: ['10.96.0.10', '2001:db8::a'] };
    expect(accept(lbSvc(dual), cfg).loadBalancerSourceRanges).toEqual([]);
    const viaAnnotation = accept({ ...lbSvc(dual), metadata: { name: 'web', namespace: 'default', annotations } });
    expect(viaAnnotation.loadBalancerSourceRanges).toEqual(['10.0.0.0/8', '2001:db8::/32']);
    const fieldWins = accept({ ...lbSvc({ loadBalancerSourceRanges: ['192.0.2.0/24'] }), metadata: { name: 'web', annotations } });
    expect(fieldWins.loadBalancerSourceRanges).toEqual(['192.0.2.0/24']);
  });

  it('defaults ClientIP affinity to 10800 seconds and accepts the one-day maximum', () => {
    expect(accept(svc({ sessionAffinity: 'ClientIP' })).sessionAffinityTimeout).toBe(10800);
    const max = svc({ sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 86400 } } });
    expect(accept(max).sessionAffinityTimeout).toBe(86400);
  });

  it('keeps external IPs, canonical, and warns about those of a family the service lacks', () => {
    const s = accept(svc({ externalIPs: ['192.0.2.1', '2001:DB8::5', '192.0.2.1'] }));
    expect(s.externalIPs).toEqual(['192.0.2.1', '2001:db8::5']);
    expect(s.warnings).toHaveLength(1);
    expect(s.warnings[0]).toContain('Service default/web: spec.externalIPs: external IP 2001:db8::5 is IPv6');
  });

  it('allows externalTrafficPolicy on a ClusterIP service with external IPs', () => {
    expect(accept(svc({ externalIPs: ['192.0.2.1'], externalTrafficPolicy: 'Local' })).externalTrafficPolicy).toBe('Local');
  });

  it('takes a LoadBalancer with Local policy and its health-check port', () => {
    const s = accept(lbSvc({ externalTrafficPolicy: 'Local', healthCheckNodePort: 30100, internalTrafficPolicy: 'Local' }));
    expect(s.healthCheckNodePort).toBe(30100);
    expect(s.externalTrafficPolicy).toBe('Local');
    expect(s.internalTrafficPolicy).toBe('Local');
  });

  it.each(['PreferClose', 'PreferSameZone', 'PreferSameNode'])('accepts trafficDistribution %s', (td) => {
    expect(accept(svc({ trafficDistribution: td })).trafficDistribution).toBe(td);
  });
});
