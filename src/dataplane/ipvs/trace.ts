// The packet tracer for the ipvs mode: follows a new connection's first packet
// through the iptables rules, ipsets and IPVS table an IpvsKernelModel holds,
// and answers in the same words as the nftables and iptables tracers: which
// endpoints it can reach (each with its chance for a client's first
// connection), masqueraded or not, or dropped or rejected.
//
// The hooks, with IPVS where the kernel runs it (render-base.ts says why that
// decides the rules' shape):
//   from a pod or the network: nat PREROUTING; to a local address (the node's,
//     or one on kube-ipvs0) filter INPUT then IPVS (LOCAL_IN), otherwise
//     filter FORWARD; then nat POSTROUTING for what leaves;
//   from the node itself: nat OUTPUT, IPVS (LOCAL_OUT), filter OUTPUT, and
//     filter INPUT when it stays on the node; nat POSTROUTING for what leaves.
// IPVS looks up a fwmark service by the packet's whole mark first, then the
// service of (protocol, address, port). A service without real servers answers
// ICMP port unreachable (ip_vs_leave): "reject". The scheduler decides which
// real server a client gets, not which ones it can get: every real server of
// the service is an outcome, weighted by its weight (all equal here).
//
// It interprets exactly the matches and targets the renderer writes and throws
// on anything else, so a new one cannot go untraced.
import { cidrContains, hostPort, parseCidr } from '../../util/ip.js';
import { passedOutcome, returned, startTrace, walkChain, type Out, type TraceState as State } from '../rule-trace.js';
import type { TracePacket, TraceResult } from '../trace.js';
import type { IpvsKernelModel, XtTables } from './model.js';
import type { XtTable } from './names.js';
import { vsKey, type VirtualServer } from './objects.js';

export { describeTrace, type TracePacket, type TraceResult } from '../trace.js';

function tokenize(rule: string): string[] {
  return [...rule.matchAll(/"[^"]*"|\S+/g)].map((m) => m[0]);
}

function matchesAddress(spec: string, ip: string): boolean {
  const c = parseCidr(spec.includes('/') ? spec : `${spec}/${spec.includes(':') ? 128 : 32}`);
  if (!c) throw new Error(`bad address ${spec}`);
  return cidrContains(c, ip);
}

class Tracer {
  private readonly tokens = new Map<string, string[]>();
  private readonly tables: XtTables['families']['IPv4'];

  constructor(private readonly model: IpvsKernelModel, private readonly pkt: TracePacket & { src: string }, family: 'IPv4' | 'IPv6') {
    this.tables = model.xt.families[family];
  }

  private tok(rule: string): string[] {
    let t = this.tokens.get(rule);
    if (!t) this.tokens.set(rule, (t = tokenize(rule)));
    return t;
  }

  private proto(): string {
    return this.pkt.proto.toLowerCase();
  }

  /** `-m set --match-set NAME DIRS`, for the set types and directions we write. */
  private inSet(name: string, dirs: string, st: State): boolean {
    const set = this.model.sets.get(name);
    if (!set) throw new Error(`no ipset ${name}`);
    const ipPort = `${st.daddr},${this.proto()}:${st.dport}`;
    switch (`${set.type} ${dirs}`) {
      case 'bitmap:port dst': return set.entries.has(String(st.dport));
      case 'hash:ip,port dst,dst': return set.entries.has(ipPort);
      case 'hash:ip,port,ip dst,dst,src': return set.entries.has(`${ipPort},${this.pkt.src}`);
      case 'hash:ip,port,net dst,dst,src':
        return [...set.entries].some((e) => e.startsWith(`${ipPort},`) && matchesAddress(e.slice(ipPort.length + 1), this.pkt.src));
    }
    throw new Error(`untraced set match: ${name} (${set.type}) ${dirs}`);
  }

  chain(table: XtTable, name: string, st: State, depth: number): Out[] {
    const rules = () => {
      const c = this.tables[table].get(name);
      if (!c) throw new Error(`no chain ${table} ${name}`);
      return c.rules;
    };
    return walkChain(`${table}/${name}`, st, depth, rules, (rule, s) => this.rule(table, this.tok(rule), 0, s, depth));
  }

  private rule(table: XtTable, tk: string[], i: number, st: State, depth: number): Out[] {
    const negate = tk[i] === '!';
    if (negate) i++;
    const w = tk[i];
    const arg = tk[i + 1]!;
    const go = (matched: boolean, skip: number): Out[] => (matched !== negate ? this.rule(table, tk, i + skip, st, depth) : [{ st, v: 'next' }]);
    switch (w) {
      case undefined: return [{ st, v: 'next' }];
      case '-s': return go(matchesAddress(arg, this.pkt.src), 2);
      case '-d': return go(matchesAddress(arg, st.daddr), 2);
      case '-p': return go(arg === this.proto(), 2);
      case '-m': return go(true, 2);
      case '--comment': return go(true, 2);
      case '--dport': return go(Number(arg) === st.dport, 2);
      case '--ctstate': return go(arg.split(',').includes('NEW'), 2); // a connection's first packet
      case '--src-type':
      case '--dst-type':
        if (arg !== 'LOCAL') throw new Error(`unknown ${w} ${arg}`);
        return go(w === '--src-type' ? this.pkt.fromNode === true : this.model.isLocal(st.daddr), 2);
      case '--mark': {
        const [v, m] = arg.split('/').map(Number) as [number, number | undefined];
        return go(((st.mark & (m ?? 0xffffffff)) >>> 0) === v, 2);
      }
      case '--match-set': return go(this.inSet(arg, tk[i + 2]!, st), 3);
      case '-j':
      case '-g':
        if (negate) throw new Error('a negated target');
        return this.target(table, tk, i, st, depth);
    }
    throw new Error(`unknown token "${w}" in "${tk.join(' ')}"`);
  }

  private target(table: XtTable, tk: string[], i: number, st: State, depth: number): Out[] {
    const name = tk[i + 1]!;
    const opt = tk[i + 2];
    switch (name) {
      case 'ACCEPT': return [{ st, v: 'accept' }];
      case 'DROP': return [{ st, v: 'drop' }];
      case 'RETURN': return [{ st, v: 'return' }];
      case 'REJECT':
        if (table !== 'filter') throw new Error('REJECT outside the filter table');
        return [{ st, v: 'reject' }];
      case 'MASQUERADE':
        if (table !== 'nat') throw new Error('MASQUERADE outside the nat table');
        return [{ st: { ...st, masquerade: true }, v: 'accept' }];
      case 'MARK': {
        const v = Number(tk[i + 3]);
        if (opt === '--or-mark') return [{ st: { ...st, mark: (st.mark | v) >>> 0 }, v: 'next' }];
        if (opt === '--xor-mark') return [{ st: { ...st, mark: (st.mark ^ v) >>> 0 }, v: 'next' }];
        throw new Error(`unknown MARK option ${opt}`);
      }
    }
    if (tk[i] === '-g') return this.chain(table, name, st, depth + 1);
    return returned(this.chain(table, name, st, depth + 1));
  }

  /** States through a built-in chain: those that got through, and those dropped or rejected. */
  hook(table: XtTable, chain: string, states: State[], ended: Out[]): State[] {
    const through: State[] = [];
    for (const s of states) {
      for (const o of this.chain(table, chain, s, 0)) {
        if (o.v === 'drop' || o.v === 'reject') ended.push(o);
        else through.push(o.st);
      }
    }
    return through;
  }

  private lookup(st: State): VirtualServer | undefined {
    const family = this.pkt.dst.includes(':') ? 'IPv6' : 'IPv4';
    if (st.mark !== 0) {
      const v = this.model.ipvs.get(vsKey({ family, proto: 'fwmark', address: '', port: 0, fwmark: st.mark }));
      if (v) return v;
    }
    return this.model.ipvs.get(vsKey({ family, proto: this.pkt.proto, address: st.daddr, port: st.dport, fwmark: 0 }));
  }

  /** IPVS: each state with a virtual server becomes one per real server (DNAT), or is rejected when it has none. */
  ipvs(states: State[], ended: Out[]): State[] {
    const out: State[] = [];
    for (const s of states) {
      const v = this.lookup(s);
      if (!v) {
        out.push(s);
        continue;
      }
      const path = [...s.path, `ipvs ${vsKey(v)}`];
      if (v.reals.length === 0) {
        ended.push({ st: { ...s, path }, v: 'reject' });
        continue;
      }
      const total = v.reals.reduce((n, r) => n + r.weight, 0);
      for (const r of v.reals) {
        if (r.weight === 0) continue; // quiesced: no new connections
        out.push({ ...s, path, dnat: hostPort(r.address, r.port), daddr: r.address, dport: r.port, p: (s.p * r.weight) / total });
      }
    }
    return out;
  }
}

/** Where a new connection of `pkt` can go through the ipvs mode's state in `model`. */
export function trace(model: IpvsKernelModel, pkt: TracePacket): TraceResult {
  const { family, src, start, result, note } = startTrace(pkt);
  const tr = new Tracer(model, { ...pkt, src }, family);
  const ended: Out[] = [];
  const delivered: State[] = [];
  let leaving: State[];
  if (pkt.fromNode) {
    const out = tr.hook('filter', 'OUTPUT', tr.ipvs(tr.hook('nat', 'OUTPUT', [start], ended), ended), ended);
    const staying = out.filter((s) => s.dnat === null && model.isLocal(s.daddr));
    delivered.push(...tr.hook('filter', 'INPUT', staying, ended));
    leaving = out.filter((s) => !staying.includes(s));
  } else {
    const pre = tr.hook('nat', 'PREROUTING', [start], ended);
    const local = pre.filter((s) => model.isLocal(s.daddr));
    const afterIpvs = tr.ipvs(tr.hook('filter', 'INPUT', local, ended), ended);
    delivered.push(...afterIpvs.filter((s) => s.dnat === null));
    const forwarded = tr.hook('filter', 'FORWARD', pre.filter((s) => !model.isLocal(s.daddr)), ended);
    leaving = [...afterIpvs.filter((s) => s.dnat !== null), ...forwarded];
  }
  const post = tr.hook('nat', 'POSTROUTING', leaving, ended);
  for (const o of ended) note(o.v, o.st.path, o.st.p);
  for (const s of [...post, ...delivered]) note(passedOutcome(s), s.path, s.p);
  return result;
}
