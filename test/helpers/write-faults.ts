// Failures injected midway through a bpf sync (issue 12, item 8), and what
// the programs read, to compare a recovered state with the plan programmed
// from scratch.
import type { BpfMap } from '../../src/dataplane/bpf/map.js';
import type { WriteFaults } from '../../src/dataplane/bpf/sync.js';
import type { PlannedService } from '../../src/planner/types.js';
import { FakeLb } from './fake-maps.js';

/** Throws at the Nth batch write or delete once armed (n = 0: never); counts them either way. */
export class FailAt implements WriteFaults {
  calls = 0;
  armed = false;
  /** Which batch failed: "upsert of 2 in set slots". */
  failed: string | null = null;
  constructor(public n: number) {}

  arm(n: number): void {
    this.n = n;
    this.calls = 0;
    this.failed = null;
    this.armed = true;
  }

  beforeWrite(table: string, op: 'upsert' | 'delete', entries: number): void {
    if (!this.armed) return;
    if (++this.calls !== this.n) return;
    this.failed = `${op} of ${entries} in ${table}`;
    throw new Error(`injected failure: ${this.failed}`);
  }
}

/**
 * What the programs read, whichever generation each set is in: every
 * frontend with its sets' live backends (the backend entries' bytes), header
 * fields and memberships, and how many entries each map holds (a leftover
 * slot of a dead generation, or a backend nothing names, counts).
 */
export function readerView(lb: FakeLb): unknown {
  const be = (id: number) => Buffer.from(lb.be.entries.get(Buffer.from(new Uint32Array([id]).buffer).toString('hex')) ?? []).toString('hex');
  const set = (id: number) => {
    const h = lb.header(id);
    if (!h) return null;
    return { count: h.count, empty: h.empty, affinity: h.affinity, svcId: h.svcId, backends: lb.live(id)!.map(be), members: lb.membersOf(id).map(be) };
  };
  const frontends = lb.frontends().sort((a, b) => (a.key < b.key ? -1 : 1)).map((f) => ({ key: f.key, svcId: f.svcId, local: set(f.localSet), ext: set(f.extSet) }));
  return { frontends, sizes: lb.maps.map((m) => [m.name, m.entries.size]) };
}

/** The reader view of `services` programmed from scratch into empty maps. */
export function viewFromScratch(services: PlannedService[]): unknown {
  const lb = new FakeLb();
  lb.apply(services);
  return readerView(lb);
}

/** The real pinned maps copied into in-memory ones, to read them the same way. */
export function copyOfMaps(maps: { fe: BpfMap; set: BpfMap; be: BpfMap; member: BpfMap }): FakeLb {
  const lb = new FakeLb();
  for (const [from, to] of [[maps.fe, lb.fe], [maps.set, lb.set], [maps.be, lb.be], [maps.member, lb.member]] as const) {
    const d = from.dump();
    for (let i = 0; i < d.count; i++) {
      const k = d.keys.subarray(i * from.keySize, (i + 1) * from.keySize);
      to.entries.set(Buffer.from(k).toString('hex'), new Uint8Array(d.values.subarray(i * d.valueStride, i * d.valueStride + from.valueSize)));
    }
  }
  return lb;
}
