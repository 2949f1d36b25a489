// The packet tracer: follows a new connection's first packet through the
// ruleset our renderer writes (as RulesetModel holds it) and answers where it
// can go. Every branch is followed: each `numgen` both matches and not, and
// an affinity set may or may not hold the client, so the answer is the set of
// every possible outcome. It interprets exactly the constructs we emit and
// throws on anything else, so a new construct cannot go untraced.
import { canonicalIP, cidrContains, parseCidr } from '../../util/ip.js';
import { passedOutcome, returned, startTrace, walkChain, type Out, type TraceState as State } from '../rule-trace.js';
import type { TracePacket, TraceResult } from '../trace.js';
import { nftFamily, SET_NODEPORT_IPS, type NftFamily } from './names.js';
import type { ModelTable, RulesetModel } from './ruleset.js';

export { describeTrace, type TracePacket, type TraceResult } from '../trace.js';

/** Tokens, with `{ ... }` groups kept whole. */
function tokenize(rule: string): string[] {
  const out: string[] = [];
  const re = /\{[^}]*\}|\S+/g;
  for (const m of rule.matchAll(re)) out.push(m[0]);
  return out;
}

function matchesAddress(spec: string, ip: string): boolean {
  const list = spec.startsWith('{') ? spec.slice(1, -1).split(',').map((s) => s.trim()).filter(Boolean) : [spec];
  return list.some((a) => {
    if (a.includes('/')) {
      const c = parseCidr(a);
      if (!c) throw new Error(`bad CIDR ${a}`);
      return cidrContains(c, ip);
    }
    return canonicalIP(a) === ip;
  });
}

class Tracer {
  private readonly tokens = new Map<string, string[]>();

  constructor(private readonly t: ModelTable, private readonly family: NftFamily, private readonly pkt: TracePacket & { src: string }) {}

  private tok(rule: string): string[] {
    let t = this.tokens.get(rule);
    if (!t) this.tokens.set(rule, (t = tokenize(rule)));
    return t;
  }

  private setHas(name: string, key: string): boolean | 'unknown' {
    const s = this.t.sets.get(name);
    if (!s) throw new Error(`no set ${name}`);
    // Dynamic sets (affinity) fill at run time: they may hold anyone.
    if (s.body.includes('dynamic')) return 'unknown';
    return s.elements.has(key);
  }

  private lookup(map: string, key: string): string | undefined {
    const s = this.t.sets.get(map);
    if (!s || s.kind !== 'map') throw new Error(`no map ${map}`);
    return s.elements.get(key);
  }

  chain(name: string, st: State, depth: number): Out[] {
    const rules = () => {
      const c = this.t.chains.get(name);
      if (!c) throw new Error(`no chain ${name}`);
      return c.rules;
    };
    return walkChain(name, st, depth, rules, (rule, s) => this.rule(this.tok(rule), 0, s, depth));
  }

  /** The outcome of a verdict (jump/goto/drop/...) taken at token `i`. */
  private verdict(tokens: string[], i: number, st: State, depth: number): Out[] {
    const [word, arg] = [tokens[i], tokens[i + 1]];
    switch (word) {
      case 'jump':
        return returned(this.chain(arg!, st, depth + 1));
      case 'goto':
        return this.chain(arg!, st, depth + 1);
      case 'return':
        return [{ st, v: 'return' }];
      case 'drop':
      case 'reject':
      case 'accept':
        return [{ st, v: word }];
    }
    throw new Error(`unknown verdict "${tokens.slice(i).join(' ')}"`);
  }

  /** Evaluates a rule from token `i`: matches narrow, statements act, verdicts end it. */
  private rule(tk: string[], i: number, st: State, depth: number): Out[] {
    if (i >= tk.length) return [{ st, v: 'next' }];
    const w = tk[i]!;
    const f = this.family;
    const fail: Out[] = [{ st, v: 'next' }];
    const at = (j: number, ...words: string[]) => words.every((x, k) => tk[j + k] === x);
    if (at(i, 'ct', 'state', 'new')) return this.rule(tk, i + 3, st, depth); // We trace a connection's first packet.
    if (at(i, 'fib', 'saddr', 'type', 'local')) return this.pkt.fromNode ? this.rule(tk, i + 4, st, depth) : fail;
    if (at(i, 'meta', 'mark', '&') && tk[i + 4] === '==') {
      return (st.mark & Number(tk[i + 3])) === Number(tk[i + 5]) ? this.rule(tk, i + 6, st, depth) : fail;
    }
    if (at(i, 'meta', 'mark', 'set', 'meta', 'mark')) {
      const v = Number(tk[i + 6]);
      const mark = tk[i + 5] === '|' ? st.mark | v : tk[i + 5] === '^' ? st.mark ^ v : NaN;
      if (Number.isNaN(mark)) throw new Error(`unknown mark operation in "${tk.join(' ')}"`);
      return this.rule(tk, i + 7, { ...st, mark }, depth);
    }
    if (at(i, 'meta', 'l4proto', '.', 'th', 'dport', 'vmap')) {
      return this.vmap(tk, i + 6, `${this.pkt.proto.toLowerCase()} . ${st.dport}`, st, depth);
    }
    if (at(i, 'meta', 'l4proto') && at(i + 3, 'dnat', 'to')) {
      if (tk[i + 2] !== this.pkt.proto.toLowerCase()) return fail;
      const target = tk[i + 5]!;
      const cut = target.lastIndexOf(':');
      const addr = target.slice(0, cut).replace(/^\[|\]$/g, '');
      return [{ st: { ...st, dnat: target, daddr: canonicalIP(addr)!, dport: Number(target.slice(cut + 1)) }, v: 'accept' }];
    }
    if (w === f && (tk[i + 1] === 'saddr' || tk[i + 1] === 'daddr')) {
      const ip = tk[i + 1] === 'saddr' ? this.pkt.src : st.daddr;
      if (tk[i + 1] === 'daddr' && at(i + 2, '.', 'meta', 'l4proto', '.', 'th', 'dport', 'vmap')) {
        return this.vmap(tk, i + 9, `${st.daddr} . ${this.pkt.proto.toLowerCase()} . ${st.dport}`, st, depth);
      }
      const negate = tk[i + 2] === '!=';
      const spec = tk[negate ? i + 3 : i + 2]!;
      const j = negate ? i + 4 : i + 3;
      if (spec.startsWith('@')) {
        const has = this.setHas(spec.slice(1), ip);
        if (has === 'unknown') return [...this.rule(tk, j, { ...st, p: 0 }, depth), ...fail];
        return has !== negate ? this.rule(tk, j, st, depth) : fail;
      }
      return matchesAddress(spec, ip) !== negate ? this.rule(tk, j, st, depth) : fail;
    }
    if (at(i, 'numgen', 'random', 'mod') && tk[i + 4] === '0') {
      const n = Number(tk[i + 3]);
      if (!(n >= 1)) throw new Error(`bad numgen in "${tk.join(' ')}"`);
      return n === 1 ? this.rule(tk, i + 5, st, depth) : [...this.rule(tk, i + 5, { ...st, p: st.p / n }, depth), { st: { ...st, p: st.p * (1 - 1 / n) }, v: 'next' }];
    }
    if (w === 'update' && tk[i + 1]?.startsWith('@') && tk[i + 2]?.startsWith('{')) {
      this.setHas(tk[i + 1]!.slice(1), ''); // The set must exist; what it learns does not change this packet.
      return this.rule(tk, i + 3, st, depth);
    }
    if (w === 'masquerade') return [{ st: { ...st, masquerade: true }, v: 'accept' }];
    return this.verdict(tk, i, st, depth);
  }

  private vmap(tk: string[], i: number, key: string, st: State, depth: number): Out[] {
    if (!tk[i]?.startsWith('@')) throw new Error(`only named verdict maps are traced: "${tk.join(' ')}"`);
    const v = this.lookup(tk[i]!.slice(1), key);
    if (v === undefined) return [{ st, v: 'next' }];
    return returned(this.verdict(this.tok(v), 0, st, depth));
  }

  /** The base chains of a hook, by priority. */
  hookChains(hook: string): string[] {
    return [...this.t.chains].filter(([, c]) => c.hook?.hook === hook).sort((a, b) => a[1].hook!.priority - b[1].hook!.priority).map(([n]) => n);
  }

  /** Runs `st` through every base chain of `hook`; returns the states that got through and the ones that ended. */
  hook(hook: string, states: State[]): { through: State[]; ended: Out[] } {
    let through = states;
    const ended: Out[] = [];
    for (const name of this.hookChains(hook)) {
      const next: State[] = [];
      for (const s of through) {
        for (const o of this.chain(name, s, 0)) {
          if (o.v === 'drop' || o.v === 'reject') ended.push(o);
          else next.push(o.st); // accept, or the end of a base chain (policy accept)
        }
      }
      through = next;
    }
    return { through, ended };
  }

  isNodeAddress(ip: string): boolean {
    return this.setHas(SET_NODEPORT_IPS, ip) === true;
  }
}

/** Where a new connection of `pkt` can go through the ruleset in `model`. */
export function trace(model: RulesetModel, pkt: TracePacket): TraceResult {
  const { family, src, start, result, note } = startTrace(pkt);
  const table = model.table(nftFamily(family));
  if (!table) {
    note('not a service', [], 1);
    return result;
  }
  const tr = new Tracer(table, nftFamily(family), { ...pkt, src });
  // The node's own packets meet the output hook; others prerouting, then input (to the node) or forward.
  let { through, ended } = tr.hook(pkt.fromNode ? 'output' : 'prerouting', [start]);
  if (!pkt.fromNode) {
    const toNode = through.filter((s) => tr.isNodeAddress(s.daddr));
    const a = tr.hook('input', toNode);
    const b = tr.hook('forward', through.filter((s) => !tr.isNodeAddress(s.daddr)));
    through = [...a.through, ...b.through];
    ended = [...ended, ...a.ended, ...b.ended];
  }
  const post = tr.hook('postrouting', through);
  for (const o of [...ended, ...post.ended]) note(o.v, o.st.path, o.st.p);
  for (const s of post.through) note(passedOutcome(s), s.path, s.p);
  return result;
}
