/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * loadBalancerSourceRanges: one LPM trie of (service, source prefix), read
 * by the source-range stage of the packet programs on every frontend that
 * carries BPX_FE_SOURCE_RANGES. As in kube-proxy, that is every
 * LoadBalancer ingress IP of a service with ranges; its NodePorts and
 * ClusterIP are not filtered (kube-proxy's firewall chains match the
 * LoadBalancer IPs only). The control plane writes the ranges before the
 * frontends that name them (src/dataplane/bpf/range-tables.ts).
 */
#ifndef BPX_RANGES_H
#define BPX_RANGES_H

#include "lb.h"
#include "parse.h"

/* source ranges: (service, prefix) -> 1 */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);	/* required of LPM tries */
	__type(key, struct bpx_range_key);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpx_range_v1 SEC(".maps");

/* Whether the frontend admits only listed sources. */
static __always_inline bool fe_checks_source_ranges(const struct bpx_fe_val *fe)
{
	return fe->flags & BPX_FE_SOURCE_RANGES;
}

/* Whether the packet's source lies in one of the service's ranges. */
static __always_inline bool source_in_ranges(const struct bpx_fe_val *fe, const struct bpx_pkt *p)
{
	struct bpx_range_key key = {
		.prefixlen = 32 + (p->family == BPX_FAMILY_V4 ? 32 : 128),
		.svc = bpf_htonl(fe->svc_id),
		.addr = p->src,	/* zeroed past an IPv4 address by the parse stage */
	};

	return bpf_map_lookup_elem(&bpx_range_v1, &key) != NULL;
}

#endif
