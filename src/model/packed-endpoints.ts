// An EndpointSlice's endpoints packed into one array of small integers, so
// that a slice of ten endpoints costs one array of twenty numbers rather
// than ten objects and their strings: at 30,000 slices of 10 endpoints the
// objects, address strings and per-endpoint hint arrays were 46 MB of heap
// (about 1,900 bytes a slice, bench/heap-breakdown.ts).
//
// Per endpoint, `stride` numbers (2 for IPv4, 5 for IPv6):
//   IPv4: [address, meta]
//   IPv6: [word0, word1, word2, word3, meta]
// An address is its 32 bits (IPv6: four big-endian words, word 0 = bytes
// 0-3) as signed int32s (`| 0`), so that V8 keeps them small integers (Smis)
// in a packed array: no heap number, no string per endpoint.
// meta = conditions (READY | SERVING | TERMINATING) | place ID << 3
// A place is what endpoints share with many others (nodeName, zone and
// topology hints), interned once per distinct value: a cluster has few nodes
// and zones, and the table only grows by the combinations it has seen.
import type { IPFamily } from '../util/ip.js';
import { ipFromBytes } from '../util/ip.js';
import type { EndpointInfo } from './types.js';

export const READY = 1;
export const SERVING = 2;
export const TERMINATING = 4;
const PLACE_SHIFT = 3;

/** Numbers per endpoint. */
export function strideOf(family: IPFamily): number {
  return family === 'IPv4' ? 2 : 5;
}

/** What endpoints share: interned, so compare by identity. */
export interface Place {
  readonly nodeName: string | null;
  readonly zone: string | null;
  /** Sorted; empty for nearly every endpoint. */
  readonly zoneHints: readonly string[];
  readonly nodeHints: readonly string[];
}

const NO_HINTS: readonly string[] = Object.freeze([]);
const places: Place[] = [Object.freeze({ nodeName: null, zone: null, zoneHints: NO_HINTS, nodeHints: NO_HINTS })];
/** Places with hints, by their text. */
const placeIds = new Map<string, number>();

/** Places without hints (nearly all), by node name, then zone (a Map takes null as a key of its own). */
const plainPlaces = new Map<string | null, Map<string | null, number>>();

/** The ID of this place, interning it on first sight. Runs per endpoint read: the common case builds no string. */
export function placeId(nodeName: string | null, zone: string | null, zoneHints: readonly string[], nodeHints: readonly string[]): number {
  if (zoneHints.length === 0 && nodeHints.length === 0) {
    if (nodeName === null && zone === null) return 0;
    let byZone = plainPlaces.get(nodeName);
    if (!byZone) plainPlaces.set(nodeName, (byZone = new Map()));
    let id = byZone.get(zone);
    if (id === undefined) byZone.set(zone, (id = addPlace(nodeName, zone, NO_HINTS, NO_HINTS)));
    return id;
  }
  // JSON: unambiguous whatever the (unvalidated) zone holds.
  const key = JSON.stringify([nodeName, zone, zoneHints, nodeHints]);
  let id = placeIds.get(key);
  if (id === undefined) placeIds.set(key, (id = addPlace(nodeName, zone, zoneHints, nodeHints)));
  return id;
}

function addPlace(nodeName: string | null, zone: string | null, zoneHints: readonly string[], nodeHints: readonly string[]): number {
  places.push(Object.freeze({ nodeName, zone, zoneHints: zoneHints.length ? Object.freeze([...zoneHints]) : NO_HINTS, nodeHints: nodeHints.length ? Object.freeze([...nodeHints]) : NO_HINTS }));
  return places.length - 1;
}

export function placeAt(id: number): Place {
  return places[id]!;
}

/** The meta number of an endpoint. */
export function endpointMeta(ready: boolean, serving: boolean, terminating: boolean, place: number): number {
  return (ready ? READY : 0) | (serving ? SERVING : 0) | (terminating ? TERMINATING : 0) | (place << PLACE_SHIFT);
}

export function metaPlace(meta: number): Place {
  return places[meta >>> PLACE_SHIFT]!;
}

/**
 * Builds packed arrays: endpoints are appended to a scratch array that is
 * copied out at the exact length (an array grown by push keeps up to half
 * again its length as spare capacity, per slice).
 */
export class EndpointPacker {
  private readonly scratch: number[] = [];
  private n = 0;

  constructor(readonly family: IPFamily) {}

  /** `words`: the address, 1 number for IPv4, 4 for IPv6 (signed int32s). */
  add(w0: number, w1: number, w2: number, w3: number, meta: number): void {
    const s = this.scratch;
    s[this.n++] = w0 | 0;
    if (this.family === 'IPv6') {
      s[this.n++] = w1 | 0;
      s[this.n++] = w2 | 0;
      s[this.n++] = w3 | 0;
    }
    s[this.n++] = meta;
  }

  finish(): readonly number[] {
    const out = this.scratch.slice(0, this.n);
    this.scratch.length = 0;
    this.n = 0;
    return out;
  }
}

/** Canonical text of the address at packed[at..]: for tests, logs and dumps, not per endpoint in a plan. */
export function packedAddress(packed: readonly number[], at: number, family: IPFamily): string {
  const b = new Uint8Array(family === 'IPv4' ? 4 : 16);
  for (let w = 0; w < b.length / 4; w++) {
    const v = packed[at + w]!;
    b[4 * w] = v >>> 24;
    b[4 * w + 1] = (v >>> 16) & 0xff;
    b[4 * w + 2] = (v >>> 8) & 0xff;
    b[4 * w + 3] = v & 0xff;
  }
  return ipFromBytes(b, family);
}

/** The endpoints unpacked into objects: for tests and debugging; planning reads the packed form. */
export function unpackEndpoints(packed: readonly number[], family: IPFamily): EndpointInfo[] {
  const stride = strideOf(family);
  const out: EndpointInfo[] = [];
  for (let at = 0; at < packed.length; at += stride) {
    const meta = packed[at + stride - 1]!;
    const p = metaPlace(meta);
    out.push({
      address: packedAddress(packed, at, family),
      v4: family === 'IPv4' ? packed[at]! : 0,
      ready: (meta & READY) !== 0,
      serving: (meta & SERVING) !== 0,
      terminating: (meta & TERMINATING) !== 0,
      nodeName: p.nodeName,
      zone: p.zone,
      zoneHints: p.zoneHints,
      nodeHints: p.nodeHints,
    });
  }
  return out;
}
