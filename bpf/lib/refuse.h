/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Refusing a new flow to a service without endpoints, at XDP, the way
 * kube-proxy's REJECT does: a TCP segment gets a RST, a UDP datagram or an
 * SCTP packet an ICMP port unreachable, sent back out of the device it came in on (XDP_TX), from
 * the address and port the client used. Passing the packet to the stack
 * would do for a NodePort (nothing listens on it, so the kernel refuses),
 * but a LoadBalancer or external IP is not the node's own address: the
 * stack would forward or drop it and the client would time out.
 *
 * The reply is built in place: the frame is cut (TCP) or grown at the head
 * (ICMP quotes the original IP header and 8 bytes of UDP, which stay where
 * they are), headers are written whole, and checksums computed from scratch
 * with bpf_csum_diff. IPv4 without options only (parse.h passes options).
 */
#ifndef BPX_REFUSE_H
#define BPX_REFUSE_H

#include "csum.h"
#include "parse.h"

#define BPX_REFUSE_TTL 64
/* linux/icmp.h pulls in libc headers a BPF target does not have. */
#define BPX_ICMP_DEST_UNREACH 3
#define BPX_ICMP_PORT_UNREACH 3

struct bpx_icmphdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 unused;
};
#define BPX_ICMP_QUOTE (sizeof(struct iphdr) + 8)	/* RFC 792: the IP header and 64 bits of data */

/*
 * Bytes of the L4 header an ICMP error quotes: RFC 792's 8 for UDP. For
 * SCTP 32 when the packet has them: an INIT carries verification tag 0,
 * and Linux's sctp_v4_err/sctp_v6_err match an error about one by the INIT
 * chunk's initiate tag, bytes 16..19 of the SCTP packet, ignoring an error
 * that does not quote it: with 8 bytes the client retried its INIT until
 * connect() timed out (measured in the VM harness, Debian 6.1). Other SCTP
 * packets are matched by their tag, in the first 8 bytes.
 */
#define BPX_SCTP_QUOTE 32
static __always_inline __u32 refuse_l4_quote(const struct bpx_pkt *p)
{
	return p->proto == IPPROTO_SCTP && p->l4_len >= BPX_SCTP_QUOTE ? BPX_SCTP_QUOTE : 8;
}

/* Folds a bpf_csum_diff sum into a 16-bit ones' complement checksum. */
static __always_inline __u16 csum_fold_neg(__s64 sum)
{
	return ~csum_fold64((__u64)(__u32)sum);
}

static __always_inline void eth_swap(struct ethhdr *eth)
{
	__u8 tmp[ETH_ALEN];

	__builtin_memcpy(tmp, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, tmp, ETH_ALEN);
}

static __always_inline void ipv4_reply_header(struct iphdr *ip, __be32 saddr, __be32 daddr, __u8 proto, __u16 tot_len)
{
	ip->version = 4;
	ip->ihl = 5;
	ip->tos = 0;
	ip->tot_len = bpf_htons(tot_len);
	ip->id = 0;
	ip->frag_off = bpf_htons(0x4000);	/* DF */
	ip->ttl = BPX_REFUSE_TTL;
	ip->protocol = proto;
	ip->saddr = saddr;
	ip->daddr = daddr;
	ip->check = 0;
	ip->check = csum_fold_neg(bpf_csum_diff(NULL, 0, (__be32 *)ip, sizeof(*ip), 0));
}

/* The segment's sequence space: SYN and FIN count one each, as data does. */
static __always_inline __u32 tcp_seg_len(const struct tcphdr *th, __u16 l4_len)
{
	return l4_len - th->doff * 4 + th->syn + th->fin;
}

/* What a RST answering th carries (tcp_v4/v6_send_reset's numbers). */
struct bpx_rst {
	__u32 seq;
	__u32 ack;
	bool acks;	/* the answered segment carried no ACK, so the RST acknowledges it */
};

/* The RST's numbers: with the ACK of the segment's sequence space when the segment carried no ACK, else from its ack number. */
static __always_inline struct bpx_rst rst_for(const struct tcphdr *th, __u16 l4_len)
{
	struct bpx_rst r = { .acks = !th->ack };

	if (th->ack)
		r.seq = th->ack_seq;
	else
		r.ack = bpf_htonl(bpf_ntohl(th->seq) + tcp_seg_len(th, l4_len));
	return r;
}

/* Writes the RST's TCP header (no options; the checksum is the caller's, over its family's pseudo header). */
static __always_inline void rst_header(struct tcphdr *th, const struct bpx_pkt *p, struct bpx_rst r)
{
	__builtin_memset(th, 0, sizeof(*th));
	th->source = p->dport;
	th->dest = p->sport;
	th->seq = r.seq;
	th->ack_seq = r.ack;
	th->doff = 5;
	th->rst = 1;
	th->ack = r.acks;
}

/*
 * The Ethernet header of an ICMP error: the head grown by `grow` bytes for
 * the new IP and ICMP headers, the old Ethernet header's addresses swapped
 * into the new one. BPX_CONTINUE, or the verdict when that cannot be done.
 */
static __always_inline int icmp_reply_eth(struct xdp_md *ctx, int grow, __be16 proto)
{
	struct ethhdr *eth, *old_eth;
	void *data, *data_end;

	if (bpf_xdp_adjust_head(ctx, -grow))
		return drop(BPX_DROP_NO_ENDPOINTS);
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	old_eth = data + grow;
	if ((void *)(old_eth + 1) > data_end)
		return drop(BPX_DROP_TRUNCATED_L2);
	__builtin_memcpy(eth->h_dest, old_eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, old_eth->h_dest, ETH_ALEN);
	eth->h_proto = proto;
	return BPX_CONTINUE;
}

/*
 * TCP: a RST as tcp_v4_send_reset would send it: with the ACK of the
 * segment's sequence space when the segment carried no ACK, else from the
 * segment's ack number. A RST is never answered.
 */
static __always_inline int refuse_tcp(struct xdp_md *ctx, const struct bpx_pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *th = (void *)(ip + 1);
	int len = sizeof(*eth) + sizeof(*ip) + sizeof(*th);
	__u32 pseudo[3];
	struct bpx_rst r;
	__s64 sum;

	if ((void *)(th + 1) > data_end)
		return drop(BPX_DROP_TRUNCATED_L4);
	if (th->rst)
		return drop(BPX_DROP_NO_ENDPOINTS);
	r = rst_for(th, p->l4_len);
	if (bpf_xdp_adjust_tail(ctx, len - (int)(data_end - data)))
		return drop(BPX_DROP_NO_ENDPOINTS);
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	ip = (void *)(eth + 1);
	th = (void *)(ip + 1);
	if ((void *)(th + 1) > data_end)
		return drop(BPX_DROP_TRUNCATED_L4);
	eth_swap(eth);
	ipv4_reply_header(ip, p->dst.v4, p->src.v4, IPPROTO_TCP, sizeof(*ip) + sizeof(*th));
	rst_header(th, p, r);
	pseudo[0] = p->dst.v4;
	pseudo[1] = p->src.v4;
	pseudo[2] = bpf_htonl((IPPROTO_TCP << 16) | sizeof(*th));
	sum = bpf_csum_diff(NULL, 0, pseudo, sizeof(pseudo), 0);
	sum = bpf_csum_diff(NULL, 0, (__be32 *)th, sizeof(*th), (__u32)sum);
	th->check = csum_fold_neg(sum);
	return tx(BPX_EVENT_PKT_REFUSED_NO_ENDPOINTS);
}

/* UDP (and SCTP): ICMP destination unreachable, port unreachable, quoting the datagram's IP header and
 * UDP header (SCTP: refuse_l4_quote's bytes). */
static __always_inline int refuse_udp(struct xdp_md *ctx, const struct bpx_pkt *p)
{
	int grow = sizeof(struct iphdr) + sizeof(struct bpx_icmphdr);
	int more = refuse_l4_quote(p) - 8;	/* quoted past RFC 792's 8 bytes: 0 or 24 */
	int len = sizeof(struct ethhdr) + grow + BPX_ICMP_QUOTE + more;
	void *data, *data_end;
	struct iphdr *ip;
	struct bpx_icmphdr *icmp;
	__s64 sum;
	int v;

	v = icmp_reply_eth(ctx, grow, bpf_htons(ETH_P_IP));
	if (v != BPX_CONTINUE)
		return v;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (bpf_xdp_adjust_tail(ctx, len - (int)(data_end - data)))
		return drop(BPX_DROP_NO_ENDPOINTS);
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	ip = data + sizeof(struct ethhdr);
	icmp = (void *)(ip + 1);
	if ((void *)(icmp + 1) + BPX_ICMP_QUOTE > data_end)
		return drop(BPX_DROP_TRUNCATED_L4);
	ipv4_reply_header(ip, p->dst.v4, p->src.v4, IPPROTO_ICMP, grow + BPX_ICMP_QUOTE + more);
	__builtin_memset(icmp, 0, sizeof(*icmp));
	icmp->type = BPX_ICMP_DEST_UNREACH;
	icmp->code = BPX_ICMP_PORT_UNREACH;
	sum = bpf_csum_diff(NULL, 0, (__be32 *)icmp, sizeof(*icmp) + BPX_ICMP_QUOTE, 0);
	if (more) {
		void *rest = (void *)(icmp + 1) + BPX_ICMP_QUOTE;

		if (rest + BPX_SCTP_QUOTE - 8 > data_end)
			return drop(BPX_DROP_TRUNCATED_L4);
		sum = bpf_csum_diff(NULL, 0, rest, BPX_SCTP_QUOTE - 8, (__u32)sum);
	}
	icmp->checksum = csum_fold_neg(sum);
	return tx(BPX_EVENT_PKT_REFUSED_NO_ENDPOINTS);
}

/* The refusal stage's work, by protocol: SCTP as UDP (ICMP port unreachable,
 * the quote's 8 bytes its ports and verification tag), as kube-proxy's REJECT
 * answers anything that is not TCP. */
static __always_inline int refuse(struct xdp_md *ctx, const struct bpx_pkt *p)
{
	return p->proto == IPPROTO_TCP ? refuse_tcp(ctx, p) : refuse_udp(ctx, p);
}

#endif
