/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The rewrite half of the ICMP error stage (icmp-error.h): the quoted
 * packet's addresses and ports, and the error's own addresses, to what the
 * flow's other end knows, with every checksum kept right incrementally
 * (csum.h; the frame as it came from a wire or the stack holds full sums):
 *
 *  - the quoted IPv4 header's checksum, for its address changes;
 *  - the quoted TCP/UDP checksum, when the error carries it, for address and
 *    port changes, as nf_nat does (tcp_manip_pkt, udp_manip_pkt): a UDP
 *    checksum always lies in the 8 quoted bytes (a 0 over IPv4 means "none"
 *    and stays 0); a TCP one only when 18 bytes of the header are quoted
 *    (RFC 792 asks for 8, Linux and RFC 1812 routers quote up to 576 bytes of
 *    the packet, ICMPv6 up to 1280). It covers bytes the error does not
 *    carry, so it can be neither checked nor recomputed, but the update
 *    undoes the update the forward NAT made: the client reads back the very
 *    checksum it sent;
 *  - a quoted SCTP packet's CRC32c (bytes 8..11, when quoted) is left as
 *    it travelled: it covers the whole SCTP packet, which the error does not
 *    carry, so no update can restore it, and no stack reads it (Linux's
 *    sctp_v4_err/sctp_v6_err find the association by ports and the
 *    verification tag, the 8 bytes RFC 792 guarantees);
 *  - the ICMP checksum, which covers the whole quote, so it follows every
 *    word changed in it, both quoted checksums included (nf_nat recomputes
 *    it over the whole message instead; incremental keeps a bad one bad);
 *  - the outer IPv4 header's checksum for the error's addresses; over IPv6
 *    the ICMPv6 checksum instead, whose pseudo header covers them.
 */
#ifndef BPX_ICMP_XLATE_H
#define BPX_ICMP_XLATE_H

#include "icmp-quote.h"
#include "nat6.h"

/* What an error becomes: its own addresses, and the quoted packet's. */
struct bpx_icmp_xlate {
	union bpx_addr out_src;
	union bpx_addr out_dst;
	union bpx_addr in_src;
	union bpx_addr in_dst;
	__be16 in_sport;
	__be16 in_dport;
};

/* The quoted L4 checksum, when the error carries it and it is in use. */
static __always_inline __u16 *quote_l4_check(void *data, void *data_end, const struct bpx_icmp_quote *q, bool v4)
{
	void *l4 = data + (q->l4_off & BPX_ICMP_QUOTE_OFF_MASK);

	if (q->proto == IPPROTO_SCTP)
		return NULL;	/* CRC32c, not a ones' complement sum: left as it is (above) */
	if (q->proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if (q->l4_quoted < offsetof(struct tcphdr, check) + 2 || (void *)&th->check + 2 > data_end)
			return NULL;
		return &th->check;
	}
	struct udphdr *uh = l4;

	if ((void *)(uh + 1) > data_end || (v4 && uh->check == 0))
		return NULL;
	return &uh->check;
}

/* A 16-bit checksum inside the quote changed from `from`: the ICMP checksum follows it. */
static __always_inline void icmp_sum_follow(__u16 *icmpsum, __u16 from, __u16 to)
{
	csum_replace2(icmpsum, from, to);
}

/* A quoted IPv4 address to `to`: the quoted IP and L4 checksums, and the ICMP checksum over all three. */
static __always_inline void quote_addr4(__be32 *addr, __be32 to, __u16 *ipsum, __u16 *l4sum, __u16 *icmpsum)
{
	__be32 from = *addr;
	__u16 old;

	if (from == to)
		return;
	old = *ipsum;
	csum_replace4(ipsum, from, to);
	icmp_sum_follow(icmpsum, old, *ipsum);
	if (l4sum) {
		old = *l4sum;
		csum_replace4(l4sum, from, to);
		icmp_sum_follow(icmpsum, old, *l4sum);
	}
	csum_replace4(icmpsum, from, to);
	*addr = to;
}

/* A quoted IPv6 address to `to` (no IP header checksum in IPv6). */
static __always_inline void quote_addr6(__be32 *addr, const __be32 *to, __u16 *l4sum, __u16 *icmpsum)
{
	__u16 old;

	if (addr6_eq(addr, to))
		return;
	if (l4sum) {
		old = *l4sum;
		csum_replace16(l4sum, addr, to);
		icmp_sum_follow(icmpsum, old, *l4sum);
	}
	csum_replace16(icmpsum, addr, to);
	__builtin_memcpy(addr, to, 16);
}

/* A quoted port to `to`. */
static __always_inline void quote_port(__be16 *port, __be16 to, __u16 *l4sum, __u16 *icmpsum)
{
	__u16 old;

	if (*port == to)
		return;
	if (l4sum) {
		old = *l4sum;
		csum_replace2(l4sum, *port, to);
		icmp_sum_follow(icmpsum, old, *l4sum);
	}
	csum_replace2(icmpsum, *port, to);
	*port = to;
}

/* UDP's 0 means "no checksum": a computed 0 is sent as its other form
 * (the ICMP sum is unchanged by it: 0 and 0xffff are the same number). */
static __always_inline void quote_udp_zero(__u16 *l4sum, __u8 proto)
{
	if (l4sum && proto == IPPROTO_UDP && *l4sum == 0)
		*l4sum = 0xffff;
}

/* Rewrites an ICMP (IPv4) error quoting a TCP/UDP packet (icmp4_quote found it). False when the headers are not there. */
static __always_inline bool icmp4_rewrite(void *data, void *data_end, const struct bpx_icmp_quote *q,
					  const struct bpx_icmp_xlate *x)
{
	struct iphdr *ip = data + sizeof(struct ethhdr);
	struct bpx_icmphdr *icmp = (void *)(ip + 1);
	struct iphdr *in = (void *)(icmp + 1);
	struct bpx_l4_ports *ports = (void *)(in + 1);
	__u16 *l4sum;

	if ((void *)(ports + 1) > data_end)
		return false;
	l4sum = quote_l4_check(data, data_end, q, true);
	quote_addr4(&in->saddr, x->in_src.v4, &in->check, l4sum, &icmp->checksum);
	quote_addr4(&in->daddr, x->in_dst.v4, &in->check, l4sum, &icmp->checksum);
	quote_port(&ports->source, x->in_sport, l4sum, &icmp->checksum);
	quote_port(&ports->dest, x->in_dport, l4sum, &icmp->checksum);
	quote_udp_zero(l4sum, q->proto);
	/* ICMP over IPv4 has no pseudo header: the error's addresses touch the IP checksum only. */
	if (ip->saddr != x->out_src.v4) {
		csum_replace4(&ip->check, ip->saddr, x->out_src.v4);
		ip->saddr = x->out_src.v4;
	}
	if (ip->daddr != x->out_dst.v4) {
		csum_replace4(&ip->check, ip->daddr, x->out_dst.v4);
		ip->daddr = x->out_dst.v4;
	}
	return true;
}

/* Rewrites an ICMPv6 error quoting a TCP/UDP packet (icmp6_quote found it). */
static __always_inline bool icmp6_rewrite(void *data, void *data_end, const struct bpx_pkt *p,
					  const struct bpx_icmp_quote *q, const struct bpx_icmp_xlate *x)
{
	struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
	struct bpx_icmphdr *icmp = data + ipv6_l4_off(p->l4_off);
	struct ipv6hdr *in = (void *)(icmp + 1);
	struct bpx_l4_ports *ports = data + (q->l4_off & BPX_ICMP_QUOTE_OFF_MASK);
	__u16 *l4sum;

	if ((void *)(ip6 + 1) > data_end || (void *)(in + 1) > data_end || (void *)(ports + 1) > data_end)
		return false;
	l4sum = quote_l4_check(data, data_end, q, false);
	quote_addr6(in->saddr.in6_u.u6_addr32, x->in_src.v6, l4sum, &icmp->checksum);
	quote_addr6(in->daddr.in6_u.u6_addr32, x->in_dst.v6, l4sum, &icmp->checksum);
	quote_port(&ports->source, x->in_sport, l4sum, &icmp->checksum);
	quote_port(&ports->dest, x->in_dport, l4sum, &icmp->checksum);
	quote_udp_zero(l4sum, q->proto);
	/* The ICMPv6 checksum's pseudo header covers the error's own addresses (RFC 4443 2.3). */
	if (!addr6_eq(ip6->saddr.in6_u.u6_addr32, x->out_src.v6)) {
		csum_replace16(&icmp->checksum, ip6->saddr.in6_u.u6_addr32, x->out_src.v6);
		__builtin_memcpy(&ip6->saddr, x->out_src.v6, 16);
	}
	if (!addr6_eq(ip6->daddr.in6_u.u6_addr32, x->out_dst.v6)) {
		csum_replace16(&icmp->checksum, ip6->daddr.in6_u.u6_addr32, x->out_dst.v6);
		__builtin_memcpy(&ip6->daddr, x->out_dst.v6, 16);
	}
	return true;
}

/* The rewrite for the packet's family. */
static __always_inline bool icmp_rewrite(void *data, void *data_end, const struct bpx_pkt *p,
					 const struct bpx_icmp_quote *q, const struct bpx_icmp_xlate *x)
{
	return p->family == BPX_FAMILY_V6 ? icmp6_rewrite(data, data_end, p, q, x) : icmp4_rewrite(data, data_end, q, x);
}

#endif
