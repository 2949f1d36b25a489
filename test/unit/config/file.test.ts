import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../../src/config/config.js';
import { parseConfigFile } from '../../../src/config/file.js';
import { fakeEnv, errorOf } from './fake-env.js';

const HEAD = 'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n';

function load(body: string) {
  return resolveConfig(parseConfigFile(HEAD + body, 'kp.yaml'), {}, fakeEnv());
}


// The shape kubeadm writes into the kube-proxy ConfigMap: every field present, most
// of them zero, which kube-proxy reads as "use the default".
const KUBEADM_STYLE = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
bindAddress: 0.0.0.0
bindAddressHardFail: false
clientConnection:
  acceptContentTypes: ""
  burst: 0
  contentType: ""
  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
  qps: 0
clusterCIDR: 10.244.0.0/16,fd00:10:244::/56
configSyncPeriod: 0s
conntrack:
  maxPerCore: null
  min: null
  tcpBeLiberal: false
  tcpCloseWaitTimeout: null
  tcpEstablishedTimeout: null
  udpStreamTimeout: 0s
  udpTimeout: 0s
detectLocal:
  bridgeInterface: ""
  interfaceNamePrefix: ""
detectLocalMode: ""
enableProfiling: false
healthzBindAddress: ""
hostnameOverride: ""
iptables:
  localhostNodePorts: null
  masqueradeAll: false
  masqueradeBit: 14
  minSyncPeriod: 0s
  syncPeriod: 0s
ipvs:
  excludeCIDRs: null
  minSyncPeriod: 0s
  scheduler: ""
  strictARP: false
  syncPeriod: 0s
  tcpFinTimeout: 0s
  tcpTimeout: 0s
  udpTimeout: 0s
kind: KubeProxyConfiguration
logging:
  flushFrequency: 0
  options:
    json:
      infoBufferSize: "0"
  verbosity: 0
metricsBindAddress: ""
mode: ""
nftables:
  masqueradeAll: false
  masqueradeBit: null
  minSyncPeriod: 0s
  syncPeriod: 0s
nodePortAddresses: null
oomScoreAdj: -999
portRange: ""
showHiddenMetricsForVersion: ""
winkernel:
  enableDSR: false
  forwardHealthCheckVip: false
  networkName: ""
  rootHnsEndpointName: ""
  sourceVip: ""
`;

describe('config file', () => {
  it('loads a kubeadm-style kube-proxy file: empty and zero fields keep the defaults', () => {
    const file = parseConfigFile(KUBEADM_STYLE, 'config.conf');
    const c = resolveConfig(file, {}, fakeEnv());
    expect(c.mode).toBe('bpf');
    expect(c.kubeconfig).toBe('/var/lib/kube-proxy/kubeconfig.conf');
    expect(c.clusterCIDRs).toEqual(['10.244.0.0/16', 'fd00:10:244::/56']);
    expect(c.healthzBindAddress).toEqual({ host: '0.0.0.0', port: 10256 });
    expect(c.metricsBindAddress).toEqual({ host: '127.0.0.1', port: 10249 });
    expect(c.syncPeriodMs).toBe(30_000);
    expect(c.minSyncPeriodMs).toBe(0);
    expect(c.nodeName).toBe('node-a');
    expect(c.detectLocalMode).toBe('ClusterCIDR');
    // bindAddress 0.0.0.0 is kube-proxy's default: not set (a specific one chooses the default devices).
    expect(file.ignored.sort()).toEqual(['logging.options']);
    expect([c.iptablesMasqueradeBit, c.masqueradeAll, c.iptablesLocalhostNodePorts]).toEqual([14, false, true]); // the iptables section is read
    expect(c.oomScoreAdj).toBe(-999);
    expect(file.unknown).toEqual([]);
  });

  it('takes the sync periods of the section of the mode in force', () => {
    const text = `iptables:\n  syncPeriod: 45s\n  minSyncPeriod: 2s\nipvs:\n  syncPeriod: 1m\n`;
    expect(load(`mode: iptables\n${text}`)).toMatchObject({ syncPeriodMs: 45_000, minSyncPeriodMs: 2000 });
    expect(load(`mode: ipvs\n${text}`)).toMatchObject({ syncPeriodMs: 60_000, minSyncPeriodMs: 1000 });
    expect(load(`mode: bpf\n${text}`)).toMatchObject({ syncPeriodMs: 30_000, minSyncPeriodMs: 0 });
    expect(load(`mode: iptables\nminSyncPeriod: 100ms\n${text}`)).toMatchObject({ minSyncPeriodMs: 100 });
  });

  it('reads the bpf section and our top-level fields', () => {
    const c = load([
      'bpf:',
      '  pinPath: /sys/fs/bpf/lab1',
      '  cgroupRoot: /sys/fs/cgroup/lab1',
      '  maglevTableSize: 251',
      '  maglevMapMax: 64',
      '  devices: []',
      '  mapSizes:',
      '    backends: 1024',
      '    affinity: 2048',
      'serviceClusterIPRange: 10.96.0.0/16',
      'serviceNodePortRange: 30000-30100',
      'manifests: /etc/bpfproxy/manifests',
      'fallback: false',
      'nodePortAddresses: ["172.18.0.0/24"]',
      'hostnameOverride: Node-1',
      'healthzBindAddress: 127.0.0.1:0',
      'logging:',
      '  verbosity: 4',
    ].join('\n'));
    expect(c.bpf).toEqual({
      pinPath: '/sys/fs/bpf/lab1',
      cgroupRoot: '/sys/fs/cgroup/lab1',
      maglevTableSize: 251,
      devices: [],
      maglevMapMax: 64,
      mapSizes: { frontends: 131072, backendSets: 524288, backends: 1024, socketRevNat: 262144, affinity: 2048, conntrack: 262144, nat: 65536 },
    });
    expect(c.serviceClusterIPRanges).toEqual(['10.96.0.0/16']);
    expect(c.serviceNodePortRange).toEqual({ min: 30000, max: 30100 });
    expect(c.manifests).toBe('/etc/bpfproxy/manifests');
    expect(c.fallback).toBe(false);
    expect(c.nodePortAddresses).toEqual({ kind: 'cidrs', cidrs: ['172.18.0.0/24'] });
    expect(c.nodeName).toBe('node-1');
    expect(c.healthzBindAddress).toEqual({ host: '127.0.0.1', port: 0 });
    expect(c.logLevel).toBe('trace');
  });

  it('reads JSON too', () => {
    const c = resolveConfig(parseConfigFile(JSON.stringify({
      apiVersion: 'kubeproxy.config.k8s.io/v1alpha1', kind: 'KubeProxyConfiguration', mode: 'nftables', syncPeriod: '10s',
    }), 'kp.json'), {}, fakeEnv());
    expect(c).toMatchObject({ mode: 'nftables', syncPeriodMs: 10_000, minSyncPeriodMs: 1000 });
  });

  it('accepts an unknown field as kube-proxy does for v1alpha1, with one notice naming it and the likely intended one', () => {
    const unknown = (body: string) => parseConfigFile(HEAD + body, 'kp.yaml').unknown;
    expect(unknown('bpf:\n  mapSize:\n    backends: 10\n')).toEqual([
      { field: 'bpf.mapSize', message: 'unknown field bpf.mapSize: ignored, as kube-proxy ignores it (did you mean "mapSizes"?)' },
    ]);
    expect(unknown('conntrack:\n  maxPerCPU: 1\n  max: 5\n').map((n) => n.field)).toEqual(['conntrack.maxPerCPU', 'conntrack.max']);
    expect(unknown('bpf:\n  mapSizes:\n    services: 10\n')[0]!.field).toBe('bpf.mapSizes.services');
    expect(unknown('constructor: 1\n')[0]!.field).toBe('constructor');
    // The rest of the file still applies, and a wrong type next to an unknown field still fails.
    expect(load('resourceContainer: /kube-proxy\nmode: ipvs\n').mode).toBe('ipvs');
    expect(errorOf(() => load('resourceContainer: /kube-proxy\nmode: 3\n')).field).toBe('mode');
  });

  it('refuses a bad duration, naming the field and the value', () => {
    const err = errorOf(() => load('iptables:\n  minSyncPeriod: "5"\n'));
    expect(err.field).toBe('iptables.minSyncPeriod');
    expect(err.message).toContain('"5"');
    expect(errorOf(() => load('syncPeriod: 30\n')).detail).toMatch(/want a string, got number 30/);
  });

  it('refuses a bad mode', () => {
    const err = errorOf(() => load('mode: userspace\n'));
    expect(err.field).toBe('mode');
    expect(err.detail).toContain('"userspace"');
    expect(err.detail).toContain('bpf, nftables, iptables, ipvs');
  });

  it('refuses a Maglev size that is not prime, or not a number', () => {
    expect(errorOf(() => load('bpf:\n  maglevTableSize: 16000\n')).message).toBe(
      'kp.yaml: bpf.maglevTableSize: Maglev table size 16000 is not prime (the nearest primes are 15991 or 16001)',
    );
    expect(errorOf(() => load('bpf:\n  maglevTableSize: "16381"\n')).detail).toMatch(/want an integer/);
  });

  it('refuses values of the wrong type in fields it ignores too', () => {
    expect(errorOf(() => load('conntrack:\n  tcpBeLiberal: "yes"\n')).field).toBe('conntrack.tcpBeLiberal');
    expect(errorOf(() => load('featureGates: [a]\n')).field).toBe('featureGates');
  });

  it('refuses the wrong apiVersion or kind, several documents and broken YAML', () => {
    expect(errorOf(() => parseConfigFile('apiVersion: v1\nkind: KubeProxyConfiguration\n', 'f')).field).toBe('apiVersion');
    expect(errorOf(() => parseConfigFile('apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: ConfigMap\n', 'f')).field).toBe('kind');
    // A repeated key passes kube-proxy's lenient decoding, the last value winning.
    const dup = parseConfigFile(`${HEAD}mode: bpf\nmode: ipvs\n`, 'f');
    expect(dup.overrides.mode).toBe('ipvs');
    expect(dup.unknown[0]!.message).toMatch(/^repeated key: the last value is used/);
    expect(errorOf(() => parseConfigFile(`${HEAD}---\n${HEAD}`, 'f')).detail).toMatch(/2 YAML documents/);
    expect(errorOf(() => parseConfigFile(`${HEAD}mode: [bpf\n`, 'f')).detail).toMatch(/not valid YAML/);
    expect(errorOf(() => parseConfigFile('', 'f')).detail).toBe('empty file');
  });

  it('enforces the rules across fields', () => {
    expect(errorOf(() => load('syncPeriod: 10s\nminSyncPeriod: 20s\n')).field).toBe('minSyncPeriod');
    expect(errorOf(() => load('detectLocalMode: BridgeInterface\n')).field).toBe('detectLocal.bridgeInterface');
    expect(load('detectLocalMode: BridgeInterface\ndetectLocal:\n  bridgeInterface: cbr0\n').detectLocal.bridgeInterface).toBe('cbr0');
  });
});
