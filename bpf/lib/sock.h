/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Socket-level load balancing: the connect/sendmsg hooks pick a backend once
 * per connection (per flow for unconnected UDP) and rewrite the destination
 * before the kernel routes anything, so no packet is ever NATed and the
 * backend sees the client's own address. recvmsg/getpeername undo the
 * rewrite for the application.
 */
#ifndef BPX_SOCK_H
#define BPX_SOCK_H

#include "lb.h"

/* An unconnected UDP flow idle this long picks a backend afresh: the
 * nf_conntrack_udp_timeout_stream default kube-proxy's flows live by. */
#define BPX_UDP_FLOW_TIMEOUT_NS (120 * NSEC_PER_SEC)

/* reverse translation: socket + backend -> frontend */
#include "sock-rnat-map.h"

/* unconnected UDP flows: socket + frontend -> backend */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 131072);
	__type(key, struct bpx_flow_key);
	__type(value, struct bpx_flow_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpx_flow_v1 SEC(".maps");

/*
 * Picks the backend for a socket addressing `fkey`.
 * Returns 0 when `fkey` is no service, 1 with *out set, or a negative errno
 * the caller hands to the application (refused, unreachable).
 */
static __always_inline int sock_select(void *ctx, const struct bpx_fe_key *fkey, bool udp_flow,
				       struct bpx_backend **out, __u32 *svc_id)
{
	struct bpx_fe_val *fe = lb_lookup_frontend(fkey);
	struct bpx_aff_key aff_key = {};
	struct bpx_flow_key flow_key = {};
	struct bpx_set_val *hdr;
	struct bpx_backend *be;
	__u32 backend = 0, set, affinity;
	__u64 now, cookie = 0;
	__u16 count;
	__u8 gen;

	if (!fe)
		return 0;
	set = fe->local_set;
	*svc_id = fe->svc_id;

	hdr = lb_lookup_set(set);
	if (unlikely(!hdr)) {
		count_event(BPX_EVENT_SOCK_NO_SET);
		return -ECONNREFUSED;
	}
	/* Copy the header once: the control plane may swap it under us. */
	count = hdr->count;
	gen = hdr->gen;
	affinity = hdr->affinity;
	if (count == 0) {
		if (hdr->empty == BPX_EMPTY_DROP) {
			count_event(BPX_EVENT_SOCK_DROP_NO_LOCAL);
			return -EHOSTUNREACH;
		}
		count_event(BPX_EVENT_SOCK_REJECT);
		return -ECONNREFUSED;
	}

	now = bpf_ktime_get_ns();
	if (udp_flow) {
		struct bpx_flow_val *f;

		cookie = bpf_get_socket_cookie(ctx);
		flow_key.cookie = cookie;
		flow_key.addr = fkey->addr;
		flow_key.port = fkey->port;
		flow_key.proto = fkey->proto;
		flow_key.family = fkey->family;
		f = bpf_map_lookup_elem(&bpx_flow_v1, &flow_key);
		if (f && f->set == set && now - f->last_ns <= BPX_UDP_FLOW_TIMEOUT_NS &&
		    lb_is_member(f->backend, set)) {
			backend = f->backend;
			f->last_ns = now;
			count_event(BPX_EVENT_SOCK_FLOW_HIT);
		}
	}
	if (!backend && affinity) {
		__u64 netns = bpf_get_netns_cookie(ctx);

		__builtin_memcpy(aff_key.client.b, &netns, sizeof(netns));
		aff_key.set = set;
		backend = lb_affinity_get(&aff_key, affinity, now);
		if (backend)
			count_event(BPX_EVENT_SOCK_AFFINITY_HIT);
	}
	if (!backend)
		backend = lb_pick_random(set, count, gen);

	be = backend ? lb_lookup_backend(backend) : NULL;
	if (unlikely(!be || be->family != fkey->family)) {
		count_event(BPX_EVENT_SOCK_NO_BACKEND);
		return -ECONNREFUSED;
	}
	if (affinity)
		lb_affinity_put(&aff_key, backend, now);
	if (udp_flow) {
		struct bpx_flow_val f = { .last_ns = now, .backend = backend, .set = set };

		bpf_map_update_elem(&bpx_flow_v1, &flow_key, &f, BPF_ANY);
	}
	*out = be;
	return 1;
}

/* Remembers what the socket asked for, for getpeername() and recvmsg(). */
static __always_inline void sock_rnat_put(void *ctx, const struct bpx_fe_key *fkey,
					  const struct bpx_backend *be, __u32 svc_id)
{
	struct bpx_sk_rnat_key key = {
		.cookie = bpf_get_socket_cookie(ctx),
		.addr = be->addr,
		.port = be->port,
		.family = be->family,
	};
	struct bpx_sk_rnat_val val = {
		.addr = fkey->addr,
		.port = fkey->port,
		.family = fkey->family,
		.svc_id = svc_id,
	};

	if (bpf_map_update_elem(&bpx_sk_rnat_v1, &key, &val, BPF_ANY))
		count_event(BPX_EVENT_SOCK_RNAT_UPDATE_FAIL);
}

static __always_inline struct bpx_sk_rnat_val *sock_rnat_get(void *ctx, const union bpx_addr *addr,
							     __be16 port, __u8 family)
{
	struct bpx_sk_rnat_key key = {
		.cookie = bpf_get_socket_cookie(ctx),
		.addr = *addr,
		.port = port,
		.family = family,
	};

	return bpf_map_lookup_elem(&bpx_sk_rnat_v1, &key);
}

#endif
