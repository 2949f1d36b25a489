/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The end of an SCTP association in conntrack (issue 7), as nf_conntrack
 * ends it for kube-proxy: an ABORT or a SHUTDOWN COMPLETE, in either
 * direction, leaves both of the flow's entries CLOSED (10 s); a SHUTDOWN or
 * SHUTDOWN ACK leaves them in shutdown (3 s) (conntrack.h: the timeouts).
 * The flow's packets still refresh them, so an ABORT that is lost, or
 * answered by the peer's own ABORT (RFC 9260 8.4: an out-of-the-blue
 * packet gets one), still finds its way for those seconds; entries are
 * marked, not deleted, for that reason. An INIT to an ended flow is a new
 * association and picks its backend afresh (sctp-ct-xdp.h forgets the flow).
 * nf_conntrack keeps the CLOSED entry, and its backend, for a new INIT (it
 * only declines to refresh it); choosing again loses nothing, since the old
 * association is gone, and a client that binds a fixed port reaches a
 * backend that is there now.
 *
 * What is read: the type of the first chunk only. RFC 9260 6.10 sends INIT,
 * INIT ACK and SHUTDOWN COMPLETE alone, and control chunks ahead of DATA,
 * so SHUTDOWN, SHUTDOWN ACK and nearly every ABORT come first (Linux sends
 * an ABORT in a packet of its own). What is missed: an ABORT bundled after
 * another chunk (a SACK, or DATA when the user aborts with data queued):
 * its flow ages out as before (210 s). Walking the chunk list, as
 * nf_conntrack does, would add a bounded loop of packet reads to an XDP
 * program already near the verifier's limit of 1M instructions.
 */
#ifndef BPX_SCTP_CT_H
#define BPX_SCTP_CT_H

#include "conntrack.h"
#include "parse.h"
#include "parse6.h"

/* Chunk types (RFC 9260 3.2): the kernel's enum sctp_cid is not UAPI. */
#define BPX_SCTP_CHUNK_INIT 1
#define BPX_SCTP_CHUNK_ABORT 6
#define BPX_SCTP_CHUNK_SHUTDOWN 7
#define BPX_SCTP_CHUNK_SHUTDOWN_ACK 8
#define BPX_SCTP_CHUNK_SHUTDOWN_COMPLETE 14

/* The first chunk's type of a parsed packet at XDP; 0 (DATA: no state change) for other protocols
 * and for an SCTP packet with no chunk. One offset for both families: IPv4's l4_off (no options)
 * is under the IPv6 mask too. */
static __always_inline __u8 sctp_xdp_chunk(struct xdp_md *ctx, const struct bpx_pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u8 *type = data + ipv6_l4_off(p->l4_off) + BPX_SCTP_HLEN;

	if (p->proto != IPPROTO_SCTP || p->l4_len <= BPX_SCTP_HLEN || (void *)(type + 1) > data_end)
		return 0;
	return *type;
}

/* The end state a chunk moves the flow to (enum bpx_ct_flag), 0 for none. */
static __always_inline __u8 sctp_chunk_end(__u8 chunk)
{
	if (chunk == BPX_SCTP_CHUNK_ABORT || chunk == BPX_SCTP_CHUNK_SHUTDOWN_COMPLETE)
		return BPX_CTF_SCTP_CLOSED;
	if (chunk == BPX_SCTP_CHUNK_SHUTDOWN || chunk == BPX_SCTP_CHUNK_SHUTDOWN_ACK)
		return BPX_CTF_SCTP_SHUTDOWN;
	return 0;
}

/* The flow's association ended or is ending: an INIT to it starts a new one. */
static __always_inline bool ct_sctp_has_ended(const struct bpx_ct_val *v)
{
	return v->flags & (BPX_CTF_SCTP_CLOSED | BPX_CTF_SCTP_SHUTDOWN);
}

/* Marks one entry with the end state `end`, from now. */
static __always_inline void ct_sctp_mark(struct bpx_ct_val *v, __u8 end, __u64 now)
{
	v->flags |= end;
	v->last_ns = now;
}

/* Marks the entry `v` and the flow's other entry (key `other`) with the end state `end`, from now. */
static __always_inline void ct_sctp_mark_end(struct bpx_ct_val *v, const struct bpx_ct_key *other, __u8 end, __u64 now)
{
	struct bpx_ct_val *o = bpf_map_lookup_elem(&bpx_ct_v1, other);

	ct_sctp_mark(v, end, now);
	if (o)
		ct_sctp_mark(o, end, now);
}

/* The client's packet ends the flow: its ORIG entry `v`, and the REPLY entry (backend -> client,
 * or -> the NAT port), whose key is built in `k`. */
static __always_inline void ct_sctp_end_orig(const struct bpx_pkt *p, struct bpx_ct_key *k, struct bpx_ct_val *v,
					     __u8 end, __u64 now)
{
	bool snat = v->flags & BPX_CTF_SNAT;

	ct_key_of(k, p->family, &v->addr, v->port, snat ? &v->nat_addr : &p->src, snat ? v->nat_port : p->sport,
		  p->proto, BPX_CT_REPLY);
	ct_sctp_mark_end(v, k, end, now);
}

/* The backend's reply ends the flow: its REPLY entry `v`, and the ORIG entry (client -> frontend),
 * whose key is built in `k`. The client is the reply's destination unless the flow was SNATed. */
static __always_inline void ct_sctp_end_reply(const struct bpx_pkt *p, struct bpx_ct_key *k, struct bpx_ct_val *v,
					      __u8 end, __u64 now)
{
	bool snat = v->flags & BPX_CTF_SNAT;

	ct_key_of(k, p->family, snat ? &v->nat_addr : &p->dst, snat ? v->nat_port : p->dport, &v->addr, v->port,
		  p->proto, BPX_CT_ORIG);
	ct_sctp_mark_end(v, k, end, now);
}

/*
 * The last_ns to give a flow's SNAT port holder so that it is free when the
 * flow's entries expire: holders age by the protocol's full timeout (nat.h),
 * so an ended flow's is dated back by the difference. nat_touch takes it as
 * its `now`; its unsigned `now - last_ns` wraps for a date in the past,
 * which reads as "stale" and writes it. `end`: the flow's BPX_CTF_SCTP_* bits.
 */
static __always_inline __u64 ct_end_stamp(__u8 end, __u8 proto, __u64 now)
{
	struct bpx_ct_val v = { .flags = end };

	return now - (ct_timeout_ns(proto) - ct_val_timeout_ns(&v, proto));
}

/* The same for an entry's own state: its flags' end bits, none for a live flow (then `now`). */
static __always_inline __u64 ct_nat_stamp(const struct bpx_ct_val *v, __u8 proto, __u64 now)
{
	return ct_end_stamp(v->flags, proto, now);
}

#endif
