// The bpf probe on machines that are not this one: each missing piece
// (privilege, kernel, bpffs, cgroup v2) is named in the reason an operator reads.
import { describe, expect, it } from 'vitest';
import { MIN_KERNEL, probeBpf, type BpfHost } from '../../../src/dataplane/bpf/probe.js';

const BPF_FS = 0xcafe4a11;
const CGROUP2 = 0x63677270;
const TMPFS = 0x01021994;
const SYSFS = 0x62656572;
const ROOT_CAPS = (1n << 41n) - 1n;
const CAP_NET_ADMIN = 1n << 12n;
const CAP_BPF = 1n << 39n;

function host(over: { caps?: bigint; kernel?: string; fs?: Record<string, number> } = {}): BpfHost {
  const fs: Record<string, number> = over.fs ?? { '/': TMPFS, '/sys': SYSFS, '/sys/fs/bpf': BPF_FS, '/sys/fs/cgroup': CGROUP2, '/tmp': TMPFS };
  return {
    effectiveCaps: () => over.caps ?? ROOT_CAPS,
    fsType: (p) => fs[p] ?? null,
    kernelRelease: () => over.kernel ?? '6.18.0-1-amd64',
  };
}
const dirs = { pinDir: '/sys/fs/bpf/bpfproxy', cgroupRoot: '/sys/fs/cgroup' };

describe('bpf probe', () => {
  it('passes as root with bpffs and cgroup v2, also before the pin directory exists', () => {
    expect(probeBpf(dirs, host())).toBeNull();
  });

  it('passes with CAP_BPF and CAP_NET_ADMIN instead of root', () => {
    expect(probeBpf(dirs, host({ caps: CAP_BPF | CAP_NET_ADMIN }))).toBeNull();
  });

  it('names the capabilities that are missing', () => {
    expect(probeBpf(dirs, host({ caps: 0n }))).toMatch(/lacks CAP_BPF and CAP_NET_ADMIN/);
    expect(probeBpf(dirs, host({ caps: CAP_BPF }))).toMatch(/lacks CAP_NET_ADMIN \(/);
  });

  it(`refuses kernels older than ${MIN_KERNEL.join('.')}`, () => {
    expect(probeBpf(dirs, host({ kernel: '5.15.0-91-generic' }))).toMatch(/kernel 5\.15\.0-91-generic is older than 5\.18/);
    expect(probeBpf(dirs, host({ kernel: '4.19.0' }))).toMatch(/older than/);
    expect(probeBpf(dirs, host({ kernel: '5.18.0' }))).toBeNull();
    expect(probeBpf(dirs, host({ kernel: '6.1.0-18-amd64' }))).toBeNull();
  });

  it('says a --bpf-fs outside bpffs is not on a bpf filesystem', () => {
    expect(probeBpf({ ...dirs, pinDir: '/tmp/x/pins' }, host())).toBe('--bpf-fs /tmp/x/pins is not on a bpf filesystem (mount -t bpf bpf DIR)');
  });

  it('accepts an unmounted /sys/fs/bpf it can mount, and says why when it cannot', () => {
    const unmounted = { '/': TMPFS, '/sys': SYSFS, '/sys/fs/bpf': SYSFS, '/sys/fs/cgroup': CGROUP2 };
    expect(probeBpf(dirs, host({ fs: unmounted }))).toBeNull();
    expect(probeBpf(dirs, host({ fs: unmounted, caps: CAP_BPF | CAP_NET_ADMIN }))).toMatch(/bpffs is not mounted at \/sys\/fs\/bpf and mounting it needs CAP_SYS_ADMIN/);
  });

  it('says the kernel has no bpf() syscall when /sys/fs/bpf does not exist', () => {
    expect(probeBpf(dirs, host({ fs: { '/': TMPFS, '/sys': SYSFS, '/sys/fs/cgroup': CGROUP2 } }))).toMatch(/no bpf\(\) syscall/);
  });

  it('wants a cgroup v2 directory for the socket programs', () => {
    expect(probeBpf({ ...dirs, cgroupRoot: '/tmp' }, host())).toMatch(/--cgroup-root \/tmp is not a cgroup v2 directory/);
    expect(probeBpf({ ...dirs, cgroupRoot: '/sys/fs/cgroup/nope' }, host())).toMatch(/--cgroup-root \/sys\/fs\/cgroup\/nope does not exist/);
  });
});
