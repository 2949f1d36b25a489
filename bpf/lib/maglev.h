/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Maglev for new flows of external frontends (Eisenbud et al., NSDI 2016).
 * The control plane builds each external backend set's lookup table from the
 * backends' stable keys (src/planner/maglev.ts), so every node holds the same
 * table, and the hash below covers only what every node sees alike: the
 * client's address and port, the destination port and the protocol, never
 * the address the packet was sent to. So a flow lands on the same backend
 * whichever node the router hands it to, and removing one of N backends
 * moves about 1/N of the flows.
 *
 * Layout (why: docs/dataplane.md): one flat array of backend IDs,
 * bpx_maglev_v1, holding the tables row after row, and a small hash,
 * bpx_maglev_row_v1, from a backend set to its row and table size. The array
 * is mmapable: the control plane writes a table straight into it, only the
 * slots that change, with no syscall per slot, and reads it back the same
 * way. A new row is filled before its row entry is published; a changed
 * table is rewritten in place, slot by slot (each 32-bit store is atomic, so
 * a reader sees the old backend or the new one). A slot naming a backend
 * that is gone makes the pick fall back to the set's random slot.
 */
#ifndef BPX_MAGLEV_H
#define BPX_MAGLEV_H

#include "lb.h"
#include "parse.h"

/* Slots of all tables together as compiled: 16 MiB, 256 rows of the default
 * M (16381). The proxy sets both maps' max_entries at load from
 * --bpf-lb-maglev-map-max x M (maglev-tables.ts: maglevMapSizes); a pinned
 * map keeps its size. A set beyond the rows gets random picks (logged). */
#define BPX_MAGLEV_SLOTS (256 * 16384)
#define BPX_MAGLEV_SEED 0x6d616776	/* "magv": any constant, the same on every node */

/* Maglev rows: external backend set -> its row in bpx_maglev_v1 and M (one entry per table) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct bpx_maglev_row);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpx_maglev_row_v1 SEC(".maps");

/* Maglev tables: entry k holds slots 2k and 2k+1 (row * m + i) -> backend id; mmaped by the control plane.
 * Two slots per entry because an array element takes round_up(value_size, 8)
 * bytes (measured: a __u32 array's element i sits at byte 8 * i of the
 * mmaped area), so __u32 values would waste half the memory and break the
 * flat layout the control plane writes; packed in pairs, the mmaped area is
 * exactly the slots, one __u32 after another (on a little-endian host). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BPX_MAGLEV_SLOTS / 2);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpx_maglev_v1 SEC(".maps");

/* murmur3's finalizer: every input bit moves every output bit. */
static __always_inline __u32 maglev_mix(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

/*
 * The flow's hash: client address, client port, destination port, protocol,
 * as the words sit in the packet (network order, read as little-endian
 * words: layout.ts refuses big-endian hosts, so every node reads them alike).
 * src/dataplane/bpf/maglev-hash.ts computes the same for tests.
 */
static __always_inline __u32 maglev_hash_v4(__be32 saddr, __be16 sport, __be16 dport, __u8 proto)
{
	__u32 h = BPX_MAGLEV_SEED;

	h = maglev_mix(h ^ saddr);
	h = maglev_mix(h ^ ((__u32)sport | ((__u32)dport << 16)));
	return maglev_mix(h ^ proto);
}

/* IPv6: the client's address as four words, then as maglev_hash_v4 (maglev-hash.ts: maglevHashV6). */
static __always_inline __u32 maglev_hash_v6(const __be32 *saddr, __be16 sport, __be16 dport, __u8 proto)
{
	__u32 h = BPX_MAGLEV_SEED;

	h = maglev_mix(h ^ saddr[0]);
	h = maglev_mix(h ^ saddr[1]);
	h = maglev_mix(h ^ saddr[2]);
	h = maglev_mix(h ^ saddr[3]);
	h = maglev_mix(h ^ ((__u32)sport | ((__u32)dport << 16)));
	return maglev_mix(h ^ proto);
}

static __always_inline __u32 maglev_hash(const struct bpx_pkt *p)
{
	if (p->family == BPX_FAMILY_V6)
		return maglev_hash_v6(p->src.v6, p->sport, p->dport, p->proto);
	return maglev_hash_v4(p->src.v4, p->sport, p->dport, p->proto);
}

/* The backend the set's Maglev table gives this flow; 0 when the set has no row. */
static __always_inline __u32 lb_pick_maglev(__u32 set, const struct bpx_pkt *p)
{
	struct bpx_maglev_row *r = bpf_map_lookup_elem(&bpx_maglev_row_v1, &set);
	__u32 slot, m;
	__u64 *pair;

	if (!r)
		return 0;
	m = r->m;
	if (m == 0)
		return 0;
	slot = r->row * m + maglev_hash(p) % m;
	pair = bpf_map_lookup_elem(&bpx_maglev_v1, &(__u32){ slot >> 1 });
	if (!pair)
		return 0;
	return ((__u32 *)pair)[slot & 1];
}

#endif
