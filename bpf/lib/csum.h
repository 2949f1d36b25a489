/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Incremental Internet checksum updates (RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m'))
 * for programs that write packets directly (XDP). They assume the field holds
 * a full checksum, which is what arrives from a wire. They are wrong for a
 * CHECKSUM_PARTIAL skb turned into an XDP frame (a veth fed by a local
 * socket with TX checksum offload on): its field holds only the pseudo-header
 * sum, which moves the other way and ignores ports; XDP cannot tell the two
 * apart. TC programs use bpf_l3/l4_csum_replace, which know the skb's state.
 * The lab turns TX checksum offload off where packets start (see
 * test/lab/nodeport-xdp.test.ts), as a NIC's wire would have it.
 *
 * The sums work on 16-bit words as they sit in memory: ones-complement
 * addition commutes with byte swapping, so no byte-order conversion is needed.
 */
#ifndef BPX_CSUM_H
#define BPX_CSUM_H

#include "common.h"

static __always_inline __u16 csum_fold64(__u64 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

/* A 16-bit word of the covered data changed from `from` to `to`. */
static __always_inline void csum_replace2(__u16 *sum, __u16 from, __u16 to)
{
	__u64 s = (__u16)~*sum;

	s += (__u16)~from;
	s += to;
	*sum = ~csum_fold64(s);
}

/* A 32-bit word (an IPv4 address) changed. */
static __always_inline void csum_replace4(__u16 *sum, __u32 from, __u32 to)
{
	__u64 s = (__u16)~*sum;

	s += (__u16)~(from & 0xffff);
	s += (__u16)~(from >> 16);
	s += to & 0xffff;
	s += to >> 16;
	*sum = ~csum_fold64(s);
}

/* A 128-bit word (an IPv6 address) changed: the L4 checksums' pseudo
 * header covers both addresses (RFC 8200 8.1); IPv6 has no header checksum. */
static __always_inline void csum_replace16(__u16 *sum, const __be32 *from, const __be32 *to)
{
	__u64 s = (__u16)~*sum;

#pragma unroll
	for (int i = 0; i < 4; i++) {
		s += (__u16)~(from[i] & 0xffff);
		s += (__u16)~(from[i] >> 16);
		s += to[i] & 0xffff;
		s += to[i] >> 16;
	}
	*sum = ~csum_fold64(s);
}

#endif
