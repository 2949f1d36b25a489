/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Drop and event counters: one per-CPU slot per reason of reasons.h, summed
 * and exported by the control plane (bpfproxy_datapath_drops_total,
 * bpfproxy_datapath_events_total). */
#ifndef BPX_STATS_H
#define BPX_STATS_H

#include "maps.h"

/* counters: slot BPX_SLOT_DROPS + drop reason, BPX_SLOT_EVENTS + event.
 * Sized with headroom (reasons.h) and named _v2: bpx_stats_v1 had one slot
 * per event and no room to grow, so a newer build with more reasons would
 * have counted into nothing. An array lookup past max_entries returns NULL,
 * so even a map pinned smaller than this build expects is never written past. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BPX_SLOT_COUNT);
	__type(key, __u32);
	__type(value, struct bpx_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpx_counters_v2 SEC(".maps");

static __always_inline void counter_inc(__u32 slot)
{
	struct bpx_counter *c = bpf_map_lookup_elem(&bpx_counters_v2, &slot);

	if (c)
		c->count++;
}

static __always_inline void count_event(enum bpx_event e)
{
	counter_inc(BPX_SLOT_EVENTS + (__u32)e);
}

/* Only the drop exit calls this (verdict.h); nothing else counts drops. */
static __always_inline void count_drop(enum bpx_drop r)
{
	counter_inc(BPX_SLOT_DROPS + (__u32)r);
}

#endif
