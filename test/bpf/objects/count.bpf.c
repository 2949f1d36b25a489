// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Test fixture for the loader (test/bpf/attach.test.ts): one XDP and two TC
 * programs that count IPv4 UDP packets to or from port 53 at their hook and
 * pass every packet. Built in variants (Makefile, build/test-bpf):
 * - COUNT_GEN=1 / 2: counts land in the row of that generation, so a test sees
 *   which build of a program counted a packet across an in-place replacement;
 * - COUNT_WIDE: the same pinned map name with another value size, which the
 *   loader must refuse.
 */
#include "lib/maps.h"
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>

#ifndef COUNT_GEN
#define COUNT_GEN 1
#endif

#define COUNT_PORT 53

enum count_hook {
	COUNT_XDP = 0,
	COUNT_TC_INGRESS,
	COUNT_TC_EGRESS,
	COUNT_HOOKS,
};

#ifdef COUNT_WIDE
struct count_val {
	__u64 packets;
	__u64 bytes;
};
#else
struct count_val {
	__u64 packets;
};
#endif

/* packets per (generation - 1) * COUNT_HOOKS + hook */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * COUNT_HOOKS);
	__type(key, __u32);
	__type(value, struct count_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpx_test_count SEC(".maps");

/* Never read: puts struct bpx_fe_key into this object's BTF, so the loader's
 * per-object layout check has a struct of maps.h to check here. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, struct bpx_fe_key);
	__type(value, __u32);
} count_fe_anchor SEC(".maps");

/* Is this an IPv4 UDP packet to or from COUNT_PORT? */
static __always_inline bool is_counted_udp(void *data, void *data_end)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp;

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return false;
	if (ip->protocol != IPPROTO_UDP || ip->ihl != 5)
		return false;
	udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > data_end)
		return false;
	return udp->dest == bpf_htons(COUNT_PORT) || udp->source == bpf_htons(COUNT_PORT);
}

static __always_inline void count(enum count_hook hook, void *data, void *data_end)
{
	__u32 slot = (COUNT_GEN - 1) * COUNT_HOOKS + hook;
	struct count_val *v;

	if (!is_counted_udp(data, data_end))
		return;
	v = bpf_map_lookup_elem(&bpx_test_count, &slot);
	if (v)
		__sync_fetch_and_add(&v->packets, 1);
}

SEC("xdp")
int count_xdp(struct xdp_md *ctx)
{
	count(COUNT_XDP, (void *)(long)ctx->data, (void *)(long)ctx->data_end);
	return XDP_PASS;
}

SEC("tc")
int count_tc_in(struct __sk_buff *skb)
{
	count(COUNT_TC_INGRESS, (void *)(long)skb->data, (void *)(long)skb->data_end);
	return TC_ACT_OK;
}

SEC("tc")
int count_tc_out(struct __sk_buff *skb)
{
	count(COUNT_TC_EGRESS, (void *)(long)skb->data, (void *)(long)skb->data_end);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
