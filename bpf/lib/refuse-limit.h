/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A rate limit on the refusals XDP sends (refuse.h, refuse6.h: a TCP RST or
 * an ICMP/ICMPv6 port unreachable for a service without endpoints).
 *
 * kube-proxy's REJECT rules answer through the kernel's ICMP code, which
 * limits what it sends (net.ipv4.icmp_msgs_per_sec, 1000 a second with a
 * burst of 50, and a per-destination limit). XDP's answer skips all of
 * that: a flood to a service without endpoints would be reflected packet
 * for packet, towards whatever source address the flood claims. So the
 * refusals share one budget per node, as the kernel's global ICMP limit
 * does: BPX_REFUSE_PER_SEC a second, bursts of BPX_REFUSE_BURST; past it
 * the packet is dropped as refuse_rate_limited (the client, if real,
 * times out instead of being refused; its retry is likely refused).
 *
 * GCRA on one shared 64-bit "theoretical arrival time" in .bss: allowed
 * when tat - now <= burst * interval, and then tat moves on by one
 * interval. The read-modify-write is not atomic across CPUs: two CPUs
 * refusing at the same instant may both pass on one token, so the limit can
 * be exceeded by the number of CPUs per interval at most; a rate limit can
 * live with that, and it keeps the stage to a few instructions (the XDP
 * program is near the verifier's budget). The state starts empty with every
 * load of the object: a restart gets a fresh burst.
 */
#ifndef BPX_REFUSE_LIMIT_H
#define BPX_REFUSE_LIMIT_H

#include "common.h"
#include "verdict.h"

#define BPX_REFUSE_PER_SEC 1000
#define BPX_REFUSE_BURST 50
#define BPX_REFUSE_INTERVAL_NS (1000000000ULL / BPX_REFUSE_PER_SEC)

/* The next refusal's theoretical arrival time (ns, bpf_ktime_get_ns's clock). */
__u64 bpx_refuse_tat = 0;

/* BPX_CONTINUE when a refusal may be sent now (and takes its token), else the drop. */
static __always_inline int refuse_within_limit(__u64 now)
{
	__u64 tat = bpx_refuse_tat;

	if (tat < now)
		tat = now;
	if (tat - now > BPX_REFUSE_BURST * BPX_REFUSE_INTERVAL_NS)
		return drop(BPX_DROP_REFUSE_RATE_LIMITED);
	bpx_refuse_tat = tat + BPX_REFUSE_INTERVAL_NS;
	return BPX_CONTINUE;
}

#endif
