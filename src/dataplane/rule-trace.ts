// What the packet tracers (nftables/trace.ts, iptables/trace.ts, ipvs/trace.ts) share:
// a branch's state, the walk of one chain's rules, and the packet check and
// outcome notes around a trace. Each tracer keeps its own rule evaluator and
// hooks: those follow their own rule language (ipvs/trace.ts adds IPVS's
// table lookup between the hooks, where the kernel runs it).
import type { IPFamily } from '../model/types.js';
import { canonicalIP, familyOf } from '../util/ip.js';
import type { TracePacket, TraceResult } from './trace.js';

export interface TraceState {
  daddr: string;
  dport: number;
  mark: number;
  dnat: string | null;
  masquerade: boolean;
  /** Chains entered, for messages. */
  path: string[];
  /** Probability of this branch for a client's first connection (affinity state still empty). */
  p: number;
}

/** next: on to the next rule; return: the chain ended (returned, or fell off its end); accept/drop/reject: the hook's table is done. */
export type Verdict = 'next' | 'return' | 'accept' | 'drop' | 'reject';
export interface Out { st: TraceState; v: Verdict }

const MAX_DEPTH = 32;

/**
 * Runs `st` through a chain's rules in order. A rule may branch; each branch
 * goes on with the next rule or ends; those left at the end return. `rules` is
 * read after the depth check, so a loop is reported before a missing chain.
 */
export function walkChain(label: string, st: TraceState, depth: number, rules: () => readonly string[], rule: (rule: string, s: TraceState) => Out[]): Out[] {
  if (depth > MAX_DEPTH) throw new Error(`chains nest deeper than ${MAX_DEPTH}: ${st.path.join(' > ')}`);
  const list = rules();
  let live: TraceState[] = [{ ...st, path: [...st.path, label] }];
  const done: Out[] = [];
  for (const r of list) {
    const next: TraceState[] = [];
    for (const s of live) {
      for (const o of rule(r, s)) {
        if (o.v === 'next') next.push(o.st);
        else done.push(o);
      }
    }
    live = next;
    if (live.length === 0) break;
  }
  for (const s of live) done.push({ st: s, v: 'return' });
  return done;
}

/** After a jump: a branch the called chain returned goes on with the caller's next rule. */
export function returned(outs: Out[]): Out[] {
  return outs.map((o) => (o.v === 'return' ? { st: o.st, v: 'next' as const } : o));
}

/** Starts a trace: the packet checked and canonical, its first state, and the result its outcomes are noted in. */
export function startTrace(pkt: TracePacket): {
  family: IPFamily;
  src: string;
  start: TraceState;
  result: TraceResult;
  note: (outcome: string, path: string[], p: number) => void;
} {
  const family = familyOf(pkt.dst);
  const src = canonicalIP(pkt.src);
  const dst = canonicalIP(pkt.dst);
  if (!family || !src || !dst || familyOf(src) !== family) throw new Error(`bad packet ${JSON.stringify(pkt)}`);
  const result: TraceResult = { outcomes: new Set(), paths: new Map(), weights: new Map() };
  const start: TraceState = { daddr: dst, dport: pkt.port, mark: 0, dnat: null, masquerade: false, path: [], p: 1 };
  const note = (o: string, path: string[], p: number) => {
    result.outcomes.add(o);
    result.weights.set(o, (result.weights.get(o) ?? 0) + p);
    if (!result.paths.has(o)) result.paths.set(o, path);
  };
  return { family, src, start, result, note };
}

/** The outcome of a state that got through every hook. */
export function passedOutcome(s: TraceState): string {
  return s.dnat === null ? 'not a service' : `dnat ${s.dnat}${s.masquerade ? ' masquerade' : ''}`;
}
