// loadBalancerSourceRanges of the packet datapath (bpf/lib/ranges.h): one
// LPM trie entry per (service, range), declared once and written by the
// generic sync. It is written before the frontends (which carry the flag
// that makes the program look here) and pruned after them, so a frontend
// never names ranges that are not there yet: that would drop every client.
import type { PlannedService } from '../../planner/types.js';
import { parseCidr } from '../../util/ip.js';
import { RANGE_KEY, type StructLayout } from './layout.js';
import type { Table, TableSpec } from './table.js';

const U32: StructLayout<'value'> = { name: '__u32', size: 4, fields: { value: { offset: 0, size: 4 } } };
const LE = true;
const bswap32 = (x: number) => (((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24)) >>> 0;

export const SOURCE_RANGES: TableSpec = {
  name: 'source ranges', map: 'bpx_range_v1', key: RANGE_KEY, value: U32, sizeSetting: 'frontends',
  // The service ID sits in network order in the key (the trie compares bytes).
  ownerOf: (k, o) => bswap32(k[o + RANGE_KEY.fields.svc.offset / 4]!),
};

/** Encodes the service's source ranges of its own family (the planner keeps them as text). */
export function encodeRanges(t: Table, svc: PlannedService): void {
  for (const text of svc.sourceRanges) {
    const c = parseCidr(text);
    if (!c || c.family !== svc.family) continue;
    const i = t.push(svc.id);
    const o = i * RANGE_KEY.size;
    t.dkv.setUint32(o + RANGE_KEY.fields.prefixlen.offset, 32 + c.prefix, LE);
    t.dkv.setUint32(o + RANGE_KEY.fields.svc.offset, svc.id, false);
    for (let b = 0; b < c.bytes.length; b++) t.dkv.setUint8(o + RANGE_KEY.fields.addr.offset + b, c.bytes[b]!);
    t.dvv.setUint32(i * 4, 1, LE);
  }
}
