// What the packet tracers of the rule-based modes (nftables/trace.ts,
// iptables/trace.ts, ipvs/trace.ts) take and answer, so their answers compare directly.
import type { Protocol } from '../model/types.js';

export interface TracePacket {
  src: string;
  dst: string;
  proto: Protocol;
  port: number;
  /** Sent by a process of the node itself (output hook; a local source address). Otherwise it arrives from a pod or the network. */
  fromNode?: boolean;
}

export interface TraceResult {
  /** Each possible outcome: "dnat ADDR:PORT", "dnat ADDR:PORT masquerade", "drop", "reject", "not a service" (accepted untouched). */
  outcomes: Set<string>;
  /** One path of chains per outcome, for messages. */
  paths: Map<string, string[]>;
  /** Probability of each outcome for a client's first connection (affinity state still empty). */
  weights: Map<string, number>;
}

/** The outcomes as one sorted line, for comparisons and messages. */
export function describeTrace(r: TraceResult): string {
  return [...r.outcomes].sort().join(' | ');
}
