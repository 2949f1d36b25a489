// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The XDP program for node devices: NodePort, LoadBalancer and ExternalIP
 * traffic from outside the node. Stages, each returning a verdict or
 * BPX_CONTINUE: parse (parse.h) -> frontend lookup -> [backend pick, NAT and
 * transmit: next] -> one counted exit.
 *
 * It shares the frontend map with sock.bpf.o: lb.h defines bpx_fe_v1 with
 * LIBBPF_PIN_BY_NAME, so loading both into one pin directory gives one map.
 */
#include "lib/lb.h"
#include "lib/parse.h"

/* The frontend stage: is the packet addressed to a service? */
static __always_inline int stage_frontend(const struct bpx_pkt *p, struct bpx_fe_val **out)
{
	struct bpx_fe_key key = {
		.addr = p->dst,		/* zeroed past an IPv4 address by the caller */
		.port = p->dport,
		.proto = p->proto,
		.family = p->family,
	};

	*out = lb_lookup_frontend(&key);
	if (!*out)
		return pass(BPX_EVENT_PKT_PASS_NO_FRONTEND);
	return BPX_CONTINUE;
}

/* The program's one exit: every verdict is counted here. */
static __always_inline int xdp_exit(int verdict)
{
	return verdict_count(verdict) ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int bpx_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct bpx_fe_val *fe = NULL;
	struct bpx_pkt p = {};
	int v;

	v = parse_packet(data, data_end, &p);
	if (v == BPX_CONTINUE)
		v = stage_frontend(&p, &fe);
	/* The packet datapath does not translate yet (the next stages pick a
	 * backend and NAT): a frontend's traffic goes to the stack as before,
	 * counted so that is visible. */
	if (v == BPX_CONTINUE)
		v = pass(BPX_EVENT_PKT_FRONTEND_UNTRANSLATED);
	return xdp_exit(v);
}

/* XDP_PASS and nothing else: the baseline `make bench` measures against, and
 * the program a lab attaches to the peer of a veth the proxy transmits into
 * (native XDP on veth delivers XDP_TX frames only then: platform-notes.md). */
SEC("xdp")
int bpx_xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
