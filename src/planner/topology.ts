// Which endpoints a service port may use from this node: kube-proxy's
// CategorizeEndpoints (pkg/proxy/topology.go), including the terminating
// fallback (KEP-1669, GA in 1.28) and topology hints (KEP-2433, KEP-4444,
// KEP-3015). Pure apart from its reused scratch: it reads the rows of a
// PortEndpoints and writes row numbers into two Selections, so that a full
// plan makes no array per set.
import type { ServiceInfo } from '../model/types.js';
import type { PortEndpoints } from './endpoints.js';

/** Rows of a PortEndpoints, in row order (so, address order). */
export class Selection {
  n = 0;
  rows = new Int32Array(64);

  add(row: number): void {
    if (this.n === this.rows.length) {
      const grown = new Int32Array(this.rows.length * 2);
      grown.set(this.rows);
      this.rows = grown;
    }
    this.rows[this.n++] = row;
  }

  sameAs(o: Selection): boolean {
    if (o === this) return true;
    if (o.n !== this.n) return false;
    for (let i = 0; i < this.n; i++) if (this.rows[i] !== o.rows[i]) return false;
    return true;
  }
}

export interface NodeTopology {
  name: string;
  zone: string | null;
}

/** What categorize() found besides the two selections. */
export interface Categorized {
  /** Endpoints for Cluster traffic policy: ready (topology-filtered), else serving-and-terminating. */
  readonly cluster: Selection;
  /** Endpoints for Local traffic policy: local ready ones, else local serving-and-terminating ones. */
  readonly local: Selection;
  /** True when the service has usable endpoints anywhere, not just here. */
  hasAnyEndpoints: boolean;
  /** How topology was applied: "" none, else the mode and why. */
  topology: string;
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

type TopologyMode = '' | 'PreferSameNode' | 'PreferSameZone';

/** Nearly every endpoint has no hints: the mode is then '' without building any text. */
function topologyMode(eps: PortEndpoints, node: NodeTopology, out: Categorized): TopologyMode {
  let hasForNode = false;
  let allHaveNodeHints = true;
  let hasForZone = false;
  let allHaveZoneHints = true;
  let anyReady = false;
  for (let i = 0; i < eps.count; i++) {
    if (!eps.ready(i)) continue;
    anyReady = true;
    const place = eps.place[i]!;
    if (place.nodeHints.length === 0) allHaveNodeHints = false;
    else if (place.nodeHints.includes(node.name)) hasForNode = true;
    if (place.zoneHints.length === 0) allHaveZoneHints = false;
    else if (node.zone !== null && place.zoneHints.includes(node.zone)) hasForZone = true;
    if (!allHaveNodeHints && !allHaveZoneHints) return '';
  }
  if (!anyReady) return '';
  if (allHaveNodeHints) {
    if (hasForNode) {
      out.topology = `PreferSameNode (node ${node.name})`;
      return 'PreferSameNode';
    }
    out.topology = `node hints ignored: none for node ${node.name}`;
  }
  if (allHaveZoneHints) {
    if (hasForZone) {
      out.topology = `PreferSameZone (zone ${node.zone})`;
      return 'PreferSameZone';
    }
    out.topology = node.zone === null ? 'zone hints ignored: this node has no topology.kubernetes.io/zone label' : `zone hints ignored: none for zone ${node.zone}`;
  }
  return '';
}

function availableForTopology(eps: PortEndpoints, i: number, mode: TopologyMode, node: NodeTopology): boolean {
  switch (mode) {
    case '': return true;
    case 'PreferSameNode': return eps.place[i]!.nodeHints.includes(node.name);
    case 'PreferSameZone': return node.zone !== null && eps.place[i]!.zoneHints.includes(node.zone);
    default: return false;
  }
}

/** Reused by every port the planner plans: valid until the next categorize(). */
export class Categorizer implements Categorized {
  readonly cluster = new Selection();
  readonly local = new Selection();
  hasAnyEndpoints = false;
  topology = '';

  categorize(eps: PortEndpoints, svc: ServiceInfo, external: boolean, node: NodeTopology): Categorized {
    const cluster = this.cluster;
    const local = this.local;
    cluster.n = 0;
    local.n = 0;
    this.hasAnyEndpoints = false;
    this.topology = '';
    const n = eps.count;

    if (usesClusterEndpoints(svc, external)) {
      const mode = topologyMode(eps, node, this);
      for (let i = 0; i < n; i++) if (eps.ready(i) && availableForTopology(eps, i, mode, node)) cluster.add(i);
      // No ready endpoint anywhere: fall back to serving-and-terminating ones,
      // without topology, as a best effort not to drop connections.
      if (cluster.n === 0) {
        for (let i = 0; i < n; i++) if (eps.serving(i) && eps.terminating(i)) cluster.add(i);
        if (cluster.n > 0 && mode) this.topology = `${this.topology}; ignored: only terminating endpoints`;
      }
      if (cluster.n > 0) this.hasAnyEndpoints = true;
    }
    if (!usesLocalEndpoints(svc, external)) return this;

    let hasLocalReady = false;
    let hasLocalServingTerminating = false;
    for (let i = 0; i < n; i++) {
      if (eps.ready(i)) {
        this.hasAnyEndpoints = true;
        if (eps.local(i)) hasLocalReady = true;
      } else if (eps.serving(i) && eps.terminating(i)) {
        this.hasAnyEndpoints = true;
        if (eps.local(i)) hasLocalServingTerminating = true;
      }
    }
    if (hasLocalReady) {
      for (let i = 0; i < n; i++) if (eps.local(i) && eps.ready(i)) local.add(i);
    } else if (hasLocalServingTerminating) {
      for (let i = 0; i < n; i++) if (eps.local(i) && eps.serving(i) && eps.terminating(i)) local.add(i);
    }
    return this;
  }
}
