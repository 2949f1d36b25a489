/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The reverse NAT of a local backend's SCTP reply at TC egress (tc.bpf.c's
 * stage_reply_local): the source address and port restored to the frontend
 * the client used. Through skb helpers, as the TCP/UDP path: the IPv4 header
 * checksum with bpf_l3_csum_replace; the CRC32c read, updated for the port
 * change (sctp-crc.h) and written back. An skb whose CRC is still to be
 * computed (CHECKSUM_PARTIAL: the pod's veth offloads it, the field holds 0)
 * keeps its 0, and the kernel computes the CRC over the rewritten bytes
 * before the frame leaves the node. A reply that ends the association
 * (ABORT, SHUTDOWN...) shortens both of the flow's entries (sctp-ct.h).
 */
#ifndef BPX_SCTP_TC_H
#define BPX_SCTP_TC_H

#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/if_ether.h>
#include "parse.h"
#include "sctp-crc.h"
#include "sctp-ct.h"

#define BPX_SCTP_CSUM_OFF 8	/* the checksum's offset in the SCTP common header */

/* The SCTP source port to `port`, its checksum moved with it. */
static __always_inline bool tc_sctp_set_sport(struct __sk_buff *skb, const struct bpx_pkt *p, __be16 port)
{
	__u8 field[4];
	__u32 crc;

	if (bpf_skb_load_bytes(skb, p->l4_off + BPX_SCTP_CSUM_OFF, field, sizeof(field)))
		return false;
	crc = sctp_crc_after_ports(sctp_crc_of_field(field), p->l4_len, p->sport, p->dport, port, p->dport);
	sctp_crc_to_field(field, crc);
	return bpf_skb_store_bytes(skb, p->l4_off + BPX_SCTP_CSUM_OFF, field, sizeof(field), 0) == 0 &&
	       bpf_skb_store_bytes(skb, p->l4_off, &port, sizeof(port), 0) == 0;
}

/* Rewrites the source address and port of an SCTP packet of either family. */
static __always_inline int tc_sctp_snat_src(struct __sk_buff *skb, const struct bpx_pkt *p, const union bpx_addr *addr,
					    __be16 port)
{
	__u32 ip_off = sizeof(struct ethhdr);

	if (p->family == BPX_FAMILY_V6) {
		if (bpf_skb_store_bytes(skb, ip_off + offsetof(struct ipv6hdr, saddr), addr->v6, 16, 0))
			return drop(BPX_DROP_TRUNCATED_L4);
	} else if (bpf_l3_csum_replace(skb, ip_off + offsetof(struct iphdr, check), p->src.v4, addr->v4, sizeof(addr->v4)) ||
		   bpf_skb_store_bytes(skb, ip_off + offsetof(struct iphdr, saddr), &addr->v4, sizeof(addr->v4), 0)) {
		return drop(BPX_DROP_TRUNCATED_L4);
	}
	if (!tc_sctp_set_sport(skb, p, port))
		return drop(BPX_DROP_TRUNCATED_L4);
	return pass(BPX_EVENT_TC_REPLY_RNAT);
}

/* The first chunk's type of an SCTP packet at TC; 0 when there is none. */
static __always_inline __u8 tc_sctp_first_chunk(struct __sk_buff *skb, const struct bpx_pkt *p)
{
	__u8 type = 0;

	if (p->l4_len <= BPX_SCTP_HLEN || bpf_skb_load_bytes(skb, p->l4_off + BPX_SCTP_HLEN, &type, sizeof(type)))
		return 0;
	return type;
}

/* A local backend's SCTP reply (REPLY entry `v`, key `k`): the flow's end tracked, the source restored. */
static __always_inline int tc_sctp_reply(struct __sk_buff *skb, const struct bpx_pkt *p, struct bpx_ct_key *k,
					 struct bpx_ct_val *v)
{
	__u8 end = sctp_chunk_end(tc_sctp_first_chunk(skb, p));

	if (end)
		ct_sctp_end_reply(p, k, v, end, bpf_ktime_get_ns());
	return tc_sctp_snat_src(skb, p, &v->addr, v->port);
}

#endif
