/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The transmit stage's route lookup (bpf_fib_lookup) and the hand-off from
 * XDP to TC when the next hop's MAC is unknown.
 *
 * bpf_fib_lookup answers from the neighbour table and never resolves a
 * neighbour itself: with no entry it returns NO_NEIGH. XDP then writes the
 * egress ifindex into the frame's metadata (bpf_xdp_adjust_meta) and passes
 * the translated frame; tc.bpf.c's ingress program, which runs before the IP
 * stack (so no martian-source check sees the node's own address as the
 * source), sends it with bpf_redirect_neigh, which resolves the neighbour.
 * Later packets of the flow find the entry and leave from XDP.
 */
#ifndef BPX_FIB_H
#define BPX_FIB_H

#include "common.h"

#ifndef AF_INET
#define AF_INET 2
#endif

/* "bpx!" in the metadata before a frame XDP translated and passed for TC to send. */
#define BPX_META_MAGIC 0x21787062

struct bpx_meta {
	__u32 magic;
	__u32 ifindex;		/* egress device from the route lookup */
};

/*
 * Routes an IPv4 packet toward `dst` as if it arrived on `ifindex` (so the
 * device's forwarding setting applies). With BPF_FIB_LOOKUP_SRC the kernel
 * also fills in the source address it would choose (ipv4_src): the node
 * address SNAT uses, as MASQUERADE would pick it.
 */
static __always_inline long fib_lookup_v4(void *ctx, struct bpf_fib_lookup *fib, __u32 ifindex,
					  __be32 dst, __u8 proto, __u16 tot_len, bool want_src)
{
	__builtin_memset(fib, 0, sizeof(*fib));
	fib->family = AF_INET;
	fib->l4_protocol = proto;
	fib->tot_len = tot_len;
	fib->ifindex = ifindex;
	fib->ipv4_dst = dst;
	return bpf_fib_lookup(ctx, fib, sizeof(*fib), want_src ? BPF_FIB_LOOKUP_SRC : 0);
}

#endif
