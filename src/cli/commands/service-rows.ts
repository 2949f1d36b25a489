// One row per frontend, as `bpfproxy services` prints it, built either from
// the maps (bpf mode: what the programs read, named through the state file's
// catalog) or from the plan the state file keeps (the rule modes, which have
// no maps to read back). Pure: tested without root.
import { backendInfo, type NodeState } from '../../dataplane/state-file.js';
import type { BackendSet, PlannedService } from '../../planner/types.js';
import { frontendKind, hasSourceRanges, preservesSource, type LbSet, type LbView } from './lb-view.js';
import { endpoint, formatTable } from './table.js';

export interface BackendRow {
  id: number;
  address: string;
  port: number;
  protocol: string;
  /** active, terminating (used only while nothing else is), or missing (a slot names no backend). */
  state: 'active' | 'terminating' | 'missing';
  node: string | null;
  local: boolean;
}

export interface BackendList {
  set: number | null;
  /** What a new connection meets when the list is empty. */
  onEmpty: 'reject' | 'drop';
  backends: BackendRow[];
}

export interface ServiceRow {
  id: number;
  /** "namespace/name:port" (":port" left out for an unnamed port), or "service #ID" when no state file names it. */
  service: string;
  frontend: { address: string; port: number; protocol: string; family: string };
  type: string;
  affinity: number;
  /** externalTrafficPolicy: Local (external frontends keep the client address, local backends only). */
  externalLocal: boolean;
  /** loadBalancerSourceRanges, as the state file names them ([] when none or unknown). */
  sourceRanges: string[];
  /** Whether the frontend is limited to source ranges (the map's flag). */
  sourceRangesEnforced: boolean;
  /** The backends its traffic reaches: from outside for external frontends, from this node for ClusterIPs. */
  backends: BackendList;
  /** External frontends reached from this node or its pods use the Cluster-policy set; present when it differs. */
  fromNode?: BackendList;
}

function serviceName(ns: string, name: string, port: string): string {
  return `${ns}/${name}${port ? `:${port}` : ''}`;
}

const KIND_ORDER = ['ClusterIP', 'ExternalIP', 'LoadBalancer', 'NodePort', 'unknown'];

function sortRows(rows: ServiceRow[]): ServiceRow[] {
  return rows.sort((a, b) => (a.service < b.service ? -1 : a.service > b.service ? 1 : 0)
    || KIND_ORDER.indexOf(a.type) - KIND_ORDER.indexOf(b.type)
    || (a.frontend.address < b.frontend.address ? -1 : a.frontend.address > b.frontend.address ? 1 : 0)
    || a.frontend.port - b.frontend.port);
}

/** Rows from the maps, named by the state file's catalog when there is one. */
export function rowsFromLb(lb: LbView, state: NodeState | null): ServiceRow[] {
  const names = new Map<number, { name: string; ranges: string[] }>();
  for (const [id, ns, name, port, ranges] of state?.catalog.services ?? []) names.set(id, { name: serviceName(ns, name, port), ranges: ranges ?? [] });
  const info = state ? backendInfo(state.catalog) : new Map<number, { node: string | null; terminating: boolean }>();
  const list = (setId: number): BackendList => {
    const s: LbSet | undefined = lb.sets.get(setId);
    if (!s) return { set: setId, onEmpty: 'reject', backends: [] };
    return {
      set: setId,
      onEmpty: s.onEmpty,
      backends: s.backends.map((id) => {
        const b = lb.backends.get(id);
        const i = info.get(id);
        return b
          ? { id, address: b.address, port: b.port, protocol: b.protocol, state: i?.terminating ? 'terminating' : 'active', node: i?.node ?? null, local: b.local }
          : { id, address: '?', port: 0, protocol: '?', state: 'missing', node: null, local: false };
      }),
    };
  };
  const rows = lb.frontends.map((f): ServiceRow => {
    const type = frontendKind(f.flags);
    const external = type !== 'ClusterIP';
    const n = names.get(f.svcId);
    const row: ServiceRow = {
      id: f.svcId,
      service: n?.name ?? `service #${f.svcId}`,
      frontend: { address: f.address, port: f.port, protocol: f.protocol, family: f.family },
      type,
      affinity: lb.sets.get(f.localSet)?.affinity ?? 0,
      externalLocal: external && preservesSource(f.flags),
      sourceRanges: hasSourceRanges(f.flags) ? n?.ranges ?? [] : [],
      sourceRangesEnforced: hasSourceRanges(f.flags),
      backends: list(external ? f.extSet : f.localSet),
    };
    if (external && f.localSet !== f.extSet) row.fromNode = list(f.localSet);
    return row;
  });
  return sortRows(rows);
}

/** Rows from a plan (the rule modes' state file). */
export function rowsFromPlan(services: readonly PlannedService[]): ServiceRow[] {
  const list = (s: BackendSet): BackendList => ({
    set: null,
    onEmpty: s.onEmpty,
    backends: s.backends.map((b) => ({ id: b.id, address: b.address, port: b.port, protocol: '', state: b.terminating ? 'terminating' : 'active', node: b.nodeName, local: b.local })),
  });
  const rows: ServiceRow[] = [];
  for (const s of services) {
    for (const f of s.frontends) {
      const external = f.kind !== 'ClusterIP';
      const ranges = f.kind === 'LoadBalancer' ? s.sourceRanges : [];
      const row: ServiceRow = {
        id: s.id,
        service: serviceName(s.namespace, s.name, s.portName),
        frontend: { address: f.address, port: f.port, protocol: s.protocol, family: s.family },
        type: f.kind,
        affinity: s.affinityTimeout ?? 0,
        externalLocal: external && s.preserveSource,
        sourceRanges: ranges,
        sourceRangesEnforced: ranges.length > 0,
        backends: list(external ? s.external : s.internal),
      };
      for (const b of row.backends.backends) b.protocol = s.protocol;
      if (external && !sameBackends(s.cluster, s.external)) {
        row.fromNode = list(s.cluster);
        for (const b of row.fromNode.backends) b.protocol = s.protocol;
      }
      rows.push(row);
    }
  }
  return sortRows(rows);
}

function sameBackends(a: BackendSet, b: BackendSet): boolean {
  return a === b || (a.onEmpty === b.onEmpty && a.backends.length === b.backends.length && a.backends.every((x, i) => x.id === b.backends[i]!.id));
}

export function flagsOf(r: ServiceRow): string {
  const out: string[] = [];
  if (r.affinity > 0) out.push(`affinity=${r.affinity}s`);
  if (r.externalLocal) out.push('ext-policy=Local');
  if (r.sourceRangesEnforced) out.push(`source-ranges=${r.sourceRanges.length > 0 ? r.sourceRanges.join(',') : '(set)'}`);
  return out.join(' ') || '-';
}

function backendText(b: BackendRow): string {
  if (b.state === 'missing') return `${b.id} => (missing backend)`;
  const notes = [b.state, ...(b.node ? [b.node] : []), ...(b.local ? ['local'] : [])];
  return `${b.id} => ${endpoint(b.address, b.port, b.protocol)} (${notes.join(', ')})`;
}

function emptyText(l: BackendList): string {
  return l.onEmpty === 'drop' ? '(no local endpoints: dropped)' : '(no endpoints: refused)';
}

const COLUMNS = [
  { title: 'ID', min: 5 },
  { title: 'FRONTEND', min: 21 },
  { title: 'TYPE', min: 12 },
  { title: 'SERVICE', min: 24 },
  { title: 'FLAGS', min: 16 },
  { title: 'BACKENDS', min: 0 },
];

/** The table: a frontend per row, one backend per line under it, like `cilium-dbg service list`. */
export function formatServices(rows: readonly ServiceRow[]): string {
  const out: string[][] = [];
  for (const r of rows) {
    const lines = r.backends.backends.length > 0 ? r.backends.backends.map(backendText) : [emptyText(r.backends)];
    if (r.fromNode) {
      const n = r.fromNode.backends;
      lines.push(`from this node: ${n.length > 0 ? `${n.length} backend${n.length === 1 ? '' : 's'} (Cluster policy)` : emptyText(r.fromNode)}`);
    }
    lines.forEach((l, i) => out.push(i === 0
      ? [String(r.id), endpoint(r.frontend.address, r.frontend.port, r.frontend.protocol), r.type, r.service, flagsOf(r), l]
      : ['', '', '', '', '', l]));
  }
  return formatTable(COLUMNS, out);
}
