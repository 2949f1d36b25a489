/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * NAT of the packet programs: SNAT source-port allocation and the IPv4
 * header rewrite with incremental checksums (csum.h).
 *
 * Ports: a flow SNATed to a node address takes a port of that address (and
 * protocol) in bpx_nat_v1 with BPF_NOEXIST, so two flows never hold one
 * port, also when two CPUs race: the loser's insert fails and it tries
 * another. A port whose holder is idle past the conntrack timeout is deleted
 * and then taken with BPF_NOEXIST again, so reclaiming races the same way.
 * The range lies above the default ip_local_port_range (32768-60999), so an
 * SNAT port never collides with the node's own sockets; the price is at most
 * 4536 concurrent SNATed flows per node address and protocol (keying on the
 * backend too, as Linux's masquerade does, would lift it: not done yet).
 */
#ifndef BPX_NAT_H
#define BPX_NAT_H

#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/if_ether.h>
#include "conntrack.h"
#include "lb.h"
#include "parse.h"
#include "csum.h"
#include "nat-l4.h"

#define BPX_NAT_PORT_MIN 61000
#define BPX_NAT_PORT_MAX 65535
#define BPX_NAT_PORT_TRIES 16

/* SNAT ports (written by the packet programs): node address + port + proto -> holder */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct bpx_nat_key);
	__type(value, struct bpx_nat_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpx_nat_v1 SEC(".maps");

/* Takes a free port of `addr` for the flow of `client`:`cport`; 0 when none was found.
 * Family-generic: IPv4 addresses are zero past their 4 bytes (conntrack.h). */
static __always_inline __be16 nat_alloc_port(__u8 family, const union bpx_addr *addr, __u8 proto,
					     const union bpx_addr *client, __be16 cport, __u64 now)
{
	struct bpx_nat_val val;
	struct bpx_nat_key key;
	__u32 range = BPX_NAT_PORT_MAX - BPX_NAT_PORT_MIN + 1;

	/* Zeroed whole, unions included (a designated initializer leaves a union's other bytes unspecified). */
	__builtin_memset(&key, 0, sizeof(key));
	__builtin_memset(&val, 0, sizeof(val));
	key.proto = proto;
	key.family = family;
	__builtin_memcpy(&key.addr, addr, sizeof(key.addr));
	val.last_ns = now;
	val.client_port = cport;
	__builtin_memcpy(&val.client, client, sizeof(val.client));
	for (int i = 0; i < BPX_NAT_PORT_TRIES; i++) {
		struct bpx_nat_val *old;

		key.port = bpf_htons(BPX_NAT_PORT_MIN + bpf_get_prandom_u32() % range);
		if (bpf_map_update_elem(&bpx_nat_v1, &key, &val, BPF_NOEXIST) == 0)
			return key.port;
		old = bpf_map_lookup_elem(&bpx_nat_v1, &key);
		if (old && now - old->last_ns > ct_timeout_ns(proto)) {
			bpf_map_delete_elem(&bpx_nat_v1, &key);
			if (bpf_map_update_elem(&bpx_nat_v1, &key, &val, BPF_NOEXIST) == 0)
				return key.port;
		}
	}
	return 0;
}

/* Whether a packet to `port` can be the reply of an SNATed flow: SNAT ports
 * come from this range only, so a packet to any other port (a NodePort, a
 * pod's port) skips the reply lookup (xdp.bpf.c). */
static __always_inline bool nat_port_in_range(__be16 port)
{
	return bpf_ntohs(port) >= BPX_NAT_PORT_MIN;
}

/* Keeps an SNAT port held while its flow lives (called with the ORIG refresh). */
static __always_inline void nat_touch(__u8 family, const union bpx_addr *addr, __be16 port, __u8 proto, __u64 now)
{
	struct bpx_nat_key key;
	struct bpx_nat_val *v;

	/* A designated initializer would leave the union's other 12 bytes unspecified. */
	__builtin_memset(&key, 0, sizeof(key));
	key.port = port;
	key.proto = proto;
	key.family = family;
	__builtin_memcpy(&key.addr, addr, sizeof(key.addr));
	v = bpf_map_lookup_elem(&bpx_nat_v1, &key);
	if (v && now - v->last_ns > BPX_CT_REFRESH_NS)
		v->last_ns = now;
}

/* Gives back the SNAT port of a flow that is re-selected (its old backend left). */
static __always_inline void nat_release(__u8 family, const union bpx_addr *addr, __be16 port, __u8 proto)
{
	struct bpx_nat_key key;

	__builtin_memset(&key, 0, sizeof(key));
	key.port = port;
	key.proto = proto;
	key.family = family;
	__builtin_memcpy(&key.addr, addr, sizeof(key.addr));
	bpf_map_delete_elem(&bpx_nat_v1, &key);
}

/*
 * Hairpin: the backend picked is the client itself (a pod reaching its own
 * service through a node device, e.g. the pod bridge in --devices). DNATed
 * alone, the packet would reach the pod with the pod's own address as its
 * source, which its stack drops as a martian; so the flow is SNATed to the
 * node's address toward the pod, as kube-proxy masquerades hairpin traffic,
 * and its replies come back through the reply stage like a remote flow's.
 * (Pods in the proxy's cgroup never get here: their connect() is
 * translated at the socket, and a socket reaching its own address is local.)
 */
static __always_inline bool flow_is_hairpin(const struct bpx_pkt *p, const struct bpx_backend *be)
{
	/* Word by word: clang 14 turns __builtin_memcmp into a call to an extern
	 * memcmp, which libbpf refuses to load (no BTF for it). */
	return p->family == be->family && p->src.v6[0] == be->addr.v6[0] && p->src.v6[1] == be->addr.v6[1] &&
	       p->src.v6[2] == be->addr.v6[2] && p->src.v6[3] == be->addr.v6[3];
}

/* An IPv4 4-tuple as the packet should leave. */
struct bpx_tuple4 {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
};

/* Rewrites the addresses and ports of a TCP/UDP IPv4 packet (no IP options:
 * parse.h passes those) in place, updating IP and L4 checksums. A UDP
 * checksum of 0 (none) stays 0. Returns false when the headers are not there
 * (the caller parsed them, so only the verifier sees that branch). */
static __always_inline bool nat_rewrite_v4(void *data, void *data_end, __u8 proto, const struct bpx_tuple4 *t)
{
	struct iphdr *ip = data + sizeof(struct ethhdr);
	struct bpx_l4_ports *ports = (void *)(ip + 1);
	__u16 *l4sum;
	bool has_l4sum;

	if ((void *)(ip + 1) > data_end)
		return false;
	l4sum = l4_check_field(ports, proto, data_end);
	if (!l4sum)
		return false;
	has_l4sum = proto == IPPROTO_TCP || *l4sum != 0;
	if (ip->saddr != t->saddr) {
		csum_replace4(&ip->check, ip->saddr, t->saddr);
		if (has_l4sum)
			csum_replace4(l4sum, ip->saddr, t->saddr);
		ip->saddr = t->saddr;
	}
	if (ip->daddr != t->daddr) {
		csum_replace4(&ip->check, ip->daddr, t->daddr);
		if (has_l4sum)
			csum_replace4(l4sum, ip->daddr, t->daddr);
		ip->daddr = t->daddr;
	}
	nat_rewrite_ports(ports, l4sum, has_l4sum, proto, t->sport, t->dport);
	return true;
}

#endif
