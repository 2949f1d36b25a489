// The flow hashes of bpf/lib/maglev.h (maglev_hash_v4, maglev_hash_v6), for tests and tools
// that must predict which Maglev slot a packet reads. The C is the truth; a
// packet test (test/bpf/xdp-maglev.test.ts) checks the two agree.

const SEED = 0x6d616776;

function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Words as the program reads them: network-order fields loaded as little-endian integers. */
const le16 = (port: number) => ((port & 0xff) << 8) | (port >>> 8);
const le32 = (v4: number) => (((v4 & 0xff) << 24) | ((v4 >>> 8 & 0xff) << 16) | ((v4 >>> 16 & 0xff) << 8) | (v4 >>> 24)) >>> 0;

/** `v4` as parsed (the address's 32 bits, first octet highest); ports in host order. */
export function maglevHashV4(v4: number, sport: number, dport: number, proto: number): number {
  let h = mix((SEED ^ le32(v4 >>> 0)) >>> 0);
  h = mix((h ^ (le16(sport) | (le16(dport) << 16))) >>> 0);
  return mix((h ^ proto) >>> 0);
}

/** maglev_hash_v6: the client's 16 address bytes (network order) as four words, then as maglevHashV4. */
export function maglevHashV6(addr: Uint8Array, sport: number, dport: number, proto: number): number {
  let h = SEED;
  for (let w = 0; w < 4; w++) {
    const o = w * 4;
    h = mix((h ^ ((addr[o]! | (addr[o + 1]! << 8) | (addr[o + 2]! << 16) | (addr[o + 3]! << 24)) >>> 0)) >>> 0);
  }
  h = mix((h ^ (le16(sport) | (le16(dport) << 16))) >>> 0);
  return mix((h ^ proto) >>> 0);
}
