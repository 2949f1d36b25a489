/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The SCTP conntrack stage of xdp.bpf.c (sctp-ct.h says what it does and
 * why), as a program of its own that bpx_xdp tail-calls first for an SCTP
 * frame and that tail-calls bpx_xdp back: a tail-called program is
 * verified once, on its own, with its own stack. Inlined into bpx_xdp, even
 * a stage of map writes alone took its verified instructions from 770k to
 * over the limit of 1M (measured on 6.18: the chunk-type branches
 * multiplied the paths through the CRC32c and NAT stages after it), and as
 * a called function it pushed the program's stack (480 of 512 bytes) past
 * the limit, caller and callee counted together.
 *
 * Both directions: a client's packet is found by its ORIG entry, a
 * backend's reply to an SNAT port (the replies XDP sees) by its REPLY
 * entry. A local backend's reply is tc.bpf.c's (sctp-tc.h). The frame is
 * parsed again here (IPv4 without options, IPv6 with SCTP right after the
 * fixed header: an SCTP packet behind IPv6 extension headers is translated
 * but its chunks are not looked at).
 */
#ifndef BPX_SCTP_CT_XDP_H
#define BPX_SCTP_CT_XDP_H

#include "nat.h"
#include "sctp-ct.h"
#include "stats.h"

struct bpx_sctp_scratch {
	struct bpx_pkt pkt;	/* the packet, parsed again from the frame */
	struct bpx_ct_key ct;
	struct bpx_nat_key nat;
	__u32 done;		/* bpx_xdp_sctp ran for the frame bpx_xdp is about to see again */
};

/* scratch of bpx_xdp_sctp (one per CPU, as an XDP run is; not pinned: nothing outlives a frame) */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bpx_sctp_scratch);
} bpx_sctp_scratch SEC(".maps");

/* The SNAT port holder of `addr`:`port`, its key built in `k`; NULL when none. */
static __always_inline struct bpx_nat_val *sctp_nat_holder(struct bpx_nat_key *k, __u8 family, const union bpx_addr *addr,
							   __be16 port, __u8 proto)
{
	__builtin_memset(k, 0, sizeof(*k));
	__builtin_memcpy(&k->addr, addr, sizeof(k->addr));
	k->port = port;
	k->proto = proto;
	k->family = family;
	return bpf_map_lookup_elem(&bpx_nat_v1, k);
}

/* An INIT from the client of an ended flow: the flow forgotten (ORIG entry, SNAT port), so that
 * the conntrack stage finds none and picks the INIT's backend afresh. */
static __always_inline void sctp_restart(struct bpx_sctp_scratch *s, const struct bpx_pkt *p, const struct bpx_ct_val *v)
{
	if (v->flags & BPX_CTF_SNAT) {
		sctp_nat_holder(&s->nat, p->family, &v->nat_addr, v->nat_port, p->proto);
		bpf_map_delete_elem(&bpx_nat_v1, &s->nat);
	}
	bpf_map_delete_elem(&bpx_ct_v1, &s->ct);
	count_event(BPX_EVENT_PKT_SCTP_NEW_ASSOC);
}

/* Dates an ended flow's SNAT port holder back so that it is free when the flow's entries expire. */
static __always_inline void sctp_nat_end(struct bpx_sctp_scratch *s, __u8 family, const union bpx_addr *addr,
					 __be16 port, __u8 proto, __u8 end, __u64 now)
{
	struct bpx_nat_val *h = sctp_nat_holder(&s->nat, family, addr, port, proto);

	if (h)
		h->last_ns = ct_end_stamp(end, proto, now);
}

/* An SCTP packet's addresses and ports into `p`, parsed from the frame on their own: IPv4 without
 * options or fragmentation, IPv6 with SCTP right after the fixed header (the parse stage also steps
 * over extension headers: such a packet's chunks are not looked at). False for any other frame. */
static __always_inline bool sctp_parse_again(struct xdp_md *ctx, struct bpx_pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct bpx_l4_ports *ports;

	if ((void *)(eth + 1) > data_end)
		return false;
	__builtin_memset(p, 0, sizeof(*p));
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end || ip6->nexthdr != IPPROTO_SCTP)
			return false;
		__builtin_memcpy(p->src.v6, &ip6->saddr, sizeof(p->src.v6));
		__builtin_memcpy(p->dst.v6, &ip6->daddr, sizeof(p->dst.v6));
		p->family = BPX_FAMILY_V6;
		ports = (void *)(ip6 + 1);
	} else if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_SCTP || ipv4_has_options(ip) ||
		    ipv4_is_fragment(ip))
			return false;
		p->src.v4 = ip->saddr;
		p->dst.v4 = ip->daddr;
		p->family = BPX_FAMILY_V4;
		ports = (void *)(ip + 1);
	} else {
		return false;
	}
	if ((void *)(ports + 1) > data_end)
		return false;
	p->sport = ports->source;
	p->dport = ports->dest;
	p->l4_off = (void *)ports - data;
	p->l4_len = data_end - (void *)ports;	/* XDP: the frame ends with the packet (padding reads as DATA, type 0) */
	p->proto = IPPROTO_SCTP;
	return true;
}

/* The scratch map's one key, where a map wants a pointer: in .rodata, not on bpx_xdp's stack. */
static const __u32 bpx_sctp_scratch_slot = 0;

/* Slots of bpx_xdp_jmp (xdp.bpf.c); BPX_JMP_NONE is past its end, so a tail call to it does nothing. */
enum {
	BPX_JMP_SCTP = 0,
	BPX_JMP_MAIN = 1,
	BPX_JMP_NONE = 2,
};

/* Where bpx_xdp tail-calls first: bpx_xdp_sctp for an SCTP frame it has not seen yet, nowhere
 * else (and for the frame bpx_xdp_sctp hands back, whose mark it clears). */
static __always_inline __u32 sctp_jmp_slot(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct bpx_sctp_scratch *s;
	__u8 proto;

	if ((void *)(eth + 1) > data_end)
		return BPX_JMP_NONE;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end)
			return BPX_JMP_NONE;
		proto = ip->protocol;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			return BPX_JMP_NONE;
		proto = ip6->nexthdr;
	} else {
		return BPX_JMP_NONE;
	}
	if (proto != IPPROTO_SCTP)
		return BPX_JMP_NONE;
	s = bpf_map_lookup_elem(&bpx_sctp_scratch, &bpx_sctp_scratch_slot);
	if (!s)
		return BPX_JMP_NONE;
	if (s->done) {
		s->done = 0;
		return BPX_JMP_NONE;
	}
	return BPX_JMP_SCTP;
}

/* bpx_xdp_sctp's work on one frame, before bpx_xdp sees it. */
static __always_inline void sctp_conntrack(struct xdp_md *ctx, struct bpx_sctp_scratch *s)
{
	struct bpx_ct_val *v;
	struct bpx_pkt *p;
	__u8 chunk, end;
	__u64 now;

	if (!sctp_parse_again(ctx, &s->pkt))
		return;
	p = &s->pkt;
	chunk = sctp_xdp_chunk(ctx, p);
	end = sctp_chunk_end(chunk);
	if (!end && chunk != BPX_SCTP_CHUNK_INIT)
		return;
	now = bpf_ktime_get_ns();
	ct_key_of(&s->ct, p->family, &p->src, p->sport, &p->dst, p->dport, p->proto, BPX_CT_ORIG);
	v = ct_lookup(&s->ct, now);
	if (v) {	/* the client's */
		if (!end) {
			if (ct_sctp_has_ended(v))
				sctp_restart(s, p, v);
			return;
		}
		ct_sctp_end_orig(p, &s->ct, v, end, now);
		if (v->flags & BPX_CTF_SNAT)
			sctp_nat_end(s, p->family, &v->nat_addr, v->nat_port, p->proto, end, now);
		return;
	}
	if (!end)
		return;
	ct_key_of(&s->ct, p->family, &p->src, p->sport, &p->dst, p->dport, p->proto, BPX_CT_REPLY);
	v = ct_lookup(&s->ct, now);
	if (!v)
		return;
	/* the backend's */
	ct_sctp_end_reply(p, &s->ct, v, end, now);
	if (v->flags & BPX_CTF_SNAT)
		sctp_nat_end(s, p->family, &p->dst, p->dport, p->proto, end, now);
}

#endif
