/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * SCTP's checksum after a port rewrite, updated without reading the packet.
 *
 * SCTP carries CRC32c (RFC 9260 appendix A) over the SCTP packet only, no IP
 * pseudo header: an address change leaves it alone, a port change does not.
 * Recomputing it would mean reading every byte of the packet. Instead:
 *
 *  - CRC32c is affine over GF(2): crc(M) = K(len) xor raw(M), where raw is
 *    the CRC with a zero initial state and no final inversion, and K depends
 *    on the length only (it carries the ~0 initial state through the message,
 *    plus the final ~). For two messages of one length, then,
 *    crc(M1) xor crc(M2) = raw(M1 xor M2): the inversions cancel.
 *  - NAT changes bytes 0..3 (source and destination port) of an L-byte
 *    packet, and the checksum field (bytes 8..11) counts as zero in both.
 *    M1 xor M2 is 4 bytes D followed by L-4 zero bytes, and in the reflected
 *    representation raw(D, zeros) = W(D) * x^(8L) mod P, W(D) the 4 bytes as
 *    a little-endian word (what a word-at-a-time CRC xors into its state
 *    before its 32 shifts, which are the first x^32 of the x^(8L)).
 *  - x^(8L) mod P = x^(8 * (L & 255)) * x^(2048 * (L >> 8)): two entries of
 *    two 256-entry tables (sctp-crc-tables.h, generated; L is an IP payload
 *    length: 16 bits), so two GF(2) multiplications per packet, whatever
 *    its length. (zlib's crc32_combine takes x^(2^k) per set bit of the
 *    length instead: fewer table entries, up to 16 multiplications.)
 *
 * The new checksum is the old one xor that delta. A packet whose checksum
 * field holds 0 is left alone: that is an skb with the CRC offloaded
 * (CHECKSUM_PARTIAL, csum_not_inet: a local SCTP socket on a device with
 * NETIF_F_SCTP_CRC, veth has it), whose CRC the kernel computes over the
 * final bytes with the field still 0 (skb_crc32c_csum_help); xoring a delta
 * into it would break it. A real CRC of 0 (1 in 2^32) is left wrong.
 *
 * Inlined, without branches, and no function of its own (both found in
 * the VM harness and on this host, measured): bpx_xdp's stack is near the
 * 512-byte limit, and Debian 12's 6.1 verifier counts a called function's
 * frame (32 bytes at least) on top: "combined stack size of 2 calls is
 * 544. Too large", the object refused (6.18 loaded it). A first version
 * multiplied per set bit of L, a branch each: inlined or in a static
 * subprogram, the verifier walked those 16 branches on every path through
 * bpx_xdp reaching a rewrite, and xdp.bpf.o failed with E2BIG (its 1M-
 * instruction budget) on 6.18; a plain 32-step multiplication inlined did
 * too. Two 4-bit-digit multiplications (about 400 instructions) fit.
 *
 * Cost (bench/sctp-crc.ts, BPF_PROG_TEST_RUN, this loaded 2-core host):
 * about 90-100 ns per packet whose ports change, the same at 32, 1020 and
 * 2044 bytes (the per-set-bit version took 30 to 230 ns).
 */
#ifndef BPX_SCTP_CRC_H
#define BPX_SCTP_CRC_H

#include "common.h"
#include "sctp-crc-tables.h"

/* CRC32c's polynomial, reflected. */
#define BPX_CRC32C_POLY 0x82f63b78u

/* b * x mod P. */
static __always_inline __u32 crc32c_mulx(__u32 b)
{
	return (b >> 1) ^ (BPX_CRC32C_POLY & -(b & 1));
}

/*
 * a * b mod P in the reflected representation (bit 31 is x^0), branch-free:
 * Horner over a's 4-bit digits from the highest degree (a's low nibble
 * up), each step p * x^4 (a shift and bpx_crc32c_x4_reduce) plus the digit
 * times b, from b, bx, bx^2, bx^3. About 200 instructions: the 32
 * single-bit steps of the plain way were about 320, and the verifier walks
 * them on every path through bpx_xdp that reaches a rewrite. `a` is
 * consumed by shifting: masks computed from its bits up front made clang
 * 14 spill past bpx_xdp's 512-byte stack.
 */
static __always_inline __u32 crc32c_gf_mul(__u32 a, __u32 b)
{
	__u32 b1 = crc32c_mulx(b), b2 = crc32c_mulx(b1), b3 = crc32c_mulx(b2);
	__u32 p = 0;

#pragma unroll
	for (int j = 0; j < 8; j++) {
		p = (p >> 4) ^ bpx_crc32c_x4_reduce[p & 0xf];
		p ^= (b & -((a >> 3) & 1)) ^ (b1 & -((a >> 2) & 1)) ^ (b2 & -((a >> 1) & 1)) ^ (b3 & -(a & 1));
		a >>= 4;
	}
	return p;
}

/*
 * The CRC32c delta of an `len`-byte SCTP packet whose first 4 bytes changed
 * by `w` (old xor new, as a little-endian word of bytes 0..3): w * x^(8 len).
 */
static __always_inline __u32 sctp_crc_delta(__u32 w, __u32 len)
{
	__u32 r = crc32c_gf_mul(bpx_crc32c_x8n_lo[len & 0xff], w);

	return crc32c_gf_mul(bpx_crc32c_x8n_hi[(len >> 8) & 0xff], r);
}

/* Bytes 0..3 of an SCTP header (its ports, network order) as the little-endian word sctp_crc_delta takes. */
static __always_inline __u32 sctp_ports_word(__be16 sport, __be16 dport)
{
	__u16 s = bpf_ntohs(sport), d = bpf_ntohs(dport);

	return (__u32)(s >> 8) | (__u32)(s & 0xff) << 8 | (__u32)(d >> 8) << 16 | (__u32)(d & 0xff) << 24;
}

/* The checksum field's bytes as the CRC value they hold (it is sent little-endian: RFC 9260 appendix A). */
static __always_inline __u32 sctp_crc_of_field(const __u8 *f)
{
	return (__u32)f[0] | (__u32)f[1] << 8 | (__u32)f[2] << 16 | (__u32)f[3] << 24;
}

static __always_inline void sctp_crc_to_field(__u8 *f, __u32 crc)
{
	f[0] = crc;
	f[1] = crc >> 8;
	f[2] = crc >> 16;
	f[3] = crc >> 24;
}

/*
 * The checksum an `len`-byte SCTP packet must carry after its ports went
 * from (osport, odport) to (sport, dport), given the one it carries; 0
 * (offloaded, see above) stays 0.
 */
static __always_inline __u32 sctp_crc_after_ports(__u32 crc, __u32 len, __be16 osport, __be16 odport, __be16 sport,
						  __be16 dport)
{
	__u32 w = sctp_ports_word(osport, odport) ^ sctp_ports_word(sport, dport);

	if (crc == 0 || w == 0)
		return crc;
	return crc ^ sctp_crc_delta(w, len);
}

#endif
