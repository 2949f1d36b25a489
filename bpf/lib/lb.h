/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Service lookup and backend selection, shared by every attach point:
 * frontend -> backend set -> (affinity | random slot) -> backend.
 * The control plane writes these maps; programs only read them (and the
 * affinity LRU).
 */
#ifndef BPX_LB_H
#define BPX_LB_H

#include "maps.h"
#include "stats.h"

/* frontends: address + port + protocol -> service and its backend sets */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 131072);
	__type(key, struct bpx_fe_key);
	__type(value, struct bpx_fe_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpx_fe_v1 SEC(".maps");

/* backend sets: set header (slot 0) and backend slots per generation */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 524288);
	__type(key, struct bpx_set_key);
	__type(value, struct bpx_set_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpx_set_v1 SEC(".maps");

/* backends: id -> address, port, protocol */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__type(key, __u32);
	__type(value, struct bpx_backend);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpx_be_v1 SEC(".maps");

/* set membership: (backend, set) present while the backend is in the set */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 524288);
	__type(key, struct bpx_member_key);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpx_member_v1 SEC(".maps");

/* ClientIP affinity: (client, set) -> backend and last use */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 131072);
	__type(key, struct bpx_aff_key);
	__type(value, struct bpx_aff_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpx_aff_v1 SEC(".maps");

static __always_inline struct bpx_fe_val *lb_lookup_frontend(const struct bpx_fe_key *key)
{
	return bpf_map_lookup_elem(&bpx_fe_v1, key);
}

static __always_inline struct bpx_set_val *lb_lookup_set(__u32 set)
{
	struct bpx_set_key key = { .set = set };

	return bpf_map_lookup_elem(&bpx_set_v1, &key);
}

static __always_inline struct bpx_backend *lb_lookup_backend(__u32 id)
{
	return bpf_map_lookup_elem(&bpx_be_v1, &id);
}

static __always_inline bool lb_is_member(__u32 backend, __u32 set)
{
	struct bpx_member_key key = { .backend = backend, .set = set };

	return bpf_map_lookup_elem(&bpx_member_v1, &key) != NULL;
}

/* A backend of the set's live generation, chosen at random; 0 when the slot
 * is missing (the control plane is replacing the set right now). `count`
 * and `gen` are the caller's copies of the header, read once. */
static __always_inline __u32 lb_pick_random(__u32 set, __u16 count, __u8 gen)
{
	struct bpx_set_key key = {
		.set = set,
		.slot = (bpf_get_prandom_u32() % count) + 1,
		.gen = gen,
	};
	struct bpx_set_val *slot = bpf_map_lookup_elem(&bpx_set_v1, &key);

	return slot ? slot->backend : 0;
}

/* The affinity backend of a client, if it is recent and still in the set. */
static __always_inline __u32 lb_affinity_get(const struct bpx_aff_key *key,
					     __u32 timeout_s, __u64 now)
{
	struct bpx_aff_val *v = bpf_map_lookup_elem(&bpx_aff_v1, key);

	if (!v)
		return 0;
	if (now - v->last_ns > (__u64)timeout_s * NSEC_PER_SEC)
		return 0;
	if (!lb_is_member(v->backend, key->set))
		return 0;
	return v->backend;
}

static __always_inline void lb_affinity_put(const struct bpx_aff_key *key, __u32 backend, __u64 now)
{
	struct bpx_aff_val v = { .last_ns = now, .backend = backend };

	bpf_map_update_elem(&bpx_aff_v1, key, &v, BPF_ANY);
}

/* Frontends whose traffic arrives as packets from outside the node. */
static __always_inline bool fe_is_external(const struct bpx_fe_val *fe)
{
	return fe->flags & (BPX_FE_NODE_PORT | BPX_FE_EXTERNAL_IP | BPX_FE_LOAD_BALANCER);
}

static __always_inline bool fe_is_cluster_ip(const struct bpx_fe_val *fe)
{
	return fe->flags & BPX_FE_CLUSTER_IP;
}

/*
 * Frontends the packet programs serve on a node device. A ClusterIP arriving
 * there was routed to the node from elsewhere (a router with a route for the
 * service CIDR via this node; the node's own and its pods' connections are
 * translated at the socket or never cross a node device inbound). It is
 * served as a NodePort with externalTrafficPolicy Cluster: any backend of
 * its ext_set, which for a ClusterIP is the set that honours
 * internalTrafficPolicy (lb-tables.ts), so Local keeps to local endpoints
 * and drops without one, as kube-proxy does; SNAT to a remote backend.
 */
static __always_inline bool fe_is_served_at_xdp(const struct bpx_fe_val *fe)
{
	return fe_is_external(fe) || fe_is_cluster_ip(fe);
}

/* externalTrafficPolicy: Local: local backends only, the client's address kept. */
static __always_inline bool fe_preserves_src(const struct bpx_fe_val *fe)
{
	return fe->flags & BPX_FE_PRESERVE_SRC;
}

static __always_inline bool backend_is_local(const struct bpx_backend *be)
{
	return be->flags & BPX_BE_LOCAL;
}

static __always_inline bool lb_addr_is_v4mapped(const __u32 *a)
{
	return a[0] == 0 && a[1] == 0 && a[2] == bpf_htonl(0x0000ffff);
}

#endif
