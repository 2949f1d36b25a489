import { describe, expect, it } from 'vitest';
import type { ProxyConfig } from '../../../src/config/config.js';
import { parseCommandLine } from '../../../src/config/flags.js';
import { fakeEnv, flagError as errorOf, parseRun as parse } from './fake-env.js';




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
      fallback: true,
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
      logFormat: 'json',
      bindAddressHardFail: false,
      bindAddress: '',
      oomScoreAdj: -999,
      masqueradeAll: false,
      iptablesMasqueradeBit: 14,
      iptablesLocalhostNodePorts: true,
      ipvs: { scheduler: 'rr', strictARP: false, tcpTimeoutMs: 0, tcpFinTimeoutMs: 0, udpTimeoutMs: 0 },
      inputLimits: { manifestMaxBytes: 8388608, manifestMaxDocuments: 10000, objectMaxKeys: 4096, objectMaxDepth: 64, objectMaxStringLength: 262144, objectMaxEndpoints: 1000 },
      bpf: {
        pinPath: '/sys/fs/bpf/bpfproxy',
        cgroupRoot: '/sys/fs/cgroup',
        maglevTableSize: 16381,
        devices: 'auto',
        maglevMapMax: 256,
        mapSizes: { frontends: 131072, backendSets: 524288, backends: 262144, socketRevNat: 262144, affinity: 131072, conntrack: 262144, nat: 65536 },
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
    [['--no-fallback'], 'fallback', false],
    [[], 'fallback', true],
    [['--hostname-override', ' Worker-7 '], 'nodeName', 'worker-7'],
    [['--nodeport-addresses', '172.18.0.0/24,fd00::/64'], 'nodePortAddresses', { kind: 'cidrs', cidrs: ['172.18.0.0/24', 'fd00::/64'] }],
    [['--nodeport-addresses', 'primary'], 'nodePortAddresses', { kind: 'primary' }],
    [['--min-sync-period', '250ms'], 'minSyncPeriodMs', 250],
    [['--sync-period', '1m30s'], 'syncPeriodMs', 90_000],
    [['--masquerade-all'], 'masqueradeAll', true],
    [['--iptables-masquerade-bit', '3'], 'iptablesMasqueradeBit', 3],
    [['--iptables-localhost-nodeports=false'], 'iptablesLocalhostNodePorts', false],
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
    [['--bpf-map-size', 'backends=1024', '--bpf-map-size', 'affinity=64'], 'bpf.mapSizes', { frontends: 131072, backendSets: 524288, backends: 1024, socketRevNat: 262144, affinity: 64, conntrack: 262144, nat: 65536 }],
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
    [['--proxy-mode', 'userspace'], '--proxy-mode', /invalid value "userspace": want one of bpf, nftables, iptables, ipvs/],
    [['--bogsu-flag'], '--bogsu-flag', /unknown option/],
    [['--hostname-overide', 'x'], '--hostname-overide', /Did you mean --hostname-override\?/],
    [['--oom-score-adj', '-1001'], '--oom-score-adj', /between -1000 and 1000/],
    [['--iptables-masquerade-bit', '32'], '--iptables-masquerade-bit', /between 0 and 31/],
    [['--feature-gates', 'Foo'], '--feature-gates', /NAME=true\|false/],
    [['--feature-gates', 'Foo=maybe'], '--feature-gates Foo', /true or false/],
    [['--conntrack-tcp-timeout-established', '5'], '--conntrack-tcp-timeout-established', /missing unit/],
    [['--kube-api-qps', 'fast'], '--kube-api-qps', /invalid number/],
    [['--profiling=yes'], '--profiling', /true or false/],
    [['--logging-format', 'xml'], '--logging-format', /want one of json, text/],
    [['--healthz-port', '70000'], '--healthz-port', /between 0 and 65535/],
    [['-v=x'], '--v', /invalid integer/],
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

  it('names the file and field when the file is wrong, and only notes an unknown field', () => {
    const err = errorOf(['--config', '/etc/kp.yaml'], { '/etc/kp.yaml': `${FILE}clusterCIDR: 7\n` });
    expect(err.message).toBe('/etc/kp.yaml: clusterCIDR: want a string, got number 7');
    expect(err.source).toBe('/etc/kp.yaml');
    const r = parse(['--config', '/etc/kp.yaml'], { '/etc/kp.yaml': `${FILE}bogusField: 1\n` });
    expect(r.notices).toEqual([{ field: 'bogusField', message: 'unknown field bogusField: ignored, as kube-proxy ignores it' }]);
  });
});

describe('kube-proxy flags that installers pass', () => {
  it.each<[string[], string, unknown]>([
    [['--oom-score-adj=-998'], 'oomScoreAdj', -998],
    [['--manifest-max-bytes', '1048576'], 'inputLimits.manifestMaxBytes', 1048576],
    [['--object-max-keys=100', '--object-max-endpoints=50'], 'inputLimits.objectMaxEndpoints', 50],
    [['--bind-address-hard-fail'], 'bindAddressHardFail', true],
    [['--bind-address-hard-fail=false'], 'bindAddressHardFail', false],
    [['--bind-address-hard-fail=True'], 'bindAddressHardFail', true],
    [['--logging-format=text'], 'logFormat', 'text'],
    [['-v=3'], 'logLevel', 'debug'],
    [['-v', '4'], 'logLevel', 'trace'],
    [['-v4'], 'logLevel', 'trace'],
    [['--log-level', 'warn', '--v', '4'], 'logLevel', 'warn'],
    [['--healthz-port', '10266'], 'healthzBindAddress', { host: '0.0.0.0', port: 10266 }],
    [['--healthz-bind-address', '127.0.0.1:1', '--healthz-port', '10266'], 'healthzBindAddress', { host: '127.0.0.1', port: 10266 }],
    [['--healthz-port', '0'], 'healthzBindAddress', null],
    [['--metrics-port', '10259'], 'metricsBindAddress', { host: '127.0.0.1', port: 10259 }],
    [['--metrics-port=0'], 'metricsBindAddress', null],
  ])('%j sets %s as kube-proxy does', (argv, path, want) => {
    expect(at(parse(argv).config, path)).toEqual(want);
  });

  it('the deprecated port flags apply over the file\'s address, with a deprecation notice', () => {
    const r = parse(['--config', '/kp.yaml', '--healthz-port', '10266'], { '/kp.yaml': FILE });
    expect(r.config.healthzBindAddress).toEqual({ host: '127.0.0.1', port: 10266 });
    expect(r.notices).toEqual([{ field: '--healthz-port', message: '--healthz-port is deprecated, as in kube-proxy: use --healthz-bind-address' }]);
  });

  it.each<[string[], string]>([
    [['--conntrack-max-per-core', '32768'], '--conntrack-max-per-core'],
    [['--conntrack-min', '131072'], '--conntrack-min'],
    [['--conntrack-tcp-timeout-established', '24h'], '--conntrack-tcp-timeout-established'],
    [['--conntrack-tcp-timeout-close-wait', '1h'], '--conntrack-tcp-timeout-close-wait'],
    [['--conntrack-tcp-be-liberal'], '--conntrack-tcp-be-liberal'],
    [['--conntrack-udp-timeout', '30s'], '--conntrack-udp-timeout'],
    [['--conntrack-udp-timeout-stream', '2m'], '--conntrack-udp-timeout-stream'],
    [['--feature-gates', 'TopologyAwareHints=true,NFTablesProxyMode=true'], '--feature-gates'],
    [['--kube-api-qps', '5.5'], '--kube-api-qps'],
    [['--kube-api-burst', '10'], '--kube-api-burst'],
    [['--kube-api-content-type', 'application/vnd.kubernetes.protobuf'], '--kube-api-content-type'],
    [['--profiling'], '--profiling'],
    [['--log-flush-frequency', '5s'], '--log-flush-frequency'],
    [['--logtostderr=false'], '--logtostderr'],
  ])('%j is accepted with one warning that it has no effect here', (argv, flag) => {
    const r = parse(argv);
    expect(r.notices).toHaveLength(1);
    expect(r.notices[0]!.field).toBe(flag);
    expect(r.notices[0]!.message).toMatch(new RegExp(`^${flag} has no effect here: .+`));
    expect(r.command).toBe('run');
  });

  it('values that ask kube-proxy to leave things alone warn about nothing', () => {
    const r = parse(['--conntrack-max-per-core=0', '--conntrack-tcp-timeout-established=0s', '--profiling=false', '--feature-gates=', '--bind-address=0.0.0.0', '--logtostderr']);
    expect(r.notices).toEqual([]);
  });

  it('run --help lists the options, the top-level help lists the commands and every option', () => {
    const runHelp = parseCommandLine(['run', '--help'], fakeEnv());
    const topHelp = parseCommandLine(['--help'], fakeEnv());
    if (runHelp.command !== 'help' || topHelp.command !== 'help') throw new Error('want help');
    expect(topHelp.text).toMatch(/Commands:[\s\S]*run[\s\S]*cleanup[\s\S]*version/);
    for (const flag of ['--config', '--proxy-mode', '--conntrack-max-per-core', '--oom-score-adj', '--feature-gates', '--bind-address-hard-fail',
      '--kube-api-qps', '--kube-api-burst', '--kube-api-content-type', '--profiling', '--logging-format', '--healthz-port', '--metrics-port', '-v, --v']) {
      expect(runHelp.text).toContain(flag);
      expect(topHelp.text).toContain(flag);
    }
    expect(runHelp.text).toMatch(/^Usage: bpfproxy run \[options\]/);
  });

  it('takes options after a command name as that command\'s, and before it as the program\'s', () => {
    expect(parse(['run', '--v=2']).config.logLevel).toBe('debug');
    expect(parse(['--v=2', 'run']).config.logLevel).toBe('debug');
    expect(parse(['cleanup', '--bpf-fs', '/sys/fs/bpf/y']).config.bpf.pinPath).toBe('/sys/fs/bpf/y');
    expect(parse(['--version=raw']).command).toBe('version');
  });
});
