// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The XDP program for node devices: NodePort, LoadBalancer and ExternalIP
 * traffic from outside the node. Stages, each returning a verdict or
 * BPX_CONTINUE:
 *
 *   parse (parse.h) -> reply (reverse NAT of replies to SNATed flows)
 *   -> frontend lookup -> external frontend? -> source ranges -> conntrack (known flow)
 *   -> backend pick (new flow: Maglev, maglev.h) -> NAT (DNAT; SNAT for a remote backend)
 *   -> transmit (a local backend: straight into its pod's veth where the
 *      control plane found one that takes it, redirect-local.h, else XDP_PASS
 *      to the stack; a remote one: bpf_fib_lookup and XDP_TX / redirect)
 *   -> one counted exit. A packet to no frontend addressed to a local backend
 *      (another node's NodePort flow) takes the same redirect.
 *
 * An SCTP frame first makes a round trip through bpx_xdp_sctp (a tail call
 * there and back, sctp-ct-xdp.h), which ends or restarts its flow's entries
 * on the chunks that end or start an association.
 *
 * Both families, TCP, UDP and SCTP: the stages are family-generic (addresses
 * as union bpx_addr, IPv4 zero past its 4 bytes), and only the leaves differ
 * per family: the header rewrite (nat.h, nat6.h; SCTP's, with its CRC32c,
 * sctp-nat.h), the route lookup (fib.h, fib6.h), the refusal (refuse.h,
 * refuse6.h), the Maglev hash (maglev.h).
 *
 * It shares the frontend, set and backend maps with sock.bpf.o (pinned by
 * name) and bpx_ct_v1 with tc.bpf.o, whose egress program restores the
 * source of local backends' replies.
 */
#include "lib/lb.h"
#include "lib/maglev.h"
#include "lib/ranges.h"
#include "lib/refuse6.h"
#include "lib/refuse-limit.h"
#include "lib/parse.h"
#include "lib/conntrack.h"
#include "lib/nat.h"
#include "lib/nat6.h"
#include "lib/sctp-nat.h"
#include "lib/sctp-ct-xdp.h"
#include "lib/fib.h"
#include "lib/fib6.h"
#include "lib/redirect-local.h"
#include "lib/icmp-error.h"

/* What the later stages know about a flow. */
struct bpx_flow {
	struct bpx_tuple out;	/* the packet as it leaves */
	__u32 backend;
	__u8 flags;		/* BPX_CTF_* */
	bool is_new;
};

/* The IP packet's length, header (and IPv6 extension headers) included. */
static __always_inline __u16 pkt_ip_len(const struct bpx_pkt *p)
{
	return p->l4_off - sizeof(struct ethhdr) + p->l4_len;
}

/* A backend's address as conntrack and NAT keep it: IPv4 zero past its 4 bytes, whatever the map holds there. */
static __always_inline union bpx_addr backend_addr(const struct bpx_backend *be)
{
	return be->family == BPX_FAMILY_V6 ? be->addr : addr_v4(be->addr.v4);
}

/* The route toward `dst` for the packet's family, as if it arrived where it did. */
static __always_inline long flow_fib_lookup(struct xdp_md *ctx, const struct bpx_pkt *p, struct bpf_fib_lookup *fib,
					    const union bpx_addr *dst, bool want_src)
{
	if (p->family == BPX_FAMILY_V6)
		return fib_lookup_v6(ctx, fib, ctx->ingress_ifindex, dst, p->proto, pkt_ip_len(p), want_src);
	return fib_lookup_v4(ctx, fib, ctx->ingress_ifindex, dst->v4, p->proto, pkt_ip_len(p), want_src);
}

/* The source address the route lookup chose (BPF_FIB_LOOKUP_SRC): the node address SNAT uses. */
static __always_inline union bpx_addr fib_src(const struct bpf_fib_lookup *fib, __u8 family)
{
	union bpx_addr a;

	if (family != BPX_FAMILY_V6)
		return addr_v4(fib->ipv4_src);
	__builtin_memcpy(a.v6, fib->ipv6_src, sizeof(a.v6));
	return a;
}

/*
 * Sends the rewritten frame toward fib->ifindex: XDP_TX when that is the
 * device it came in on, a redirect when another. With the neighbour unknown,
 * passes it with the egress device in the metadata for TC (fib.h).
 */
static __always_inline int stage_transmit(struct xdp_md *ctx, struct bpf_fib_lookup *fib, long rc,
					  enum bpx_event e)
{
	void *data, *data_end;
	struct ethhdr *eth;

	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		struct bpx_meta *meta;

		if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(*meta)))
			return drop(BPX_DROP_FIB_FAILED);
		meta = (void *)(long)ctx->data_meta;
		if ((void *)(meta + 1) > (void *)(long)ctx->data)
			return drop(BPX_DROP_FIB_FAILED);
		meta->magic = BPX_META_MAGIC;
		meta->ifindex = fib->ifindex;
		return pass(BPX_EVENT_PKT_NEIGH_VIA_TC);
	}
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return drop(BPX_DROP_FIB_FAILED);
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return drop(BPX_DROP_TRUNCATED_L2);
	__builtin_memcpy(eth->h_dest, fib->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib->smac, ETH_ALEN);
	if (fib->ifindex == ctx->ingress_ifindex)
		return tx(e);
	bpf_redirect(fib->ifindex, 0);
	return redirected(e);
}

static __always_inline int rewrite(struct xdp_md *ctx, const struct bpx_pkt *p, const struct bpx_tuple *t)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct bpx_tuple4 t4;
	bool ok;

	if (p->proto == IPPROTO_SCTP) {
		ok = sctp_nat_rewrite(data, data_end, p, t);
	} else if (p->family == BPX_FAMILY_V6) {
		ok = nat_rewrite_v6(data, data_end, p->l4_off, p->proto, t);
	} else {
		t4.saddr = t->saddr.v4;
		t4.daddr = t->daddr.v4;
		t4.sport = t->sport;
		t4.dport = t->dport;
		ok = nat_rewrite_v4(data, data_end, p->proto, &t4);
	}
	return ok ? BPX_CONTINUE : drop(BPX_DROP_TRUNCATED_L4);
}

/*
 * The reply stage: a packet to one of this node's SNAT ports from a backend
 * is the reply of a flow this program SNATed. Restore what the client used
 * (source: the frontend; destination: the client) and send it back.
 */
static __always_inline int stage_reply(struct xdp_md *ctx, const struct bpx_pkt *p, __u64 now)
{
	struct bpf_fib_lookup fib;
	struct bpx_tuple t;
	struct bpx_ct_key k;
	struct bpx_ct_val *v;
	long rc;
	int r;

	ct_key_of(&k, p->family, &p->src, p->sport, &p->dst, p->dport, p->proto, BPX_CT_REPLY);
	v = ct_lookup(&k, now);
	if (!v || !(v->flags & BPX_CTF_SNAT))
		return BPX_CONTINUE;
	t.saddr = v->addr;
	t.sport = v->port;
	t.daddr = v->nat_addr;
	t.dport = v->nat_port;
	rc = flow_fib_lookup(ctx, p, &fib, &t.daddr, false);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return drop(BPX_DROP_FIB_FAILED);
	r = rewrite(ctx, p, &t);
	if (r != BPX_CONTINUE)
		return r;
	return stage_transmit(ctx, &fib, rc, BPX_EVENT_PKT_REPLY_RNAT);
}

/* The frontend stage: is the packet addressed to a service? */
static __always_inline int stage_frontend(const struct bpx_pkt *p, struct bpx_fe_val **out)
{
	struct bpx_fe_key key = {
		.addr = p->dst,		/* zeroed past an IPv4 address by the caller */
		.port = p->dport,
		.proto = p->proto,
		.family = p->family,
	};

	*out = lb_lookup_frontend(&key);
	if (!*out)
		return pass(BPX_EVENT_PKT_PASS_NO_FRONTEND);
	/* A ClusterIP too: on a node device it was routed here from elsewhere
	 * (lb.h: fe_is_served_at_xdp). */
	if (!fe_is_served_at_xdp(*out))
		return pass(BPX_EVENT_PKT_FRONTEND_UNTRANSLATED);
	return BPX_CONTINUE;
}

/* The source-range stage: a frontend with loadBalancerSourceRanges admits
 * listed sources only, on every packet (a range removed stops known flows too). */
static __always_inline int stage_source_ranges(const struct bpx_fe_val *fe, const struct bpx_pkt *p)
{
	if (!fe_checks_source_ranges(fe) || source_in_ranges(fe, p))
		return BPX_CONTINUE;
	return drop(BPX_DROP_SOURCE_RANGE);
}

/* A known flow's backend is still one of the set's: the control plane
 * writes a membership entry per backend of every set an external frontend
 * uses (lb-tables.ts). */
static __always_inline bool ct_backend_is_live(const struct bpx_ct_val *v, const struct bpx_fe_val *fe)
{
	return lb_is_member(v->backend, fe->ext_set);
}

/*
 * The conntrack stage: a known flow keeps its backend and its SNAT port,
 * while that backend is in the frontend's set. A flow whose backend left
 * (endpoint removed, not ready any more) is re-selected as a new flow, not
 * followed to a backend that no longer serves it: an existing UDP flow with
 * a fixed source port moves on with its next datagram, as kube-proxy's
 * conntrack flush moves it. Its old SNAT port is given back. (An SCTP
 * flow whose association ended was forgotten before this stage when an INIT
 * starts a new one: sctp-ct-xdp.h.)
 */
static __always_inline int stage_conntrack(const struct bpx_fe_val *fe, const struct bpx_pkt *p, __u64 now,
					   struct bpx_flow *f)
{
	struct bpx_ct_key k;
	struct bpx_ct_val *v;

	ct_key_of(&k, p->family, &p->src, p->sport, &p->dst, p->dport, p->proto, BPX_CT_ORIG);
	v = ct_lookup(&k, now);
	f->is_new = !v;
	if (!v)
		return BPX_CONTINUE;
	if (!ct_backend_is_live(v, fe)) {
		if (v->flags & BPX_CTF_SNAT)
			nat_release(p->family, &v->nat_addr, v->nat_port, p->proto);
		count_event(BPX_EVENT_PKT_CT_RESELECT);
		f->is_new = true;
		return BPX_CONTINUE;
	}
	f->backend = v->backend;
	f->flags = v->flags;
	f->out.daddr = v->addr;
	f->out.dport = v->port;
	if (v->flags & BPX_CTF_SNAT) {
		f->out.saddr = v->nat_addr;
		f->out.sport = v->nat_port;
		/* The port's holder is refreshed when the flow's entry is (at most
		 * once a second, conntrack.h), not looked up on every packet. */
		if (v->last_ns == now)
			nat_touch(p->family, &f->out.saddr, f->out.sport, p->proto, ct_nat_stamp(v, p->proto, now));
	} else {
		f->out.saddr = p->src;
		f->out.sport = p->sport;
	}
	return BPX_CONTINUE;
}

/*
 * The backend of a new flow: the set's Maglev table (maglev.h), the same on
 * every node; a random slot of the set's live generation when the set has
 * no table (more sets than rows, or a sync writing it right now) or its
 * slot names a backend that is gone. Returns the backend's entry, NULL when
 * even the random slot finds none (a sync in flight).
 */
static __always_inline struct bpx_backend *pick_new_backend(__u32 set, const struct bpx_pkt *p, __u16 count, __u8 gen,
							    __u32 *id)
{
	struct bpx_backend *be = NULL;

	*id = lb_pick_maglev(set, p);
	if (*id)
		be = lb_lookup_backend(*id);
	if (be)
		return be;
	count_event(BPX_EVENT_PKT_MAGLEV_MISS);
	*id = lb_pick_random(set, count, gen);
	return *id ? lb_lookup_backend(*id) : NULL;
}

/* sessionAffinity ClientIP: keyed by the client's address and the set (one per service and traffic policy). */
static __always_inline void aff_key_of(struct bpx_aff_key *k, const struct bpx_pkt *p, __u32 set)
{
	__builtin_memset(k, 0, sizeof(*k));	/* padding included: no stack garbage in a key */
	k->client = p->src;			/* zero past an IPv4 address (parse stage) */
	k->set = set;
	k->family = p->family;
}

/*
 * The backend this client used last, when that was within the service's
 * affinity timeout and the backend is still in the set (lb.h). Affinity is
 * remembered per node, as kube-proxy's `recent` match is, and refreshed by
 * each new flow of the client (not by every packet), as kube-proxy's is.
 */
static __always_inline struct bpx_backend *pick_affinity_backend(const struct bpx_aff_key *k, __u32 timeout_s, __u64 now,
								 __u32 *id)
{
	struct bpx_backend *be;

	*id = lb_affinity_get(k, timeout_s, now);
	be = *id ? lb_lookup_backend(*id) : NULL;
	if (be)
		count_event(BPX_EVENT_PKT_AFFINITY_HIT);
	return be;
}

/* stage_pick's answer for a set with no endpoints at all (the plan's reject): refuse (refuse.h). */
#define BPX_REFUSE (BPX_VERDICT_PASS | 0xffff)

/*
 * The backend stage, for a new flow: the client's affinity backend, else a
 * backend of the frontend's external set (Maglev). An empty set either
 * drops (Local policy, no local endpoint: the client times out, as with
 * kube-proxy) or, with no endpoints anywhere, is refused at once (TCP RST,
 * ICMP port unreachable: refuse.h), as kube-proxy's REJECT.
 */
static __always_inline int stage_pick(const struct bpx_fe_val *fe, const struct bpx_pkt *p, __u64 now, struct bpx_flow *f)
{
	struct bpx_set_val *hdr = lb_lookup_set(fe->ext_set);
	struct bpx_backend *be = NULL;
	struct bpx_aff_key ak;
	__u32 affinity;
	__u16 count;
	__u8 gen;

	if (!hdr)
		return drop(BPX_DROP_NO_BACKEND);
	/* Copied once: the control plane may flip the header under us. */
	count = hdr->count;
	gen = hdr->gen;
	affinity = hdr->affinity;
	if (count == 0)
		return hdr->empty == BPX_EMPTY_DROP ? drop(BPX_DROP_NO_LOCAL_BACKEND) : BPX_REFUSE;
	if (affinity) {
		aff_key_of(&ak, p, fe->ext_set);
		be = pick_affinity_backend(&ak, affinity, now, &f->backend);
	}
	if (!be)
		be = pick_new_backend(fe->ext_set, p, count, gen, &f->backend);
	if (!be || be->family != p->family)
		return drop(BPX_DROP_NO_BACKEND);
	if (fe_preserves_src(fe) && !backend_is_local(be))
		return drop(BPX_DROP_NO_LOCAL_BACKEND);
	if (affinity)
		lb_affinity_put(&ak, f->backend, now);
	/* A hairpin flow leaves SNATed like a remote one (nat.h: flow_is_hairpin). */
	f->flags = backend_is_local(be) && !flow_is_hairpin(p, be) ? BPX_CTF_LOCAL : BPX_CTF_SNAT;
	f->out.saddr = p->src;
	f->out.sport = p->sport;
	f->out.daddr = backend_addr(be);
	f->out.dport = be->port;
	return BPX_CONTINUE;
}

/* Records both directions of a new flow. */
static __always_inline void ct_create(const struct bpx_pkt *p, const struct bpx_flow *f, __u64 now)
{
	struct bpx_ct_val v;
	struct bpx_ct_key k;

	__builtin_memset(&v, 0, sizeof(v));	/* unions included: no stack bytes in the map */
	v.last_ns = now;
	v.backend = f->backend;
	v.flags = f->flags;

	ct_key_of(&k, p->family, &p->src, p->sport, &p->dst, p->dport, p->proto, BPX_CT_ORIG);
	v.addr = f->out.daddr;
	v.port = f->out.dport;
	if (f->flags & BPX_CTF_SNAT) {
		v.nat_addr = f->out.saddr;
		v.nat_port = f->out.sport;
	}
	ct_put(&k, &v);

	/* The reply arrives from the backend, to the client (DNAT only) or to
	 * the node's NAT port (SNAT). */
	ct_key_of(&k, p->family, &f->out.daddr, f->out.dport, &f->out.saddr, f->out.sport, p->proto, BPX_CT_REPLY);
	v.addr = p->dst;
	v.port = p->dport;
	if (f->flags & BPX_CTF_SNAT) {
		v.nat_addr = p->src;
		v.nat_port = p->sport;
	}
	ct_put(&k, &v);
}

/* NAT and transmit toward a local backend: DNAT, then straight into the
 * pod's veth where the control plane found one that takes redirected frames
 * (redirect-local.h), else the stack delivers it. */
static __always_inline int stage_local(struct xdp_md *ctx, const struct bpx_pkt *p, const struct bpx_flow *f, __u64 now)
{
	enum bpx_event e = f->is_new ? BPX_EVENT_PKT_LOCAL_NEW : BPX_EVENT_PKT_LOCAL_CT;
	int r;

	if (f->is_new)
		ct_create(p, f, now);
	r = rewrite(ctx, p, &f->out);
	if (r != BPX_CONTINUE)
		return r;
	r = stage_redirect_local(ctx, p->family, &f->out.daddr, e);
	return r != BPX_CONTINUE ? r : pass(e);
}

/* NAT and transmit toward a remote backend: route, SNAT (a port of the
 * source address the route gives, for a new flow), DNAT, send. */
static __always_inline int stage_remote(struct xdp_md *ctx, const struct bpx_pkt *p, struct bpx_flow *f, __u64 now)
{
	struct bpf_fib_lookup fib;
	long rc;
	int r;

	rc = flow_fib_lookup(ctx, p, &fib, &f->out.daddr, f->is_new);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return drop(BPX_DROP_FIB_FAILED);
	if (f->is_new) {
		f->out.saddr = fib_src(&fib, p->family);
		f->out.sport = nat_alloc_port(p->family, &f->out.saddr, p->proto, &p->src, p->sport, now);
		if (!f->out.sport)
			return drop(BPX_DROP_NAT_PORTS_EXHAUSTED);
		ct_create(p, f, now);
	}
	r = rewrite(ctx, p, &f->out);
	if (r != BPX_CONTINUE)
		return r;
	return stage_transmit(ctx, &fib, rc, f->is_new ? BPX_EVENT_PKT_REMOTE_NEW : BPX_EVENT_PKT_REMOTE_CT);
}

/* ICMP errors about translated flows: rewritten by icmp-error.h, sent the way the flow's packets go. */
static __always_inline int stage_icmp_error(struct xdp_md *ctx, const struct bpx_pkt *p)
{
	struct bpf_fib_lookup fib;
	struct bpx_icmp_fwd f;
	long rc;
	int v;

	v = icmp_error_from_wire((void *)(long)ctx->data, (void *)(long)ctx->data_end, p, bpf_ktime_get_ns(), &f);
	if (v != BPX_CONTINUE || f.local)
		return v != BPX_CONTINUE ? v : pass(f.event);
	rc = flow_fib_lookup(ctx, p, &fib, &f.dst, false);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return drop(BPX_DROP_FIB_FAILED);
	return stage_transmit(ctx, &fib, rc, f.event);
}

/* The program's one exit: every verdict is counted here. */
static __always_inline int xdp_exit(int verdict)
{
	if (verdict_count(verdict))
		return XDP_DROP;
	switch (verdict_kind(verdict)) {
	case BPX_VERDICT_TX:
		return XDP_TX;
	case BPX_VERDICT_REDIRECT:
		return XDP_REDIRECT;
	}
	return XDP_PASS;
}

int bpx_xdp(struct xdp_md *ctx);
int bpx_xdp_sctp(struct xdp_md *ctx);

/* bpx_xdp_sctp and back (sctp-ct-xdp.h: BPX_JMP_*): filled by libbpf at load. Not pinned: a
 * pinned one reused by a newer build would hold the older build's programs. The kernel empties a
 * prog array when its last user-space reference goes (the loader's fd), so between a proxy's exit
 * and the next one's load the attached bpx_xdp's tail call does nothing: SCTP flows are translated
 * as before and age out as before (210 s), no end tracked. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, BPX_JMP_NONE);
	__uint(key_size, sizeof(__u32));
	__array(values, int(struct xdp_md *));
} bpx_xdp_jmp SEC(".maps") = {
	.values = {
		[BPX_JMP_SCTP] = (void *)&bpx_xdp_sctp,
		[BPX_JMP_MAIN] = (void *)&bpx_xdp,
	},
};

SEC("xdp")
int bpx_xdp(struct xdp_md *ctx)
{
	void *data, *data_end;
	struct bpx_fe_val *fe = NULL;
	struct bpx_flow f = {};
	struct bpx_pkt p = {};
	__u64 now = 0;
	int v;

	/* An SCTP frame goes through bpx_xdp_sctp first, which tracks the chunks that end or restart
	 * an association and hands it back (sctp-ct-xdp.h); for any other frame this does nothing. */
	bpf_tail_call(ctx, &bpx_xdp_jmp, sctp_jmp_slot(ctx));
	/* Read after the tail call, not before: verifiers with "tail calls invalidate
	 * packet pointers" (Debian's 6.12.117, stable backport) forget every packet
	 * pointer across a bpf_tail_call, and the load failed there with
	 * "R6 invalid mem access 'scalar'" (6.1 and 6.18 loaded it). */
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	v = parse_packet(data, data_end, (__u32)(data_end - data), &p);
	if (v == pass(BPX_EVENT_PKT_PASS_ICMP))
		v = stage_icmp_error(ctx, &p);
	if (v != BPX_CONTINUE)
		return xdp_exit(v);
	/* The clock is read only by the stages that keep state: not for a
	 * packet routed to a local pod (a VM's clock read costs as much as a
	 * map lookup). Only a packet to an SNAT port can be a reply (nat.h). */
	if (pkt_has_ports(&p) && nat_port_in_range(p.dport)) {
		now = bpf_ktime_get_ns();
		v = stage_reply(ctx, &p, now);
		if (v != BPX_CONTINUE)
			return xdp_exit(v);
	}
	v = stage_frontend(&p, &fe);
	if (v == pass(BPX_EVENT_PKT_PASS_NO_FRONTEND))
		v = stage_redirect_routed(ctx, p.family, &p.dst, v);
	if (v == BPX_CONTINUE && !now)
		now = bpf_ktime_get_ns();
	if (v == BPX_CONTINUE)
		v = stage_source_ranges(fe, &p);
	if (v == BPX_CONTINUE)
		v = stage_conntrack(fe, &p, now, &f);
	if (v == BPX_CONTINUE && f.is_new)
		v = stage_pick(fe, &p, now, &f);
	if (v == BPX_REFUSE) {
		v = refuse_within_limit(now);
		if (v == BPX_CONTINUE)
			v = refuse_flow(ctx, &p);
	}
	if (v == BPX_CONTINUE)
		v = (f.flags & BPX_CTF_LOCAL) ? stage_local(ctx, &p, &f, now) : stage_remote(ctx, &p, &f, now);
	return xdp_exit(v);
}

/* The SCTP conntrack stage of bpx_xdp, tail-called by it (sctp-ct-xdp.h says why), then
 * bpx_xdp again with the frame marked done. Passed to the stack should that call fail. */
SEC("xdp")
int bpx_xdp_sctp(struct xdp_md *ctx)
{
	struct bpx_sctp_scratch *s = bpf_map_lookup_elem(&bpx_sctp_scratch, &bpx_sctp_scratch_slot);

	if (!s)
		return XDP_PASS;
	sctp_conntrack(ctx, s);
	s->done = 1;
	bpf_tail_call(ctx, &bpx_xdp_jmp, BPX_JMP_MAIN);
	s->done = 0;
	return XDP_PASS;
}

/* XDP_PASS and nothing else: the baseline `make bench` measures against, and
 * the program a lab attaches to the peer of a veth the proxy transmits into
 * (native XDP on veth delivers XDP_TX frames only then: platform-notes.md). */
SEC("xdp")
int bpx_xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
