// What the plan says a new connection does, in the tracers' words, for the
// scenario tests of every rule-based mode (test/unit/<mode>/trace.test.ts):
// the kinds of clients each frontend is traced from, the expected answer per
// client (kube-proxy's rules: which backend set, reject or drop when it is
// empty, masquerading, source ranges), and the scenario steps to trace.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { IPFamily } from '../../src/model/types.js';
import type { TracePacket, TraceResult } from '../../src/dataplane/trace.js';
import type { BackendSet, DesiredDataplane, Frontend, PlannedService } from '../../src/planner/types.js';
import { cidrContains, hostPort, parseCidr } from '../../src/util/ip.js';
import { forEachScenarioStep } from './scenario.js';

export const SCENARIO_CASES = join(import.meta.dirname, '..', 'scenarios', 'cases');
export const scenarioFiles = (): string[] => readdirSync(SCENARIO_CASES).filter((f) => f.endsWith('.yaml')).sort();

/** The pod CIDRs the tests configure (--cluster-cidr), per family. */
export const TEST_POD_CIDRS: Readonly<Record<IPFamily, readonly string[]>> = { IPv4: ['10.244.0.0/16'], IPv6: ['fd00:244::/32'] };

export interface OracleConfig {
  podCidrs: Readonly<Record<IPFamily, readonly string[]>>;
  /** --masquerade-all: every connection to a ClusterIP is masqueraded. */
  masqueradeAll?: boolean;
}

export type ClientKind = 'local pod' | 'this node' | 'external' | 'external in source ranges';
export interface Client { kind: ClientKind; src: string; fromNode: boolean }

const inCidrs = (cidrs: readonly string[], ip: string) => cidrs.some((c) => cidrContains(parseCidr(c)!, ip));

/** A pod of this node, the node itself, a client outside the cluster, and one inside the service's source ranges when it has some. */
export function clients(s: PlannedService, cfg: OracleConfig): Client[] {
  const v4 = s.family === 'IPv4';
  const out: Client[] = [
    { kind: 'local pod', src: v4 ? '10.244.1.99' : 'fd00:244:1::99', fromNode: false },
    { kind: 'this node', src: v4 ? '172.18.0.11' : 'fd00:18::11', fromNode: true },
    { kind: 'external', src: v4 ? '198.18.0.7' : 'fd00:99::7', fromNode: false },
  ];
  // One client inside the first source range that is outside the cluster CIDR, when there is one.
  const outside = s.sourceRanges.map((r) => parseCidr(r)!).find((c) => !inCidrs(cfg.podCidrs[s.family], c.text.split('/')[0]!));
  if (outside) {
    const base = outside.text.split('/')[0]!;
    out.push({ kind: 'external in source ranges', src: v4 ? base.replace(/\.0$/, '.9') : base.replace(/::$/, '::9'), fromNode: false });
  }
  return out;
}

/** What the plan says, in the tracers' words; the rules are kube-proxy's. */
export function expected(s: PlannedService, f: Frontend, c: Client, cfg: OracleConfig): string {
  const ranges = s.sourceRanges.filter((r) => parseCidr(r)!.family === s.family);
  if (f.kind === 'LoadBalancer' && ranges.length > 0 && !inCidrs(ranges, c.src)) return 'drop';
  let set: BackendSet;
  let masquerade: boolean;
  if (f.kind === 'ClusterIP') {
    set = s.internal;
    masquerade = cfg.masqueradeAll === true || !inCidrs(cfg.podCidrs[s.family], c.src); // from outside the pod network
  } else if (c.kind === 'local pod' || c.kind === 'this node') {
    set = s.cluster; // short-circuited to the Cluster-policy endpoints
    masquerade = c.kind === 'this node' || !s.preserveSource;
  } else {
    set = s.external;
    masquerade = !s.preserveSource;
  }
  if (set.backends.length === 0) return set.onEmpty;
  return set.backends.map((b) => `dnat ${hostPort(b.address, b.port)}${masquerade || b.address === c.src ? ' masquerade' : ''}`).sort().join(' | ');
}

export interface OracleCase { s: PlannedService; f: Frontend; c: Client; pkt: TracePacket; want: string }

/** The packets a plan is traced with: each frontend of each service from each kind of client, with what the plan says. */
export function oracleCases(desired: DesiredDataplane, cfg: OracleConfig): OracleCase[] {
  const out: OracleCase[] = [];
  for (const s of desired.services.values()) {
    for (const f of s.frontends) {
      for (const c of clients(s, cfg)) {
        out.push({ s, f, c, pkt: { src: c.src, dst: f.address, proto: s.protocol, port: f.port, fromNode: c.fromNode }, want: expected(s, f, c, cfg) });
      }
    }
  }
  return out;
}

/** Every endpoint of the set equally likely for a new client (kube-proxy's numgen / statistic): the uneven spread, or null. */
export function unevenSpread(r: TraceResult): string | null {
  const spread = [...r.weights].filter(([o]) => o.startsWith('dnat '));
  return spread.some(([, w]) => Math.abs(w - 1 / spread.length) > 1e-9) ? JSON.stringify(spread) : null;
}

export interface ScenarioStep {
  index: number;
  title: string;
  desired: DesiredDataplane;
  changed: ReadonlySet<string>;
}

/**
 * A scenario's steps, each planned incrementally. The planner reuses its maps
 * from one step to the next, so each step's (immutable) planned services are
 * copied before the next is planned.
 */
export function scenarioSteps(file: string): ScenarioStep[] {
  const steps: ScenarioStep[] = [];
  forEachScenarioStep(join(SCENARIO_CASES, file), (step) => steps.push({
    index: step.index,
    title: step.title,
    desired: { ...step.desired, services: new Map(step.desired.services), nodePortAddresses: { IPv4: [...step.desired.nodePortAddresses.IPv4], IPv6: [...step.desired.nodePortAddresses.IPv6] } },
    changed: new Set(step.changed),
  }));
  return steps;
}
