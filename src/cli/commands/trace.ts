// `bpfproxy trace SRC DST:PORT/PROTO`: where a new connection from SRC would
// go, and why.
// - bpf mode: the socket programs' decision (bpf/lib/sock.h sock_select)
//   replayed over the dumped maps: frontend lookup -> the set connections
//   from this node use -> empty (refused / unreachable) -> affinity -> a random
//   slot, so every candidate is listed with its chance. For an external
//   frontend, the packet programs' decision for traffic from outside too
//   (bpf/xdp.bpf.c stage_pick: the external set, a random slot).
// - nftables and iptables: the plan the state file keeps is rendered by the
//   dataplane's own renderer into the rule model, and the packet tracer those
//   modes are tested with follows the packet through it.
import { fullTransaction, type Existing } from '../../dataplane/nftables/transaction.js';
import { renderBase as nftBase } from '../../dataplane/nftables/render-base.js';
import { renderService as nftService } from '../../dataplane/nftables/render-service.js';
import { NFT_FAMILIES, nftFamily } from '../../dataplane/nftables/names.js';
import type { NftConfig } from '../../dataplane/nftables/objects.js';
import { RulesetModel } from '../../dataplane/nftables/ruleset.js';
import { trace as nftTrace } from '../../dataplane/nftables/trace.js';
import { XtablesModel } from '../../dataplane/iptables/model.js';
import type { XtConfig } from '../../dataplane/iptables/objects.js';
import { builtinJumps, renderBase as xtBase } from '../../dataplane/iptables/render-base.js';
import { renderService as xtService } from '../../dataplane/iptables/render-service.js';
import { emptyExisting, fullRestore } from '../../dataplane/iptables/restore.js';
import { trace as xtTrace } from '../../dataplane/iptables/trace.js';
import type { TraceResult } from '../../dataplane/trace.js';
import type { NodeState } from '../../dataplane/state-file.js';
import type { Protocol } from '../../model/types.js';
import type { DesiredDataplane } from '../../planner/types.js';
import { decodePlan } from '../../dataplane/state-plan.js';
import { canonicalIP, cidrContains, familyOf, ipBytes, ipFromBytes, parseCidr } from '../../util/ip.js';
import type { LbView } from './lb-view.js';
import { rowsFromLb, type BackendList, type BackendRow, type ServiceRow } from './service-rows.js';
import { endpoint } from './table.js';

export interface TraceQuery {
  src: string;
  dst: string;
  port: number;
  protocol: Protocol;
}

/** "10.96.0.10:80/tcp", "[fd00::1]:53/UDP"; the protocol defaults to TCP. Throws with what is wrong. */
export function parseTraceArgs(src: string, target: string): TraceQuery {
  const s = canonicalIP(src);
  if (!s) throw new Error(`SRC ${JSON.stringify(src)} is not an IP address`);
  const m = /^(?:\[([^\]]+)\]|([^:/]+|[0-9a-fA-F:.]+?)):(\d+)(?:\/(\w+))?$/.exec(target);
  if (!m) throw new Error(`${JSON.stringify(target)}: want DST:PORT/PROTO, e.g. 10.96.0.10:80/tcp or [fd00:96::1]:53/udp`);
  const dst = canonicalIP(m[1] ?? m[2]!);
  if (!dst) throw new Error(`${JSON.stringify(m[1] ?? m[2])} is not an IP address`);
  const port = Number(m[3]);
  if (port < 1 || port > 65535) throw new Error(`port ${m[3]} is out of range (1-65535)`);
  const protocol = (m[4] ?? 'TCP').toUpperCase();
  if (protocol !== 'TCP' && protocol !== 'UDP' && protocol !== 'SCTP') throw new Error(`protocol ${m[4]}: want tcp, udp or sctp`);
  if (familyOf(s) !== familyOf(dst)) throw new Error(`SRC ${s} and DST ${dst} are of different families`);
  return { src: s, dst, port, protocol };
}

/** One way into the service (from this node, from outside) and what it leads to. */
export interface TracePath {
  via: string;
  set: number | null;
  /** backend: one of `candidates`; refused / unreachable: the connection fails at once; dropped: silently. */
  outcome: 'backend' | 'refused' | 'unreachable' | 'dropped';
  why: string;
  candidates: (BackendRow & { chance: number })[];
}

export interface BpfTrace {
  query: TraceQuery;
  frontend: Pick<ServiceRow, 'id' | 'service' | 'type' | 'frontend' | 'affinity' | 'externalLocal' | 'sourceRanges'> | null;
  paths: TracePath[];
}

function pathFor(via: string, list: BackendList, affinity: number, udp: boolean, affinityEntries: number, packets = false): TracePath {
  const alive = list.backends.filter((b) => b.state !== 'missing');
  if (list.backends.length === 0) {
    return list.onEmpty === 'drop'
      ? { via, set: list.set, outcome: via.startsWith('from outside') ? 'dropped' : 'unreachable', why: 'endpoints exist, but none this traffic may use (Local policy without a local endpoint)', candidates: [] }
      : { via, set: list.set, outcome: 'refused', why: 'the service has no endpoints (kube-proxy\'s REJECT)', candidates: [] };
  }
  const why: string[] = [];
  if (udp && !packets) why.push('an unconnected UDP socket keeps the backend of its first datagram for 120 s while it stays in the set');
  if (packets) why.push('a known flow keeps its backend (conntrack)');
  if (affinity > 0) {
    why.push(`ClientIP affinity ${affinity}s: a client (${packets ? 'keyed by SRC' : 'keyed by its network namespace, not SRC'}) seen within ${affinity}s keeps its backend` +
      ` (${affinityEntries} client${affinityEntries === 1 ? '' : 's'} remembered for this set now); a new client gets`);
  }
  const missing = alive.length < list.backends.length ? ` (${list.backends.length - alive.length} naming a missing backend: refused)` : '';
  // The packet path picks by the set's Maglev table (bpf/xdp.bpf.c): which slot depends on the source port, unknown here; each backend holds about 1/N of the table.
  const n = list.backends.length;
  if (n === 1) why.push(`a new ${packets ? 'flow' : 'connection'} goes to the one backend${missing}`);
  else why.push(packets ? `a new flow goes to the backend its source address and ports hash to in the set's Maglev table (about 1/${n} each)${missing}` : `a random slot of ${n}${missing}`);
  const chance = 1 / list.backends.length;
  return { via, set: list.set, outcome: 'backend', why: why.join('; '), candidates: alive.map((b) => ({ ...b, chance })) };
}

/** The IPv4 address inside ::ffff:a.b.c.d, or null. */
function v4Mapped(ip: string): string | null {
  if (familyOf(ip) !== 'IPv6') return null;
  const b = ipBytes(ip);
  return b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff ? ipFromBytes(b.subarray(12), 'IPv4') : null;
}

/** The bpf programs' decision, from the maps. `affinityCount(set)`: entries the affinity LRU holds for a set. */
export function traceBpf(lb: LbView, state: NodeState | null, q: TraceQuery, affinityCount: (set: number) => number = () => 0): BpfTrace {
  // An IPv6 socket addressing ::ffff:a.b.c.d is served by the IPv4 frontends.
  const dst = v4Mapped(q.dst) ?? q.dst;
  const rows = rowsFromLb({ ...lb, frontends: lb.frontends.filter((f) => f.address === dst && f.port === q.port && f.protocol === q.protocol) }, state);
  const row = rows[0];
  if (!row) return { query: q, frontend: null, paths: [] };
  const fe = lb.frontends.find((f) => f.address === dst && f.port === q.port && f.protocol === q.protocol)!;
  const udp = q.protocol === 'UDP';
  const paths: TracePath[] = [];
  const local = row.fromNode ?? row.backends;
  paths.push(pathFor('from this node or its pods (socket hooks: connect/sendmsg)', local, row.affinity, udp, affinityCount(fe.localSet)));
  if (row.type !== 'ClusterIP') {
    const p = pathFor('from outside the node (XDP, on the --devices)', row.backends, row.affinity, udp, affinityCount(fe.extSet), true);
    if (row.externalLocal && p.outcome === 'backend') p.why = `externalTrafficPolicy Local: local backends only, the client address is kept; ${p.why}`;
    if (row.sourceRanges.length > 0 && !row.sourceRanges.some((c) => { const p2 = parseCidr(c); return p2 !== null && cidrContains(p2, q.src); })) {
      p.why = `SRC ${q.src} is outside loadBalancerSourceRanges ${row.sourceRanges.join(',')} (not enforced at XDP yet: the rule modes drop it); ${p.why}`;
    }
    paths.push(p);
  }
  const { id, service, type, frontend, affinity, externalLocal, sourceRanges } = row;
  return { query: q, frontend: { id, service, type, frontend, affinity, externalLocal, sourceRanges }, paths };
}

export function formatBpfTrace(t: BpfTrace, where: string): string {
  const q = t.query;
  const out = [`trace ${q.src} -> ${endpoint(q.dst, q.port, q.protocol)}  (bpf maps under ${where})`];
  if (!t.frontend) {
    out.push(`frontend   none: ${endpoint(q.dst, q.port, q.protocol)} is not in the frontend map; the connection goes to ${q.dst} untouched`);
    return out.join('\n') + '\n';
  }
  const f = t.frontend;
  out.push(`frontend   ${endpoint(f.frontend.address, f.frontend.port, f.frontend.protocol)}  ${f.type}  ${f.service} (service ${f.id})`);
  for (const p of t.paths) {
    out.push('', `${p.via}${p.set !== null ? `, set ${p.set}` : ''}:`);
    if (p.outcome !== 'backend') {
      out.push(`  ${p.outcome === 'refused' ? 'refused (ECONNREFUSED)' : p.outcome === 'unreachable' ? 'fails at once (EHOSTUNREACH)' : 'dropped'}: ${p.why}`);
      continue;
    }
    out.push(`  ${p.why}:`);
    for (const c of p.candidates) {
      const notes = [c.state, ...(c.node ? [c.node] : []), ...(c.local ? ['local'] : [])];
      out.push(`    ${String(c.id).padEnd(6)} ${endpoint(c.address, c.port, c.protocol).padEnd(24)} ${(c.chance * 100).toFixed(1).padStart(5)}%  ${notes.join(', ')}`);
    }
  }
  return out.join('\n') + '\n';
}

// ---- the rule modes ----

export interface RuleTrace {
  query: TraceQuery;
  mode: string;
  fromNode: boolean;
  outcomes: { outcome: string; chance: number; path: string[] }[];
}

function desiredOf(state: NodeState): DesiredDataplane {
  const plan = state.catalog.plan;
  if (!plan) throw new Error(`the state file of this ${state.mode} proxy holds no plan (written by an older version?)`);
  return decodePlan(plan);
}

const NOTHING: Existing = { chains: new Set(), sets: new Set(), maps: new Set() };

/** The rules the proxy's last sync rendered, rebuilt by the same renderer, then the packet tracer. */
export function traceRules(state: NodeState, q: TraceQuery, fromNode: boolean): RuleTrace {
  const desired = desiredOf(state);
  const pkt = { src: q.src, dst: q.dst, proto: q.protocol, port: q.port, fromNode };
  let r: TraceResult;
  if (state.mode === 'nftables') {
    const config = state.catalog.plan!.config as NftConfig;
    const model = new RulesetModel();
    for (const f of NFT_FAMILIES) {
      const owned = [nftBase(f, desired), ...[...desired.services.values()].filter((s) => nftFamily(s.family) === f).map((s) => nftService(s, config))];
      model.apply(fullTransaction(f, owned, NOTHING).text);
    }
    r = nftTrace(model, pkt);
  } else if (state.mode === 'iptables') {
    const config = state.catalog.plan!.config as XtConfig;
    const model = new XtablesModel();
    for (const f of ['IPv4', 'IPv6'] as const) {
      const services = new Map([...desired.services].filter(([, s]) => s.family === f).map(([k, s]) => [k, xtService(s, config)]));
      const text = fullRestore(xtBase(f, desired, config), services, builtinJumps(), emptyExisting()).text;
      if (text) model.apply(f, text);
    }
    r = xtTrace(model, pkt);
  } else {
    throw new Error(`trace reads the ${state.mode} mode's rules: not built`);
  }
  const outcomes = [...r.outcomes].sort().map((o) => ({ outcome: o, chance: r.weights.get(o) ?? 0, path: r.paths.get(o) ?? [] }));
  return { query: q, mode: state.mode, fromNode, outcomes };
}

export function formatRuleTrace(t: RuleTrace): string {
  const q = t.query;
  const out = [`trace ${q.src} -> ${endpoint(q.dst, q.port, q.protocol)}  (${t.mode} rules of the last sync, ${t.fromNode ? 'sent by the node itself' : 'arriving from a pod or the network'})`];
  for (const o of t.outcomes) out.push(`  ${o.outcome.padEnd(32)} ${(o.chance * 100).toFixed(1).padStart(5)}%  via ${o.path.join(' > ') || '-'}`);
  return out.join('\n') + '\n';
}
