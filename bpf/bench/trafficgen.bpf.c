// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The NodePort packet bench's traffic generator and counters
 * (bench/nodeport-live.ts). Not part of the proxy: nothing here is pinned.
 *
 * bench_gen runs under BPF_PROG_TEST_RUN in live-frames mode
 * (BPF_F_TEST_XDP_LIVE_FRAMES): the kernel builds each frame in a page-pool
 * page, this program gives it the next source port of a small set of flows
 * and redirects it out of a veth, so the frame reaches the veth's peer as an
 * xdp_frame, with no skb behind it, as a NIC's receive ring hands frames to
 * its XDP program. The kernel fills each page-pool page from data_in once and
 * recycles it with whatever the path last wrote into it: a frame the node
 * forwarded comes back with the next hop's MAC addresses, a lower TTL, NATed
 * addresses (measured: only the first batch of 64 reached the backend, the
 * rest died as PACKET_OTHERHOST at the node). So every frame gets its
 * Ethernet, IPv4 and UDP headers written afresh from the template in the
 * configuration, then the flow's source port, the UDP checksum moved with it
 * (RFC 1624): every frame leaves with valid checksums. The payload is never
 * written by the path and is left as the kernel put it.
 *
 * bench_count_tc_drop / bench_count_tc_pass (tcx ingress of a backend pod's
 * eth0) and bench_count_xdp_drop (XDP on the generator's own sink) count the
 * UDP datagrams addressed to the configured destination; the drop variants
 * then drop them, so the socket layer's cost (the same for every dataplane,
 * and what bounded the socket bench) is out of the figure. *
 * bench_wire_switch (XDP on the wire's switch ports) forwards a frame whose
 * destination MAC is a node's eth0 straight to that node's switch port
 * (bpf_redirect: the frame stays an xdp_frame, no skb, no bridge), as a
 * hardware switch costs the nodes nothing; anything else (broadcasts, the
 * external client's MAC) goes to the bridge.
 */
#include "lib/common.h"
#include "lib/csum.h"
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>

#define GEN_HDR_LEN (ETH_HLEN + sizeof(struct iphdr) + sizeof(struct udphdr))

struct bench_gen_cfg {
	__u32 ifindex;    /* where frames go: a veth in the caller's namespace */
	__u16 sport_base; /* host order; the template's own source port */
	__u16 flows;      /* source ports sport_base .. sport_base + flows - 1 */
	__u8 hdr[GEN_HDR_LEN]; /* the frame's headers as they must leave, checksums valid */
	__u8 pad[6];
};

struct bench_count_cfg {
	__be32 daddr;
	__be16 dport;
	__u16 pad;
};

/* The generator's one configuration row. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bench_gen_cfg);
} bench_gen_cfg SEC(".maps");

/* Frames generated so far: picks each frame's flow (one CPU runs a test run). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} bench_gen_seq SEC(".maps");

/* What the counters count: UDP to this address and port. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bench_count_cfg);
} bench_count_cfg SEC(".maps");

/* Datagrams counted, summed over CPUs by the reader. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} bench_count SEC(".maps");

/* bench_wire_switch's forwarding table: a node's eth0 MAC (6 bytes, zero-padded) -> its switch port's ifindex. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u32);
} bench_fdb SEC(".maps");

/* The frame's UDP header, when it is Ethernet + IPv4 without options + UDP. */
static __always_inline struct udphdr *udp_of(void *data, void *data_end, struct iphdr **ip_out)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);

	if ((void *)(udp + 1) > data_end)
		return NULL;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5 || ip->protocol != IPPROTO_UDP)
		return NULL;
	*ip_out = ip;
	return udp;
}

/* Stage: the headers as the template has them, whatever the page held. */
static __always_inline bool gen_write_headers(void *data, void *data_end, const struct bench_gen_cfg *cfg)
{
	if (data + GEN_HDR_LEN > data_end)
		return false;
	__builtin_memcpy(data, cfg->hdr, GEN_HDR_LEN);
	return true;
}

/* Stage: the next flow's source port, the checksum moved with it. */
static __always_inline void gen_next_flow(struct udphdr *udp, const struct bench_gen_cfg *cfg)
{
	__u32 zero = 0;
	__u64 *seq = bpf_map_lookup_elem(&bench_gen_seq, &zero);
	__u16 from, to;

	if (!seq || cfg->flows == 0)
		return;
	to = bpf_htons(cfg->sport_base + (__u16)(*seq % cfg->flows));
	*seq += 1;
	from = udp->source; /* the template's: written just before */
	udp->source = to;
	if (udp->check == 0) /* sent without a checksum: nothing to keep right */
		return;
	csum_replace2(&udp->check, from, to);
	if (udp->check == 0) /* 0 means "no checksum" in UDP: the same sum, written the other way */
		udp->check = 0xffff;
}

SEC("xdp")
int bench_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct bench_gen_cfg *cfg = bpf_map_lookup_elem(&bench_gen_cfg, &zero);
	struct iphdr *ip;
	struct udphdr *udp;

	if (!cfg || !gen_write_headers(data, data_end, cfg))
		return XDP_ABORTED;
	udp = udp_of(data, data_end, &ip);
	if (!udp)
		return XDP_ABORTED;
	gen_next_flow(udp, cfg);
	return bpf_redirect(cfg->ifindex, 0);
}

/* Predicate: a datagram the counters are looking for; counted when it is. */
static __always_inline bool count_if_wanted(void *data, void *data_end)
{
	__u32 zero = 0;
	struct bench_count_cfg *cfg = bpf_map_lookup_elem(&bench_count_cfg, &zero);
	struct iphdr *ip;
	struct udphdr *udp = udp_of(data, data_end, &ip);
	__u64 *n;

	if (!cfg || !udp || ip->daddr != cfg->daddr || udp->dest != cfg->dport)
		return false;
	n = bpf_map_lookup_elem(&bench_count, &zero);
	if (n)
		*n += 1;
	return true;
}

SEC("tc")
int bench_count_tc_drop(struct __sk_buff *skb)
{
	return count_if_wanted((void *)(long)skb->data, (void *)(long)skb->data_end) ? TC_ACT_SHOT : TC_ACT_OK;
}

SEC("tc")
int bench_count_tc_pass(struct __sk_buff *skb)
{
	count_if_wanted((void *)(long)skb->data, (void *)(long)skb->data_end);
	return TC_ACT_OK;
}

SEC("xdp")
int bench_count_xdp_drop(struct xdp_md *ctx)
{
	return count_if_wanted((void *)(long)ctx->data, (void *)(long)ctx->data_end) ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int bench_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int bench_wire_switch(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u64 mac = 0;
	__u32 *port;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	__builtin_memcpy(&mac, eth->h_dest, ETH_ALEN);
	port = bpf_map_lookup_elem(&bench_fdb, &mac);
	return port ? bpf_redirect(*port, 0) : XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
