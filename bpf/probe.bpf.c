// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Kernel-feature probes for the XDP path, run once at start through
 * BPF_PROG_TEST_RUN (src/dataplane/bpf/probe-xdp.ts). A feature whose absence
 * the verifier would not notice (a helper flag is checked when the helper
 * runs, not at load) is probed by calling it: each program returns 1 when
 * the kernel has the feature, 0 when not. No maps: nothing is pinned.
 */
#include "lib/common.h"

#ifndef AF_INET
#define AF_INET 2
#endif

/*
 * BPF_FIB_LOOKUP_SRC (6.7): the route lookup also fills in the source
 * address the kernel would choose, which SNAT to a remote backend uses
 * (fib.h). Older kernels refuse the unknown flag with -EINVAL before looking
 * anything up; newer ones answer with a lookup result (here, for a test run
 * on loopback, whatever the route says), never -EINVAL for this request.
 */
SEC("xdp")
int bpx_probe_fib_src(struct xdp_md *ctx)
{
	struct bpf_fib_lookup fib;

	__builtin_memset(&fib, 0, sizeof(fib));
	fib.family = AF_INET;
	fib.l4_protocol = IPPROTO_UDP;
	fib.tot_len = 28;
	fib.ifindex = ctx->ingress_ifindex;
	fib.ipv4_dst = bpf_htonl(0x7f000001);
	return bpf_fib_lookup(ctx, &fib, sizeof(fib), BPF_FIB_LOOKUP_SRC) == -EINVAL ? 0 : 1;
}

/* The probes' own check: a flag no kernel knows gets -EINVAL, so this returns
 * 0 everywhere (test/bpf/probe-xdp.test.ts: a missing feature is detected). */
SEC("xdp")
int bpx_probe_selftest(struct xdp_md *ctx)
{
	struct bpf_fib_lookup fib;

	__builtin_memset(&fib, 0, sizeof(fib));
	fib.family = AF_INET;
	fib.ifindex = ctx->ingress_ifindex;
	return bpf_fib_lookup(ctx, &fib, sizeof(fib), 1U << 31) == -EINVAL ? 0 : 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
