/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Why a packet was dropped, and what else the programs count. The single
 * source of truth for both lists: src/dataplane/bpf/reasons.ts holds the
 * metric label and a one-line description of each, and is checked against
 * the BTF of the built objects (test/bpf/layout.test.ts, and the proxy when
 * it loads), so a reason added here without its label fails loudly.
 *
 * Values are slots in the pinned counters map (stats.h): they may be added
 * at the end, never renumbered or reused. Labels are exported as
 * bpfproxy_datapath_drops_total{reason} and bpfproxy_datapath_events_total{event}.
 */
#ifndef BPX_REASONS_H
#define BPX_REASONS_H

/* Drops: every packet a program drops leaves through one exit that counts
 * one of these (see verdict.h). */
enum bpx_drop {
	BPX_DROP_TRUNCATED_L2 = 0,	/* frame shorter than an Ethernet header */
	BPX_DROP_TRUNCATED_L3,		/* IP header or the IP total/payload length past the frame's end */
	BPX_DROP_INVALID_L3,		/* IP version does not match the EtherType, IHL < 5, total length < IHL */
	BPX_DROP_TRUNCATED_L4,		/* TCP/UDP/SCTP header past the IP packet's end */
	BPX_DROP_INVALID_L4,		/* TCP data offset < 5, UDP length < 8 */
	BPX_DROP_NO_LOCAL_BACKEND,	/* externalTrafficPolicy Local and no endpoint on this node: the client times out */
	BPX_DROP_NO_BACKEND,		/* backend set or backend entry missing (a sync is replacing it) */
	BPX_DROP_NAT_PORTS_EXHAUSTED,	/* no free SNAT source port found within the bounded tries */
	BPX_DROP_FIB_FAILED,		/* no route toward the backend or the client (or forwarding off) */
	BPX_DROP_SOURCE_RANGE,		/* source outside the service's loadBalancerSourceRanges */
	BPX_DROP_NO_ENDPOINTS,		/* service without endpoints, and no refusal could be sent (a RST, or the frame could not be resized) */
	BPX_DROP_ICMP_TRUNCATED,	/* ICMP/ICMPv6 header, or an error's quoted IP header and 8 bytes after it, past the packet's end (icmp-quote.h) */
	BPX_DROP_ICMP_ERR_INVALID,	/* ICMP error quoting an IPv4 header with IHL < 5 (the kernel drops it too) */
	BPX_DROP_REFUSE_RATE_LIMITED,	/* service without endpoints, but refusals are over their rate limit (refuse-limit.h): dropped, not answered */
	__BPX_DROP_MAX,
};

/* Events: counted, not dropped. The socket events were enum bpx_stat. */
enum bpx_event {
	BPX_EVENT_SOCK_XLATE = 0,		/* socket translated to a backend */
	BPX_EVENT_SOCK_REJECT,			/* refused: the service has no endpoints */
	BPX_EVENT_SOCK_DROP_NO_LOCAL,		/* refused: Local policy and no local endpoint */
	BPX_EVENT_SOCK_NO_SET,			/* frontend without a backend set (sync in flight) */
	BPX_EVENT_SOCK_NO_BACKEND,		/* slot or backend entry missing (sync in flight) */
	BPX_EVENT_SOCK_AFFINITY_HIT,		/* affinity kept a client on its backend */
	BPX_EVENT_SOCK_FLOW_HIT,		/* an unconnected UDP flow stayed on its backend */
	BPX_EVENT_SOCK_RNAT_HIT,		/* getpeername/recvmsg showed the service address */
	BPX_EVENT_SOCK_RNAT_UPDATE_FAIL,	/* could not record the reverse translation */
	BPX_EVENT_PKT_PASS_NOT_IP,		/* neither IPv4 nor IPv6 (ARP, LLDP, ...): to the stack */
	BPX_EVENT_PKT_PASS_VLAN,		/* VLAN-tagged frame: to the stack (its VLAN device) */
	BPX_EVENT_PKT_PASS_FRAGMENT,		/* IP fragment: to the stack, which reassembles */
	BPX_EVENT_PKT_PASS_IP_OPTIONS,		/* IPv4 options: to the stack, which processes them */
	BPX_EVENT_PKT_PASS_IPV6_EXT,		/* IPv6 extension header not stepped over (routing with segments left, AH, ..., past parse6.h's bound): to the stack */
	BPX_EVENT_PKT_PASS_ICMP,		/* ICMP or ICMPv6: to the stack */
	BPX_EVENT_PKT_PASS_OTHER_L4,		/* not TCP, UDP or SCTP: to the stack */
	BPX_EVENT_PKT_PASS_NO_FRONTEND,		/* not addressed to a service frontend: to the stack */
	BPX_EVENT_PKT_FRONTEND_UNTRANSLATED,	/* to a service frontend of a kind the packet NAT does not serve: to the stack */
	BPX_EVENT_PKT_LOCAL_NEW,		/* new flow to a local backend: DNAT, to the stack */
	BPX_EVENT_PKT_LOCAL_CT,			/* known flow to a local backend: DNAT, to the stack */
	BPX_EVENT_PKT_REMOTE_NEW,		/* new flow to a remote backend: SNAT + DNAT, transmitted */
	BPX_EVENT_PKT_REMOTE_CT,		/* known flow to a remote backend: SNAT + DNAT, transmitted */
	BPX_EVENT_PKT_REPLY_RNAT,		/* reply from a remote backend: reverse NAT, transmitted to the client */
	BPX_EVENT_PKT_PASS_NO_ENDPOINTS,	/* retired (kept: values are never reused): services without endpoints are refused at XDP now */
	BPX_EVENT_PKT_NEIGH_VIA_TC,		/* translated, next hop's MAC unknown: passed for TC to send (bpf_redirect_neigh) */
	BPX_EVENT_TC_REPLY_RNAT,		/* TC egress: reply from a local backend, source restored to the frontend */
	BPX_EVENT_TC_REDIRECT_NEIGH,		/* TC ingress: a translated packet sent with bpf_redirect_neigh */
	BPX_EVENT_PKT_MAGLEV_MISS,		/* new flow whose set has no Maglev table (or its slot names a gone backend): random slot */
	BPX_EVENT_PKT_CT_RESELECT,		/* known flow whose backend left the service: picked afresh as a new flow */
	BPX_EVENT_PKT_AFFINITY_HIT,		/* new flow of a client with ClientIP affinity: its recent backend */
	BPX_EVENT_PKT_REFUSED_NO_ENDPOINTS,	/* service without endpoints: refused at XDP (TCP RST, ICMP or ICMPv6 port unreachable sent back) */
	BPX_EVENT_PKT_ICMP_ERR_TO_CLIENT,	/* ICMP/ICMPv6 error about a packet sent to a backend: quote and addresses restored, sent to the client (icmp-error.h) */
	BPX_EVENT_PKT_ICMP_ERR_TO_BACKEND,	/* ICMP/ICMPv6 error about a reply sent to a client: quote restored, sent to the backend (to the stack when local) */
	BPX_EVENT_PKT_ICMP_ERR_NO_FLOW,		/* ICMP/ICMPv6 error quoting no translated flow (or a packet no flow has: ICMP echo, fragment): to the stack */
	BPX_EVENT_TC_ICMP_ERR_RNAT,		/* TC egress: an error from a local backend (or the node) about a DNATed packet: quote and source restored to the frontend */
	BPX_EVENT_PKT_LOCAL_REDIRECT,		/* of pkt_local_new/pkt_local_ct: sent straight into the backend pod's veth (redirect-local.h), not through the node's stack */
	BPX_EVENT_PKT_ROUTED_REDIRECT,		/* to no frontend, addressed to a local backend (another node's NodePort flow): sent straight into its pod's veth */
	BPX_EVENT_PKT_SCTP_NEW_ASSOC,		/* an INIT to an SCTP flow whose association ended (ABORT, SHUTDOWN): picked afresh as a new flow (sctp-ct.h) */
	__BPX_EVENT_MAX,
};

/* The counters map's slots: drops first, then events, each with headroom, so
 * a build with more reasons still fits a map an older build pinned. Growing
 * past the headroom means a new map name (stats.h). */
enum bpx_counter_slot {
	BPX_SLOT_DROPS = 0,
	BPX_SLOT_EVENTS = 256,
	BPX_SLOT_COUNT = 512,
};

_Static_assert(__BPX_DROP_MAX <= BPX_SLOT_EVENTS - BPX_SLOT_DROPS, "drop reasons overflow their slots");
_Static_assert(__BPX_EVENT_MAX <= BPX_SLOT_COUNT - BPX_SLOT_EVENTS, "events overflow their slots");

#endif
