import { describe, expect, it } from 'vitest';
import type { ProxyConfig } from '../../../src/config/config.js';
import { ConfigError } from '../../../src/config/errors.js';
import { parseCommandLine, type CommandLine } from '../../../src/config/flags.js';
import { fakeEnv } from './fake-env.js';

type Run = Exclude<CommandLine, { command: 'help' }>;

function parse(argv: string[], files: Record<string, string> = {}): Run {
  const r = parseCommandLine(argv, fakeEnv(files));
  if (r.command === 'help') throw new Error('unexpected help');
  return r;
}

function errorOf(argv: string[], files: Record<string, string> = {}): ConfigError {
  try {
    parseCommandLine(argv, fakeEnv(files));
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error(`expected a ConfigError for ${argv.join(' ')}`);
}

/** Reads a dotted path such as "bpf.mapSizes.backends". */
function at(c: ProxyConfig, path: string): unknown {
  return path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], c);
}

const FILE = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
syncPeriod: 10s
healthzBindAddress: 127.0.0.1:20256
bpf:
  maglevTableSize: 251
`;

describe('parseCommandLine', () => {
  it('gives kube-proxy defaults, with minSyncPeriod 0 in bpf mode', () => {
    const { command, config, explicit } = parse([]);
    expect(command).toBe('run');
    expect(explicit.size).toBe(0);
    expect(config).toEqual({
      mode: 'bpf',
      nodeName: 'node-a',
      nodePortAddresses: { kind: 'all' },
      syncPeriodMs: 30_000,
      minSyncPeriodMs: 0,
      healthzBindAddress: { host: '0.0.0.0', port: 10256 },
      metricsBindAddress: { host: '127.0.0.1', port: 10249 },
      clusterCIDRs: [],
      detectLocalMode: 'ClusterCIDR',
      detectLocal: { bridgeInterface: '', interfaceNamePrefix: '' },
      kubeconfig: '',
      master: '',
      configFile: null,
      serviceClusterIPRanges: [],
      serviceNodePortRange: { min: 30000, max: 32767 },
      manifests: null,
      logLevel: 'info',
      bpf: {
        pinPath: '/sys/fs/bpf/bpfproxy',
        cgroupRoot: '/sys/fs/cgroup',
        maglevTableSize: 16381,
        mapSizes: { frontends: 131072, backendSets: 524288, backends: 262144, socketRevNat: 262144, affinity: 131072 },
      },
    });
  });

  it('uses kube-proxy\'s 1s minSyncPeriod for the rule-based modes', () => {
    for (const mode of ['nftables', 'iptables', 'ipvs']) expect(parse(['--proxy-mode', mode]).config.minSyncPeriodMs).toBe(1000);
  });

  it('layers flags over the file over the defaults', () => {
    const files = { '/etc/kp.yaml': FILE };
    const fromFile = parse(['--config', '/etc/kp.yaml'], files).config;
    expect(fromFile).toMatchObject({ mode: 'nftables', syncPeriodMs: 10_000, minSyncPeriodMs: 1000, configFile: '/etc/kp.yaml' });
    expect(fromFile.healthzBindAddress).toEqual({ host: '127.0.0.1', port: 20256 });

    const r = parse(['--config', '/etc/kp.yaml', '--sync-period', '20s', '--proxy-mode', 'bpf', '--bpf-lb-maglev-table-size', '16381'], files);
    expect(r.config).toMatchObject({ mode: 'bpf', syncPeriodMs: 20_000, minSyncPeriodMs: 0 });
    expect(r.config.healthzBindAddress).toEqual({ host: '127.0.0.1', port: 20256 });
    expect(r.config.bpf.maglevTableSize).toBe(16381);
    expect([...r.explicit].sort()).toEqual(['bpf.maglevTableSize', 'configFile', 'mode', 'syncPeriodMs']);
  });

  it.each<[string[], string, unknown]>([
    [['--proxy-mode', 'iptables'], 'mode', 'iptables'],
    [['--hostname-override', ' Worker-7 '], 'nodeName', 'worker-7'],
    [['--nodeport-addresses', '172.18.0.0/24,fd00::/64'], 'nodePortAddresses', { kind: 'cidrs', cidrs: ['172.18.0.0/24', 'fd00::/64'] }],
    [['--nodeport-addresses', 'primary'], 'nodePortAddresses', { kind: 'primary' }],
    [['--min-sync-period', '250ms'], 'minSyncPeriodMs', 250],
    [['--sync-period', '1m30s'], 'syncPeriodMs', 90_000],
    [['--healthz-bind-address', '[::1]:10256'], 'healthzBindAddress', { host: '::1', port: 10256 }],
    [['--healthz-bind-address', ''], 'healthzBindAddress', null],
    [['--metrics-bind-address', ':9100'], 'metricsBindAddress', { host: '', port: 9100 }],
    [['--metrics-bind-address='], 'metricsBindAddress', null],
    [['--cluster-cidr', '10.244.0.0/16,fd00:10:244::/56'], 'clusterCIDRs', ['10.244.0.0/16', 'fd00:10:244::/56']],
    [['--detect-local-mode', 'NodeCIDR'], 'detectLocalMode', 'NodeCIDR'],
    [['--detect-local-mode', 'BridgeInterface', '--pod-bridge-interface', 'cbr0'], 'detectLocal.bridgeInterface', 'cbr0'],
    [['--detect-local-mode', 'InterfaceNamePrefix', '--pod-interface-name-prefix', 'veth'], 'detectLocal.interfaceNamePrefix', 'veth'],
    [['--kubeconfig', '/etc/kubernetes/proxy.conf'], 'kubeconfig', '/etc/kubernetes/proxy.conf'],
    [['--master', 'https://10.0.0.1:6443'], 'master', 'https://10.0.0.1:6443'],
    [['--service-cluster-ip-range', '10.96.0.0/16'], 'serviceClusterIPRanges', ['10.96.0.0/16']],
    [['--service-node-port-range', '31000-31999'], 'serviceNodePortRange', { min: 31000, max: 31999 }],
    [['--manifests', '/srv/manifests'], 'manifests', '/srv/manifests'],
    [['--bpf-fs', '/sys/fs/bpf/lab'], 'bpf.pinPath', '/sys/fs/bpf/lab'],
    [['--cgroup-root', '/sys/fs/cgroup/lab'], 'bpf.cgroupRoot', '/sys/fs/cgroup/lab'],
    [['--bpf-lb-maglev-table-size', '65521'], 'bpf.maglevTableSize', 65521],
    [['--bpf-map-size', 'backends=1024', '--bpf-map-size', 'affinity=64'], 'bpf.mapSizes', { frontends: 131072, backendSets: 524288, backends: 1024, socketRevNat: 262144, affinity: 64 }],
    [['--v', '2'], 'logLevel', 'debug'],
    [['-v', '5'], 'logLevel', 'trace'],
    [['--v=1'], 'logLevel', 'info'],
    [['--v', '4', '--log-level', 'warn'], 'logLevel', 'warn'],
  ])('%j sets %s', (argv, path, want) => {
    expect(at(parse(argv).config, path)).toEqual(want);
  });

  it('lists what the command line set, as config paths', () => {
    const r = parse(['--bpf-map-size', 'backends=1', '--pod-bridge-interface', 'br0', '--v', '3']);
    expect([...r.explicit].sort()).toEqual(['bpf.mapSizes.backends', 'detectLocal.bridgeInterface', 'logLevel']);
  });

  it('picks the command: run by default, cleanup, version', () => {
    expect(parse(['--proxy-mode', 'ipvs']).command).toBe('run');
    expect(parse(['run', '--proxy-mode', 'ipvs']).config.mode).toBe('ipvs');
    expect(parse(['cleanup', '--bpf-fs', '/sys/fs/bpf/x']).command).toBe('cleanup');
    expect(parse(['cleanup', '--bpf-fs', '/sys/fs/bpf/x']).config.bpf.pinPath).toBe('/sys/fs/bpf/x');
    expect(parse(['--cleanup']).command).toBe('cleanup');
    expect(parse(['--cleanup=true']).command).toBe('cleanup');
    expect(parse(['--cleanup=false']).command).toBe('run');
    expect(parse(['version']).command).toBe('version');
    expect(parse(['--version']).command).toBe('version');
  });

  it('returns the help text, which lists every flag and says flags override the file', () => {
    const r = parseCommandLine(['--help'], fakeEnv());
    if (r.command !== 'help') throw new Error('want help');
    for (const flag of ['--config', '--proxy-mode', '--hostname-override', '--nodeport-addresses', '--min-sync-period', '--sync-period',
      '--healthz-bind-address', '--metrics-bind-address', '--cluster-cidr', '--detect-local-mode', '--kubeconfig', '--master',
      '--cleanup', '--service-cluster-ip-range', '--service-node-port-range', '--manifests', '--bpf-fs', '--cgroup-root',
      '--bpf-lb-maglev-table-size', '--bpf-map-size', '--v', '--log-level']) {
      expect(r.text).toContain(flag);
    }
    expect(r.text).toMatch(/a flag overrides the same field of the file/);
  });

  it.each<[string[], string, RegExp]>([
    [['--proxy-mode', 'userspace'], '--proxy-mode', /'userspace' is invalid/],
    [['--bogus'], '--bogus', /unknown option/],
    [['--min-sync-period', '1'], '--min-sync-period', /missing unit/],
    [['--healthz-bind-address', 'localhost:10256'], '--healthz-bind-address', /not an IP address/],
    [['--cluster-cidr', '10.0.0.0/8,10.1.0.0/16'], '--cluster-cidr', /more than one IPv4/],
    [['--bpf-lb-maglev-table-size', '16000'], '--bpf-lb-maglev-table-size', /not prime/],
    [['--bpf-lb-maglev-table-size', '65537'], '--bpf-lb-maglev-table-size', /65521/],
    [['--bpf-map-size', 'services=10'], '--bpf-map-size', /unknown map "services"/],
    [['--bpf-map-size', 'backends'], '--bpf-map-size', /NAME=ENTRIES/],
    [['--bpf-map-size', 'backends=0'], '--bpf-map-size backends', /between 1 and/],
    [['--v', 'loud'], '--v', /invalid integer/],
    [['--cleanup=maybe'], '--cleanup', /true or false/],
    [['--min-sync-period', '1m', '--sync-period', '30s'], 'minSyncPeriod', /longer than syncPeriod/],
    [['--detect-local-mode', 'InterfaceNamePrefix'], 'detectLocal.interfaceNamePrefix', /--pod-interface-name-prefix/],
    [['--config', '/nope.yaml'], '--config', /cannot read \/nope.yaml: ENOENT/],
    [['extra'], '', /unexpected argument/],
  ])('%j fails naming %s', (argv, field, message) => {
    const err = errorOf(argv);
    expect(err.field).toBe(field);
    expect(err.message).toMatch(message);
  });

  it('names the file and field when the file is wrong', () => {
    const err = errorOf(['--config', '/etc/kp.yaml'], { '/etc/kp.yaml': `${FILE}bogusField: 1\n` });
    expect(err.message).toBe('/etc/kp.yaml: bogusField: unknown field');
    expect(err.source).toBe('/etc/kp.yaml');
  });
});
