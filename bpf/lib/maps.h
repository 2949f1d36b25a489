/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Every pinned map: its layout and its one-line purpose. This file is the
 * single source of truth for the layouts. The TypeScript codecs in
 * src/dataplane/bpf/layout.ts are checked against the BTF of the built
 * objects, by test/bpf/layout.test.ts and again by the proxy when it loads,
 * so a drift fails loudly instead of corrupting maps.
 *
 * Maps are pinned by name under the proxy's bpffs directory and outlive the
 * proxy. A map whose layout changes MUST get a new name (bump _vN), so a new
 * proxy never reinterprets an old map.
 */
#ifndef BPX_MAPS_H
#define BPX_MAPS_H

#include "common.h"
#include "reasons.h"

enum bpx_family {
	BPX_FAMILY_V4 = 4,
	BPX_FAMILY_V6 = 6,
};

/* An IPv4 address sits in the first 4 bytes; the other 12 are zero. */
union bpx_addr {
	__be32 v4;
	__be32 v6[4];
	__u8 b[16];
};

/* ---- Frontends: the addresses and ports that are services. ---------------- */

struct bpx_fe_key {
	union bpx_addr addr;
	__be16 port;
	__u8 proto;		/* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP */
	__u8 family;		/* BPX_FAMILY_* */
};

enum bpx_fe_flag {
	BPX_FE_CLUSTER_IP = 1 << 0,
	BPX_FE_NODE_PORT = 1 << 1,
	BPX_FE_EXTERNAL_IP = 1 << 2,
	BPX_FE_LOAD_BALANCER = 1 << 3,
	BPX_FE_SOURCE_RANGES = 1 << 4,	/* external traffic is checked against source ranges */
	BPX_FE_PRESERVE_SRC = 1 << 5,	/* external traffic keeps its client address */
};

struct bpx_fe_val {
	__u32 svc_id;		/* the planned service (service port x family) */
	__u32 local_set;	/* backend set for connections made on this node */
	__u32 ext_set;		/* backend set for traffic arriving from outside */
	__u16 flags;		/* BPX_FE_* */
	__u16 pad;
};

/* ---- Backend sets: a header (slot 0) and the backends of its live generation.
 * A set is replaced by writing the other generation's slots and then the
 * header, one atomic update: a reader sees the old list or the new one, never
 * a mix. The stale generation is deleted afterwards. */

struct bpx_set_key {
	__u32 set;
	__u16 slot;		/* 0: header; 1..count: backends */
	__u8 gen;		/* header: 0; backend slots: their generation (1 or 2) */
	__u8 pad;
};

enum bpx_empty {
	BPX_EMPTY_REJECT = 1,	/* no endpoints anywhere: refuse (ECONNREFUSED) */
	BPX_EMPTY_DROP = 2,	/* endpoints exist, none usable here (Local policy): drop */
};

struct bpx_set_val {
	__u32 backend;		/* backend slots: backend id */
	__u16 count;		/* header: backends in the live generation */
	__u8 gen;		/* header: the live generation */
	__u8 empty;		/* header: BPX_EMPTY_* when count is 0 */
	__u32 affinity;		/* header: ClientIP affinity timeout in seconds, 0 = none */
	__u32 svc_id;		/* header: owning service */
};

/* ---- Backends, shared by every set that uses the same address and port. --- */

enum bpx_be_flag {
	BPX_BE_LOCAL = 1 << 0,	/* on this node */
};

struct bpx_backend {
	union bpx_addr addr;
	__be16 port;
	__u8 proto;
	__u8 family;
	__u8 flags;		/* BPX_BE_* */
	__u8 pad[3];
};

/* Present while a backend belongs to a set: lets affinity and flow entries
 * that name a removed backend be recognised as stale. */
struct bpx_member_key {
	__u32 backend;
	__u32 set;
};

/* ---- Per-socket state of the socket hooks. -------------------------------- */

/* Socket + backend -> the frontend the application asked for, so getpeername()
 * and recvmsg() show the service address, never the backend. */
struct bpx_sk_rnat_key {
	__u64 cookie;		/* bpf_get_socket_cookie() */
	union bpx_addr addr;	/* backend */
	__be16 port;
	__u8 family;
	__u8 pad[5];
};

struct bpx_sk_rnat_val {
	union bpx_addr addr;	/* frontend */
	__be16 port;
	__u8 family;
	__u8 pad;
	__u32 svc_id;
};

/* Unconnected UDP: socket + frontend -> the backend its datagrams go to, so a
 * flow stays on one backend the way conntrack keeps it for kube-proxy. */
struct bpx_flow_key {
	__u64 cookie;
	union bpx_addr addr;	/* frontend */
	__be16 port;
	__u8 proto;
	__u8 family;
	__u32 pad;
};

struct bpx_flow_val {
	__u64 last_ns;
	__u32 backend;
	__u32 set;
};

/* ClientIP session affinity. The socket hooks identify a client by its network
 * namespace cookie (every socket of a pod shares it); family is 0 then. */
struct bpx_aff_key {
	union bpx_addr client;
	__u32 set;
	__u8 family;
	__u8 pad[3];
};

struct bpx_aff_val {
	__u64 last_ns;
	__u32 backend;
	__u32 pad;
};

/* ---- loadBalancerSourceRanges (ranges.h): (service, source prefix). The
 * trie matches on the first prefixlen bits of svc and addr together, so
 * prefixlen is 32 (the whole service ID, network order) + the prefix. */
struct bpx_range_key {
	__u32 prefixlen;
	__be32 svc;		/* service ID, network order: the trie compares bytes */
	union bpx_addr addr;	/* the range's network; IPv4 in the first 4 bytes */
};

/* ---- Maglev (maglev.h): where an external backend set's lookup table sits. */
struct bpx_maglev_row {
	__u32 row;		/* the table starts at slot row * m of bpx_maglev_v1 */
	__u32 m;		/* table size, a prime */
};

/* ---- Packet conntrack and NAT: written by the packet programs only (the
 * control plane reads them for metrics and cleanup). conntrack.h and nat.h
 * hold the maps and the code. ---------------------------------------------- */

enum bpx_ct_dir {
	BPX_CT_ORIG = 0,	/* client -> frontend, as it arrived */
	BPX_CT_REPLY = 1,	/* backend -> client (or -> node's NAT port), as it arrives */
};

/* A flow in one direction, as its packets arrive. */
struct bpx_ct_key {
	union bpx_addr saddr;
	union bpx_addr daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 family;
	__u8 dir;		/* BPX_CT_* */
	__u8 pad;
};

/* ORIG: where the flow goes (backend) and the source it leaves with (SNAT).
 * REPLY: the source to restore (the frontend) and, for an SNATed flow, the
 * destination to restore (the client). */
struct bpx_ct_val {
	__u64 last_ns;		/* last packet seen, refreshed at most once a second */
	union bpx_addr addr;	/* ORIG: backend; REPLY: frontend */
	union bpx_addr nat_addr;	/* ORIG: SNAT source; REPLY: client; zero when not SNATed */
	__be16 port;		/* ORIG: backend port; REPLY: frontend port */
	__be16 nat_port;	/* ORIG: SNAT source port; REPLY: client port; 0 when not SNATed */
	__u32 backend;		/* backend id */
	__u8 flags;		/* BPX_CTF_* */
	__u8 pad[7];
};

/* A source port of a node address, taken by one SNATed flow. */
struct bpx_nat_key {
	union bpx_addr addr;
	__be16 port;
	__u8 proto;
	__u8 family;
};

struct bpx_nat_val {
	__u64 last_ns;		/* refreshed with the flow's ORIG conntrack entry */
	union bpx_addr client;	/* the flow that holds the port, for a reader */
	__be16 client_port;
	__u8 pad[6];
};

/* ---- Local backends reached by redirect (redirect-local.h): a local
 * backend's address -> its pod's host-side veth and the MACs a frame needs
 * there. The control plane (src/dataplane/bpf/local-endpoints.ts) writes an
 * entry only for a backend whose veth takes redirected frames; a backend
 * without one goes through the node's stack (XDP_PASS). */
struct bpx_local_ep_key {
	union bpx_addr addr;	/* IPv4 in the first 4 bytes, the rest zero */
	__u8 family;		/* BPX_FAMILY_* */
	__u8 pad[3];
};

struct bpx_local_ep {
	__u32 ifindex;		/* the pod's host-side veth: a key of bpx_local_dev_v1 */
	__u8 mac[6];		/* the pod's MAC (the node's neighbour entry for it) */
	__u8 src_mac[6];	/* the MAC of the node device that holds the pod's route (its gateway) */
};

/* ---- Counters: one per drop reason and event (reasons.h), summed over CPUs
 * and exported as metrics by name. ---------------------------------------- */

struct bpx_counter {
	__u64 count;
	/* Zero-size anchors that put the enums into BTF, where the proxy
	 * checks its copies of the constants and of the reason tables. */
	enum bpx_family anchor_family[0];
	enum bpx_fe_flag anchor_fe_flag[0];
	enum bpx_empty anchor_empty[0];
	enum bpx_be_flag anchor_be_flag[0];
	enum bpx_drop anchor_drop[0];
	enum bpx_event anchor_event[0];
	enum bpx_counter_slot anchor_slot[0];
};

#endif
