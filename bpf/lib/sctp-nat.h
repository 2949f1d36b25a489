/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The NAT rewrite of an SCTP packet at XDP, beside nat.h (IPv4 TCP/UDP) and
 * nat6.h (IPv6 TCP/UDP): addresses in the IP header (IPv4's header checksum
 * updated; SCTP's checksum covers no pseudo header, so an address change
 * needs nothing more), ports in the SCTP common header, and the CRC32c
 * updated for the port change alone (sctp-crc.h).
 *
 * Single-homed associations only, as Linux's nf_nat for SCTP (kube-proxy's):
 * the addresses an INIT or INIT ACK lists in its parameters (multi-homing,
 * RFC 9260 3.3.2) are not rewritten. A backend's INIT ACK lists its pod
 * address, which the client adds as an alternate path it cannot reach; the
 * association runs on the primary path (the frontend), and only a
 * retransmission the client sends to the alternate path is lost (seen once
 * in the lab: a lost COOKIE ECHO resent there ended connect() with
 * EHOSTUNREACH). Addresses a client lists are likewise not translated.
 */
#ifndef BPX_SCTP_NAT_H
#define BPX_SCTP_NAT_H

#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/if_ether.h>
#include "csum.h"
#include "nat6.h"
#include "parse.h"
#include "sctp-crc.h"

/* The SCTP common header (RFC 9260 3.1); the checksum as the bytes it is sent in. */
struct bpx_sctphdr {
	__be16 source;
	__be16 dest;
	__be32 vtag;
	__u8 checksum[4];	/* CRC32c, little-endian */
};
_Static_assert(sizeof(struct bpx_sctphdr) == BPX_SCTP_HLEN, "the SCTP common header is 12 bytes");

/* Ports to sport/dport, the checksum moved with them. `len`: the SCTP packet's length (bpx_pkt.l4_len). */
static __always_inline void sctp_rewrite_ports(struct bpx_sctphdr *sh, __u16 len, __be16 sport, __be16 dport)
{
	__u32 crc = sctp_crc_of_field(sh->checksum);

	crc = sctp_crc_after_ports(crc, len, sh->source, sh->dest, sport, dport);
	sctp_crc_to_field(sh->checksum, crc);
	sh->source = sport;
	sh->dest = dport;
}

static __always_inline bool sctp_nat_rewrite_v4(void *data, void *data_end, __u16 len, const struct bpx_tuple *t)
{
	struct iphdr *ip = data + sizeof(struct ethhdr);
	struct bpx_sctphdr *sh = (void *)(ip + 1);	/* no IPv4 options get this far (parse.h) */

	if ((void *)(sh + 1) > data_end)
		return false;
	if (ip->saddr != t->saddr.v4) {
		csum_replace4(&ip->check, ip->saddr, t->saddr.v4);
		ip->saddr = t->saddr.v4;
	}
	if (ip->daddr != t->daddr.v4) {
		csum_replace4(&ip->check, ip->daddr, t->daddr.v4);
		ip->daddr = t->daddr.v4;
	}
	sctp_rewrite_ports(sh, len, t->sport, t->dport);
	return true;
}

static __always_inline bool sctp_nat_rewrite_v6(void *data, void *data_end, __u16 l4_off, __u16 len,
						const struct bpx_tuple *t)
{
	struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
	struct bpx_sctphdr *sh = data + ipv6_l4_off(l4_off);

	if ((void *)(ip6 + 1) > data_end || (void *)(sh + 1) > data_end)
		return false;
	if (!addr6_eq(ip6->saddr.in6_u.u6_addr32, t->saddr.v6))
		__builtin_memcpy(&ip6->saddr, t->saddr.v6, 16);
	if (!addr6_eq(ip6->daddr.in6_u.u6_addr32, t->daddr.v6))
		__builtin_memcpy(&ip6->daddr, t->daddr.v6, 16);
	sctp_rewrite_ports(sh, len, t->sport, t->dport);
	return true;
}

/* Rewrites a parsed SCTP packet of either family to the tuple `t`. False when the headers are not
 * there (the parse stage checked them, so only the verifier sees that branch). */
static __always_inline bool sctp_nat_rewrite(void *data, void *data_end, const struct bpx_pkt *p, const struct bpx_tuple *t)
{
	if (p->family == BPX_FAMILY_V6)
		return sctp_nat_rewrite_v6(data, data_end, p->l4_off, p->l4_len, t);
	return sctp_nat_rewrite_v4(data, data_end, p->l4_len, t);
}

#endif
