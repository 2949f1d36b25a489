// Loads bpf/xdp.bpf.o into a pin directory of the caller's, writes the
// frontends a case needs into the pinned frontend map, runs packets through
// BPF_PROG_TEST_RUN and reads the counters. Shared by test/bpf/xdp.test.ts and
// bench/packets.ts. Nothing is attached: TEST_RUN needs no attachment.
import { join } from 'node:path';
import { writeFeKey, writeFeVal } from '../../src/dataplane/bpf/layout.js';
import { cleanupPins, ensureBpffs } from '../../src/dataplane/bpf/loader.js';
import { BpfMap } from '../../src/dataplane/bpf/map.js';
import * as native from '../../src/dataplane/bpf/native.js';
import { COUNTERS_MAP, sumCounters } from '../../src/dataplane/bpf/reasons.js';
import { runProgram, type TestRunResult } from '../../src/dataplane/bpf/testrun.js';
import type { DatapathCounters } from '../../src/dataplane/types.js';
import { silentLogger } from '../../src/util/log.js';
import { BPF_OBJECT_DIR } from '../../src/util/paths.js';
import type { Frontend } from './xdp-cases.js';

export const XDP_PROGRAM = 'bpx_xdp';
export const PASS_PROGRAM = 'bpx_xdp_pass';

/** A pin directory of this process's own under /sys/fs/bpf. */
export function testPinDir(what: string): string {
  return `/sys/fs/bpf/bpfproxy-test-${process.pid}-${what}`;
}

export class XdpHarness {
  readonly fe: BpfMap;
  readonly counters: BpfMap;
  private written: Frontend[] = [];

  private constructor(readonly pinDir: string, private readonly handle: native.ObjectHandle) {
    this.fe = new BpfMap('bpx_fe_v1', native.objectMapFd(handle, 'bpx_fe_v1'));
    this.counters = new BpfMap(COUNTERS_MAP, native.objectMapFd(handle, COUNTERS_MAP));
  }

  /** Loads xdp.bpf.o, pinning its maps in pinDir (reusing maps pinned there already). */
  static load(pinDir: string): XdpHarness {
    ensureBpffs(pinDir, silentLogger());
    let loaded: native.LoadedObject;
    try {
      loaded = native.objectLoad(join(BPF_OBJECT_DIR, 'xdp.bpf.o'), pinDir, {});
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${native.takeLibbpfLog()}`, { cause: err });
    }
    return new XdpHarness(pinDir, loaded.handle);
  }

  progFd(name = XDP_PROGRAM): number {
    return native.objectProgFd(this.handle, name);
  }

  /** Replaces the frontends this harness wrote with `list`. */
  setFrontends(list: readonly Frontend[]): void {
    this.clearFrontends();
    const failed = this.fe.update(list.length, (i, keys, ko, vals, vo) => {
      writeFeKey(keys, ko, list[i]!.key);
      writeFeVal(vals, vo, list[i]!.val);
    });
    if (failed.length) throw new Error(`writing frontends failed: ${JSON.stringify(failed)}`);
    this.written = [...list];
  }

  clearFrontends(): void {
    const list = this.written;
    this.fe.delete(list.length, (i, keys, ko) => writeFeKey(keys, ko, list[i]!.key));
    this.written = [];
  }

  readCounters(): DatapathCounters {
    return sumCounters(this.counters.dump());
  }

  run(packet: Buffer, opts: { program?: string; repeat?: number } = {}): TestRunResult {
    return runProgram(this.progFd(opts.program), packet, { repeat: opts.repeat ?? 1 });
  }

  /** Closes the object and removes the pin directory. */
  close(): void {
    native.objectClose(this.handle);
    cleanupPins(this.pinDir);
  }
}

/** Each label whose count differs between two readings, with the difference. */
export function counterDelta(before: DatapathCounters, after: DatapathCounters): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [kind, prefix] of [['drops', 'drop:'], ['events', 'event:']] as const) {
    for (const [label, n] of after[kind]) {
      const d = Number(n - (before[kind].get(label) ?? 0n));
      if (d !== 0) out[prefix + label] = d;
    }
  }
  return out;
}
