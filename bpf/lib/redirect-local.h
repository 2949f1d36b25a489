/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The local-redirect stage: a frame DNATed to a backend on this node is sent
 * straight into the host-side veth of the backend's pod (bpf_redirect_map
 * into a DEVMAP_HASH), so the pod receives it without the frame becoming an
 * skb that walks the node's stack (routing, netfilter, the bridge) first.
 *
 * When it applies, and why only then:
 *  - the backend has an entry in bpx_local_ep_v1: the control plane writes
 *    one only when it found the pod's veth and MAC, and the veth takes
 *    redirected frames. A veth delivers an XDP frame (ndo_xdp_xmit) only
 *    when its peer (the pod's eth0) runs NAPI: an XDP program on the peer,
 *    or GRO on it; otherwise the kernel drops the frame after the program
 *    returned (docs/findings.md). So the check is the control plane's, made
 *    before the entry is written; without an entry the frame takes the
 *    stack, as before (XDP_PASS), never a silent drop;
 *  - the devmap still holds the veth (the kernel removes a deleted device's
 *    entry itself): else the stack;
 *  - the TTL (hop limit) allows one more hop: the node is a router hop and
 *    decrements it, as forwarding would; a frame that would expire goes to
 *    the stack, which answers with ICMP time exceeded.
 * The same holds for a packet routed to a local backend without a frontend
 * (stage_redirect_routed: the second hop of another node's NodePort flow).
 * Replies are untouched: they leave the pod through the node's stack and
 * are reverse-NATed at TC egress of the node device (tc.bpf.c), as before.
 */
#ifndef BPX_REDIRECT_LOCAL_H
#define BPX_REDIRECT_LOCAL_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include "maps.h"
#include "csum.h"
#include "verdict.h"

/* local backends reached by redirect: backend address -> pod veth ifindex and MACs */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct bpx_local_ep_key);
	__type(value, struct bpx_local_ep);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpx_local_ep_v1 SEC(".maps");

/* the pods' host-side veths frames may be redirected into: ifindex -> ifindex */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpx_local_dev_v1 SEC(".maps");

static __always_inline struct bpx_local_ep *local_ep_lookup(__u8 family, const union bpx_addr *addr)
{
	struct bpx_local_ep_key k;

	__builtin_memset(&k, 0, sizeof(k));	/* padding included: no stack bytes in a key */
	__builtin_memcpy(&k.addr, addr, sizeof(k.addr));
	k.family = family;
	return bpf_map_lookup_elem(&bpx_local_ep_v1, &k);
}

/* Predicate: the packet may take one more hop (TTL or hop limit above 1). */
static __always_inline bool hop_allowed(void *data, void *data_end, __u8 family)
{
	if (family == BPX_FAMILY_V6) {
		struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);

		return (void *)(ip6 + 1) <= data_end && ip6->hop_limit > 1;
	}
	struct iphdr *ip = data + sizeof(struct ethhdr);

	return (void *)(ip + 1) <= data_end && ip->ttl > 1;
}

/* One hop less, as forwarding does; the IPv4 header checksum moved with it. */
static __always_inline void hop_decrement(void *data, void *data_end, __u8 family)
{
	if (family == BPX_FAMILY_V6) {
		struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);

		if ((void *)(ip6 + 1) <= data_end)
			ip6->hop_limit--;
		return;
	}
	struct iphdr *ip = data + sizeof(struct ethhdr);

	if ((void *)(ip + 1) > data_end)
		return;
	/* TTL is the high byte of the 16-bit word it shares with the protocol. */
	csum_replace2(&ip->check, bpf_htons((__u16)ip->ttl << 8), bpf_htons((__u16)(ip->ttl - 1) << 8));
	ip->ttl--;
}

/*
 * Sends the frame, already addressed to `backend`, into the backend pod's
 * veth, counted as `e`; BPX_CONTINUE when it must take the stack instead
 * (then the frame is as it was).
 */
static __always_inline int redirect_to_local_ep(struct xdp_md *ctx, __u8 family, const union bpx_addr *backend,
						enum bpx_event e)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct bpx_local_ep *ep;

	ep = local_ep_lookup(family, backend);
	if (!ep)
		return BPX_CONTINUE;
	if ((void *)(eth + 1) > data_end || !hop_allowed(data, data_end, family))
		return BPX_CONTINUE;
	/* Fallback action 0 (XDP_ABORTED) only tells us the veth is not in the
	 * devmap (deleted): nothing is redirected, the frame takes the stack. */
	if (bpf_redirect_map(&bpx_local_dev_v1, ep->ifindex, 0) != XDP_REDIRECT)
		return BPX_CONTINUE;
	__builtin_memcpy(eth->h_dest, ep->mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, ep->src_mac, ETH_ALEN);
	hop_decrement(data, data_end, family);
	return redirected(e);
}

/* The stage after DNAT to a local backend: redirected, counted as `e`
 * (pkt_local_new or pkt_local_ct) and as pkt_local_redirect. */
static __always_inline int stage_redirect_local(struct xdp_md *ctx, __u8 family, const union bpx_addr *backend,
						enum bpx_event e)
{
	int r = redirect_to_local_ep(ctx, family, backend, e);

	if (r != BPX_CONTINUE)
		count_event(BPX_EVENT_PKT_LOCAL_REDIRECT);
	return r;
}

/*
 * The stage for a packet to no frontend whose destination is a local
 * backend itself: another node's NodePort already SNATed and DNATed it to
 * this pod (the remote-backend path), or a pod elsewhere reaches it
 * directly. It is routed to the pod, so the same redirect applies; `v` is
 * the frontend stage's verdict, returned when the stack must route it.
 */
static __always_inline int stage_redirect_routed(struct xdp_md *ctx, __u8 family, const union bpx_addr *dst, int v)
{
	int r = redirect_to_local_ep(ctx, family, dst, BPX_EVENT_PKT_ROUTED_REDIRECT);

	return r != BPX_CONTINUE ? r : v;
}

#endif
