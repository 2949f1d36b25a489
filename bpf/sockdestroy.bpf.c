// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Moves connected UDP sockets off backends a sync removed.
 *
 * The socket hooks translate a connected UDP socket once, at connect(); the
 * kernel then sends every datagram to that backend, whatever the maps say
 * later. After a sync that took UDP backends out of a service, the control
 * plane fills bpx_sk_dead with (service, backend) pairs and runs this
 * iterator in every network namespace its cgroup's processes live in. A
 * socket is destroyed (bpf_sock_destroy, kernel 6.5+) when all of these hold:
 *   - it is connected (a peer address and port are set);
 *   - our connect hook translated it: bpx_sk_rnat_v1 has (its cookie, its
 *     peer), which names the service it was connected through;
 *   - that (service, peer) pair is in bpx_sk_dead.
 * The application gets ECONNABORTED on its next receive (the kernel also
 * disconnects the socket, so a send() without an address fails with
 * EDESTADDRREQ) and reconnects through the connect hook, to a live backend.
 * A socket that talks to a backend address directly, or through another
 * service that still has that backend, is left alone.
 *
 * This is the one program that reads kernel types (struct udp_sock, through
 * the iterator's context): it includes a vmlinux.h generated from the build
 * host's BTF (Makefile) and its field accesses are CO-RE relocations. Every
 * other object builds from UAPI headers only. The proxy runs without it
 * where the kernel lacks BTF or bpf_sock_destroy (sock-destroy.ts).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* maps.h's layouts are the single source of truth for the keys this program
 * shares with sock.bpf.c. It includes common.h, whose UAPI headers redefine
 * what vmlinux.h already declares: mark common.h as included, since
 * vmlinux.h supplies the fixed-width types maps.h needs. */
#define BPX_COMMON_H
#include "lib/maps.h"

#define AF_INET 2
#define AF_INET6 10
#define UDP_PROTO 17		/* IPPROTO_UDP: an enum in vmlinux.h, a macro in UAPI */
#define SK_CONNECTED 1		/* TCP_ESTABLISHED: what connect() sets on a UDP socket */

extern int bpf_sock_destroy(struct sock_common *sk) __ksym;

/* Socket + backend -> the frontend it was connected through: sock.h's map,
 * reused through its pin (the loader refuses a pinned map of another layout). */
#include "lib/sock-rnat-map.h"

/* A backend a sync took out of a service. */
struct bpx_sk_dead_key {
	union bpx_addr addr;
	__be16 port;
	__u8 proto;
	__u8 family;		/* BPX_FAMILY_* */
	__u32 svc_id;
};

/* removed (service, backend) pairs of the current run: filled by the control
 * plane, read here, emptied after the run. Not pinned: it lives with the
 * proxy's handle, so nothing of a run outlasts it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct bpx_sk_dead_key);
	__type(value, __u8);
} bpx_sk_dead SEC(".maps");

/* The socket's peer as the hooks key it. IPv4-mapped peers of IPv6 sockets
 * are IPv4 backends, as sock6_fwd translated them. Returns false when the
 * socket has no peer or is of another family. */
static __always_inline bool sk_peer(const struct sock_common *skc, struct bpx_sk_rnat_key *key)
{
	__u16 family = skc->skc_family;

	if (skc->skc_state != SK_CONNECTED || skc->skc_dport == 0)
		return false;
	key->port = skc->skc_dport;
	if (family == AF_INET) {
		key->family = BPX_FAMILY_V4;
		key->addr.v4 = skc->skc_daddr;
		return true;
	}
	if (family != AF_INET6)
		return false;
	{
		__be32 a0 = skc->skc_v6_daddr.in6_u.u6_addr32[0];
		__be32 a1 = skc->skc_v6_daddr.in6_u.u6_addr32[1];
		__be32 a2 = skc->skc_v6_daddr.in6_u.u6_addr32[2];
		__be32 a3 = skc->skc_v6_daddr.in6_u.u6_addr32[3];

		if (a0 == 0 && a1 == 0 && a2 == bpf_htonl(0xffff)) {
			key->family = BPX_FAMILY_V4;
			key->addr.v4 = a3;
			return true;
		}
		key->family = BPX_FAMILY_V6;
		key->addr.v6[0] = a0;
		key->addr.v6[1] = a1;
		key->addr.v6[2] = a2;
		key->addr.v6[3] = a3;
	}
	return true;
}

/* The service our connect hook translated this socket through, or 0. */
static __always_inline __u32 sk_service(struct sock *sk, struct bpx_sk_rnat_key *key)
{
	struct bpx_sk_rnat_val *v;

	key->cookie = bpf_get_socket_cookie(sk);
	v = bpf_map_lookup_elem(&bpx_sk_rnat_v1, key);
	return v ? v->svc_id : 0;
}

static __always_inline bool backend_removed(const struct bpx_sk_rnat_key *peer, __u32 svc_id)
{
	struct bpx_sk_dead_key key = {
		.addr = peer->addr,
		.port = peer->port,
		.proto = UDP_PROTO,
		.family = peer->family,
		.svc_id = svc_id,
	};

	return bpf_map_lookup_elem(&bpx_sk_dead, &key) != NULL;
}

SEC("iter/udp")
int bpx_sock_destroy_udp(struct bpf_iter__udp *ctx)
{
	struct sock *sk = (struct sock *)ctx->udp_sk;
	struct bpx_sk_rnat_key peer = {};
	__u32 svc_id;
	int err;

	if (!sk || !sk_peer(&sk->__sk_common, &peer))
		return 0;
	svc_id = sk_service(sk, &peer);
	if (!svc_id || !backend_removed(&peer, svc_id))
		return 0;
	err = bpf_sock_destroy(&sk->__sk_common);
	/* One line per socket, "cookie service errno", read by the control
	 * plane for its log (and readable with cat when pinned). */
	BPF_SEQ_PRINTF(ctx->meta->seq, "%llu %u %d\n", peer.cookie, svc_id, err);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
