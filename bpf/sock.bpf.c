// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Socket-level service translation, attached to the cgroup v2 hierarchy:
 * connect4/6 and sendmsg4/6 pick a backend and rewrite the destination;
 * recvmsg4/6 and getpeername4/6 show the application the service address.
 * IPv6 sockets addressing IPv4-mapped service addresses use the IPv4 services.
 */
#include "lib/sock.h"

static __always_inline int sock4_fwd(struct bpf_sock_addr *ctx, bool udp_flow)
{
	struct bpx_fe_key key = {
		.port = (__be16)ctx->user_port,
		.proto = (__u8)ctx->protocol,
		.family = BPX_FAMILY_V4,
	};
	struct bpx_backend *be = NULL;
	__u32 svc_id = 0;
	int ret;

	key.addr.v4 = ctx->user_ip4;
	ret = sock_select(ctx, &key, udp_flow, &be, &svc_id);
	if (ret == 0)
		return SYS_PROCEED;
	if (ret < 0 || !be) {
		bpf_set_retval(ret < 0 ? ret : -ECONNREFUSED);
		return SYS_REJECT;
	}
	ctx->user_ip4 = be->addr.v4;
	ctx->user_port = (__u32)be->port;
	sock_rnat_put(ctx, &key, be, svc_id);
	count_event(BPX_EVENT_SOCK_XLATE);
	return SYS_PROCEED;
}

static __always_inline int sock6_fwd(struct bpf_sock_addr *ctx, bool udp_flow)
{
	struct bpx_fe_key key = {
		.port = (__be16)ctx->user_port,
		.proto = (__u8)ctx->protocol,
	};
	struct bpx_backend *be = NULL;
	__u32 a[4], svc_id = 0;
	int ret;

	a[0] = ctx->user_ip6[0];
	a[1] = ctx->user_ip6[1];
	a[2] = ctx->user_ip6[2];
	a[3] = ctx->user_ip6[3];
	if (lb_addr_is_v4mapped(a)) {
		key.family = BPX_FAMILY_V4;
		key.addr.v4 = a[3];
	} else {
		key.family = BPX_FAMILY_V6;
		__builtin_memcpy(key.addr.v6, a, sizeof(a));
	}
	ret = sock_select(ctx, &key, udp_flow, &be, &svc_id);
	if (ret == 0)
		return SYS_PROCEED;
	if (ret < 0 || !be) {
		bpf_set_retval(ret < 0 ? ret : -ECONNREFUSED);
		return SYS_REJECT;
	}
	if (key.family == BPX_FAMILY_V4) {
		ctx->user_ip6[3] = be->addr.v4;	/* stays ::ffff:a.b.c.d */
	} else {
		ctx->user_ip6[0] = be->addr.v6[0];
		ctx->user_ip6[1] = be->addr.v6[1];
		ctx->user_ip6[2] = be->addr.v6[2];
		ctx->user_ip6[3] = be->addr.v6[3];
	}
	ctx->user_port = (__u32)be->port;
	sock_rnat_put(ctx, &key, be, svc_id);
	count_event(BPX_EVENT_SOCK_XLATE);
	return SYS_PROCEED;
}

static __always_inline int sock4_rev(struct bpf_sock_addr *ctx)
{
	/* Zero the whole union first: a designated initializer of one member
	 * leaves the other bytes unspecified, and the key would not match. */
	union bpx_addr addr = {};
	struct bpx_sk_rnat_val *v;

	addr.v4 = ctx->user_ip4;
	v = sock_rnat_get(ctx, &addr, (__be16)ctx->user_port, BPX_FAMILY_V4);
	if (v && v->family == BPX_FAMILY_V4) {
		ctx->user_ip4 = v->addr.v4;
		ctx->user_port = (__u32)v->port;
		count_event(BPX_EVENT_SOCK_RNAT_HIT);
	}
	return SYS_PROCEED;
}

static __always_inline int sock6_rev(struct bpf_sock_addr *ctx)
{
	struct bpx_sk_rnat_val *v;
	union bpx_addr addr = {};
	__u32 a[4];
	__u8 family;

	a[0] = ctx->user_ip6[0];
	a[1] = ctx->user_ip6[1];
	a[2] = ctx->user_ip6[2];
	a[3] = ctx->user_ip6[3];
	if (lb_addr_is_v4mapped(a)) {
		family = BPX_FAMILY_V4;
		addr.v4 = a[3];
	} else {
		family = BPX_FAMILY_V6;
		__builtin_memcpy(addr.v6, a, sizeof(a));
	}
	v = sock_rnat_get(ctx, &addr, (__be16)ctx->user_port, family);
	if (!v || v->family != family)
		return SYS_PROCEED;
	if (family == BPX_FAMILY_V4) {
		ctx->user_ip6[3] = v->addr.v4;
	} else {
		ctx->user_ip6[0] = v->addr.v6[0];
		ctx->user_ip6[1] = v->addr.v6[1];
		ctx->user_ip6[2] = v->addr.v6[2];
		ctx->user_ip6[3] = v->addr.v6[3];
	}
	ctx->user_port = (__u32)v->port;
	count_event(BPX_EVENT_SOCK_RNAT_HIT);
	return SYS_PROCEED;
}

SEC("cgroup/connect4")
int bpx_connect4(struct bpf_sock_addr *ctx)
{
	return sock4_fwd(ctx, false);
}

SEC("cgroup/sendmsg4")
int bpx_sendmsg4(struct bpf_sock_addr *ctx)
{
	return sock4_fwd(ctx, true);
}

SEC("cgroup/recvmsg4")
int bpx_recvmsg4(struct bpf_sock_addr *ctx)
{
	return sock4_rev(ctx);
}

SEC("cgroup/getpeername4")
int bpx_getpeername4(struct bpf_sock_addr *ctx)
{
	return sock4_rev(ctx);
}

SEC("cgroup/connect6")
int bpx_connect6(struct bpf_sock_addr *ctx)
{
	return sock6_fwd(ctx, false);
}

SEC("cgroup/sendmsg6")
int bpx_sendmsg6(struct bpf_sock_addr *ctx)
{
	return sock6_fwd(ctx, true);
}

SEC("cgroup/recvmsg6")
int bpx_recvmsg6(struct bpf_sock_addr *ctx)
{
	return sock6_rev(ctx);
}

SEC("cgroup/getpeername6")
int bpx_getpeername6(struct bpf_sock_addr *ctx)
{
	return sock6_rev(ctx);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
