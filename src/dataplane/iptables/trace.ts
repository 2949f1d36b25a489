// The packet tracer for the iptables mode: follows a new connection's first
// packet through the nat and filter tables our renderer writes (as
// XtablesModel holds them) and answers where it can go, in the same words as
// the nftables tracer. Every branch is followed: each `statistic` both
// matches and not, and a `recent --rcheck` may or may not hold the client, so
// the answer is the set of every possible outcome, each with its probability
// for a client's first connection. It interprets exactly the matches and
// targets we emit and throws on anything else, so a new one cannot go untraced.
//
// Hooks, as the kernel runs them for a connection's first packet:
//   from a pod or the network: nat PREROUTING, then filter INPUT (to a node
//     address) or FORWARD, then nat POSTROUTING;
//   from the node itself: nat OUTPUT, filter OUTPUT, nat POSTROUTING, and
//     filter INPUT when it loops back to a node address.
import { canonicalIP, cidrContains, familyOf, parseCidr } from '../../util/ip.js';
import { passedOutcome, returned, startTrace, walkChain, type Out, type TraceState as State } from '../rule-trace.js';
import type { TracePacket, TraceResult } from '../trace.js';
import { CHAIN_NODEPORTS, CHAIN_SERVICES, type XtTable } from './names.js';
import type { ModelTable, XtablesModel } from './model.js';

export { describeTrace, type TracePacket, type TraceResult } from '../trace.js';

/** Tokens, with "quoted strings" kept whole. */
function tokenize(rule: string): string[] {
  return [...rule.matchAll(/"[^"]*"|\S+/g)].map((m) => m[0]);
}

function matchesAddress(spec: string, ip: string): boolean {
  const c = parseCidr(spec.includes('/') ? spec : `${spec}/${spec.includes(':') ? 128 : 32}`);
  if (!c) throw new Error(`bad address ${spec}`);
  return familyOf(ip) === c.family && cidrContains(c, ip);
}

function parseMark(s: string): [value: number, mask: number] {
  const [v, m] = s.split('/');
  return [Number(v), m === undefined ? 0xffffffff : Number(m)];
}

class Tracer {
  private readonly tokens = new Map<string, string[]>();
  readonly nodeAddresses: string[];

  constructor(private readonly tables: Record<XtTable, ModelTable>, private readonly pkt: TracePacket & { src: string }) {
    // Node addresses are the ones KUBE-SERVICES sends to KUBE-NODEPORTS.
    this.nodeAddresses = (tables.nat.get(CHAIN_SERVICES)?.rules ?? [])
      .filter((r) => r.endsWith(`-j ${CHAIN_NODEPORTS}`) && /\/(32|128) /.test(r))
      .map((r) => /-d (\S+)\//.exec(r)![1]!);
  }

  isNodeAddress(ip: string): boolean {
    return this.nodeAddresses.some((a) => canonicalIP(a) === ip);
  }

  private tok(rule: string): string[] {
    let t = this.tokens.get(rule);
    if (!t) this.tokens.set(rule, (t = tokenize(rule)));
    return t;
  }

  chain(table: XtTable, name: string, st: State, depth: number): Out[] {
    const rules = () => {
      const c = this.tables[table].get(name);
      if (!c) throw new Error(`no chain ${table} ${name}`);
      return c.rules;
    };
    return walkChain(`${table}/${name}`, st, depth, rules, (rule, s) => this.rule(table, this.tok(rule), 0, s, depth));
  }

  /** Evaluates a rule from token `i`: matches narrow (or branch), the target ends it. */
  private rule(table: XtTable, tk: string[], i: number, st: State, depth: number): Out[] {
    const fail: Out[] = [{ st, v: 'next' }];
    const negate = tk[i] === '!';
    if (negate) i++;
    const w = tk[i];
    const arg = tk[i + 1]!;
    const go = (matched: boolean, skip: number) => (matched !== negate ? this.rule(table, tk, i + skip, st, depth) : fail);
    switch (w) {
      case undefined: return [{ st, v: 'next' }]; // no target: a counting rule
      case '-s': return go(matchesAddress(arg, this.pkt.src), 2);
      case '-d': return go(matchesAddress(arg, st.daddr), 2);
      case '-p': return go(arg === this.pkt.proto.toLowerCase(), 2);
      case '-m': return go(true, 2); // the module's options follow
      case '--comment': return go(true, 2);
      case '--dport': return go(Number(arg) === st.dport, 2);
      case '--ctstate': return go(arg.split(',').includes('NEW'), 2); // we trace a connection's first packet
      case '--src-type': {
        if (arg !== 'LOCAL') throw new Error(`unknown --src-type ${arg}`);
        return go(this.pkt.fromNode === true, 2);
      }
      case '--mark': {
        const [v, m] = parseMark(arg);
        return go((st.mark & m) >>> 0 === v, 2);
      }
      case '--mode': {
        if (arg !== 'random' || tk[i + 2] !== '--probability') throw new Error(`unknown statistic in "${tk.join(' ')}"`);
        if (negate) throw new Error('negated statistic is not traced');
        const p = Number(tk[i + 3]);
        if (!(p > 0 && p <= 1)) throw new Error(`bad probability in "${tk.join(' ')}"`);
        return [...this.rule(table, tk, i + 4, { ...st, p: st.p * p }, depth), { st: { ...st, p: st.p * (1 - p) }, v: 'next' }];
      }
      case '--rcheck': {
        // The list may or may not hold this client: both branches; for a first connection it does not.
        const end = this.recentOptions(tk, i + 1);
        return [...this.rule(table, tk, end, { ...st, p: 0 }, depth), ...fail];
      }
      case '--set': return this.rule(table, tk, this.recentOptions(tk, i + 1), st, depth); // learning the client changes nothing now
      case '-j':
      case '-g':
        return this.target(table, tk, i, st, depth);
    }
    throw new Error(`unknown token "${w}" in "${tk.join(' ')}"`);
  }

  /** Skips the options of `-m recent`, checking they are ones we write; returns the index after them. */
  private recentOptions(tk: string[], i: number): number {
    for (;;) {
      const w = tk[i];
      if (w === '--seconds' || w === '--name' || w === '--mask') i += 2;
      else if (w === '--reap' || w === '--rsource') i += 1;
      else return i;
    }
  }

  private target(table: XtTable, tk: string[], i: number, st: State, depth: number): Out[] {
    const name = tk[i + 1]!;
    const opt = tk[i + 2];
    const val = tk[i + 3];
    switch (name) {
      case 'ACCEPT': return [{ st, v: 'accept' }];
      case 'DROP': return [{ st, v: 'drop' }];
      case 'REJECT':
        if (table !== 'filter') throw new Error('REJECT outside the filter table');
        return [{ st, v: 'reject' }];
      case 'RETURN': return [{ st, v: 'return' }];
      case 'MARK': {
        const v = Number(val);
        if (opt === '--or-mark') return [{ st: { ...st, mark: (st.mark | v) >>> 0 }, v: 'next' }];
        if (opt === '--xor-mark') return [{ st: { ...st, mark: (st.mark ^ v) >>> 0 }, v: 'next' }];
        throw new Error(`unknown MARK option ${opt}`);
      }
      case 'MASQUERADE':
        if (table !== 'nat') throw new Error('MASQUERADE outside the nat table');
        return [{ st: { ...st, masquerade: true }, v: 'accept' }];
      case 'DNAT': {
        if (table !== 'nat' || opt !== '--to-destination' || !val) throw new Error(`bad DNAT in "${tk.join(' ')}"`);
        const cut = val.lastIndexOf(':');
        const addr = canonicalIP(val.slice(0, cut).replace(/^\[|\]$/g, ''));
        if (!addr) throw new Error(`bad DNAT address in "${tk.join(' ')}"`);
        return [{ st: { ...st, dnat: val, daddr: addr, dport: Number(val.slice(cut + 1)) }, v: 'accept' }];
      }
    }
    if (tk[i] === '-g') return this.chain(table, name, st, depth + 1);
    // A jump: falling off (or RETURN from) the called chain goes on with the next rule here.
    return returned(this.chain(table, name, st, depth + 1));
  }

  /** Runs states through a built-in chain (policy ACCEPT): those that got through, and those dropped or rejected. */
  hook(table: XtTable, chain: string, states: State[]): { through: State[]; ended: Out[] } {
    const through: State[] = [];
    const ended: Out[] = [];
    for (const s of states) {
      for (const o of this.chain(table, chain, s, 0)) {
        if (o.v === 'drop' || o.v === 'reject') ended.push(o);
        else through.push(o.st);
      }
    }
    return { through, ended };
  }
}

/** Where a new connection of `pkt` can go through the family's tables in `model`. */
export function trace(model: XtablesModel, pkt: TracePacket): TraceResult {
  const { family, src, start, result, note } = startTrace(pkt);
  const tr = new Tracer(model.families[family], { ...pkt, src });
  const ended: Out[] = [];
  const run = (table: XtTable, chain: string, states: State[]) => {
    const r = tr.hook(table, chain, states);
    ended.push(...r.ended);
    return r.through;
  };
  let through: State[];
  if (pkt.fromNode) {
    through = run('nat', 'POSTROUTING', run('filter', 'OUTPUT', run('nat', 'OUTPUT', [start])));
    const toNode = through.filter((s) => tr.isNodeAddress(s.daddr));
    const input = run('filter', 'INPUT', toNode);
    through = [...through.filter((s) => !tr.isNodeAddress(s.daddr)), ...input];
  } else {
    const pre = run('nat', 'PREROUTING', [start]);
    const input = run('filter', 'INPUT', pre.filter((s) => tr.isNodeAddress(s.daddr)));
    const forward = run('filter', 'FORWARD', pre.filter((s) => !tr.isNodeAddress(s.daddr)));
    through = run('nat', 'POSTROUTING', [...input, ...forward]);
  }
  for (const o of ended) note(o.v, o.st.path, o.st.p);
  for (const s of through) note(passedOutcome(s), s.path, s.p);
  return result;
}
