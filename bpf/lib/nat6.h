/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The IPv6 header rewrite of the packet programs, beside nat.h's IPv4 one:
 * addresses in the fixed header, ports in the L4 header wherever parse6.h
 * found it (after skipped extension headers), and the TCP/UDP checksum
 * updated incrementally over both 128-bit addresses (csum.h). IPv6 has no
 * header checksum. A UDP checksum is mandatory over IPv6 (RFC 8200 8.1), so
 * unlike IPv4 a 0 is not "none": it is updated like any other (the stack
 * drops such a datagram either way).
 */
#ifndef BPX_NAT6_H
#define BPX_NAT6_H

#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/if_ether.h>
#include "parse.h"
#include "csum.h"
#include "nat-l4.h"

/* A 4-tuple of either family as the packet should leave (IPv4 in the unions' first 4 bytes). */
struct bpx_tuple {
	union bpx_addr saddr;
	union bpx_addr daddr;
	__be16 sport;
	__be16 dport;
};

static __always_inline bool addr6_eq(const __be32 *a, const __be32 *b)
{
	return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3])) == 0;
}

/* Rewrites addresses and ports of a TCP/UDP IPv6 packet in place. `l4_off`
 * is the parse stage's. Returns false when the headers are not there (the
 * caller parsed them, so only the verifier sees that branch). */
static __always_inline bool nat_rewrite_v6(void *data, void *data_end, __u16 l4_off, __u8 proto, const struct bpx_tuple *t)
{
	struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
	struct bpx_l4_ports *ports = data + ipv6_l4_off(l4_off);
	__u16 *l4sum;

	if ((void *)(ip6 + 1) > data_end)
		return false;
	/* IPv6 has no header checksum, and its UDP checksum is never absent. */
	l4sum = l4_check_field(ports, proto, data_end);
	if (!l4sum)
		return false;
	if (!addr6_eq(ip6->saddr.in6_u.u6_addr32, t->saddr.v6)) {
		csum_replace16(l4sum, ip6->saddr.in6_u.u6_addr32, t->saddr.v6);
		__builtin_memcpy(&ip6->saddr, t->saddr.v6, 16);
	}
	if (!addr6_eq(ip6->daddr.in6_u.u6_addr32, t->daddr.v6)) {
		csum_replace16(l4sum, ip6->daddr.in6_u.u6_addr32, t->daddr.v6);
		__builtin_memcpy(&ip6->daddr, t->daddr.v6, 16);
	}
	nat_rewrite_ports(ports, l4sum, true, proto, t->sport, t->dport);
	return true;
}

#endif
