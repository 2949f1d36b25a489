// Which conntrack entries a sync leaves stale, from the plan before and after
// it. Pure. Only connectionless protocols (UDP, and SCTP, whose associations
// netfilter tracks the same way) need this: a datagram that matches an entry
// is NATed by the entry, never by the rules, so a client that keeps its
// source port keeps reaching a removed endpoint, or keeps being refused after
// its service got its first endpoint, until the entry times out (120 s for a
// UDP stream). TCP needs nothing: the endpoint going away ends the connection.
//
// The match is kube-proxy's (pkg/proxy/conntrack/cleanup.go): an entry whose
// original destination is a frontend (ClusterIP, ExternalIP, LoadBalancer IP
// and port; a NodePort on a node address) and whose reply does not come from
// a serving endpoint of that frontend. That covers the endpoint removed (its
// flows answer from its address) and the first endpoint gained (a flow that
// was refused or dropped was never NATed: its reply source is the frontend
// itself). kube-proxy reconciles the whole table on every sync; here only the
// frontends whose endpoints lost a member, gained their first one, or that
// appeared or disappeared are looked at, so a sync that changed no UDP
// service costs nothing. A service seen for the first time (every one, on the
// first sync after a start) is looked at: flows a previous run left, or that
// reached its address before it existed, are cleared.
import type { IPFamily, Protocol } from '../../model/types.js';
import type { Frontend, PlannedService } from '../../planner/types.js';

export type ConnectionlessProtocol = Extract<Protocol, 'UDP' | 'SCTP'>;

export interface StaleFlowRule {
  family: IPFamily;
  protocol: ConnectionlessProtocol;
  /** The frontend: the flows' original destination. */
  address: string;
  port: number;
  /** Serving endpoints of the frontend: flows answered from these stay. Empty: every flow to the frontend goes. */
  keep: string[];
}

export function isConnectionless(p: Protocol): p is ConnectionlessProtocol {
  return p === 'UDP' || p === 'SCTP';
}

/** The endpoints a frontend's traffic may reach: ClusterIP the internal set, the others the external and (from this node) the cluster set. */
function endpointsOf(s: PlannedService, f: Frontend): Set<string> {
  const sets = f.kind === 'ClusterIP' ? [s.internal] : [s.external, s.cluster];
  const out = new Set<string>();
  for (const set of sets) for (const b of set.backends) out.add(b.address);
  return out;
}

const frontendKey = (f: Frontend) => `${f.address} ${f.port}`;

/** The rules one service's change calls for (undefined: absent on that side). */
export function serviceStaleFlows(before: PlannedService | undefined, after: PlannedService | undefined): StaleFlowRule[] {
  if (before === after) return [];
  const out: StaleFlowRule[] = [];
  const rule = (svc: PlannedService, f: Frontend, keep: Set<string>) => {
    if (isConnectionless(svc.protocol)) out.push({ family: svc.family, protocol: svc.protocol, address: f.address, port: f.port, keep: [...keep].sort() });
  };
  const previous = new Map((before?.frontends ?? []).map((f) => [frontendKey(f), f]));
  if (after) {
    for (const f of after.frontends) {
      const now = endpointsOf(after, f);
      const old = previous.get(frontendKey(f));
      // A protocol change is a new frontend: the old protocol's flows are cleared below.
      if (old === undefined || before!.protocol !== after.protocol) {
        rule(after, f, now);
        continue;
      }
      const was = endpointsOf(before!, old);
      const lost = [...was].some((a) => !now.has(a));
      const gainedFirst = was.size === 0 && now.size > 0;
      if (lost || gainedFirst) rule(after, f, now);
    }
  }
  if (before) {
    const current = new Set(after && after.protocol === before.protocol ? after.frontends.map(frontendKey) : []);
    for (const f of before.frontends) if (!current.has(frontendKey(f))) rule(before, f, new Set());
  }
  return out;
}

/**
 * Every rule for the services `keys` names, `before` and `after` being the
 * services by planned key. A frontend that a removed service had and a live
 * one has now (a Service recreated under another name) keeps the live
 * service's endpoints: one rule per frontend, the live one winning.
 */
export function staleFlowRules(
  before: ReadonlyMap<string, PlannedService>,
  after: ReadonlyMap<string, PlannedService>,
  keys: Iterable<string>,
): StaleFlowRule[] {
  const byFrontend = new Map<string, StaleFlowRule>();
  const live = new Set<string>();
  for (const key of keys) {
    for (const r of serviceStaleFlows(before.get(key), after.get(key))) {
      const k = `${r.family} ${r.protocol} ${r.address} ${r.port}`;
      const isLive = r.keep.length > 0 || after.get(key)?.frontends.some((f) => f.address === r.address && f.port === r.port) === true;
      if (live.has(k) && !isLive) continue;
      if (isLive) live.add(k);
      byFrontend.set(k, r);
    }
  }
  // A frontend that a live service still has (under a key not in `keys`) is not cleared as if it were gone.
  for (const [k, r] of byFrontend) {
    if (live.has(k) || r.keep.length > 0) continue;
    for (const s of after.values()) {
      if (s.family === r.family && s.protocol === r.protocol && s.frontends.some((f) => f.address === r.address && f.port === r.port)) {
        byFrontend.delete(k);
        break;
      }
    }
  }
  return [...byFrontend.values()];
}
