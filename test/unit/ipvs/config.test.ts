// kube-proxy's ipvs settings, from flags and from the file's `ipvs:` section,
// with kube-proxy's names and meanings, and what reaches the ipvs mode.
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/config/errors.js';
import { parseCommandLine, type CommandLine } from '../../../src/config/flags.js';
import { ipvsConfig } from '../../../src/dataplane/ipvs/mode.js';
import { fakeEnv } from '../config/fake-env.js';

type Run = Exclude<CommandLine, { command: 'help' }>;
const parse = (argv: string[], files: Record<string, string> = {}) => parseCommandLine(argv, fakeEnv(files)) as Run;

const FILE = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: ipvs
ipvs:
  scheduler: sh
  strictARP: true
  tcpTimeout: 15m
  tcpFinTimeout: 30s
  udpTimeout: 5m
  excludeCIDRs: ["10.0.0.0/8"]
  minSyncPeriod: 0s
`;

describe('ipvs settings', () => {
  it("defaults: rr, no strict ARP, the kernel's timeouts", () => {
    expect(parse([]).config.ipvs).toEqual({ scheduler: 'rr', strictARP: false, tcpTimeoutMs: 0, tcpFinTimeoutMs: 0, udpTimeoutMs: 0 });
  });

  it('the flags', () => {
    const c = parse(['--proxy-mode', 'ipvs', '--ipvs-scheduler', 'lc', '--ipvs-strict-arp', '--ipvs-tcp-timeout', '900s', '--ipvs-udp-timeout', '1m']).config;
    expect(c.ipvs).toEqual({ scheduler: 'lc', strictARP: true, tcpTimeoutMs: 900_000, tcpFinTimeoutMs: 0, udpTimeoutMs: 60_000 });
  });

  it('refuses a scheduler the kernel does not have, naming the flag', () => {
    expect(() => parse(['--ipvs-scheduler', 'fastest'])).toThrow(ConfigError);
    expect(() => parse(['--ipvs-scheduler', 'fastest'])).toThrow(/--ipvs-scheduler/);
  });

  it("the file's ipvs section; excludeCIDRs has no effect and says so; a flag overrides the file", () => {
    const r = parse(['--config', '/etc/kp.yaml'], { '/etc/kp.yaml': FILE });
    expect(r.config.mode).toBe('ipvs');
    expect(r.config.ipvs).toEqual({ scheduler: 'sh', strictARP: true, tcpTimeoutMs: 900_000, tcpFinTimeoutMs: 30_000, udpTimeoutMs: 300_000 });
    expect(r.ignoredFileFields).toEqual(['ipvs.excludeCIDRs']);
    expect(parse(['--config', '/etc/kp.yaml', '--ipvs-scheduler', 'mh'], { '/etc/kp.yaml': FILE }).config.ipvs.scheduler).toBe('mh');
    expect(() => parse(['--config', '/etc/kp.yaml'], { '/etc/kp.yaml': FILE.replace('scheduler: sh', 'scheduler: fastest') })).toThrow(/ipvs\.scheduler/);
  });

  it('--ipvs-exclude-cidrs is accepted with one notice', () => {
    const r = parse(['--ipvs-exclude-cidrs', '10.0.0.0/8,192.168.0.0/16']);
    expect(r.notices.map((n) => n.field)).toEqual(['--ipvs-exclude-cidrs']);
  });

  it('the ipvs mode gets the scheduler, the cluster CIDRs by family and the iptables masquerade options', () => {
    expect(ipvsConfig({
      bpf: { pinDir: '', cgroupRoot: '', mapSizes: {} },
      nftables: { clusterCIDRs: ['10.244.0.0/16', 'fd00:244::/32'], detectLocalMode: 'ClusterCIDR' },
      iptables: { masqueradeAll: true, masqueradeBit: 3, localhostNodePorts: false },
      ipvs: { scheduler: 'sed', strictARP: false, tcpTimeoutMs: 0, tcpFinTimeoutMs: 0, udpTimeoutMs: 0 },
    })).toEqual({ clusterCidrs: { IPv4: ['10.244.0.0/16'], IPv6: ['fd00:244::/32'] }, masqueradeAll: true, masqueradeBit: 3, scheduler: 'sed' });
  });
});
