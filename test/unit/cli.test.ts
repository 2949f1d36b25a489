// The command line as an operator meets it: the built bin/bpfproxy, its exit
// codes, and the one line that says why it cannot run.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/util/paths.js';

const BIN = join(PACKAGE_ROOT, 'bin', 'bpfproxy');
const tmp = mkdtempSync(join(tmpdir(), 'bpfproxy-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// The nftables and iptables modes must never program the machine's own
// namespace from a unit test: their probes fail here on binaries that do not exist.
const NO_NFT = join(tmp, 'no-such-nft');
const NO_IPTABLES = join(tmp, 'no-such-iptables');

// Runs in this machine's own network namespace: every bpf-mode run passes
// `--devices ''`, so the default device list (the root namespace's real
// devices) is never chosen, even on a run that gets as far as attaching.
function run(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, BPFPROXY_NFT: NO_NFT, BPFPROXY_IPTABLES_DIR: NO_IPTABLES, BPFPROXY_IPVSADM: join(tmp, 'no-such-ipvsadm') } });
  return { code: r.status, out: r.stdout, err: r.stderr, lines: r.stderr.split('\n').filter(Boolean) };
}

describe('bpfproxy command line', () => {
  it('prints its version and the commit it was built from', () => {
    const r = run('version');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^bpfproxy \d+\.\d+\.\d+ \(commit ([0-9a-f]{12}|unknown), node v\d+/);
    expect(run('--version').out).toBe(r.out);
    const pinned = spawnSync(process.execPath, [BIN, 'version'], { encoding: 'utf8', env: { ...process.env, BPFPROXY_COMMIT: 'abc1234' } });
    expect(pinned.stdout).toContain('(commit abc1234,');
  });

  it('run --help lists the options of run', () => {
    const r = run('run', '--help');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Usage: bpfproxy run \[options\]/);
    for (const flag of ['--config', '--proxy-mode', '--conntrack-max-per-core', '--logging-format', '--bind-address-hard-fail']) expect(r.out).toContain(flag);
  });

  it('starts on an old kubeadm file with fields kube-proxy no longer knows, and on k3s\'s flags: a warning each, no exit 2', () => {
    const fixtures = join(PACKAGE_ROOT, 'test', 'unit', 'config', 'fixtures');
    const config = join(tmp, 'config.conf');
    writeFileSync(config, readFileSync(join(fixtures, 'kubeadm-1.17-config.conf'), 'utf8'));
    const k3s = readFileSync(join(fixtures, 'k3s.args'), 'utf8').split('\n').filter((l) => l.startsWith('--') && !/healthz|proxy-mode/.test(l));
    const r = run('--config', config, ...k3s, '--proxy-mode', 'bpf', '--no-fallback', '--conntrack-min=5', '--devices', '', '--bpf-fs', join(tmp, 'pins'), '--manifests', tmp,
      '--healthz-bind-address', '', '--metrics-bind-address', '');
    // It got as far as opening the dataplane (not a bpffs here): exit 1, not a configuration error.
    expect(r.code).toBe(1);
    const lines = r.lines.map((l) => JSON.parse(l) as { level: number; msg: string; field?: string; fields?: string[]; version?: string; commit?: string; err?: { message: string; stack: string } });
    const warnings = lines.filter((l) => l.level === 40);
    expect(warnings.filter((l) => l.msg.startsWith('unknown field')).map((l) => l.field).sort()).toEqual(['conntrack.max', 'metadata', 'resourceContainer']);
    expect(warnings.filter((l) => l.field === '--conntrack-min')).toHaveLength(1);
    const noEffect = warnings.filter((l) => l.fields);
    expect(noEffect).toHaveLength(1);
    expect(noEffect[0]!.msg).toBe('config file fields that have no effect in bpf mode');
    expect(noEffect[0]!.fields).toContain('conntrack.maxPerCore');
    // The version is logged at start; the failure comes with its stack; nothing claims a datapath is serving.
    // (After the config warnings; the one saying bpf falls back to nftables comes later.)
    expect(lines[warnings.filter((l) => !/falling back to nftables$/.test(l.msg)).length]!.msg).toMatch(/^starting bpfproxy \d+\.\d+\.\d+ \(commit /);
    const fatal = lines.filter((l) => l.level === 60);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]!.err!.stack).toMatch(/\n\s+at /);
    expect(lines.some((l) => /keeps serving/.test(l.msg))).toBe(false);
  });

  it('--logging-format=text writes klog-like lines', () => {
    const r = run('--logging-format=text', '-v', '2', '--no-fallback', '--devices', '', '--bpf-fs', join(tmp, 'pins'), '--manifests', tmp, '--healthz-bind-address', '', '--metrics-bind-address', '');
    expect(r.code).toBe(1);
    expect(r.lines[0]).toMatch(new RegExp(`^I\\d{4} \\d\\d:\\d\\d:\\d\\d\\.\\d{6} +\\d+ bpfproxy\\] "starting bpfproxy `));
    expect(r.lines.some((l) => /^F\d{4} .*\] "the bpf dataplane cannot run here/.test(l))).toBe(true);
  });

  it('rejects a bad flag value naming the flag, with exit code 2', () => {
    const r = run('--proxy-mode', 'userspace');
    expect(r.code).toBe(2);
    expect(r.err).toContain('--proxy-mode');
    expect(r.err).toContain('userspace');
  });

  it('says in one line that ipvs cannot run (no IPVS in this kernel; no ipvsadm where it has one), and exits 1', () => {
    const r = run('--proxy-mode', 'ipvs', '--manifests', tmp, '--healthz-bind-address', '', '--metrics-bind-address', '');
    expect(r.code).toBe(1);
    const fatal = r.lines.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level >= 60);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]!.msg).toMatch(/^the ipvs dataplane cannot run here: (the kernel has no IPVS|`.*no-such-ipvsadm -Ln` failed).*; no mode left to fall back to$/);
  });

  it('says why --proxy-mode nftables cannot run when nft does not', () => {
    const r = run('--proxy-mode', 'nftables', '--manifests', tmp, '--healthz-bind-address', '', '--metrics-bind-address', '');
    expect(r.code).toBe(1);
    const fatal = r.lines.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level >= 60);
    expect(fatal).toHaveLength(1);
    // It falls back to iptables and ipvs, which cannot run here either; the line says all three.
    expect(fatal[0]!.msg).toMatch(/the ipvs dataplane cannot run here: .*; no mode left to fall back to \(earlier: the nftables dataplane cannot run here: `.*no-such-nft list tables` failed: .*ENOENT; the iptables dataplane cannot run here: `.*no-such-iptables\/iptables-restore --noflush` failed: .*ENOENT\)$/);
  });

  it('says why --proxy-mode iptables cannot run when iptables-restore does not', () => {
    const r = run('--proxy-mode', 'iptables', '--no-fallback', '--manifests', tmp, '--healthz-bind-address', '', '--metrics-bind-address', '');
    expect(r.code).toBe(1);
    const fatal = r.lines.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level >= 60);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]!.msg).toMatch(/the iptables dataplane cannot run here: `.*no-such-iptables\/iptables-restore --noflush` failed: .*ENOENT \(--no-fallback: not trying another mode\)$/);
  });

  it('says why the bpf dataplane cannot run when --bpf-fs is not a bpf filesystem', () => {
    const r = run('--devices', '', '--bpf-fs', join(tmp, 'pins'), '--manifests', tmp, '--healthz-bind-address', '', '--metrics-bind-address', '');
    expect(r.code).toBe(1);
    const fatal = r.lines.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level >= 60);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]!.msg).toMatch(/the bpf dataplane cannot run here: --bpf-fs .*pins is not on a bpf filesystem/);
    // With fallback allowed (the default) it tries nftables, then iptables, which cannot run either here, and the line says so.
    expect(fatal[0]!.msg).toMatch(/the nftables dataplane cannot run here: .*no-such-nft/);
    expect(fatal[0]!.msg).toMatch(/the iptables dataplane cannot run here: .*no-such-iptables.*/);
    expect(fatal[0]!.msg).toMatch(/the ipvs dataplane cannot run here: .*; no mode left to fall back to/);
    // One warning per fallback (to nftables, to iptables, to ipvs) and the fatal line.
    const warned = r.lines.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level >= 40 && l.level < 60);
    expect(warned.map((l) => l.msg.replace(/.*; /, ''))).toEqual(['falling back to nftables', 'falling back to iptables', 'falling back to ipvs']);
  });

  it('with --no-fallback, says the failure is fatal by choice', () => {
    const r = run('--no-fallback', '--devices', '', '--bpf-fs', join(tmp, 'pins'), '--manifests', tmp, '--healthz-bind-address', '', '--metrics-bind-address', '');
    expect(r.code).toBe(1);
    const fatal = r.lines.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level >= 60);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]!.msg).toMatch(/the bpf dataplane cannot run here: --bpf-fs .* \(--no-fallback: not trying another mode\)$/);
  });
});
