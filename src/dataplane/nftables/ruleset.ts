// A model of what the kernel holds after our `nft -f` texts, for the packet
// tracer and for checking incremental syncs without root. It reads exactly the
// commands transaction.ts writes, and enforces the nft rules that make order
// matter: a rule or element may only name an existing chain or set, and a
// chain or set still referred to cannot be deleted. Anything else is an error:
// the model is exact about our own output, not a general nft parser.
import { TABLE } from './names.js';

export interface ModelChain {
  /** "type nat hook prerouting priority -100" parts for base chains. */
  hook: { type: string; hook: string; priority: number } | null;
  rules: string[];
}

export interface ModelTable {
  chains: Map<string, ModelChain>;
  /** Sets and maps: key -> value ("" for set elements). */
  sets: Map<string, { kind: 'set' | 'map'; body: string; elements: Map<string, string> }>;
}

function refsOf(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/(?:jump|goto) (\S+)/g)) out.push(`chain ${m[1]}`);
  for (const m of text.matchAll(/@(\S+)/g)) out.push(`set ${m[1]}`);
  return out;
}

/** Splits "{ a, b : c, d }" into its items, "a", "b : c", "d". */
function items(braced: string): string[] {
  const inner = braced.trim().replace(/^\{/, '').replace(/\}$/, '');
  return inner.split(',').map((s) => s.trim()).filter(Boolean);
}

export class RulesetModel {
  readonly tables = new Map<string, ModelTable>();

  table(family: string): ModelTable | undefined {
    return this.tables.get(family);
  }

  /** Applies one `nft -f` text atomically: on an error nothing changes and the error is thrown with its line. */
  apply(text: string): void {
    const saved = this.clone();
    const lines = text.split('\n');
    try {
      lines.forEach((line, i) => {
        try {
          if (line.trim() !== '') this.command(line);
        } catch (err) {
          throw new Error(`line ${i + 1}: ${(err as Error).message}\n  ${line}`);
        }
      });
    } catch (err) {
      this.tables.clear();
      for (const [k, v] of saved) this.tables.set(k, v);
      throw err;
    }
  }

  private clone(): Map<string, ModelTable> {
    const out = new Map<string, ModelTable>();
    for (const [f, t] of this.tables) {
      out.set(f, {
        chains: new Map([...t.chains].map(([n, c]) => [n, { hook: c.hook, rules: [...c.rules] }])),
        sets: new Map([...t.sets].map(([n, s]) => [n, { kind: s.kind, body: s.body, elements: new Map(s.elements) }])),
      });
    }
    return out;
  }

  private command(line: string): void {
    const m = /^(add|delete|flush) (table|chain|rule|set|map|element) (ip6?) (\S+)(?: (\S+))?(?: (.*))?$/.exec(line);
    if (!m) throw new Error('not a command this model knows');
    const [, verb, what, family, table, name, rest] = m as unknown as [string, string, string, string, string, string | undefined, string | undefined];
    if (table !== TABLE) throw new Error(`table ${table} is not ours`);
    if (what === 'table') {
      if (verb === 'add') { if (!this.tables.has(family)) this.tables.set(family, { chains: new Map(), sets: new Map() }); }
      else if (verb === 'delete') { if (!this.tables.delete(family)) throw new Error('no such table'); }
      else throw new Error(`${verb} table is not used`);
      return;
    }
    const t = this.tables.get(family);
    if (!t) throw new Error('no such table');
    if (!name) throw new Error('no name');
    switch (`${verb} ${what}`) {
      case 'add chain': {
        const hook = rest ? /type (\w+) hook (\w+) priority (-?\d+)/.exec(rest) : null;
        const old = t.chains.get(name);
        const h = hook ? { type: hook[1]!, hook: hook[2]!, priority: Number(hook[3]) } : null;
        if (old && JSON.stringify(old.hook) !== JSON.stringify(h)) throw new Error(`chain ${name} exists with another hook`);
        if (!old) t.chains.set(name, { hook: h, rules: [] });
        return;
      }
      case 'flush chain': return void (this.chain(t, name).rules.length = 0);
      case 'delete chain':
        this.chain(t, name);
        this.assertUnreferenced(t, `chain ${name}`);
        t.chains.delete(name);
        return;
      case 'add rule': {
        if (!rest) throw new Error('empty rule');
        for (const r of refsOf(rest)) this.assertExists(t, r);
        this.chain(t, name).rules.push(rest);
        return;
      }
      case 'add set':
      case 'add map': {
        const old = t.sets.get(name);
        if (old && old.body !== rest) throw new Error(`${what} ${name} exists with another declaration`);
        if (!old) t.sets.set(name, { kind: what as 'set' | 'map', body: rest ?? '', elements: new Map() });
        return;
      }
      case 'flush set':
      case 'flush map': return void this.set(t, name).elements.clear();
      case 'delete set':
      case 'delete map':
        this.set(t, name);
        this.assertUnreferenced(t, `set ${name}`);
        t.sets.delete(name);
        return;
      case 'add element': {
        const s = this.set(t, name);
        for (const it of items(rest ?? '')) {
          const [k, v] = it.split(' : ') as [string, string | undefined];
          for (const r of refsOf(v ?? '')) this.assertExists(t, r);
          const old = s.elements.get(k);
          if (old !== undefined && old !== (v ?? '')) throw new Error(`element ${k} exists with another value`);
          s.elements.set(k, v ?? '');
        }
        return;
      }
      case 'delete element': {
        const s = this.set(t, name);
        for (const k of items(rest ?? '')) if (!s.elements.delete(k)) throw new Error(`no element ${k} in ${name}`);
        return;
      }
    }
    throw new Error(`${verb} ${what} is not used`);
  }

  private chain(t: ModelTable, name: string): ModelChain {
    const c = t.chains.get(name);
    if (!c) throw new Error(`no chain ${name}`);
    return c;
  }

  private set(t: ModelTable, name: string) {
    const s = t.sets.get(name);
    if (!s) throw new Error(`no set ${name}`);
    return s;
  }

  private assertExists(t: ModelTable, ref: string): void {
    const [kind, name] = ref.split(' ') as [string, string];
    if (kind === 'chain' ? !t.chains.has(name) : !t.sets.has(name)) throw new Error(`${ref} does not exist`);
  }

  private assertUnreferenced(t: ModelTable, ref: string): void {
    for (const [n, c] of t.chains) if (c.rules.some((r) => refsOf(r).includes(ref))) throw new Error(`${ref} is still used by chain ${n}`);
    for (const [n, s] of t.sets) for (const v of s.elements.values()) if (refsOf(v).includes(ref)) throw new Error(`${ref} is still used by ${n}`);
  }

  /** A canonical text of everything, to compare two models. */
  dump(): string {
    const out: string[] = [];
    for (const f of [...this.tables.keys()].sort()) {
      const t = this.tables.get(f)!;
      out.push(`table ${f}`);
      for (const n of [...t.sets.keys()].sort()) {
        const s = t.sets.get(n)!;
        out.push(`  ${s.kind} ${n} ${s.body}`);
        for (const k of [...s.elements.keys()].sort()) out.push(`    ${k}${s.elements.get(k) ? ` : ${s.elements.get(k)}` : ''}`);
      }
      for (const n of [...t.chains.keys()].sort()) {
        const c = t.chains.get(n)!;
        out.push(`  chain ${n}${c.hook ? ` ${c.hook.type} ${c.hook.hook} ${c.hook.priority}` : ''}`);
        for (const r of c.rules) out.push(`    ${r}`);
      }
    }
    return out.join('\n') + '\n';
  }
}
