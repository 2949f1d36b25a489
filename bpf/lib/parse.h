/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The parse stage of the packet programs: Ethernet -> IPv4 | IPv6 -> TCP |
 * UDP | SCTP, into a struct bpx_pkt the later stages read. Each step returns
 * BPX_CONTINUE or a verdict (verdict.h). What is not ours to handle goes to
 * the stack untouched and counted; what the kernel would drop anyway is
 * dropped here with a named reason. Per shape, and why:
 *
 *  - Runt frame (< 14 bytes): drop, truncated_l2. Drivers drop runts before
 *    XDP; BPF_PROG_TEST_RUN refuses one (EINVAL), so only the verifier ever
 *    walks this branch.
 *  - VLAN tags (802.1Q, 802.1ad): pass, pkt_pass_vlan. The node address of a
 *    VLAN lives on the VLAN device, where the kernel has already popped the
 *    tag: a NodePort there is served by the program attached to that device.
 *    Translating tagged frames here would also mean keeping the tag on
 *    transmit, for no user we know of.
 *  - Not IP (ARP, LLDP, ...): pass, pkt_pass_not_ip.
 *  - IP header cut short, or its total/payload length past the frame: drop,
 *    truncated_l3 (ip_rcv/ipv6_rcv drop these as well). Bytes past the IP
 *    length (Ethernet padding) are allowed, as in the kernel.
 *  - IP version not matching the EtherType, IHL < 5, total length < IHL:
 *    drop, invalid_l3 (ip_rcv's inhdr_error).
 *  - IPv4 fragments (MF or an offset): pass, pkt_pass_fragment. Only the
 *    first carries ports; the stack reassembles them, as for kube-proxy.
 *  - IPv4 options (IHL > 5): pass, pkt_pass_ip_options. Rare, and some
 *    (source route, record route, timestamp) change the destination or must
 *    be written by the stack; a load balancer rewriting such a packet would
 *    be wrong, passing it keeps the kernel's behaviour.
 *  - IPv6 extension headers: hop-by-hop (first only), destination options
 *    and a routing header with no segments left are stepped over, within a
 *    bound; a fragment header passes as pkt_pass_fragment, anything else
 *    (a routing header with segments left, AH, ...) as pkt_pass_ipv6_ext.
 *    Why each: parse6.h.
 *  - ICMP, ICMPv6: pass, pkt_pass_icmp (neighbour discovery, ping to the
 *    node); the programs hand errors on to icmp-error.h, which translates
 *    those about service flows.
 *  - Other L4 protocols (ESP, GRE, no-next-header, ...): pass, pkt_pass_other_l4.
 *  - TCP/UDP/SCTP header past the IP length: drop, truncated_l4; TCP data
 *    offset < 5 or UDP length < 8: drop, invalid_l4 (tcp_v4_rcv and
 *    __udp4_lib_rcv drop both).
 *  - IPv4 header checksum: not verified here (nor by Katran or Cilium); the
 *    stack verifies it for what is passed, and NAT updates it incrementally,
 *    so a bad one stays bad and is dropped where the packet lands.
 */
#ifndef BPX_PARSE_H
#define BPX_PARSE_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include "verdict.h"
#include "parse6.h"

/* ip.h's IP_MF and IP_OFFSET are kernel-internal. */
#define BPX_IP_MF 0x2000
#define BPX_IP_OFFSET 0x1fff

/* A parsed packet, as the stages after parsing see it. */
struct bpx_pkt {
	union bpx_addr src;	/* zeroed past the IPv4 address: usable in map keys */
	union bpx_addr dst;
	__be16 sport;
	__be16 dport;
	__u16 l4_len;		/* bytes from the L4 header to the end of the IP packet */
	__u16 l4_off;		/* where the L4 header starts in the frame (IPv6: after the extension headers) */
	__u8 proto;		/* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP */
	__u8 family;		/* BPX_FAMILY_* */
};

/* The ports every port-carrying protocol we balance starts with. */
struct bpx_l4_ports {
	__be16 source;
	__be16 dest;
};

#define BPX_SCTP_HLEN 12	/* common header: ports, verification tag, checksum */

static __always_inline bool eth_is_vlan(__be16 proto)
{
	return proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD);
}

static __always_inline bool ipv4_is_fragment(const struct iphdr *ip)
{
	return (ip->frag_off & bpf_htons(BPX_IP_MF | BPX_IP_OFFSET)) != 0;
}

static __always_inline bool ipv4_has_options(const struct iphdr *ip)
{
	return ip->ihl > 5;
}

static __always_inline bool pkt_is_icmp(const struct bpx_pkt *p)
{
	return (p->family == BPX_FAMILY_V4 && p->proto == IPPROTO_ICMP) ||
	       (p->family == BPX_FAMILY_V6 && p->proto == IPPROTO_ICMPV6);
}

static __always_inline bool pkt_has_ports(const struct bpx_pkt *p)
{
	return p->proto == IPPROTO_TCP || p->proto == IPPROTO_UDP || p->proto == IPPROTO_SCTP;
}

static __always_inline int parse_ipv4(void *data, void *data_end, __u32 len, struct bpx_pkt *p)
{
	struct iphdr *ip = data + sizeof(struct ethhdr);
	__u16 tot;

	if ((void *)(ip + 1) > data_end)
		return drop(BPX_DROP_TRUNCATED_L3);
	if (ip->version != 4 || ip->ihl < 5)
		return drop(BPX_DROP_INVALID_L3);
	tot = bpf_ntohs(ip->tot_len);
	if (tot < ip->ihl * 4)
		return drop(BPX_DROP_INVALID_L3);
	if (tot > len - sizeof(struct ethhdr))
		return drop(BPX_DROP_TRUNCATED_L3);
	if (ipv4_is_fragment(ip))
		return pass(BPX_EVENT_PKT_PASS_FRAGMENT);
	if (ipv4_has_options(ip))
		return pass(BPX_EVENT_PKT_PASS_IP_OPTIONS);
	p->family = BPX_FAMILY_V4;
	p->proto = ip->protocol;
	p->src.v4 = ip->saddr;
	p->dst.v4 = ip->daddr;
	p->l4_len = tot - sizeof(*ip);
	p->l4_off = sizeof(struct ethhdr) + sizeof(*ip);
	return BPX_CONTINUE;
}

static __always_inline int parse_ipv6(void *data, void *data_end, __u32 len, struct bpx_pkt *p)
{
	struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
	__u16 plen, ext_len = 0;
	__u8 proto = 0;
	int v;

	if ((void *)(ip6 + 1) > data_end)
		return drop(BPX_DROP_TRUNCATED_L3);
	if (ip6->version != 6)
		return drop(BPX_DROP_INVALID_L3);
	plen = bpf_ntohs(ip6->payload_len);
	if (plen > len - sizeof(struct ethhdr) - sizeof(*ip6))
		return drop(BPX_DROP_TRUNCATED_L3);
	v = ipv6_skip_ext(ip6, data_end, plen, &proto, &ext_len);
	if (v != BPX_CONTINUE)
		return v;
	p->family = BPX_FAMILY_V6;
	p->proto = proto;
	__builtin_memcpy(p->src.b, ip6->saddr.s6_addr, 16);
	__builtin_memcpy(p->dst.b, ip6->daddr.s6_addr, 16);
	p->l4_len = plen - ext_len;
	p->l4_off = sizeof(struct ethhdr) + sizeof(*ip6) + ext_len;
	return BPX_CONTINUE;
}

/* TCP, UDP or SCTP where the L3 step left it (p->l4_off: no IPv4 options get
 * this far; IPv6 extension headers only those parse6.h steps over). */
static __always_inline int parse_l4(void *l4, void *data_end, struct bpx_pkt *p)
{
	struct bpx_l4_ports *ports = l4;
	__u16 hlen = p->proto == IPPROTO_TCP ? sizeof(struct tcphdr) :
		     p->proto == IPPROTO_UDP ? sizeof(struct udphdr) : BPX_SCTP_HLEN;

	if (p->l4_len < hlen || (void *)(ports + 1) > data_end)
		return drop(BPX_DROP_TRUNCATED_L4);
	if (p->proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > data_end)
			return drop(BPX_DROP_TRUNCATED_L4);
		if (th->doff < 5)
			return drop(BPX_DROP_INVALID_L4);
		if (th->doff * 4 > p->l4_len)
			return drop(BPX_DROP_TRUNCATED_L4);
	} else if (p->proto == IPPROTO_UDP) {
		struct udphdr *uh = l4;
		__u16 ulen;

		if ((void *)(uh + 1) > data_end)
			return drop(BPX_DROP_TRUNCATED_L4);
		ulen = bpf_ntohs(uh->len);
		if (ulen < sizeof(*uh))
			return drop(BPX_DROP_INVALID_L4);
		if (ulen > p->l4_len)
			return drop(BPX_DROP_TRUNCATED_L4);
	}
	p->sport = ports->source;
	p->dport = ports->dest;
	return BPX_CONTINUE;
}

/*
 * The whole parse stage. `len` is the length of the whole frame: in XDP all
 * of it lies between data and data_end; a TC skb's payload may sit in pages
 * past data_end (a TCP segment with data, GSO), so the lengths the headers
 * claim are checked against `len` and only the headers themselves against
 * data_end. (Checking IP lengths against data_end made TC miss every TCP
 * segment that carried data: measured in the NodePort lab test.)
 */
static __always_inline int parse_packet(void *data, void *data_end, __u32 len, struct bpx_pkt *p)
{
	struct ethhdr *eth = data;
	void *l4;
	int v;

	if ((void *)(eth + 1) > data_end || len < sizeof(*eth))
		return drop(BPX_DROP_TRUNCATED_L2);
	if (eth_is_vlan(eth->h_proto))
		return pass(BPX_EVENT_PKT_PASS_VLAN);
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		v = parse_ipv4(data, data_end, len, p);
		l4 = data + sizeof(struct ethhdr) + sizeof(struct iphdr);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		v = parse_ipv6(data, data_end, len, p);
		l4 = data + ipv6_l4_off(p->l4_off);
	} else {
		return pass(BPX_EVENT_PKT_PASS_NOT_IP);
	}
	if (v != BPX_CONTINUE)
		return v;
	if (pkt_is_icmp(p))
		return pass(BPX_EVENT_PKT_PASS_ICMP);
	if (!pkt_has_ports(p))
		return pass(BPX_EVENT_PKT_PASS_OTHER_L4);
	return parse_l4(l4, data_end, p);
}

#endif
