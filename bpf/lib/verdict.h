/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What a stage of a packet program decides: go on to the next stage
 * (BPX_CONTINUE), or leave with a reason: pass to the stack with an event, or
 * drop with a drop reason. A program has one exit (xdp_exit in xdp.bpf.c)
 * that counts the reason and turns the verdict into its own return code, so
 * no drop leaves uncounted and the stages stay attach-point agnostic (XDP
 * now, TC next).
 */
#ifndef BPX_VERDICT_H
#define BPX_VERDICT_H

#include "stats.h"

#define BPX_CONTINUE 0
#define BPX_VERDICT_PASS (1 << 16)
#define BPX_VERDICT_DROP (2 << 16)
#define BPX_VERDICT_TX (3 << 16)	/* XDP: out of the device it came in on */
#define BPX_VERDICT_REDIRECT (4 << 16)	/* bpf_redirect*() was called: return its verdict */
#define BPX_VERDICT_KIND_MASK (0xff << 16)
#define BPX_VERDICT_REASON_MASK 0xffff

static __always_inline int pass(enum bpx_event e)
{
	return BPX_VERDICT_PASS | (int)e;
}

static __always_inline int drop(enum bpx_drop r)
{
	return BPX_VERDICT_DROP | (int)r;
}

/* Transmitted (XDP_TX), counted as event `e`. */
static __always_inline int tx(enum bpx_event e)
{
	return BPX_VERDICT_TX | (int)e;
}

/* Redirected by a helper already called, counted as event `e`. */
static __always_inline int redirected(enum bpx_event e)
{
	return BPX_VERDICT_REDIRECT | (int)e;
}

static __always_inline int verdict_kind(int v)
{
	return v & BPX_VERDICT_KIND_MASK;
}

static __always_inline bool verdict_is_drop(int v)
{
	return verdict_kind(v) == BPX_VERDICT_DROP;
}

/* Counts the verdict's reason; true when the packet is to be dropped. */
static __always_inline bool verdict_count(int v)
{
	__u32 reason = (__u32)v & BPX_VERDICT_REASON_MASK;

	if (verdict_is_drop(v)) {
		count_drop(reason);
		return true;
	}
	count_event(reason);
	return false;
}

#endif
