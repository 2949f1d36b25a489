/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Refusing a new IPv6 flow to a service without endpoints, as refuse.h does
 * for IPv4 (why at XDP: there): a TCP segment gets a RST (tcp_v6_send_reset's
 * sequence numbers), a UDP datagram an ICMPv6 destination unreachable, port
 * unreachable (RFC 4443 3.1: type 1, code 4), from the address and port the
 * client used, out of the device it came in on.
 *
 * The ICMPv6 error quotes the datagram's IPv6 header, the extension headers
 * parse6.h stepped over and the 8-byte UDP header: what the client's stack
 * needs to find its socket (it walks the quoted extension headers to the
 * ports). RFC 4443 asks for as much of the datagram as fits in 1280 bytes;
 * the headers are what any receiver reads, and stopping there keeps the
 * checksum loop bounded (at most 40 + 256 + 32 bytes: SCTP quotes more, refuse.h). The checksum covers
 * the pseudo header (RFC 4443 2.3), unlike ICMP over IPv4.
 */
#ifndef BPX_REFUSE6_H
#define BPX_REFUSE6_H

#include "refuse.h"

#define BPX_ICMP6_DEST_UNREACH 1
#define BPX_ICMP6_PORT_UNREACH 4
#define BPX_REFUSE6_HOP_LIMIT 64
/* The quote's longest: fixed header, the extension headers parse6.h allows, 8 bytes of UDP. */
#define BPX_ICMP6_QUOTE_MAX (40 + BPX_IPV6_EXT_BYTES_MAX + BPX_SCTP_QUOTE)

/* The IPv6 pseudo header of an upper-layer checksum (RFC 8200 8.1), summed with bpf_csum_diff. */
static __always_inline __s64 csum_pseudo6(const union bpx_addr *src, const union bpx_addr *dst, __u32 len, __u8 proto)
{
	__be32 pseudo[10];

	__builtin_memcpy(&pseudo[0], src->v6, 16);
	__builtin_memcpy(&pseudo[4], dst->v6, 16);
	pseudo[8] = bpf_htonl(len);
	pseudo[9] = bpf_htonl(proto);
	return bpf_csum_diff(NULL, 0, pseudo, sizeof(pseudo), 0);
}

static __always_inline void ipv6_reply_header(struct ipv6hdr *ip6, const struct bpx_pkt *p, __u8 proto, __u16 payload_len)
{
	__builtin_memset(ip6, 0, 8);	/* version, traffic class, flow label, lengths */
	ip6->version = 6;
	ip6->payload_len = bpf_htons(payload_len);
	ip6->nexthdr = proto;
	ip6->hop_limit = BPX_REFUSE6_HOP_LIMIT;
	__builtin_memcpy(&ip6->saddr, p->dst.v6, 16);
	__builtin_memcpy(&ip6->daddr, p->src.v6, 16);
}

/* TCP over IPv6: a RST, its sequence numbers as refuse_tcp's. */
static __always_inline int refuse6_tcp(struct xdp_md *ctx, const struct bpx_pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct tcphdr *th = data + ipv6_l4_off(p->l4_off);
	int len = sizeof(struct ethhdr) + sizeof(struct ipv6hdr) + sizeof(*th);
	struct ipv6hdr *ip6;
	struct ethhdr *eth;
	struct bpx_rst r;
	__s64 sum;

	if ((void *)(th + 1) > data_end)
		return drop(BPX_DROP_TRUNCATED_L4);
	if (th->rst)
		return drop(BPX_DROP_NO_ENDPOINTS);
	r = rst_for(th, p->l4_len);
	/* The RST goes right after the fixed header: extension headers are not repeated. */
	if (bpf_xdp_adjust_tail(ctx, len - (int)(data_end - data)))
		return drop(BPX_DROP_NO_ENDPOINTS);
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	ip6 = (void *)(eth + 1);
	th = (void *)(ip6 + 1);
	if ((void *)(th + 1) > data_end)
		return drop(BPX_DROP_TRUNCATED_L4);
	eth_swap(eth);
	ipv6_reply_header(ip6, p, IPPROTO_TCP, sizeof(*th));
	rst_header(th, p, r);
	sum = csum_pseudo6(&p->dst, &p->src, sizeof(*th), IPPROTO_TCP);
	sum = bpf_csum_diff(NULL, 0, (__be32 *)th, sizeof(*th), (__u32)sum);
	th->check = csum_fold_neg(sum);
	return tx(BPX_EVENT_PKT_REFUSED_NO_ENDPOINTS);
}

/* The ones' complement sum of `len` bytes (a multiple of 4) at `from`, in 32-bit words, bounded. */
static __always_inline __u64 csum_words(void *from, void *data_end, __u32 len)
{
	__u64 s = 0;

	for (__u32 i = 0; i < BPX_ICMP6_QUOTE_MAX / 4; i++) {
		__be32 *w = from + i * 4;

		if (i * 4 >= len || (void *)(w + 1) > data_end)
			break;
		s += *w;
	}
	return s;
}

/* UDP over IPv6: ICMPv6 port unreachable quoting the headers of the datagram. */
static __always_inline int refuse6_udp(struct xdp_md *ctx, const struct bpx_pkt *p)
{
	int grow = sizeof(struct ipv6hdr) + sizeof(struct bpx_icmphdr);
	__u32 quote = ipv6_l4_off(p->l4_off) - sizeof(struct ethhdr) + refuse_l4_quote(p);	/* SCTP: refuse.h */
	struct bpx_icmphdr *icmp;
	void *data, *data_end;
	struct ipv6hdr *ip6;
	__u64 sum;
	int v;

	if (quote > BPX_ICMP6_QUOTE_MAX)
		return drop(BPX_DROP_NO_ENDPOINTS);	/* the parse stage's bound makes this unreachable */
	v = icmp_reply_eth(ctx, grow, bpf_htons(ETH_P_IPV6));
	if (v != BPX_CONTINUE)
		return v;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (bpf_xdp_adjust_tail(ctx, (int)(sizeof(struct ethhdr) + grow + quote) - (int)(data_end - data)))
		return drop(BPX_DROP_NO_ENDPOINTS);
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	ip6 = data + sizeof(struct ethhdr);
	icmp = (void *)(ip6 + 1);
	if ((void *)(icmp + 1) > data_end)
		return drop(BPX_DROP_TRUNCATED_L4);
	ipv6_reply_header(ip6, p, IPPROTO_ICMPV6, sizeof(*icmp) + quote);
	__builtin_memset(icmp, 0, sizeof(*icmp));
	icmp->type = BPX_ICMP6_DEST_UNREACH;
	icmp->code = BPX_ICMP6_PORT_UNREACH;
	sum = (__u32)csum_pseudo6(&p->dst, &p->src, sizeof(*icmp) + quote, IPPROTO_ICMPV6);
	sum += (__u32)bpf_csum_diff(NULL, 0, (__be32 *)icmp, sizeof(*icmp), 0);
	sum += csum_words(icmp + 1, data_end, quote);
	icmp->checksum = ~csum_fold64(sum);
	return tx(BPX_EVENT_PKT_REFUSED_NO_ENDPOINTS);
}

/* The refusal stage's work for either family (SCTP as UDP: refuse.h). */
static __always_inline int refuse_flow(struct xdp_md *ctx, const struct bpx_pkt *p)
{
	if (p->family == BPX_FAMILY_V6)
		return p->proto == IPPROTO_TCP ? refuse6_tcp(ctx, p) : refuse6_udp(ctx, p);
	return refuse(ctx, p);
}

#endif
