// Runs a loaded program on a packet through BPF_PROG_TEST_RUN: the harness
// of the packet tests (test/bpf/xdp.test.ts) and of `make bench`
// (bench/packets.ts), and, in live-frames mode, the NodePort packet bench's
// traffic generator (bench/nodeport-live.ts). The options struct is laid out
// by the C compiler in native/testrun.c, never here.
import { BpfError, testRun, testRunLive } from './native.js';

export interface TestRunResult {
  /** The program's return code (XDP_PASS, XDP_DROP, ...). */
  retval: number;
  /** The packet as the program left it. */
  data: Buffer;
  /** Mean nanoseconds per run, as the kernel measured it. */
  durationNs: number;
}

export const XDP_ABORTED = 0;
export const XDP_DROP = 1;
export const XDP_PASS = 2;
export const XDP_TX = 3;
export const XDP_REDIRECT = 4;

/** Headroom for programs that grow the packet (encapsulation, later). */
const OUT_SLACK = 256;

export function runProgram(progFd: number, packet: Buffer, opts: { repeat?: number } = {}): TestRunResult {
  const out = Buffer.alloc(packet.length + OUT_SLACK);
  const res = new Uint32Array(3);
  const ret = testRun(progFd, packet, out, opts.repeat ?? 1, res);
  if (ret < 0) throw new BpfError(`test run of program fd ${progFd} on a ${packet.length}-byte packet`, ret);
  return { retval: res[0]!, data: out.subarray(0, res[1]!), durationNs: res[2]! };
}

/** Frames per batch when the caller says nothing: the kernel's own default. */
export const LIVE_BATCH_DEFAULT = 64;
/** The kernel refuses larger batches (TEST_XDP_MAX_BATCH). */
export const LIVE_BATCH_MAX = 256;

/**
 * Runs an XDP program on `frames` live frames built from `packet`
 * (BPF_F_TEST_XDP_LIVE_FRAMES, kernel >= 5.18): its verdicts are carried out,
 * so XDP_REDIRECT transmits each frame out of the device it names, resolved
 * in the calling thread's network namespace (see src/lab/netns-thread.ts).
 * Returns the syscall's wall time, which includes the softirq work the
 * redirects scheduled on this CPU. Bound the count: the call blocks the
 * thread until every frame has been handed on.
 */
export function runLiveFrames(progFd: number, packet: Buffer, frames: number, opts: { batchSize?: number } = {}): { wallNs: number } {
  const batch = opts.batchSize ?? LIVE_BATCH_DEFAULT;
  if (!Number.isInteger(frames) || frames < 1 || frames > 0xffffffff) throw new RangeError(`live frames: a count from 1 to 2^32-1, not ${frames}`);
  if (!Number.isInteger(batch) || batch < 1 || batch > LIVE_BATCH_MAX) throw new RangeError(`live frames: a batch size from 1 to ${LIVE_BATCH_MAX}, not ${batch}`);
  const wall = [0];
  const ret = testRunLive(progFd, packet, frames, batch, wall);
  if (ret < 0) throw new BpfError(`live-frames test run of program fd ${progFd} (${frames} frames of ${packet.length} bytes, batches of ${batch})`, ret);
  return { wallNs: Number(wall[0]!) };
}
