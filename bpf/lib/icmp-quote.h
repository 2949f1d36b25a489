/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The first half of the ICMP error stage (icmp-error.h): is this ICMP or
 * ICMPv6 packet an error, and which TCP/UDP packet does it quote? Reads the
 * quoted IP header and the ports after it into a struct bpx_icmp_quote,
 * family by family. Direct packet access only, so XDP and TC (after a pull)
 * share it.
 *
 * Errors: IPv4 destination unreachable (3, every code: port unreachable,
 * fragmentation needed, ...), time exceeded (11) and parameter problem (12);
 * ICMPv6 destination unreachable (1), packet too big (2), time exceeded (3)
 * and parameter problem (4). Every other type (echo, neighbour discovery,
 * redirects) is not about a flow: it goes to the stack as pkt_pass_icmp, as
 * all ICMP did before.
 *
 * Shapes, and why:
 *  - ICMP header, or the quoted IP header and the 8 bytes after it, past the
 *    end of the packet: drop, icmp_truncated. The kernel drops these too
 *    (icmp_rcv's header pull; icmp_socket_deliver wants ihl * 4 + 8 bytes;
 *    ICMPv6: the fixed header and 8 bytes), so nothing useful is lost.
 *  - A quoted IPv4 header with IHL < 5: drop, icmp_err_invalid (the kernel's
 *    icmp_unreach drops a "mangled header" the same way).
 *  - A quote of another IP version, with IPv4 options, a fragment (not the
 *    first), an IPv6 extension header parse6.h would not step over, or a
 *    protocol other than TCP/UDP/SCTP (an ICMP echo): no packet of a flow
 *    this datapath translates looks like that (parse.h passes all of them
 *    untranslated), so the error is not about one: pkt_icmp_err_no_flow, to
 *    the stack.
 */
#ifndef BPX_ICMP_QUOTE_H
#define BPX_ICMP_QUOTE_H

#include "conntrack.h"
#include "parse.h"
#include "refuse6.h"

#define BPX_ICMP_TIME_EXCEEDED 11
#define BPX_ICMP_PARAMETER_PROB 12
#define BPX_ICMP6_PACKET_TOO_BIG 2
#define BPX_ICMP6_TIME_EXCEEDED 3
#define BPX_ICMP6_PARAM_PROB 4

/* Where a quoted L4 header can sit, masked for the verifier: the outer
 * headers (parse6.h's bound), ICMPv6's 8 bytes, the quoted fixed header and
 * the quoted extension headers (the same bound again). */
#define BPX_ICMP_QUOTE_OFF_MASK 0x3ff
_Static_assert(14 + 40 + BPX_IPV6_EXT_BYTES_MAX + 8 + 40 + BPX_IPV6_EXT_BYTES_MAX <= BPX_ICMP_QUOTE_OFF_MASK,
	       "the quote offset mask must cover the bound");

/* What an error must quote past the IP header (RFC 792, RFC 4443; and what
 * the kernel needs to find a socket): 8 bytes, the ports among them. */
#define BPX_ICMP_QUOTE_L4_MIN 8

/* The TCP/UDP packet an error quotes, as the node sent it (or received it). */
struct bpx_icmp_quote {
	union bpx_addr src;	/* zero past an IPv4 address: usable in map keys */
	union bpx_addr dst;
	__be16 sport;
	__be16 dport;
	__u16 l4_off;		/* where the quoted TCP/UDP header starts in the frame */
	__u16 l4_quoted;	/* bytes of it (and after it) the error carries */
	__u8 proto;
};

static __always_inline bool icmp4_is_error(__u8 type)
{
	return type == BPX_ICMP_DEST_UNREACH || type == BPX_ICMP_TIME_EXCEEDED || type == BPX_ICMP_PARAMETER_PROB;
}

static __always_inline bool icmp6_is_error(__u8 type)
{
	return type >= BPX_ICMP6_DEST_UNREACH && type <= BPX_ICMP6_PARAM_PROB;
}

static __always_inline bool quote_proto_is_translated(__u8 proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP;
}

/* The quote of an ICMP (IPv4) error; pkt_pass_icmp when the packet is not an error. */
static __always_inline int icmp4_quote(void *data, void *data_end, const struct bpx_pkt *p, struct bpx_icmp_quote *q)
{
	/* No outer IP options get this far (parse.h): the offsets are constants. */
	struct bpx_icmphdr *icmp = data + sizeof(struct ethhdr) + sizeof(struct iphdr);
	struct iphdr *in = (void *)(icmp + 1);
	struct bpx_l4_ports *ports = (void *)(in + 1);

	if ((void *)(icmp + 1) > data_end || p->l4_len < sizeof(*icmp))
		return drop(BPX_DROP_ICMP_TRUNCATED);
	if (!icmp4_is_error(icmp->type))
		return pass(BPX_EVENT_PKT_PASS_ICMP);
	if ((void *)(ports + 1) > data_end || p->l4_len < sizeof(*icmp) + sizeof(*in) + BPX_ICMP_QUOTE_L4_MIN)
		return drop(BPX_DROP_ICMP_TRUNCATED);
	if (in->ihl < 5)
		return drop(BPX_DROP_ICMP_ERR_INVALID);
	if (in->version != 4 || ipv4_has_options(in) || (in->frag_off & bpf_htons(BPX_IP_OFFSET)) ||
	    !quote_proto_is_translated(in->protocol))
		return pass(BPX_EVENT_PKT_ICMP_ERR_NO_FLOW);
	q->src = addr_v4(in->saddr);
	q->dst = addr_v4(in->daddr);
	q->sport = ports->source;
	q->dport = ports->dest;
	q->proto = in->protocol;
	q->l4_off = (void *)ports - data;
	q->l4_quoted = p->l4_len - sizeof(*icmp) - sizeof(*in);
	return BPX_CONTINUE;
}

/* The quote of an ICMPv6 error, the quoted extension headers stepped over as parse6.h steps over a packet's. */
static __always_inline int icmp6_quote(void *data, void *data_end, const struct bpx_pkt *p, struct bpx_icmp_quote *q)
{
	struct bpx_icmphdr *icmp = data + ipv6_l4_off(p->l4_off);
	struct bpx_l4_ports *ports;
	struct ipv6hdr *in;
	__u16 quoted, ext_len = 0;
	__u32 off;
	__u8 proto = 0;
	int v;

	if ((void *)(icmp + 1) > data_end || p->l4_len < sizeof(*icmp))
		return drop(BPX_DROP_ICMP_TRUNCATED);
	if (!icmp6_is_error(icmp->type))
		return pass(BPX_EVENT_PKT_PASS_ICMP);
	in = (void *)(icmp + 1);
	quoted = p->l4_len - sizeof(*icmp);
	if ((void *)(in + 1) > data_end || quoted < sizeof(*in) + BPX_ICMP_QUOTE_L4_MIN)
		return drop(BPX_DROP_ICMP_TRUNCATED);
	if (in->version != 6)
		return pass(BPX_EVENT_PKT_ICMP_ERR_NO_FLOW);
	v = ipv6_skip_ext(in, data_end, quoted - sizeof(*in), &proto, &ext_len);
	if (v != BPX_CONTINUE)	/* cut short: as the fixed header; a fragment or a header not stepped over: not ours */
		return verdict_is_drop(v) ? drop(BPX_DROP_ICMP_TRUNCATED) : pass(BPX_EVENT_PKT_ICMP_ERR_NO_FLOW);
	if (!quote_proto_is_translated(proto))
		return pass(BPX_EVENT_PKT_ICMP_ERR_NO_FLOW);
	off = ((void *)(in + 1) - data + ext_len) & BPX_ICMP_QUOTE_OFF_MASK;
	ports = data + off;
	if ((void *)(ports + 1) > data_end || quoted < sizeof(*in) + ext_len + BPX_ICMP_QUOTE_L4_MIN)
		return drop(BPX_DROP_ICMP_TRUNCATED);
	__builtin_memcpy(q->src.b, in->saddr.s6_addr, 16);
	__builtin_memcpy(q->dst.b, in->daddr.s6_addr, 16);
	q->sport = ports->source;
	q->dport = ports->dest;
	q->proto = proto;
	q->l4_off = off;
	q->l4_quoted = quoted - sizeof(*in) - ext_len;
	return BPX_CONTINUE;
}

/* The quote of an error of the packet's family (p: the parse stage's, ICMP or ICMPv6). */
static __always_inline int icmp_quote(void *data, void *data_end, const struct bpx_pkt *p, struct bpx_icmp_quote *q)
{
	return p->family == BPX_FAMILY_V6 ? icmp6_quote(data, data_end, p, q) : icmp4_quote(data, data_end, p, q);
}

#endif
