/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The IPv6 step of the parse stage (parse.h): the fixed header, then the
 * extension headers a load balancer may step over, within a bound:
 *
 *  - hop-by-hop options, only right after the fixed header (RFC 8200 4.1;
 *    anywhere else the kernel answers with a parameter problem: its job);
 *  - destination options;
 *  - a routing header with no segments left: the destination in the fixed
 *    header is the final one, and the one every upper-layer checksum covers.
 *
 * Skipped, the packet is served like one without them: NAT rewrites the
 * fixed header and the L4 header where it sits, and the headers in between
 * travel on (the backend's stack reads them, as the final destination).
 * Everything else goes to the stack untranslated, counted:
 *
 *  - a fragment header: pkt_pass_fragment (the stack reassembles, as for
 *    IPv4; only the first fragment would carry ports);
 *  - a routing header with segments left (the final destination is
 *    elsewhere), AH, ESP-less mobility, HIP, Shim6, experimental values,
 *    more than BPX_IPV6_EXT_MAX headers, or more than BPX_IPV6_EXT_BYTES_MAX
 *    bytes of them: pkt_pass_ipv6_ext. The byte bound keeps every later
 *    offset small (the ICMPv6 refusal quotes the headers: refuse6.h).
 *  - an extension header past the payload length or the frame: drop,
 *    truncated_l3, as ipv6_rcv's length checks would.
 */
#ifndef BPX_PARSE6_H
#define BPX_PARSE6_H

#include <linux/ipv6.h>
#include "verdict.h"

#define BPX_IPV6_EXT_MAX 4		/* extension headers stepped over at most */
#define BPX_IPV6_EXT_BYTES_MAX 256	/* and their total length */

/* Masks an IPv6 L4 offset read back from struct bpx_pkt (at most 14 + 40 +
 * BPX_IPV6_EXT_BYTES_MAX), so the verifier sees its bound wherever a stage
 * turns it into a packet pointer again. */
#define BPX_IPV6_L4_OFF_MASK 0x1ff
_Static_assert(14 + 40 + BPX_IPV6_EXT_BYTES_MAX <= BPX_IPV6_L4_OFF_MASK, "the L4 offset mask must cover the bound");

static __always_inline __u32 ipv6_l4_off(__u16 l4_off)
{
	return l4_off & BPX_IPV6_L4_OFF_MASK;
}

#ifndef IPPROTO_MH
#define IPPROTO_MH 135
#endif

/* The first bytes every skippable extension header starts with (routing: RFC 8200 4.4). */
struct bpx_ipv6_ext {
	__u8 nexthdr;
	__u8 hdrlen;		/* in 8-byte units, not counting the first 8 */
	__u8 routing_type;	/* routing header only */
	__u8 segments_left;	/* routing header only */
};

/* Next-header values that are extension headers, not an upper layer. */
static __always_inline bool ipv6_is_ext(__u8 nexthdr)
{
	switch (nexthdr) {
	case IPPROTO_HOPOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_FRAGMENT:
	case IPPROTO_DSTOPTS:
	case IPPROTO_AH:
	case IPPROTO_MH:
	case 139:	/* HIP */
	case 140:	/* Shim6 */
	case 253:	/* experimental */
	case 254:
		return true;
	}
	return false;
}

/* Whether the header `h` (of type `type`, the `i`th after the fixed header) can be stepped over. */
static __always_inline bool ipv6_ext_is_skippable(__u8 type, const struct bpx_ipv6_ext *h, int i)
{
	switch (type) {
	case IPPROTO_HOPOPTS:
		return i == 0;
	case IPPROTO_DSTOPTS:
		return true;
	case IPPROTO_ROUTING:
		return h->segments_left == 0;
	}
	return false;
}

/*
 * Steps over the extension headers after the fixed header at `ip6`, within
 * `plen` bytes of payload. On BPX_CONTINUE, *proto is the upper-layer
 * protocol and *ext_len the bytes stepped over.
 */
static __always_inline int ipv6_skip_ext(struct ipv6hdr *ip6, void *data_end, __u16 plen, __u8 *proto, __u16 *ext_len)
{
	void *first = (void *)(ip6 + 1);
	__u8 next = ip6->nexthdr;
	__u32 off = 0;

#pragma unroll
	for (int i = 0; i < BPX_IPV6_EXT_MAX; i++) {
		struct bpx_ipv6_ext *h;

		if (!ipv6_is_ext(next))
			break;
		if (next == IPPROTO_FRAGMENT)
			return pass(BPX_EVENT_PKT_PASS_FRAGMENT);
		h = first + off;
		if ((void *)(h + 1) > data_end || off + sizeof(*h) > plen)
			return drop(BPX_DROP_TRUNCATED_L3);
		if (!ipv6_ext_is_skippable(next, h, i))
			return pass(BPX_EVENT_PKT_PASS_IPV6_EXT);
		next = h->nexthdr;
		off += (h->hdrlen + 1) * 8;
		if (off > BPX_IPV6_EXT_BYTES_MAX)
			return pass(BPX_EVENT_PKT_PASS_IPV6_EXT);
		if (off > plen)
			return drop(BPX_DROP_TRUNCATED_L3);
	}
	if (ipv6_is_ext(next))
		return pass(BPX_EVENT_PKT_PASS_IPV6_EXT);	/* more than BPX_IPV6_EXT_MAX */
	*proto = next;
	*ext_len = off;
	return BPX_CONTINUE;
}

#endif
