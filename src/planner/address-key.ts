// The binary identity of a frontend or a backend: (protocol, family,
// address, port) as five 32-bit words, the key the planner's typed-array
// tables (FlatIndex) use in place of "PROTO/address/port" strings.
//   words 0-3: the address in network byte order, word 0 = bytes 0-3
//              (IPv4: word 0 is the address, words 1-3 are 0)
//   word 4:    protocol number << 24 | family (4 or 6) << 16 | port
// Writing a key allocates nothing; the caller owns the buffer.
import type { IPFamily, Protocol } from '../model/types.js';
import { PROTOCOL_NUMBERS } from '../model/types.js';
import { FlatIndex, grown } from '../util/flat-index.js';
import { familyOf, ipv4ToUint32, ipv6Words } from '../util/ip.js';

export const KEY_WORDS = 5;

export type FamilyNumber = 4 | 6;

export function familyNumber(f: IPFamily): FamilyNumber {
  return f === 'IPv4' ? 4 : 6;
}

/**
 * Writes the key of an address the model parsed: `v4` is its IPv4 number
 * (EndpointInfo.v4) when `family` is IPv4; an IPv6 address is read from its
 * canonical text.
 */
export function writeAddressKey(out: Uint32Array, off: number, protocol: Protocol, family: IPFamily, v4: number, address: string, port: number): void {
  if (family === 'IPv4') {
    out[off] = v4;
    out[off + 1] = 0;
    out[off + 2] = 0;
    out[off + 3] = 0;
  } else if (!ipv6Words(address, out, off)) {
    throw new Error(`not an IPv6 address: ${address}`);
  }
  out[off + 4] = (PROTOCOL_NUMBERS[protocol] << 24) | (familyNumber(family) << 16) | port;
}

/**
 * Writes the key of an endpoint's address as the model packs it
 * (packed-endpoints.ts): packed[at] is the IPv4 number, or packed[at..at+4)
 * the IPv6 words.
 */
export function writePackedKey(out: Uint32Array, off: number, protocol: Protocol, family: IPFamily, packed: readonly number[], at: number, port: number): void {
  const words = family === 'IPv4' ? 1 : 4;
  for (let w = 0; w < 4; w++) out[off + w] = w < words ? packed[at + w]! : 0;
  out[off + 4] = (PROTOCOL_NUMBERS[protocol] << 24) | (familyNumber(family) << 16) | port;
}

/**
 * Writes the key of an address given as bytes, the way a dataplane's map
 * dump holds it: `addr[addrOffset..]` is 4 bytes (IPv4) or 16 (IPv6) in
 * network order. `protocol` is the IANA number.
 */
export function writeBytesKey(out: Uint32Array, off: number, protocol: number, family: FamilyNumber, addr: Uint8Array, addrOffset: number, port: number): void {
  const words = family === 4 ? 1 : 4;
  for (let w = 0; w < 4; w++) {
    const b = addrOffset + 4 * w;
    out[off + w] = w < words ? ((addr[b]! << 24) | (addr[b + 1]! << 16) | (addr[b + 2]! << 8) | addr[b + 3]!) : 0;
  }
  out[off + 4] = (protocol << 24) | (family << 16) | port;
}

/**
 * (protocol, family, address, port) -> ID, in typed arrays: the IDs a
 * dataplane found in its pinned maps (IdHints). Filled straight from a map
 * dump with add(); read by the planner with its binary keys.
 */
export class AddressIds {
  private readonly index = new FlatIndex(KEY_WORDS);
  private ids = new Uint32Array(this.index.capacity);
  private readonly key = new Uint32Array(KEY_WORDS);

  /** @param sealed refuse add(): for the shared EMPTY_ID_HINTS. */
  constructor(private readonly sealed = false) {
    this.index.onGrow = (capacity) => { this.ids = grown(this.ids, capacity); };
  }

  /**
   * Records that the frontend or backend (IANA `protocol`, `family`, address
   * bytes at addr[addrOffset..], `port`) had `id`. A later add of the same
   * key replaces it.
   */
  add(protocol: number, family: FamilyNumber, addr: Uint8Array, port: number, id: number, addrOffset = 0): void {
    if (this.sealed) throw new Error('EMPTY_ID_HINTS is shared: build an IdHints of your own');
    writeBytesKey(this.key, 0, protocol, family, addr, addrOffset, port);
    this.ids[this.index.insert(this.key, 0)] = id;
  }

  /** The ID of the key at src[off..off+KEY_WORDS), 0 when there is none (IDs start at 1). */
  find(src: Uint32Array, off: number): number {
    const slot = this.index.find(src, off);
    return slot < 0 ? 0 : this.ids[slot]!;
  }

  /** The ID of a frontend or backend given as text, 0 when there is none: for tests and logs, not per endpoint. */
  idOf(protocol: Protocol, address: string, port: number): number {
    const family = familyOf(address);
    if (!family) return 0;
    writeAddressKey(this.key, 0, protocol, family, ipv4ToUint32(address) | 0, address, port);
    return this.find(this.key, 0);
  }

  /** The largest ID at most `limit`, 0 when there is none: new IDs start above it. */
  highestAtMost(limit: number): number {
    let best = 0;
    for (let s = 0; s < this.index.end; s++) {
      const id = this.ids[s]!;
      if (this.index.used[s] && id > best && id <= limit) best = id;
    }
    return best;
  }

  get size(): number {
    return this.index.size;
  }
}
