// Which endpoints a service port may use from this node: kube-proxy's
// CategorizeEndpoints (pkg/proxy/topology.go), including the terminating
// fallback (KEP-1669, GA in 1.28) and topology hints (KEP-2433, KEP-4444,
// KEP-3015). Pure.
import type { Place } from '../model/packed-endpoints.js';
import type { ServiceInfo } from '../model/types.js';
import type { PlannedBackend } from './types.js';

/** One endpoint of a service port, read from a slice's packed endpoints for one plan (not kept). */
export interface PortEndpoint {
  /** The slice's packed endpoints, and where this one's address starts in them. */
  packed: readonly number[];
  at: number;
  /** The IPv4 bits as a signed int32 (read with `>>> 0`); 0 for IPv6, whose words are packed[at..at+4). */
  v4: number;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  /** nodeName, zone and hints: interned, shared by every endpoint with the same. */
  place: Place;
  port: number;
  /** On this node. */
  local: boolean;
  /** The planner's backend for it, once made: the sets of a service that hold this endpoint share one. */
  backend: PlannedBackend | null;
}

export interface Categorized {
  /** Endpoints for Cluster traffic policy: ready (topology-filtered), else serving-and-terminating. */
  cluster: PortEndpoint[];
  /** Endpoints for Local traffic policy: local ready ones, else local serving-and-terminating ones. */
  local: PortEndpoint[];
  /** True when the service has usable endpoints anywhere, not just here. */
  hasAnyEndpoints: boolean;
  /** How topology was applied: "" none, else the mode and why. */
  topology: string;
}

export interface NodeTopology {
  name: string;
  zone: string | null;
}

// `external`: the port has NodePort, ExternalIP or LoadBalancer frontends.

/**
 * Cluster endpoints are needed unless internal traffic is Local-only and there
 * is no external traffic (even with externalTrafficPolicy Local, local-origin
 * traffic to external frontends is short-circuited to the Cluster endpoints).
 */
export function usesClusterEndpoints(svc: ServiceInfo, external: boolean): boolean {
  return svc.internalTrafficPolicy !== 'Local' || external;
}

export function usesLocalEndpoints(svc: ServiceInfo, external: boolean): boolean {
  return svc.internalTrafficPolicy === 'Local' || (external && svc.externalTrafficPolicy === 'Local');
}

function topologyMode(eps: readonly PortEndpoint[], node: NodeTopology): { mode: '' | 'PreferSameNode' | 'PreferSameZone'; why: string } {
  let hasForNode = false;
  let allHaveNodeHints = true;
  let hasForZone = false;
  let allHaveZoneHints = true;
  let anyReady = false;
  for (const ep of eps) {
    if (!ep.ready) continue;
    anyReady = true;
    if (ep.place.nodeHints.length === 0) allHaveNodeHints = false;
    else if (ep.place.nodeHints.includes(node.name)) hasForNode = true;
    if (ep.place.zoneHints.length === 0) allHaveZoneHints = false;
    else if (node.zone !== null && ep.place.zoneHints.includes(node.zone)) hasForZone = true;
  }
  if (!anyReady) return { mode: '', why: '' };
  let why = '';
  if (allHaveNodeHints) {
    if (hasForNode) return { mode: 'PreferSameNode', why: `PreferSameNode (node ${node.name})` };
    why = `node hints ignored: none for node ${node.name}`;
  }
  if (allHaveZoneHints) {
    if (hasForZone) return { mode: 'PreferSameZone', why: `PreferSameZone (zone ${node.zone})` };
    why = node.zone === null ? 'zone hints ignored: this node has no topology.kubernetes.io/zone label' : `zone hints ignored: none for zone ${node.zone}`;
  }
  return { mode: '', why };
}

function availableForTopology(ep: PortEndpoint, mode: string, node: NodeTopology): boolean {
  switch (mode) {
    case '': return true;
    case 'PreferSameNode': return ep.place.nodeHints.includes(node.name);
    case 'PreferSameZone': return node.zone !== null && ep.place.zoneHints.includes(node.zone);
    default: return false;
  }
}

export function categorizeEndpoints(
  eps: readonly PortEndpoint[],
  svc: ServiceInfo,
  external: boolean,
  node: NodeTopology,
): Categorized {
  let cluster: PortEndpoint[] = [];
  let local: PortEndpoint[] = [];
  let hasAnyEndpoints = false;
  let topology = '';

  if (usesClusterEndpoints(svc, external)) {
    const t = topologyMode(eps, node);
    topology = t.why;
    cluster = eps.filter((ep) => ep.ready && availableForTopology(ep, t.mode, node));
    // No ready endpoint anywhere: fall back to serving-and-terminating ones,
    // without topology, as a best effort not to drop connections.
    if (cluster.length === 0) {
      cluster = eps.filter((ep) => ep.serving && ep.terminating);
      if (cluster.length > 0 && t.mode) topology = `${t.why}; ignored: only terminating endpoints`;
    }
    if (cluster.length > 0) hasAnyEndpoints = true;
  }
  if (!usesLocalEndpoints(svc, external)) return { cluster, local, hasAnyEndpoints, topology };

  let hasLocalReady = false;
  let hasLocalServingTerminating = false;
  for (const ep of eps) {
    if (ep.ready) {
      hasAnyEndpoints = true;
      if (ep.local) hasLocalReady = true;
    } else if (ep.serving && ep.terminating) {
      hasAnyEndpoints = true;
      if (ep.local) hasLocalServingTerminating = true;
    }
  }
  if (hasLocalReady) local = eps.filter((ep) => ep.local && ep.ready);
  else if (hasLocalServingTerminating) local = eps.filter((ep) => ep.local && ep.serving && ep.terminating);
  return { cluster, local, hasAnyEndpoints, topology };
}
