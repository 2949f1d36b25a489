/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Event and drop counters: one per-CPU slot per enum bpx_stat, summed and
 * exported by the control plane (bpfproxy_datapath_events_total). */
#ifndef BPX_STATS_H
#define BPX_STATS_H

#include "maps.h"

/* counters per event */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BPX_STAT_MAX);
	__type(key, __u32);
	__type(value, struct bpx_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpx_stats_v1 SEC(".maps");

static __always_inline void stat_inc(enum bpx_stat s)
{
	__u32 key = s;
	struct bpx_counter *c = bpf_map_lookup_elem(&bpx_stats_v1, &key);

	if (c)
		c->count++;
}

#endif
