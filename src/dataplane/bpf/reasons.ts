// The drop reasons and events of the BPF programs: metric label and one-line
// description of each, in the order of bpf/lib/reasons.h (the index is the
// enum value). Checked against the objects' BTF through layout.ts's
// CONSTANT_ENUMS (test/bpf/layout.test.ts, and the loader), so an enumerator
// added in C without its row here, or a row out of order, fails loudly.
// Labels are exported as bpfproxy_datapath_drops_total{reason} and
// bpfproxy_datapath_events_total{event}.
import type { DatapathCounters } from '../types.js';

export interface Reason {
  /** Metric label: the enumerator's name without its prefix, lower case. */
  readonly label: string;
  readonly description: string;
}

/** enum bpx_drop, by value. */
export const DROP_REASONS: readonly Reason[] = [
  { label: 'truncated_l2', description: 'frame shorter than an Ethernet header' },
  { label: 'truncated_l3', description: 'IP header, or the IP total/payload length, past the end of the frame' },
  { label: 'invalid_l3', description: 'IP version not matching the EtherType, IHL below 5, or total length below IHL' },
  { label: 'truncated_l4', description: 'TCP, UDP or SCTP header past the end of the IP packet' },
  { label: 'invalid_l4', description: 'TCP data offset below 5 or UDP length below 8' },
  { label: 'no_local_backend', description: 'externalTrafficPolicy Local and no endpoint on this node: dropped, the client times out' },
  { label: 'no_backend', description: 'backend set or backend entry missing (a sync in flight)' },
  { label: 'nat_ports_exhausted', description: 'no free SNAT source port found within the bounded tries' },
  { label: 'fib_failed', description: 'no route toward the backend or the client, or forwarding off on the device' },
  { label: 'source_range', description: 'source address outside the service\'s loadBalancerSourceRanges' },
  { label: 'no_endpoints', description: 'service without endpoints, and no refusal could be sent (the packet was a TCP RST, or the frame could not be resized)' },
  { label: 'icmp_truncated', description: 'ICMP or ICMPv6 header, or the IP header and 8 bytes an error quotes, past the end of the packet (the kernel drops these too)' },
  { label: 'icmp_err_invalid', description: 'ICMP error quoting an IPv4 header with IHL below 5 (the kernel drops these too)' },
  { label: 'refuse_rate_limited', description: 'service without endpoints, but the refusals XDP sends are over their rate limit (1,000 a second, bursts of 50): dropped, not answered' },
];

/** enum bpx_event, by value. */
export const EVENTS: readonly Reason[] = [
  { label: 'sock_xlate', description: 'socket translated to a backend' },
  { label: 'sock_reject', description: 'socket refused: the service has no endpoints' },
  { label: 'sock_drop_no_local', description: 'socket refused: Local traffic policy and no local endpoint' },
  { label: 'sock_no_set', description: 'frontend without a backend set (a sync in flight)' },
  { label: 'sock_no_backend', description: 'backend slot or entry missing (a sync in flight)' },
  { label: 'sock_affinity_hit', description: 'session affinity kept a client on its backend' },
  { label: 'sock_flow_hit', description: 'an unconnected UDP flow stayed on its backend' },
  { label: 'sock_rnat_hit', description: 'getpeername/recvmsg showed the service address' },
  { label: 'sock_rnat_update_fail', description: 'could not record a reverse translation' },
  { label: 'pkt_pass_not_ip', description: 'packet neither IPv4 nor IPv6 (ARP, LLDP, ...): passed to the stack' },
  { label: 'pkt_pass_vlan', description: 'VLAN-tagged frame: passed to the stack and its VLAN device' },
  { label: 'pkt_pass_fragment', description: 'IP fragment: passed to the stack, which reassembles' },
  { label: 'pkt_pass_ip_options', description: 'IPv4 packet with options: passed to the stack' },
  { label: 'pkt_pass_ipv6_ext', description: 'IPv6 packet with an extension header the parser does not step over (a routing header with segments left, AH, ..., or more than its bound): passed to the stack' },
  { label: 'pkt_pass_icmp', description: 'ICMP or ICMPv6: passed to the stack' },
  { label: 'pkt_pass_other_l4', description: 'neither TCP, UDP nor SCTP: passed to the stack' },
  { label: 'pkt_pass_no_frontend', description: 'not addressed to a service frontend: passed to the stack' },
  { label: 'pkt_frontend_untranslated', description: 'addressed to a frontend of a kind the packet NAT does not serve: passed untranslated' },
  { label: 'pkt_local_new', description: 'new flow to a local backend: DNAT, passed to the stack' },
  { label: 'pkt_local_ct', description: 'known flow to a local backend: DNAT, passed to the stack' },
  { label: 'pkt_remote_new', description: 'new flow to a remote backend: SNAT and DNAT, transmitted' },
  { label: 'pkt_remote_ct', description: 'known flow to a remote backend: SNAT and DNAT, transmitted' },
  { label: 'pkt_reply_rnat', description: 'reply from a remote backend: reverse NAT, transmitted to the client' },
  { label: 'pkt_pass_no_endpoints', description: 'retired: services without endpoints are refused at XDP now (pkt_refused_no_endpoints); kept so no value is reused' },
  { label: 'pkt_neigh_via_tc', description: 'translated, but the next hop\'s MAC is unknown: passed for TC ingress to send with bpf_redirect_neigh' },
  { label: 'tc_reply_rnat', description: 'TC egress: reply from a local backend, its source restored to the frontend' },
  { label: 'tc_redirect_neigh', description: 'TC ingress: a translated packet sent with bpf_redirect_neigh' },
  { label: 'pkt_maglev_miss', description: 'new flow whose backend set has no Maglev table (more sets than rows, or a sync writing it), or whose slot names a backend that is gone: a random backend of the set' },
  { label: 'pkt_ct_reselect', description: 'known flow whose backend left the service (endpoint removed or no longer ready): picked afresh as a new flow' },
  { label: 'pkt_affinity_hit', description: 'new flow of a client with ClientIP session affinity: sent to the backend it used within the timeout' },
  { label: 'pkt_refused_no_endpoints', description: 'service without endpoints: refused at XDP, as kube-proxy\'s REJECT (TCP RST, ICMP or ICMPv6 port unreachable sent back to the client)' },
  { label: 'pkt_icmp_err_to_client', description: 'ICMP or ICMPv6 error (port unreachable, fragmentation needed, packet too big, time exceeded) about a packet sent to a backend: its quote and addresses restored to what the client used, sent to the client' },
  { label: 'pkt_icmp_err_to_backend', description: 'ICMP or ICMPv6 error about a reply sent to a client: its quote restored to what the backend sent, sent to the backend (to the stack for a local one)' },
  { label: 'pkt_icmp_err_no_flow', description: 'ICMP or ICMPv6 error quoting no translated flow (or a packet no translated flow has: ICMP echo, fragment, IP options): passed to the stack' },
  { label: 'tc_icmp_err_rnat', description: 'TC egress: ICMP or ICMPv6 error from a local backend or the node about a DNATed packet: its quote and source restored to the frontend' },
  { label: 'pkt_local_redirect', description: 'of the packets to local backends (pkt_local_new, pkt_local_ct): sent at XDP straight into the backend pod\'s veth, skipping the node\'s stack' },
  { label: 'pkt_routed_redirect', description: 'packet to no frontend addressed to a local backend (the second hop of another node\'s NodePort flow): sent at XDP straight into the pod\'s veth, skipping the node\'s stack' },
  { label: 'pkt_sctp_new_assoc', description: 'INIT to an SCTP flow whose association ended (ABORT, SHUTDOWN COMPLETE) or was shutting down: picked afresh as a new flow, its old SNAT port given back' },
];

/** enum bpx_counter_slot: where drops and events sit in the counters map. */
export const SLOT_DROPS = 0;
export const SLOT_EVENTS = 256;
export const SLOT_COUNT = 512;

/** The pinned counters map (bpf/lib/stats.h). */
export const COUNTERS_MAP = 'bpx_counters_v2';

function enumOf(prefix: string, rows: readonly Reason[]): Record<string, number> {
  const out: Record<string, number> = {};
  rows.forEach((r, i) => { out[`${prefix}${r.label.toUpperCase()}`] = i; });
  out[`__${prefix}MAX`] = rows.length;
  return out;
}

/** The enums of reasons.h as this table knows them, for layout.ts's checkConstants. */
export const REASON_ENUMS: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  bpx_drop: enumOf('BPX_DROP_', DROP_REASONS),
  bpx_event: enumOf('BPX_EVENT_', EVENTS),
  bpx_counter_slot: { BPX_SLOT_DROPS: SLOT_DROPS, BPX_SLOT_EVENTS: SLOT_EVENTS, BPX_SLOT_COUNT: SLOT_COUNT },
};

/**
 * Sums a dump of the per-CPU counters map into counts by label. Every known
 * label is present (zero when never counted), so rates start from 0. A
 * non-zero slot this build has no label for (a newer program writing the
 * same pinned map) shows as "unknown_<value>" rather than vanishing.
 */
export function sumCounters(dump: { keys: Buffer; values: Buffer; count: number; valueStride: number }): DatapathCounters {
  const drops = new Map<string, bigint>(DROP_REASONS.map((r) => [r.label, 0n]));
  const events = new Map<string, bigint>(EVENTS.map((r) => [r.label, 0n]));
  const { keys, values, count, valueStride } = dump;
  // Per CPU, each value is struct bpx_counter (8 bytes) rounded up to 8.
  for (let i = 0; i < count; i++) {
    const slot = keys.readUInt32LE(i * 4);
    let sum = 0n;
    for (let off = i * valueStride; off < (i + 1) * valueStride; off += 8) sum += values.readBigUInt64LE(off);
    const [table, into, value] = slot < SLOT_EVENTS ? [DROP_REASONS, drops, slot - SLOT_DROPS] : [EVENTS, events, slot - SLOT_EVENTS];
    const label = table[value]?.label;
    if (label) into.set(label, sum);
    else if (sum > 0n) into.set(`unknown_${value}`, sum);
  }
  return { drops, events };
}
