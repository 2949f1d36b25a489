// Loads bpf/xdp.bpf.o into a pin directory of the caller's, writes the
// frontends a case needs into the pinned frontend map, runs packets through
// BPF_PROG_TEST_RUN and reads the counters. Shared by test/bpf/xdp.test.ts and
// bench/packets.ts. Nothing is attached: TEST_RUN needs no attachment.
import { join } from 'node:path';
import { maglevTable } from '../../src/planner/maglev.js';
import { hostPort } from '../../src/util/ip.js';
import { BACKEND, MAGLEV_ROW, MEMBER_KEY, RANGE_KEY, BE_LOCAL, EMPTY_DROP, EMPTY_REJECT, FAMILY_V4, FAMILY_V6, IPPROTO, SET_KEY, SET_VAL, writeAddr, writeFeKey, writeFeVal } from '../../src/dataplane/bpf/layout.js';
import { cleanupPins, ensureBpffs } from '../../src/dataplane/bpf/loader.js';
import { mapArrayWords, type MappedArray } from '../../src/dataplane/bpf/mmap.js';
import { BpfMap } from '../../src/dataplane/bpf/map.js';
import * as native from '../../src/dataplane/bpf/native.js';
import { COUNTERS_MAP, sumCounters } from '../../src/dataplane/bpf/reasons.js';
import { runProgram, type TestRunResult } from '../../src/dataplane/bpf/testrun.js';
import type { DatapathCounters } from '../../src/dataplane/types.js';
import { silentLogger } from '../../src/util/log.js';
import { BPF_OBJECT_DIR } from '../../src/util/paths.js';
import type { Frontend } from './xdp-cases.js';

export const XDP_PROGRAM = 'bpx_xdp';
/** Where the objects come from: the build, or (bench/packets.ts's before/after runs) BPFPROXY_BENCH_OBJECTS. */
const OBJECT_DIR = process.env.BPFPROXY_BENCH_OBJECTS ?? BPF_OBJECT_DIR;
export const TC_EGRESS_PROGRAM = 'bpx_tc_egress';

/** A backend set as the control plane writes it (lb-tables.ts): header (slot 0) and the slots of generation 1. */
export interface TestSet {
  id: number;
  backends: { id: number; address: string; port: number; protocol: keyof typeof IPPROTO; local: boolean }[];
  /** When empty: refuse (no endpoints) or drop (Local policy, none here). */
  empty?: 'reject' | 'drop';
  /** false: no Maglev row (new flows pick at random). Default: a row of TEST_MAGLEV_M slots built as the dataplane builds it. */
  maglev?: false;
  /** A table naming this backend in every slot, so a case knows what Maglev would pick. */
  maglevAll?: number;
  /** ClientIP affinity timeout in seconds (header), 0 or absent: none. */
  affinity?: number;
}

/** A small prime: tables of the tests are built quickly. */
export const TEST_MAGLEV_M = 1021;

/** The set's Maglev table as backend IDs, built the way maglev-tables.ts builds it. */
export function maglevIds(backends: TestSet['backends'], m = TEST_MAGLEV_M): Uint32Array {
  const idx = maglevTable(backends.map((b) => hostPort(b.address, b.port)), m);
  return Uint32Array.from(idx, (i) => backends[i]!.id);
}
export const PASS_PROGRAM = 'bpx_xdp_pass';

/** A pin directory of this process's own under /sys/fs/bpf. */
export function testPinDir(what: string): string {
  return `/sys/fs/bpf/bpfproxy-test-${process.pid}-${what}`;
}

/** Small flow maps: tests clear them between cases by dumping them. */
const FLOW_MAP_SIZES = { bpx_ct_v1: 4096, bpx_nat_v1: 8192 };

function clearMap(m: BpfMap): void {
  const d = m.dump();
  if (d.count > 0) m.remove(d.keys, d.count);
}

export class XdpHarness {
  readonly fe: BpfMap;
  readonly counters: BpfMap;
  readonly set: BpfMap;
  readonly be: BpfMap;
  readonly ct: BpfMap;
  readonly nat: BpfMap;
  readonly member: BpfMap;
  readonly aff: BpfMap;
  // Null only for an older object (bench/packets.ts's "before" run), which has no such maps.
  readonly ranges: BpfMap | null;
  readonly maglevRows: BpfMap | null;
  readonly maglev: BpfMap | null;
  /** The Maglev slots, mmaped as the dataplane writes them (src/dataplane/bpf/mmap.ts). */
  readonly maglevSlots: MappedArray | null;
  private written: Frontend[] = [];
  private tc: native.ObjectHandle | null = null;

  private constructor(readonly pinDir: string, private readonly handle: native.ObjectHandle) {
    const m = (name: string) => new BpfMap(name, native.objectMapFd(handle, name));
    this.fe = m('bpx_fe_v1');
    this.counters = m(COUNTERS_MAP);
    this.set = m('bpx_set_v1');
    this.be = m('bpx_be_v1');
    this.ct = m('bpx_ct_v1');
    this.nat = m('bpx_nat_v1');
    this.member = m('bpx_member_v1');
    this.aff = m('bpx_aff_v1');
    const opt = (name: string) => (native.objectPinnedMaps(handle).includes(name) ? m(name) : null);
    this.ranges = opt('bpx_range_v1');
    this.maglevRows = opt('bpx_maglev_row_v1');
    this.maglev = opt('bpx_maglev_v1');
    this.maglevSlots = this.maglev ? mapArrayWords(this.maglev.fd, this.maglev.capacity, this.maglev.valueSize, this.maglev.name) : null;
  }

  /** Loads tc.bpf.o into the same pin directory (sharing conntrack and counters); its programs by name via progFd. */
  loadTc(): void {
    if (this.tc) return;
    this.tc = native.objectLoad(join(OBJECT_DIR, 'tc.bpf.o'), this.pinDir, FLOW_MAP_SIZES).handle;
  }

  /** Writes sets and their backends (generation 1), replacing whatever the maps held. */
  setSets(sets: readonly TestSet[]): void {
    clearMap(this.set);
    clearMap(this.be);
    const bes = sets.flatMap((s) => s.backends);
    const failedBe = this.be.update(bes.length, (i, k, ko, v, vo) => {
      const b = bes[i]!;
      k.writeUInt32LE(b.id, ko);
      v.fill(0, vo, vo + BACKEND.size);
      writeAddr(v, vo + BACKEND.fields.addr.offset, b.address);
      v.writeUInt16BE(b.port, vo + BACKEND.fields.port.offset);
      v.writeUInt8(IPPROTO[b.protocol], vo + BACKEND.fields.proto.offset);
      v.writeUInt8(b.address.includes(':') ? FAMILY_V6 : FAMILY_V4, vo + BACKEND.fields.family.offset);
      v.writeUInt8(b.local ? BE_LOCAL : 0, vo + BACKEND.fields.flags.offset);
    });
    const slots = sets.flatMap((s) => [{ s, slot: 0 }, ...s.backends.map((_, i) => ({ s, slot: i + 1 }))]);
    const failedSet = this.set.update(slots.length, (i, k, ko, v, vo) => {
      const { s, slot } = slots[i]!;
      k.fill(0, ko, ko + SET_KEY.size);
      v.fill(0, vo, vo + SET_VAL.size);
      k.writeUInt32LE(s.id, ko + SET_KEY.fields.set.offset);
      k.writeUInt16LE(slot, ko + SET_KEY.fields.slot.offset);
      k.writeUInt8(slot === 0 ? 0 : 1, ko + SET_KEY.fields.gen.offset);
      if (slot === 0) {
        v.writeUInt16LE(s.backends.length, vo + SET_VAL.fields.count.offset);
        v.writeUInt8(1, vo + SET_VAL.fields.gen.offset);
        v.writeUInt8(s.empty === 'drop' ? EMPTY_DROP : EMPTY_REJECT, vo + SET_VAL.fields.empty.offset);
        v.writeUInt32LE(s.affinity ?? 0, vo + SET_VAL.fields.affinity.offset);
      } else {
        v.writeUInt32LE(s.backends[slot - 1]!.id, vo + SET_VAL.fields.backend.offset);
      }
    });
    if (failedBe.length || failedSet.length) throw new Error(`writing sets failed: ${JSON.stringify([...failedBe, ...failedSet])}`);
    clearMap(this.member);
    const members = sets.flatMap((s) => s.backends.map((b) => [b.id, s.id] as const));
    const failedMember = this.member.update(members.length, (i, k, ko, v, vo) => {
      k.writeUInt32LE(members[i]![0], ko + MEMBER_KEY.fields.backend.offset);
      k.writeUInt32LE(members[i]![1], ko + MEMBER_KEY.fields.set.offset);
      v.writeUInt32LE(1, vo);
    });
    if (failedMember.length) throw new Error(`writing memberships failed: ${JSON.stringify(failedMember)}`);
    if (!this.maglevRows) return;
    clearMap(this.maglevRows);
    sets.filter((s) => s.maglev !== false && s.backends.length > 0)
      .forEach((s, row) => this.setMaglev(s.id, row, s.maglevAll ? new Uint32Array(TEST_MAGLEV_M).fill(s.maglevAll) : maglevIds(s.backends)));
  }

  /** Writes a set's Maglev table into `row` and publishes the row. */
  setMaglev(set: number, row: number, ids: Uint32Array): void {
    const m = ids.length;
    if (!this.maglevRows || !this.maglevSlots) throw new Error('this xdp.bpf.o has no Maglev maps');
    this.maglevSlots.words.set(ids, row * m);
    const failed = [
      ...this.maglevRows.update(1, (_i, k, ko, v, vo) => {
        k.writeUInt32LE(set, ko);
        v.writeUInt32LE(row, vo + MAGLEV_ROW.fields.row.offset);
        v.writeUInt32LE(m, vo + MAGLEV_ROW.fields.m.offset);
      }),
    ];
    if (failed.length) throw new Error(`writing the Maglev table of set ${set} failed: ${JSON.stringify(failed)}`);
  }

  /** Replaces the source ranges: [service ID, CIDR of either family]. */
  setRanges(list: readonly (readonly [number, string])[]): void {
    if (!this.ranges) {
      if (list.length) throw new Error('this xdp.bpf.o has no source-range map');
      return;
    }
    clearMap(this.ranges);
    const failed = this.ranges.update(list.length, (i, k, ko, v, vo) => {
      const [svc, cidr] = list[i]!;
      const [addr, prefix] = cidr.split('/');
      k.fill(0, ko, ko + RANGE_KEY.size);
      k.writeUInt32LE(32 + Number(prefix), ko + RANGE_KEY.fields.prefixlen.offset);
      k.writeUInt32BE(svc, ko + RANGE_KEY.fields.svc.offset);
      writeAddr(k, ko + RANGE_KEY.fields.addr.offset, addr!);
      v.writeUInt32LE(1, vo);
    });
    if (failed.length) throw new Error(`writing source ranges failed: ${JSON.stringify(failed)}`);
  }

  /** Forgets every flow: conntrack, NAT ports and affinity. */
  clearFlows(): void {
    clearMap(this.ct);
    clearMap(this.nat);
    clearMap(this.aff);
  }

  /** Loads xdp.bpf.o, pinning its maps in pinDir (reusing maps pinned there already). */
  static load(pinDir: string): XdpHarness {
    ensureBpffs(pinDir, silentLogger());
    let loaded: native.LoadedObject;
    try {
      loaded = native.objectLoad(join(OBJECT_DIR, 'xdp.bpf.o'), pinDir, FLOW_MAP_SIZES);
    } catch (err) {
      cleanupPins(pinDir); // nobody gets a harness to close: leave no directory behind
      throw new Error(`${(err as Error).message}\n${native.takeLibbpfLog()}`, { cause: err });
    }
    return new XdpHarness(pinDir, loaded.handle);
  }

  progFd(name = XDP_PROGRAM): number {
    if (name.startsWith('bpx_tc_')) {
      if (!this.tc) throw new Error('loadTc() first');
      return native.objectProgFd(this.tc, name);
    }
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
    this.maglevSlots?.unmap();
    if (this.tc) native.objectClose(this.tc);
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
