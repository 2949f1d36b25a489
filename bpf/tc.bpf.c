// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The TC programs for node devices (tcx, clsact before 6.6), the other half
 * of xdp.bpf.c:
 *  - egress: a reply of a local backend to a flow XDP DNATed leaves with the
 *    frontend as its source, so the client sees the address and port it used;
 *  - ingress: a frame XDP translated but could not address (the next hop's
 *    MAC unknown, fib.h) is sent with bpf_redirect_neigh, which resolves it.
 * Checksums go through bpf_l3/l4_csum_replace, which handle CHECKSUM_PARTIAL
 * skbs (platform-notes.md); over IPv6 (no header checksum) the L4 checksum
 * takes the 128-bit address change as one bpf_csum_diff. Shares bpx_ct_v1
 * with xdp.bpf.o (pinned by name). Both families, TCP, UDP and SCTP (whose
 * CRC32c has no helper: sctp-tc.h).
 */
#include <linux/pkt_cls.h>
#include "lib/parse.h"
#include "lib/conntrack.h"
#include "lib/fib.h"
#include "lib/icmp-error.h"
#include "lib/sctp-tc.h"

#define IP_OFF sizeof(struct ethhdr)
#define L4_OFF (IP_OFF + sizeof(struct iphdr))
/* What egress makes linear before parsing an IPv6 packet: the fixed header,
 * the extension headers parse6.h steps over, a TCP header. */
#define TC_PULL_V6 (IP_OFF + sizeof(struct ipv6hdr) + BPX_IPV6_EXT_BYTES_MAX + sizeof(struct tcphdr))

/* Where a TCP or UDP checksum sits in the frame. */
static __always_inline __u32 l4_csum_off(__u8 proto)
{
	return L4_OFF + (proto == IPPROTO_TCP ? offsetof(struct tcphdr, check) : offsetof(struct udphdr, check));
}

/* Rewrites the source address and port of an IPv4 TCP/UDP packet. */
static __always_inline int tc_snat_src(struct __sk_buff *skb, __u8 proto, __be32 old_addr, __be32 addr,
				       __be16 old_port, __be16 port)
{
	__u64 l4flags = BPF_F_PSEUDO_HDR | sizeof(addr) | (proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0);
	__u64 pflags = sizeof(port) | (proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0);

	if (bpf_l4_csum_replace(skb, l4_csum_off(proto), old_addr, addr, l4flags) ||
	    bpf_l3_csum_replace(skb, IP_OFF + offsetof(struct iphdr, check), old_addr, addr, sizeof(addr)) ||
	    bpf_skb_store_bytes(skb, IP_OFF + offsetof(struct iphdr, saddr), &addr, sizeof(addr), 0) ||
	    bpf_l4_csum_replace(skb, l4_csum_off(proto), old_port, port, pflags) ||
	    bpf_skb_store_bytes(skb, L4_OFF, &port, sizeof(port), 0))
		return drop(BPX_DROP_TRUNCATED_L4);
	return pass(BPX_EVENT_TC_REPLY_RNAT);
}

/* Rewrites the source address and port of an IPv6 TCP/UDP packet (its L4
 * header at p->l4_off, after any extension headers parse6.h stepped over). */
static __always_inline int tc_snat_src6(struct __sk_buff *skb, const struct bpx_pkt *p, const union bpx_addr *addr,
					__be16 port)
{
	__u64 mangled = p->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	__u32 csum_off = p->l4_off + (p->proto == IPPROTO_TCP ? offsetof(struct tcphdr, check) : offsetof(struct udphdr, check));
	__be32 old[4], new[4];
	__s64 diff;

	__builtin_memcpy(old, p->src.v6, sizeof(old));
	__builtin_memcpy(new, addr->v6, sizeof(new));
	diff = bpf_csum_diff(old, sizeof(old), new, sizeof(new), 0);
	/* Size 0 in the flags: `to` is a checksum difference, not a field. */
	if (diff < 0 || bpf_l4_csum_replace(skb, csum_off, 0, diff, BPF_F_PSEUDO_HDR | mangled) ||
	    bpf_skb_store_bytes(skb, IP_OFF + offsetof(struct ipv6hdr, saddr), new, sizeof(new), 0) ||
	    bpf_l4_csum_replace(skb, csum_off, p->sport, port, sizeof(port) | mangled) ||
	    bpf_skb_store_bytes(skb, p->l4_off, &port, sizeof(port), 0))
		return drop(BPX_DROP_TRUNCATED_L4);
	return pass(BPX_EVENT_TC_REPLY_RNAT);
}

/* The reverse-NAT stage of egress: a local backend's reply to a DNATed flow. */
static __always_inline int stage_reply_local(struct __sk_buff *skb, const struct bpx_pkt *p)
{
	struct bpx_ct_key k;
	struct bpx_ct_val *v;

	/* Zeroed whole by ct_key_of: a designated initializer leaves the
	 * unions' other 12 bytes unspecified (docs/findings.md), and a key
	 * with stack garbage misses, now and then. */
	ct_key_of(&k, p->family, &p->src, p->sport, &p->dst, p->dport, p->proto, BPX_CT_REPLY);
	v = ct_lookup(&k, bpf_ktime_get_ns());
	if (!v || !(v->flags & BPX_CTF_LOCAL))
		return pass(BPX_EVENT_PKT_PASS_NO_FRONTEND);
	if (p->proto == IPPROTO_SCTP)
		return tc_sctp_reply(skb, p, &k, v);
	if (p->family == BPX_FAMILY_V6)
		return tc_snat_src6(skb, p, &v->addr, v->port);
	return tc_snat_src(skb, p->proto, p->src.v4, v->addr.v4, p->sport, v->port);
}

static __always_inline __u32 min_u32(__u32 a, __u32 b)
{
	return a < b ? a : b;
}

/*
 * Makes the headers linear for parsing; false when the packet is too short
 * to be a reply we translate. IPv6: the fixed header and a TCP header first
 * (what nearly every reply has), the extension headers' bound only when one
 * follows, so a reply's payload is not pulled into the head for nothing.
 */
static __always_inline bool tc_pull_headers(struct __sk_buff *skb)
{
	struct ipv6hdr *ip6;

	if (skb->protocol != bpf_htons(ETH_P_IPV6))
		return !(bpf_skb_pull_data(skb, L4_OFF + sizeof(struct tcphdr)) && bpf_skb_pull_data(skb, L4_OFF + sizeof(struct udphdr)));
	if (bpf_skb_pull_data(skb, min_u32(skb->len, IP_OFF + sizeof(struct ipv6hdr) + sizeof(struct tcphdr))))
		return false;
	ip6 = (void *)(long)skb->data + IP_OFF;
	if ((void *)(ip6 + 1) > (void *)(long)skb->data_end)
		return false;
	if (!ipv6_is_ext(ip6->nexthdr))
		return true;
	return bpf_skb_pull_data(skb, min_u32(skb->len, TC_PULL_V6)) == 0;
}

/* The program's one exit, for TC: counts, and turns the verdict into a TC action. */
static __always_inline int tc_exit(int verdict, int redirect_ret)
{
	if (verdict_count(verdict))
		return TC_ACT_SHOT;
	if (verdict_kind(verdict) == BPX_VERDICT_REDIRECT)
		return redirect_ret;
	return TC_ACT_OK;
}

SEC("tc")
int bpx_tc_egress(struct __sk_buff *skb)
{
	struct bpx_pkt p = {};
	int v;

	/* Only replies matter here: leave everything else uncounted (every
	 * packet the node sends passes this hook). */
	if (!tc_pull_headers(skb))
		return TC_ACT_OK;
	v = parse_packet((void *)(long)skb->data, (void *)(long)skb->data_end, skb->len, &p);
	if (v == pass(BPX_EVENT_PKT_PASS_ICMP)) {	/* an error about a DNATed flow (icmp-error.h) */
		v = icmp_error_from_local(skb, &p);
		return v == BPX_CONTINUE ? TC_ACT_OK : tc_exit(v, 0);
	}
	if (v != BPX_CONTINUE || !pkt_has_ports(&p))
		return TC_ACT_OK;
	v = stage_reply_local(skb, &p);
	if (v == pass(BPX_EVENT_PKT_PASS_NO_FRONTEND))
		return TC_ACT_OK;
	return tc_exit(v, 0);
}

SEC("tc")
int bpx_tc_ingress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	struct bpx_meta *meta = (void *)(long)skb->data_meta;
	int ret;

	if ((void *)(meta + 1) > data || meta->magic != BPX_META_MAGIC)
		return TC_ACT_OK;
	ret = bpf_redirect_neigh(meta->ifindex, NULL, 0, 0);
	return tc_exit(redirected(BPX_EVENT_TC_REDIRECT_NEIGH), ret);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
