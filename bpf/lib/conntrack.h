/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Conntrack of the packet programs: one LRU map, an entry per direction of a
 * translated flow (maps.h: struct bpx_ct_key/val). ORIG entries pin a flow to
 * its backend (and SNAT port); REPLY entries say how to restore what the
 * client used. Entries age by a per-protocol timeout checked on lookup: an
 * entry idle longer is treated as absent and overwritten by the next new
 * flow; the LRU evicts the least recently used when the map is full, so no
 * sweeper is needed.
 */
#ifndef BPX_CONNTRACK_H
#define BPX_CONNTRACK_H

#include "maps.h"

/* Idle timeouts: an established TCP flow as Cilium's default (6 h; kube-proxy
 * relies on nf_conntrack's 24 h for established TCP, which no LB map of
 * bounded size should keep); UDP as nf_conntrack_udp_timeout_stream (120 s).
 * SCTP as nf_conntrack_sctp_timeout_established (210 s since Linux 6.2, 5
 * days before): an idle association still sends a HEARTBEAT per path every
 * 30 s (RFC 9260's HB.interval default, Linux's too), so 210 s outlives six
 * lost ones, and a dead association frees its entry and SNAT port within
 * minutes, not days. The end of an association shortens it (sctp-ct.h): as
 * nf_conntrack_proto_sctp.c's defaults (Linux 6.2 and later), CLOSED (after
 * ABORT or SHUTDOWN COMPLETE) lives 10 s, SHUTDOWN_SENT/RECD/ACK_SENT 3 s,
 * each refreshed by the flow's packets as an established entry is. */
#define BPX_CT_TIMEOUT_TCP_NS (21600 * NSEC_PER_SEC)
#define BPX_CT_TIMEOUT_UDP_NS (120 * NSEC_PER_SEC)
#define BPX_CT_TIMEOUT_SCTP_NS (210 * NSEC_PER_SEC)
#define BPX_CT_TIMEOUT_SCTP_CLOSED_NS (10 * NSEC_PER_SEC)
#define BPX_CT_TIMEOUT_SCTP_SHUTDOWN_NS (3 * NSEC_PER_SEC)
/* last_ns is written at most this often per entry: a write per packet would
 * bounce the entry's cache line between CPUs. */
#define BPX_CT_REFRESH_NS NSEC_PER_SEC

enum bpx_ct_flag {
	BPX_CTF_LOCAL = 1 << 0,	/* the backend is on this node: DNAT only */
	BPX_CTF_SNAT = 1 << 1,	/* the flow leaves with the node's address and a NAT port */
	BPX_CTF_SCTP_SHUTDOWN = 1 << 2,	/* SCTP: a SHUTDOWN or SHUTDOWN ACK was seen (3 s) */
	BPX_CTF_SCTP_CLOSED = 1 << 3,	/* SCTP: an ABORT or SHUTDOWN COMPLETE was seen (10 s); an INIT starts afresh */
};

/* conntrack (written by the packet programs): flow direction -> translation */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);
	__type(key, struct bpx_ct_key);
	__type(value, struct bpx_ct_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpx_ct_v1 SEC(".maps");

static __always_inline __u64 ct_timeout_ns(__u8 proto)
{
	if (proto == IPPROTO_SCTP)
		return BPX_CT_TIMEOUT_SCTP_NS;
	return proto == IPPROTO_TCP ? BPX_CT_TIMEOUT_TCP_NS : BPX_CT_TIMEOUT_UDP_NS;
}

/* An entry's own timeout: its protocol's, shorter once an SCTP association ends
 * (CLOSED wins over SHUTDOWN, as nf_conntrack's SHUTDOWN chunk leaves CLOSED be). */
static __always_inline __u64 ct_val_timeout_ns(const struct bpx_ct_val *v, __u8 proto)
{
	if (v->flags & BPX_CTF_SCTP_CLOSED)
		return BPX_CT_TIMEOUT_SCTP_CLOSED_NS;
	if (v->flags & BPX_CTF_SCTP_SHUTDOWN)
		return BPX_CT_TIMEOUT_SCTP_SHUTDOWN_NS;
	return ct_timeout_ns(proto);
}

static __always_inline bool ct_is_live(const struct bpx_ct_val *v, __u8 proto, __u64 now)
{
	return now - v->last_ns <= ct_val_timeout_ns(v, proto);
}

/* The live entry for `key`, its last_ns refreshed; NULL when absent or idle too long. */
static __always_inline struct bpx_ct_val *ct_lookup(const struct bpx_ct_key *key, __u64 now)
{
	struct bpx_ct_val *v = bpf_map_lookup_elem(&bpx_ct_v1, key);

	if (!v || !ct_is_live(v, key->proto, now))
		return NULL;
	if (now - v->last_ns > BPX_CT_REFRESH_NS)
		v->last_ns = now;
	return v;
}

/*
 * A conntrack key, family-generic: the addresses are copied whole (an IPv4
 * one is zero past its first 4 bytes wherever it comes from: the parse
 * stage, the maps, addr_v4()), so no stack bytes land in a key.
 */
static __always_inline void ct_key_of(struct bpx_ct_key *k, __u8 family, const union bpx_addr *saddr, __be16 sport,
				      const union bpx_addr *daddr, __be16 dport, __u8 proto, __u8 dir)
{
	__builtin_memset(k, 0, sizeof(*k));
	__builtin_memcpy(&k->saddr, saddr, sizeof(k->saddr));
	__builtin_memcpy(&k->daddr, daddr, sizeof(k->daddr));
	k->sport = sport;
	k->dport = dport;
	k->proto = proto;
	k->family = family;
	k->dir = dir;
}

/* An IPv4 address as a union bpx_addr, zero past its 4 bytes. */
static __always_inline union bpx_addr addr_v4(__be32 a)
{
	union bpx_addr u;

	__builtin_memset(&u, 0, sizeof(u));
	u.v4 = a;
	return u;
}

static __always_inline int ct_put(const struct bpx_ct_key *key, const struct bpx_ct_val *val)
{
	return bpf_map_update_elem(&bpx_ct_v1, key, val, BPF_ANY);
}

#endif
