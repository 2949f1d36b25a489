// What kubeadm, k3s, kops and the kubernetes-worker charm hand to kube-proxy
// (fixtures/) must start bpfproxy: accepted, with each value where kube-proxy puts
// it, and a warning for what has no effect here rather than an exit.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseRun as parse } from './fake-env.js';

const FIXTURES = join(import.meta.dirname, 'fixtures');
const fixture = (name: string) => readFileSync(join(FIXTURES, name), 'utf8');
const args = (name: string) => fixture(name).split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));


describe('kube-proxy configurations as installers write them', () => {
  it('kubeadm: mode "" with iptables.minSyncPeriod 10s keeps the 10 s in bpf mode', () => {
    const r = parse(['--config', '/var/lib/kube-proxy/config.conf'], { '/var/lib/kube-proxy/config.conf': fixture('kubeadm-config.conf') });
    expect(r.config).toMatchObject({
      mode: 'bpf', minSyncPeriodMs: 10_000, syncPeriodMs: 30_000,
      kubeconfig: '/var/lib/kube-proxy/kubeconfig.conf', clusterCIDRs: ['10.244.0.0/16'],
      oomScoreAdj: -999, bindAddressHardFail: false, logFormat: 'json',
    });
    expect(r.notices).toEqual([]);
    // Only what has no effect and is set to something: one warning line's worth.
    // bindAddress 0.0.0.0 is "none given" (a specific one chooses the default --devices).
    expect(r.ignoredFileFields.sort()).toEqual(['logging.options']);
  });

  it('an old kubeadm file with removed fields: one notice per unknown field, naming it, and the rest applies', () => {
    const r = parse(['--config', '/c.conf'], { '/c.conf': fixture('kubeadm-1.17-config.conf') });
    expect(r.notices.map((n) => n.field).sort()).toEqual(['conntrack.max', 'metadata', 'resourceContainer']);
    for (const n of r.notices) expect(n.message).toContain(`unknown field ${n.field}`);
    // mode: ipvs from the file, and the ipvs section's syncPeriod.
    expect(r.config).toMatchObject({ mode: 'ipvs', syncPeriodMs: 30_000, minSyncPeriodMs: 1000, clusterCIDRs: ['192.168.0.0/16'] });
    // iptables.syncPeriod means nothing in ipvs mode: listed with the other fields without effect.
    expect(r.ignoredFileFields).toContain('iptables.syncPeriod');
    expect(r.ignoredFileFields).toContain('conntrack.maxPerCore');
    expect(r.ignoredFileFields).not.toContain('ipvs.syncPeriod');
  });

  it('the same file with --proxy-mode bpf takes the section of the mode the file names', () => {
    const r = parse(['--config', '/c.conf', '--proxy-mode', 'bpf'], { '/c.conf': fixture('kubeadm-1.17-config.conf') });
    expect(r.config).toMatchObject({ mode: 'bpf', syncPeriodMs: 30_000, minSyncPeriodMs: 0 });
    expect(r.ignoredFileFields).toContain('iptables.syncPeriod');
  });

  it('k3s: its flags are accepted; the conntrack zeros ask for nothing and warn about nothing', () => {
    const r = parse(args('k3s.args'));
    expect(r.config).toMatchObject({
      mode: 'iptables', nodeName: 'k3s-agent-1', clusterCIDRs: ['10.42.0.0/16'],
      healthzBindAddress: { host: '127.0.0.1', port: 10256 },
      kubeconfig: '/var/lib/rancher/k3s/agent/kubeproxy.kubeconfig',
    });
    expect(r.notices).toEqual([]);
  });

  it('kops: its flags are accepted; conntrack sizing warns once that it has no effect', () => {
    const r = parse(args('kops.args'));
    expect(r.config).toMatchObject({
      nodeName: 'i-0123456789abcdef0', master: 'https://api.internal.example.k8s.local',
      kubeconfig: '/var/lib/kube-proxy/kubeconfig', oomScoreAdj: -998, logLevel: 'debug', clusterCIDRs: ['100.96.0.0/11'],
    });
    expect(r.notices).toEqual([{ field: '--conntrack-max-per-core', message: expect.stringMatching(/^--conntrack-max-per-core has no effect here: /) }]);
  });

  it('charm: its flags are accepted; one warning each for the gates and the client tuning', () => {
    const r = parse(args('charm.args'));
    expect(r.config).toMatchObject({ nodeName: 'juju-0a1b2c-3', logLevel: 'info', bindAddressHardFail: false });
    expect(r.notices.map((n) => n.field)).toEqual(['--feature-gates', '--kube-api-qps', '--kube-api-burst', '--kube-api-content-type']);
  });
});
