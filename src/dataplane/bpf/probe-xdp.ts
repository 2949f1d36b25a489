// The kernel features the XDP/TC packet path needs beyond what the socket
// programs need (probe.ts: 5.18) and beyond what loading it proves, probed
// once at start by running tiny programs (bpf/probe.bpf.c) through
// BPF_PROG_TEST_RUN: a helper flag an old kernel lacks passes the verifier
// and fails only when called, so only calling it tells.
//
// What the path needs, by kernel version, and how each is known:
//   - BPF_FIB_LOOKUP_SRC (6.7): SNAT to a remote backend takes the source
//     address the route would use. Probed here (bpx_probe_fib_src).
//   - native XDP on the device, else generic (4.8 / any): attach.ts tries
//     native, falls back on EOPNOTSUPP.
//   - tcx (6.6), else clsact: attach.ts probes and falls back.
//   - bpf_redirect_neigh (5.10), bpf_xdp_adjust_head/tail, LPM tries,
//     BPF_F_MMAPABLE arrays (5.5): older than the 5.18 the proxy needs
//     anyway; a kernel without one fails the load, which says so.
// Without a probed feature the packet programs are not attached at all: the
// proxy logs one line saying what is missing and keeps serving through the
// socket programs (connections from the node and its pods).
import { join } from 'node:path';
import { release } from 'node:os';
import type { Logger } from '../../util/log.js';
import * as native from './native.js';
import { runProgram } from './testrun.js';

export interface Feature {
  /** What the path loses without it, for the log line. */
  readonly what: string;
  /** The probe program in probe.bpf.o: returns 1 when the kernel has it. */
  readonly program: string;
  readonly since: string;
}

export const PACKET_PATH_FEATURES: readonly Feature[] = [
  { what: 'BPF_FIB_LOOKUP_SRC (the route lookup choosing the SNAT source address)', program: 'bpx_probe_fib_src', since: '6.7' },
];

/** A minimal frame for the probe runs (BPF_PROG_TEST_RUN refuses less than an Ethernet header). */
const FRAME = Buffer.alloc(64);

export interface ProbeResult {
  /** Features this kernel lacks, with the version that brought each. */
  missing: Feature[];
}

/** Loads probe.bpf.o (it has no maps: nothing is pinned in pinDir) and runs every probe. */
export function probePacketPath(objectDir: string, pinDir: string, features: readonly Feature[] = PACKET_PATH_FEATURES): ProbeResult {
  const obj = native.objectLoad(join(objectDir, 'probe.bpf.o'), pinDir, {});
  try {
    const missing = features.filter((f) => runProgram(native.objectProgFd(obj.handle, f.program), FRAME).retval !== 1);
    return { missing };
  } finally {
    native.objectClose(obj.handle);
  }
}

/**
 * The devices the packet programs may attach to: `devices`, or none when the
 * kernel lacks something they need (one warning saying what, and that the
 * socket path keeps serving), or when the probe itself cannot run.
 */
export function packetDevicesAfterProbe(
  devices: readonly string[], objectDir: string, pinDir: string, log: Logger, features: readonly Feature[] = PACKET_PATH_FEATURES,
): readonly string[] {
  if (devices.length === 0) return devices;
  let result: ProbeResult;
  try {
    result = probePacketPath(objectDir, pinDir, features);
  } catch (err) {
    log.warn({ devices, kernel: release(), err: (err as Error).message }, 'could not probe the kernel for the XDP/TC datapath: not attaching it to --devices; the socket programs keep serving connections from this node and its pods');
    return [];
  }
  if (result.missing.length === 0) {
    log.info({ devices, kernel: release(), features: features.map((f) => f.program.replace('bpx_probe_', '')) }, 'kernel probe: this kernel has what the XDP/TC datapath needs');
    return devices;
  }
  const lacks = result.missing.map((f) => `${f.what}, kernel ${f.since}+`).join('; ');
  log.warn({ devices, kernel: release(), missing: result.missing.map((f) => f.program.replace('bpx_probe_', '')) },
    `kernel ${release()} lacks what the XDP/TC datapath needs (${lacks}): not attaching it to --devices ${devices.join(',')}; `
    + 'NodePort, LoadBalancer and ExternalIP traffic from outside the node is not served by bpfproxy; the socket programs keep serving connections from this node and its pods');
  return [];
}
