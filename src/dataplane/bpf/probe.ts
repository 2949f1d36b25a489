// Can the bpf dataplane run here? A cheap look before loading anything, so the
// one line an operator reads says what is missing (privilege, bpffs, cgroup v2,
// kernel) rather than a libbpf errno. Loading the object stays the real test:
// a probe that passes can still be followed by a load that fails, and that
// failure is reported the same way.
//
// Kernel BTF is not probed for the datapath: its programs read no kernel
// types (no CO-RE), and the BTF that matters, the one of our own object, is
// checked at load. The optional socket iterator (sockdestroy.bpf.c) is the
// exception: probeSockDestroy() below.
import { readFileSync, statfsSync } from 'node:fs';
import { release } from 'node:os';
import { dirname } from 'node:path';

const BPF_FS_MAGIC = 0xcafe4a11;
const CGROUP2_SUPER_MAGIC = 0x63677270;
const BPFFS_MOUNT = '/sys/fs/bpf';

// capability(7) bit numbers.
const CAP_NET_ADMIN = 12n;
const CAP_SYS_ADMIN = 21n;
const CAP_BPF = 39n;

/**
 * bpf_set_retval, which the connect hooks use to refuse with ECONNREFUSED,
 * came in 5.18; every other hook and helper of sock.bpf.c is older.
 */
export const MIN_KERNEL: readonly [number, number] = [5, 18];

/** What the probe reads from the machine, injectable for tests. */
export interface BpfHost {
  /** CapEff of this process. */
  effectiveCaps(): bigint;
  /** statfs f_type of path; null when the path does not exist. */
  fsType(path: string): number | null;
  /** uname -r. */
  kernelRelease(): string;
}

export const processHost: BpfHost = {
  effectiveCaps() {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? BigInt(`0x${m[1]}`) : 0n;
  },
  fsType(path) {
    try {
      return statfsSync(path).type;
    } catch {
      return null;
    }
  },
  kernelRelease: () => release(),
};

const has = (caps: bigint, bit: bigint) => ((caps >> bit) & 1n) === 1n;

/** The filesystem of `path`, or of its nearest existing ancestor when it does not exist yet. */
function fsTypeOfNearest(path: string, host: BpfHost): number | null {
  for (let p = path; ; p = dirname(p)) {
    const t = host.fsType(p);
    if (t !== null || dirname(p) === p) return t;
  }
}

function kernelTooOld(releaseText: string, min: readonly [number, number] = MIN_KERNEL): boolean {
  const m = /^(\d+)\.(\d+)/.exec(releaseText);
  if (!m) return false; // An unparsable release: let the load decide.
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major < min[0] || (major === min[0] && minor < min[1]);
}

/** Why the bpf dataplane cannot run with these directories, or null when nothing cheap says so. */
export function probeBpf(opts: { pinDir: string; cgroupRoot: string }, host: BpfHost = processHost): string | null {
  const caps = host.effectiveCaps();
  const sysAdmin = has(caps, CAP_SYS_ADMIN);
  // Loading maps and programs needs CAP_BPF; cgroup sock_addr programs also
  // need CAP_NET_ADMIN. CAP_SYS_ADMIN stands in for both.
  if (!sysAdmin && !(has(caps, CAP_BPF) && has(caps, CAP_NET_ADMIN))) {
    const missing = [has(caps, CAP_BPF) ? '' : 'CAP_BPF', has(caps, CAP_NET_ADMIN) ? '' : 'CAP_NET_ADMIN'].filter(Boolean).join(' and ');
    return `this process lacks ${missing} (run as root, or grant CAP_BPF and CAP_NET_ADMIN)`;
  }
  const kernel = host.kernelRelease();
  if (kernelTooOld(kernel)) return `kernel ${kernel} is older than ${MIN_KERNEL.join('.')}, which the socket programs need (bpf_set_retval)`;

  if (fsTypeOfNearest(opts.pinDir, host) !== BPF_FS_MAGIC) {
    const underDefault = opts.pinDir.startsWith(`${BPFFS_MOUNT}/`);
    if (!underDefault) return `--bpf-fs ${opts.pinDir} is not on a bpf filesystem (mount -t bpf bpf DIR)`;
    // The kernel creates /sys/fs/bpf when it has the bpf() syscall; the
    // dataplane mounts bpffs there when nothing is mounted yet.
    if (host.fsType(BPFFS_MOUNT) === null) return `${BPFFS_MOUNT} does not exist: this kernel has no bpf() syscall (CONFIG_BPF_SYSCALL), or /sys is not mounted`;
    if (!sysAdmin) return `bpffs is not mounted at ${BPFFS_MOUNT} and mounting it needs CAP_SYS_ADMIN (mount -t bpf bpf ${BPFFS_MOUNT} first)`;
  }

  const cgroupFs = host.fsType(opts.cgroupRoot);
  if (cgroupFs === null) return `--cgroup-root ${opts.cgroupRoot} does not exist`;
  if (cgroupFs !== CGROUP2_SUPER_MAGIC) return `--cgroup-root ${opts.cgroupRoot} is not a cgroup v2 directory (the socket programs attach to cgroup v2)`;
  return null;
}

/** bpf_sock_destroy, which the UDP socket iterator calls, came in 6.5. */
export const SOCK_DESTROY_MIN_KERNEL: readonly [number, number] = [6, 5];
const KERNEL_BTF = '/sys/kernel/btf/vmlinux';

/**
 * Why the socket iterator that moves connected UDP sockets off removed
 * backends cannot load here, or null when nothing cheap says so (the load
 * is still the real test).
 */
export function probeSockDestroy(host: BpfHost = processHost): string | null {
  const kernel = host.kernelRelease();
  if (kernelTooOld(kernel, SOCK_DESTROY_MIN_KERNEL)) return `kernel ${kernel} is older than ${SOCK_DESTROY_MIN_KERNEL.join('.')} (no bpf_sock_destroy)`;
  if (host.fsType(KERNEL_BTF) === null) return `the kernel has no BTF (${KERNEL_BTF} is missing: CONFIG_DEBUG_INFO_BTF)`;
  return null;
}
