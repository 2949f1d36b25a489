/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What a NAT rewrite does to the TCP/UDP header in either family (nat.h for
 * IPv4, nat6.h for IPv6): find the L4 checksum field, then rewrite the
 * ports, keeping that checksum right.
 */
#ifndef BPX_NAT_L4_H
#define BPX_NAT_L4_H

#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include "common.h"
#include "csum.h"
#include "parse.h"

/* The checksum field of the TCP or UDP header at ports, or NULL when the header is cut short. */
static __always_inline __u16 *l4_check_field(struct bpx_l4_ports *ports, __u8 proto, void *data_end)
{
	if (proto == IPPROTO_TCP) {
		struct tcphdr *th = (void *)ports;

		if ((void *)(th + 1) > data_end)
			return NULL;
		return &th->check;
	}
	struct udphdr *uh = (void *)ports;

	if ((void *)(uh + 1) > data_end)
		return NULL;
	return &uh->check;
}

/*
 * Ports to sport/dport, updating l4sum when has_l4sum (an IPv4 UDP datagram
 * may carry none). Last step of a rewrite: in UDP, 0 means "no checksum", so
 * a computed 0 is sent as its other form.
 */
static __always_inline void nat_rewrite_ports(struct bpx_l4_ports *ports, __u16 *l4sum, bool has_l4sum, __u8 proto,
					      __be16 sport, __be16 dport)
{
	if (ports->source != sport) {
		if (has_l4sum)
			csum_replace2(l4sum, ports->source, sport);
		ports->source = sport;
	}
	if (ports->dest != dport) {
		if (has_l4sum)
			csum_replace2(l4sum, ports->dest, dport);
		ports->dest = dport;
	}
	if (proto == IPPROTO_UDP && has_l4sum && *l4sum == 0)
		*l4sum = 0xffff;
}

#endif
