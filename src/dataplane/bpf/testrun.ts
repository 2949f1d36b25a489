// Runs a loaded program on a packet through BPF_PROG_TEST_RUN: the harness
// of the packet tests (test/bpf/xdp.test.ts) and of `make bench`
// (bench/packets.ts). The options struct is laid out by the C compiler in
// native/testrun.c, never here.
import { BpfError, testRun } from './native.js';

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
