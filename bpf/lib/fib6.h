/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The IPv6 route lookup of the transmit stage, beside fib.h's IPv4 one. The
 * same kernel answers both: BPF_FIB_LOOKUP_SRC fills ipv6_src as it fills
 * ipv4_src (the node address SNAT uses, as the kernel's source address
 * selection would pick it), a missing neighbour (NDP not done yet) is
 * NO_NEIGH and goes through TC's bpf_redirect_neigh as for IPv4, and the
 * ingress device needs IPv6 forwarding on (FWD_DISABLED otherwise).
 */
#ifndef BPX_FIB6_H
#define BPX_FIB6_H

#include "fib.h"
#include "maps.h"

#ifndef AF_INET6
#define AF_INET6 10
#endif

/* Routes an IPv6 packet of `tot_len` bytes (fixed header included) toward `dst`, as if it arrived on `ifindex`. */
static __always_inline long fib_lookup_v6(void *ctx, struct bpf_fib_lookup *fib, __u32 ifindex,
					  const union bpx_addr *dst, __u8 proto, __u16 tot_len, bool want_src)
{
	__builtin_memset(fib, 0, sizeof(*fib));
	fib->family = AF_INET6;
	fib->l4_protocol = proto;
	fib->tot_len = tot_len;
	fib->ifindex = ifindex;
	__builtin_memcpy(fib->ipv6_dst, dst->v6, sizeof(fib->ipv6_dst));
	return bpf_fib_lookup(ctx, fib, sizeof(*fib), want_src ? BPF_FIB_LOOKUP_SRC : 0);
}

#endif
