// The Maglev tables of the packet datapath (bpf/lib/maglev.h): per external
// backend set, M backend IDs in one flat mmapable array, and a declared
// table of rows (set -> row, M) that the generic sync writes like any other.
//
// Why this layout (docs/dataplane.md): a table is M = 16381 slots by
// default. As one map entry per slot, 30 services would already be half a
// million entries to diff and dump, and a mirror of them in JavaScript would
// cost what the kernel's copy costs. The array is mmaped instead: the
// kernel's pages are the mirror, a changed table is compared and written
// slot by slot with plain stores (only the slots that differ), and reading
// it back after a restart costs nothing.
//
// Ordering, so a reader never follows a row into a table that is not there:
// - a set new to Maglev gets a free row whose slots are written BEFORE the
//   sync publishes its row entry (the rows table is written after backends
//   and sets, before frontends: lb-tables.ts's order);
// - a set whose table changed is rewritten in place AFTER the sync wrote the
//   new backends; in between a slot may name a backend already removed, and
//   the program then falls back to a random backend of the set;
// - a row is reused only in a sync after the one that deleted its entry.
import { maglevTable } from '../../planner/maglev.js';
import type { PlannedService } from '../../planner/types.js';
import { hostPort } from '../../util/ip.js';
import { MAGLEV_ROW, type StructLayout } from './layout.js';
import { BACKENDS, FRONTENDS, HEADERS, MEMBERS, serviceOfSet, SLOTS } from './lb-tables.js';
import type { MappedArray } from './mmap.js';
import { SOURCE_RANGES } from './range-tables.js';
import type { Table, TableSpec } from './table.js';

const U32: StructLayout<'value'> = { name: '__u32', size: 4, fields: { value: { offset: 0, size: 4 } } };
const LE = true;

/**
 * The array's and the rows map's max_entries for `tables` tables of M slots
 * (--bpf-lb-maglev-map-max, --bpf-lb-maglev-table-size), set at load. Two
 * slots per array entry (maglev.h). The rows map holds one entry per table,
 * so it can never fill before the array does.
 */
export function maglevMapSizes(tables: number, m: number): Record<string, number> {
  return { bpx_maglev_v1: Math.ceil((tables * m) / 2), bpx_maglev_row_v1: tables };
}

/** Bytes of the array behind `entries` array entries of 8 bytes. */
export const maglevArrayBytes = (entries: number): number => entries * 8;

export const MAGLEV_ROWS: TableSpec = {
  name: 'maglev rows', map: 'bpx_maglev_row_v1', key: U32, value: MAGLEV_ROW,
  // Sized with the array (maglevMapSizes): rows run out in the array first,
  // so this setting is never the one to raise.
  sizeSetting: 'backendSets',
  ownerOf: (k, o) => serviceOfSet(k[o]!),
};

/**
 * The load-balancing tables with those only the packet programs read
 * (Maglev rows, source ranges), in write order (see lb-tables.ts): both
 * are in place before the frontends that lead to them.
 */
export const PACKET_LB_TABLES: readonly TableSpec[] = [BACKENDS, MEMBERS, SLOTS, HEADERS, MAGLEV_ROWS, SOURCE_RANGES, FRONTENDS];

/** A table to write into a row after the sync, when its owner went through. */
interface Pending { owner: number; row: number; m: number; ids: Uint32Array }

export class MaglevWriter {
  /** Rows allocated in this sync (not yet in the mirror), as [start, end) slot ranges. */
  private fresh: [number, number][] = [];
  private pending: Pending[] = [];
  /** Sets that found no free row in this sync. */
  readonly full: number[] = [];
  /** Slots written since this writer started (for tests and logs). */
  slotsWritten = 0;
  private readonly key = new Uint32Array(1);
  private noRoomFor = 0;

  constructor(private readonly rows: Table, private readonly slots: MappedArray) {}

  /** Starts a sync. */
  begin(): void {
    this.fresh = [];
    this.pending = [];
    this.full.length = 0;
    this.noRoomFor = 0;
  }

  /**
   * Encodes the row entry of `svc`'s external set `set` into the rows batch.
   * A set new to Maglev gets its table written now, into a row no entry
   * names yet. Returns false when no row is free (the set gets random picks).
   */
  encode(svc: PlannedService, set: number): boolean {
    const mg = svc.maglev;
    if (!mg || mg.backends.length === 0) return true;
    const { m } = mg;
    this.key[0] = set;
    const s = this.rows.find(this.key);
    const kept = s >= 0 && this.rows.valueWord(s, 1) === m;
    const row = kept ? this.rows.valueWord(s, 0) : this.freeRow(m);
    if (row < 0) {
      this.full.push(set);
      return false;
    }
    const keys = mg.backends.map((b) => hostPort(b.address, b.port));
    const idx = maglevTable(keys, m);
    const ids = new Uint32Array(m);
    for (let i = 0; i < m; i++) ids[i] = mg.backends[idx[i]!]!.id;
    if (kept) {
      this.pending.push({ owner: svc.id, row, m, ids });
    } else {
      this.fresh.push([row * m, (row + 1) * m]);
      this.write(row, m, ids);
    }
    const i = this.rows.push(svc.id);
    this.rows.dkv.setUint32(i * 4, set, LE);
    this.rows.dvv.setUint32(i * MAGLEV_ROW.size + MAGLEV_ROW.fields.row.offset, row, LE);
    this.rows.dvv.setUint32(i * MAGLEV_ROW.size + MAGLEV_ROW.fields.m.offset, m, LE);
    return true;
  }

  /** After the sync: rewrite, in place, the changed tables of the owners that went through. */
  apply(failed: ReadonlySet<number>): void {
    for (const p of this.pending) if (!failed.has(p.owner)) this.write(p.row, p.m, p.ids);
    this.pending = [];
    this.fresh = [];
  }

  /** Writes only the slots that differ. */
  private write(row: number, m: number, ids: Uint32Array): void {
    const w = this.slots.words;
    const base = row * m;
    for (let i = 0; i < m; i++) {
      if (w[base + i] !== ids[i]) {
        w[base + i] = ids[i]!;
        this.slotsWritten++;
      }
    }
  }

  /** The lowest row of size m that overlaps no row the mirror holds and none allocated in this sync. */
  private freeRow(m: number): number {
    // Rows only free up between syncs: once none fits, none will in this sync.
    if (this.noRoomFor === m) return -1;
    const used: [number, number][] = [...this.fresh];
    const { index } = this.rows;
    for (let s = 0; s < index.end; s++) {
      if (!index.used[s]) continue;
      const r = this.rows.valueWord(s, 0);
      const rm = this.rows.valueWord(s, 1);
      used.push([r * rm, (r + 1) * rm]);
    }
    const rowsFit = Math.floor(this.slots.words.length / m);
    for (let r = 0; r < rowsFit; r++) {
      const a = r * m;
      const b = a + m;
      if (!used.some(([x, y]) => a < y && x < b)) return r;
    }
    this.noRoomFor = m;
    return -1;
  }
}
