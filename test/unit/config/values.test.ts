import { describe, expect, it } from 'vitest';
import { detectCgroupRoot } from '../../../src/config/config.js';
import { ConfigError } from '../../../src/config/errors.js';
import {
  formatBindAddress, formatDuration, parseBindAddress, parseCidrList, parseDuration, parseNodePortAddresses,
  parsePortRange, validateMaglevTableSize, verbosityToLevel,
} from '../../../src/config/values.js';
import { errorOf } from './fake-env.js';


describe('parseDuration (Go syntax)', () => {
  it.each([
    ['0', 0], ['0s', 0], ['1s', 1000], ['500ms', 500], ['1m30s', 90_000], ['1.5h', 5_400_000],
    ['2h45m', 9_900_000], ['250us', 0.25], ['+3s', 3000], ['.5s', 500],
  ])('%s is %d ms', (text, ms) => {
    expect(parseDuration(text, 'syncPeriod')).toBe(ms);
  });

  it.each(['1x', '10', '', '-1s', 's', '1s garbage'])('refuses %j, naming the field and the value', (text) => {
    const err = errorOf(() => parseDuration(text, 'iptables.minSyncPeriod'));
    expect(err.field).toBe('iptables.minSyncPeriod');
    expect(err.message).toContain(JSON.stringify(text));
  });

  it.each([0, 500, 1000, 1500, 90_000, 3_600_000, 5_400_000])('formats %d ms the way it parses back', (ms) => {
    expect(parseDuration(formatDuration(ms), 'x')).toBe(ms);
  });
});

describe('parseBindAddress', () => {
  it.each([
    ['0.0.0.0:10256', { host: '0.0.0.0', port: 10256 }],
    ['[::1]:9090', { host: '::1', port: 9090 }],
    ['[0:0::0]:80', { host: '::', port: 80 }],
    [':8080', { host: '', port: 8080 }],
    ['127.0.0.1', { host: '127.0.0.1', port: 10249 }],
    ['::', { host: '::', port: 10249 }],
    // A bare IPv6 address takes the default port, as kube-proxy's AppendPortIfNeeded does.
    ['fd00::1:80', { host: 'fd00::1:80', port: 10249 }],
    ['127.0.0.1:0', { host: '127.0.0.1', port: 0 }],
  ])('%s', (text, want) => {
    expect(parseBindAddress(text, '--metrics-bind-address', 10249)).toEqual(want);
  });

  it('treats "" as disabled', () => {
    expect(parseBindAddress('', '--healthz-bind-address', 10256)).toBeNull();
  });

  it.each(['2001:db8::1:x', 'localhost:80', '1.2.3.4:70000', '1.2.3.4:', '[1.2.3.4]:80'])('refuses %j', (text) => {
    expect(errorOf(() => parseBindAddress(text, '--healthz-bind-address', 10256)).field).toBe('--healthz-bind-address');
  });

  it('formats IPv6 in brackets', () => {
    expect(formatBindAddress({ host: '::1', port: 80 })).toBe('[::1]:80');
    expect(formatBindAddress({ host: '', port: 80 })).toBe(':80');
  });
});

describe('lists and ranges', () => {
  it('canonicalizes CIDRs and allows one per family in a dual-stack pair', () => {
    expect(parseCidrList('10.244.1.7/16, fd00:10:244::1/64', 'clusterCIDR', true)).toEqual(['10.244.0.0/16', 'fd00:10:244::/64']);
    expect(errorOf(() => parseCidrList('10.0.0.0/8,10.1.0.0/16', 'clusterCIDR', true)).detail).toMatch(/more than one IPv4/);
    expect(errorOf(() => parseCidrList('10.0.0.0/33', 'clusterCIDR', true)).detail).toContain('10.0.0.0/33');
  });

  it('reads nodePortAddresses as CIDRs, "primary" or "all"', () => {
    expect(parseNodePortAddresses([], 'nodePortAddresses')).toEqual({ kind: 'all' });
    expect(parseNodePortAddresses('primary', 'nodePortAddresses')).toEqual({ kind: 'primary' });
    expect(parseNodePortAddresses(['172.18.0.0/24', '::/0'], 'nodePortAddresses')).toEqual({ kind: 'cidrs', cidrs: ['172.18.0.0/24', '::/0'] });
    expect(errorOf(() => parseNodePortAddresses('primary,10.0.0.0/8', 'nodePortAddresses')).detail).toMatch(/only value/);
    expect(errorOf(() => parseNodePortAddresses('localhost', '--nodeport-addresses')).detail).toMatch(/loopback/);
  });

  it('reads port ranges as MIN-MAX, BASE+SIZE or one port', () => {
    expect(parsePortRange('30000-32767', 'r')).toEqual({ min: 30000, max: 32767 });
    expect(parsePortRange('30000+100', 'r')).toEqual({ min: 30000, max: 30100 });
    expect(parsePortRange('8080', 'r')).toEqual({ min: 8080, max: 8080 });
    for (const bad of ['32767-30000', '0-10', '30000-70000', 'a-b']) expect(() => parsePortRange(bad, 'r')).toThrow(ConfigError);
  });
});

describe('Maglev table size', () => {
  it('accepts primes up to 65521', () => {
    expect(validateMaglevTableSize(16381, 'bpf.maglevTableSize')).toBe(16381);
    expect(validateMaglevTableSize(65521, 'bpf.maglevTableSize')).toBe(65521);
  });

  it('refuses a composite size and names the nearest primes', () => {
    const err = errorOf(() => validateMaglevTableSize(16000, 'bpf.maglevTableSize'));
    expect(err.field).toBe('bpf.maglevTableSize');
    expect(err.detail).toContain('15991 or 16001');
  });

  it('refuses sizes above 65521', () => {
    expect(errorOf(() => validateMaglevTableSize(65537, 'x')).detail).toContain('65521');
  });
});

describe('environment-derived defaults', () => {
  it('maps kube-proxy verbosity onto log levels', () => {
    expect([0, 1, 2, 3, 4, 9].map(verbosityToLevel)).toEqual(['info', 'info', 'debug', 'debug', 'trace', 'trace']);
  });

  it('finds the cgroup v2 mount of a hybrid hierarchy', () => {
    const mounts = [
      'tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0',
      'cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0',
      'cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0',
    ].join('\n');
    expect(detectCgroupRoot(mounts)).toBe('/sys/fs/cgroup/unified');
    expect(detectCgroupRoot('cgroup2 /mnt/my\\040cgroup cgroup2 rw 0 0\n')).toBe('/mnt/my cgroup');
    expect(detectCgroupRoot('proc /proc proc rw 0 0\n')).toBe('/sys/fs/cgroup');
  });
});
