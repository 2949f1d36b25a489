/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The ICMP error stage: ICMP and ICMPv6 errors about packets of a flow this
 * datapath translated, translated back so the host that gets them can match
 * them to its socket. Without it, Path MTU discovery breaks through a
 * NodePort or LoadBalancer (a "fragmentation needed" or "packet too big"
 * about a packet the node SNATed names the node's address and NAT port),
 * and a UDP client never learns that the backend's port is closed.
 *
 * The quote (icmp-quote.h) is a packet the node sent, so the flow is found
 * with the quote's addresses and ports swapped, the way a packet answering
 * it would arrive:
 *
 *  - from the wire, about a packet sent to a remote backend (the SNATed
 *    packet: node address and NAT port -> backend): the flow's REPLY entry.
 *    The quote becomes the packet the client sent (client -> frontend), the
 *    error goes to the client, from the frontend: pkt_icmp_err_to_client.
 *  - from the wire, about a reply sent to a client (frontend -> client):
 *    the flow's ORIG entry. The quote becomes the reply as the backend sent
 *    it (backend -> client, or -> the NAT port), the error goes to the
 *    backend, from the node's SNAT address when the flow is SNATed:
 *    pkt_icmp_err_to_backend; to the stack for a local backend.
 *  - from this node (TC egress), about a packet DNATed to a local backend
 *    (client -> backend): the backend's port unreachable, or the node's own
 *    "fragmentation needed" toward the pod. The flow's REPLY entry: the quote
 *    becomes client -> frontend, the error comes from the frontend:
 *    tc_icmp_err_rnat.
 *
 * The error's own source: the frontend toward the client, the SNAT address
 * toward a backend (and unchanged toward a local backend), whoever sent it.
 * That is what nf_nat does (nf_nat_icmp_reply_translation makes the outer
 * header "look like the reply to an incoming packet"), so a client sees what
 * it saw with kube-proxy; the client's stack matches an error by its quote
 * only, and the router's address would be one the client never talked to.
 * TTLs are left alone, as for the flow's other packets.
 *
 * An error looks a flow up without refreshing it: errors do not keep a flow
 * alive. Errors that quote no live flow go to the stack, counted as
 * pkt_icmp_err_no_flow (XDP) and uncounted at TC egress, where every packet
 * the node sends passes.
 */
#ifndef BPX_ICMP_ERROR_H
#define BPX_ICMP_ERROR_H

#include <linux/pkt_cls.h>
#include "icmp-xlate.h"

/* Where a translated error goes, for the caller's transmit stage. */
struct bpx_icmp_fwd {
	union bpx_addr dst;	/* the error's destination: the client or the backend */
	enum bpx_event event;
	bool local;		/* the backend is on this node: to the stack */
};

/* A live conntrack entry, its last_ns untouched (ct_lookup refreshes it). */
static __always_inline struct bpx_ct_val *ct_peek(const struct bpx_ct_key *k, __u64 now)
{
	struct bpx_ct_val *v = bpf_map_lookup_elem(&bpx_ct_v1, k);

	return v && ct_is_live(v, k->proto, now) ? v : NULL;
}

/* The conntrack entry of the flow whose packet `q` quotes, in direction `dir` of a packet answering it. */
static __always_inline struct bpx_ct_val *quote_flow(const struct bpx_pkt *p, const struct bpx_icmp_quote *q, __u8 dir,
						     __u64 now)
{
	struct bpx_ct_key k;

	ct_key_of(&k, p->family, &q->dst, q->dport, &q->src, q->sport, q->proto, dir);
	return ct_peek(&k, now);
}

/*
 * From the wire, the quote is the SNATed packet sent to a backend (REPLY
 * entry: frontend, client): restore client -> frontend, send to the client.
 */
static __always_inline void xlate_to_client(const struct bpx_ct_val *v, struct bpx_icmp_xlate *x, struct bpx_icmp_fwd *f)
{
	x->in_src = v->nat_addr;
	x->in_sport = v->nat_port;
	x->in_dst = v->addr;
	x->in_dport = v->port;
	x->out_src = v->addr;
	x->out_dst = v->nat_addr;
	f->dst = v->nat_addr;
	f->event = BPX_EVENT_PKT_ICMP_ERR_TO_CLIENT;
	f->local = false;
}

/*
 * From the wire, the quote is a reply sent to the client (ORIG entry:
 * backend, SNAT address and port): restore backend -> client (or -> the NAT
 * port), send to the backend.
 */
static __always_inline void xlate_to_backend(const struct bpx_pkt *p, const struct bpx_icmp_quote *q,
					     const struct bpx_ct_val *v, struct bpx_icmp_xlate *x, struct bpx_icmp_fwd *f)
{
	bool snat = v->flags & BPX_CTF_SNAT;

	x->in_src = v->addr;
	x->in_sport = v->port;
	x->in_dst = snat ? v->nat_addr : q->dst;
	x->in_dport = snat ? v->nat_port : q->dport;
	x->out_src = snat ? v->nat_addr : p->src;
	x->out_dst = v->addr;
	f->dst = v->addr;
	f->event = BPX_EVENT_PKT_ICMP_ERR_TO_BACKEND;
	f->local = v->flags & BPX_CTF_LOCAL;
}

/*
 * The XDP stage, for an ICMP or ICMPv6 packet the parse stage passed
 * (pkt_pass_icmp, p's L3 fields filled). BPX_CONTINUE when the error was
 * rewritten and is to be sent as *f says; a verdict otherwise.
 */
static __always_inline int icmp_error_from_wire(void *data, void *data_end, const struct bpx_pkt *p, __u64 now,
						struct bpx_icmp_fwd *f)
{
	struct bpx_icmp_quote q;
	struct bpx_icmp_xlate x;
	struct bpx_ct_val *v;
	int r;

	__builtin_memset(&q, 0, sizeof(q));	/* the addresses go into keys whole */
	r = icmp_quote(data, data_end, p, &q);
	if (r != BPX_CONTINUE)
		return r;
	v = quote_flow(p, &q, BPX_CT_REPLY, now);
	if (v && (v->flags & BPX_CTF_SNAT)) {
		xlate_to_client(v, &x, f);
	} else {
		v = quote_flow(p, &q, BPX_CT_ORIG, now);
		if (!v)
			return pass(BPX_EVENT_PKT_ICMP_ERR_NO_FLOW);
		xlate_to_backend(p, &q, v, &x, f);
	}
	return icmp_rewrite(data, data_end, p, &q, &x) ? BPX_CONTINUE : drop(BPX_DROP_ICMP_TRUNCATED);
}

/* What TC egress makes linear before reading an error: every header the
 * quote can have up to the quoted TCP checksum. */
#define BPX_ICMP_TC_PULL (BPX_ICMP_QUOTE_OFF_MASK + 1)

static __always_inline __u32 icmp_min_u32(__u32 a, __u32 b)
{
	return a < b ? a : b;
}

/*
 * The TC egress stage: an error this node sends (a local backend's, or the
 * node's own) about a packet XDP DNATed to a local backend. Returns
 * pass(tc_icmp_err_rnat) when it rewrote the error, BPX_CONTINUE when the
 * error is not about such a flow (or not an error, or malformed: never
 * dropped here, the node's own packets are not ours to judge).
 */
static __always_inline int icmp_error_from_local(struct __sk_buff *skb, const struct bpx_pkt *p)
{
	struct bpx_icmp_quote q;
	struct bpx_icmp_xlate x;
	struct bpx_ct_val *v;
	void *data, *data_end;

	if (bpf_skb_pull_data(skb, icmp_min_u32(skb->len, BPX_ICMP_TC_PULL)))
		return BPX_CONTINUE;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	__builtin_memset(&q, 0, sizeof(q));
	if (icmp_quote(data, data_end, p, &q) != BPX_CONTINUE)
		return BPX_CONTINUE;
	v = quote_flow(p, &q, BPX_CT_REPLY, bpf_ktime_get_ns());
	if (!v || !(v->flags & BPX_CTF_LOCAL))
		return BPX_CONTINUE;
	x.in_src = q.src;
	x.in_sport = q.sport;
	x.in_dst = v->addr;
	x.in_dport = v->port;
	x.out_src = v->addr;
	x.out_dst = p->dst;
	/* Egress skbs hold full ICMP sums (icmp_push_reply computes them): the
	 * direct writes and csum.h's updates are right here, as in XDP. */
	if (!icmp_rewrite(data, data_end, p, &q, &x))
		return BPX_CONTINUE;
	return pass(BPX_EVENT_TC_ICMP_ERR_RNAT);
}

#endif
