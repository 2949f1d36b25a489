// The endpoints of one service port in one family, joined from every slice of
// the service: a slice port matches by name and protocol (this is how named
// targetPorts resolve: the EndpointSlice carries the number).
//
// Read into reused typed arrays, one row per endpoint, rather than into an
// object per endpoint: a full plan reads every endpoint of the cluster, and
// at 10,000 x 10 the per-endpoint objects (and their garbage collection) were
// a third of the plan's time. A row lives until the next fill(): the planner
// consumes one service port before reading the next.
import { metaPlace, READY, SERVING, strideOf, TERMINATING, type Place } from '../model/packed-endpoints.js';
import type { IPFamily, Protocol, SliceInfo } from '../model/types.js';

/** Row flags, beside the model's READY | SERVING | TERMINATING bits. */
export const LOCAL = 8;

export class PortEndpoints {
  /** Rows in use, after fill(). */
  count = 0;
  family: IPFamily = 'IPv4';
  /** Per row: the slice's packed endpoints and where this endpoint's address starts in them. */
  packed: (readonly number[])[] = [];
  at = new Int32Array(64);
  /** IPv4 bits as a signed int32 (read with `>>> 0`); 0 for IPv6, whose words are packed[at..at+4). */
  v4 = new Int32Array(64);
  port = new Int32Array(64);
  /** READY | SERVING | TERMINATING | LOCAL */
  flags = new Int32Array(64);
  /** nodeName, zone and hints: interned, shared by every endpoint with the same. */
  place: Place[] = [];
  /** Scratch for input not in address order: row order, a column, the rows' objects. */
  private order: number[] = [];
  private scratchRows = new Int32Array(64);
  private readonly scratchObjects: unknown[] = [];

  ready(i: number): boolean { return (this.flags[i]! & READY) !== 0; }
  serving(i: number): boolean { return (this.flags[i]! & SERVING) !== 0; }
  terminating(i: number): boolean { return (this.flags[i]! & TERMINATING) !== 0; }
  local(i: number): boolean { return (this.flags[i]! & LOCAL) !== 0; }

  /**
   * Reads the endpoints of the port. The same address and port can appear
   * in two slices (during a slice rebalance, say). It is used once: a local
   * copy wins (as in kube-proxy), then a ready one, then a serving one, then
   * the slice whose name sorts first. Rows end sorted by address, then port.
   */
  fill(slices: readonly SliceInfo[], family: IPFamily, portName: string, protocol: Protocol, nodeName: string): number {
    this.family = family;
    let n = 0;
    const ordered = slices.length > 1 ? [...slices].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)) : slices;
    const stride = strideOf(family);
    for (const slice of ordered) {
      if (slice.family !== family) continue;
      let port = -1;
      for (const p of slice.ports) {
        if (p.name === portName && p.protocol === protocol) {
          port = p.port;
          break;
        }
      }
      if (port < 0) continue;
      const packed = slice.packed;
      this.reserve(n + packed.length / stride);
      for (let at = 0; at < packed.length; at += stride) {
        const meta = packed[at + stride - 1]!;
        const place = metaPlace(meta);
        const local = place.nodeName !== null && place.nodeName === nodeName;
        this.packed[n] = packed;
        this.at[n] = at;
        this.v4[n] = family === 'IPv4' ? packed[at]! : 0;
        this.port[n] = port;
        this.flags[n] = (meta & (READY | SERVING | TERMINATING)) | (local ? LOCAL : 0);
        this.place[n] = place;
        n++;
      }
    }
    this.count = n;
    // A slice lists its endpoints in the order its controller wrote them; a
    // single slice already in address order (and without duplicates) needs no sort.
    let sorted = true;
    for (let i = 1; i < n && sorted; i++) sorted = this.compare(i - 1, i) < 0;
    if (!sorted) this.sortAndDedupe();
    return this.count;
  }

  /** Address, then port; IPv4 by number (read unsigned), IPv6 (`v4` 0) by packed words. */
  compare(i: number, j: number): number {
    const a = this.v4[i]!;
    const b = this.v4[j]!;
    if (a !== b) return (a >>> 0) - (b >>> 0);
    if (a === 0 && this.family === 'IPv6') {
      const pa = this.packed[i]!;
      const pb = this.packed[j]!;
      const ai = this.at[i]!;
      const bi = this.at[j]!;
      for (let w = 0; w < 4; w++) {
        const x = pa[ai + w]! >>> 0;
        const y = pb[bi + w]! >>> 0;
        if (x !== y) return x - y;
      }
    }
    return this.port[i]! - this.port[j]!;
  }

  /** Row i is the better copy of the same endpoint than row j. */
  private better(i: number, j: number): boolean {
    const a = this.flags[i]!;
    const b = this.flags[j]!;
    if ((a & LOCAL) !== (b & LOCAL)) return (a & LOCAL) !== 0;
    if ((a & READY) !== (b & READY)) return (a & READY) !== 0;
    if ((a & SERVING) !== (b & SERVING)) return (a & SERVING) !== 0;
    return false;
  }

  /**
   * The slow path: several slices, or one out of order. The sort is stable,
   * so copies of one address and port stay in slice order and the first
   * copy is kept unless a later one is better.
   */
  private sortAndDedupe(): void {
    const order = this.order;
    const count = this.count;
    order.length = count;
    for (let i = 0; i < count; i++) order[i] = i;
    // Slices are short (at most 100 endpoints, most a handful): insertion
    // sort, stable, without the comparator closure and its calls that
    // Array.prototype.sort costs (measured: 3.6 us of a 10-endpoint change).
    if (count <= 32) {
      for (let i = 1; i < count; i++) {
        const row = order[i]!;
        let j = i - 1;
        while (j >= 0 && this.compare(order[j]!, row) > 0) {
          order[j + 1] = order[j]!;
          j--;
        }
        order[j + 1] = row;
      }
    } else {
      order.sort((i, j) => this.compare(i, j));
    }
    let n = 0;
    for (let k = 0; k < count; k++) {
      const row = order[k]!;
      if (n > 0 && this.compare(order[n - 1]!, row) === 0) {
        if (this.better(row, order[n - 1]!)) order[n - 1] = row;
      } else {
        order[n++] = row;
      }
    }
    // Apply the permutation, one column at a time through reused scratch.
    const tmp = this.scratchRows.length >= n ? this.scratchRows : (this.scratchRows = new Int32Array(this.at.length));
    for (const col of [this.at, this.v4, this.port, this.flags]) {
      for (let i = 0; i < n; i++) tmp[i] = col[order[i]!]!;
      col.set(tmp.subarray(0, n));
    }
    const objs = this.scratchObjects;
    for (let i = 0; i < n; i++) objs[i] = this.packed[order[i]!]!;
    for (let i = 0; i < n; i++) this.packed[i] = objs[i] as readonly number[];
    for (let i = 0; i < n; i++) objs[i] = this.place[order[i]!]!;
    for (let i = 0; i < n; i++) this.place[i] = objs[i] as Place;
    objs.length = 0;
    this.count = n;
  }

  private reserve(rows: number): void {
    if (rows <= this.at.length) return;
    let cap = this.at.length;
    while (cap < rows) cap *= 2;
    const grow = (a: Int32Array) => {
      const b = new Int32Array(cap);
      b.set(a);
      return b;
    };
    this.at = grow(this.at);
    this.v4 = grow(this.v4);
    this.port = grow(this.port);
    this.flags = grow(this.flags);
  }

  /** Drops the references into slices (the model may let them go): after each plan. */
  clear(): void {
    this.count = 0;
    this.packed.length = 0;
    this.place.length = 0;
  }
}
