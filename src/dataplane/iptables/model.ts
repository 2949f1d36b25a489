// A model of what the kernel holds after our `iptables-restore --noflush`
// inputs, for the packet tracer and for checking incremental syncs without
// root. It reads exactly what restore.ts writes and enforces what makes order
// matter to iptables: a rule may only jump to an existing chain, a chain is
// deleted only when empty and unreferenced, `-D` needs the exact rule. Each
// table block is atomic (COMMIT), as the kernel applies it. Anything else is
// an error: the model is exact about our own output, not a general parser.
import type { IPFamily } from '../../model/types.js';
import { BUILTIN_CHAINS, XT_TABLES, type XtTable } from './names.js';

export interface ModelChain {
  builtin: boolean;
  /** Rule texts, after "-A NAME ". */
  rules: string[];
}

export type ModelTable = Map<string, ModelChain>;

/** Targets that are not chains. */
const TARGETS = new Set(['ACCEPT', 'DROP', 'RETURN', 'REJECT', 'MARK', 'MASQUERADE', 'DNAT', 'SNAT']);

export function jumpTarget(rule: string): string | null {
  const m = /(?:^| )-[jg] (\S+)/.exec(rule);
  return m ? m[1]! : null;
}

function emptyTable(t: XtTable): ModelTable {
  return new Map(BUILTIN_CHAINS[t].map((c) => [c, { builtin: true, rules: [] }]));
}

export class XtablesModel {
  readonly families: Record<IPFamily, Record<XtTable, ModelTable>> = {
    IPv4: { nat: emptyTable('nat'), filter: emptyTable('filter') },
    IPv6: { nat: emptyTable('nat'), filter: emptyTable('filter') },
  };

  table(family: IPFamily, t: XtTable): ModelTable {
    return this.families[family][t];
  }

  /** Applies one restore input with --noflush: each table block atomically; a failing block and the ones after it change nothing. */
  apply(family: IPFamily, text: string): void {
    const lines = text.split('\n');
    let block: { table: XtTable; work: ModelTable } | null = null;
    lines.forEach((line, i) => {
      try {
        if (line.trim() === '' || line.startsWith('#')) return;
        if (line.startsWith('*')) {
          if (block) throw new Error('a table block without COMMIT');
          const t = line.slice(1) as XtTable;
          if (!XT_TABLES.includes(t)) throw new Error(`table ${t} is not one we use`);
          block = { table: t, work: clone(this.families[family][t]) };
          return;
        }
        if (!block) throw new Error('a command outside a table block');
        if (line === 'COMMIT') {
          this.families[family][block.table] = block.work;
          block = null;
          return;
        }
        command(block.work, line);
      } catch (err) {
        throw new Error(`line ${i + 1}: ${(err as Error).message}\n  ${line}`);
      }
    });
    if (block) throw new Error('input ends without COMMIT');
  }

  /** As iptables-save prints it (our rule texts as written). */
  save(family: IPFamily): string {
    const out: string[] = [];
    for (const t of XT_TABLES) {
      const table = this.families[family][t];
      out.push(`*${t}`);
      for (const [n, c] of table) out.push(`:${n} ${c.builtin ? 'ACCEPT' : '-'} [0:0]`);
      for (const [n, c] of table) for (const r of c.rules) out.push(`-A ${n} ${r}`);
      out.push('COMMIT');
    }
    return out.join('\n') + '\n';
  }

  /** A canonical text of everything, to compare two models: chains sorted, rules in order. */
  dump(): string {
    const out: string[] = [];
    for (const f of ['IPv4', 'IPv6'] as const) {
      for (const t of XT_TABLES) {
        out.push(`${f} ${t}`);
        const table = this.families[f][t];
        for (const n of [...table.keys()].sort()) {
          out.push(`  ${n}`);
          for (const r of table.get(n)!.rules) out.push(`    ${r}`);
        }
      }
    }
    return out.join('\n') + '\n';
  }
}

function clone(t: ModelTable): ModelTable {
  return new Map([...t].map(([n, c]) => [n, { builtin: c.builtin, rules: [...c.rules] }]));
}

function chainOf(t: ModelTable, name: string): ModelChain {
  const c = t.get(name);
  if (!c) throw new Error(`no chain ${name}`);
  return c;
}

function checkTarget(t: ModelTable, rule: string): void {
  const target = jumpTarget(rule);
  if (target === null) throw new Error('a rule without a target');
  if (!TARGETS.has(target) && !t.has(target)) throw new Error(`chain ${target} does not exist`);
}

function command(t: ModelTable, line: string): void {
  let m: RegExpExecArray | null;
  if ((m = /^:(\S+) (\S+) \[\d+:\d+\]$/.exec(line))) {
    const [, name, policy] = m as unknown as [string, string, string];
    const old = t.get(name);
    if (old?.builtin || policy !== '-') throw new Error('built-in chains are not declared');
    if (old) old.rules.length = 0; // a declaration flushes, also with --noflush
    else t.set(name, { builtin: false, rules: [] });
    return;
  }
  if ((m = /^-A (\S+) (.+)$/.exec(line))) {
    checkTarget(t, m[2]!);
    chainOf(t, m[1]!).rules.push(m[2]!);
    return;
  }
  if ((m = /^-I (\S+) (\d+) (.+)$/.exec(line))) {
    const c = chainOf(t, m[1]!);
    const pos = Number(m[2]);
    if (pos < 1 || pos > c.rules.length + 1) throw new Error(`index of insertion ${pos} too big`);
    checkTarget(t, m[3]!);
    c.rules.splice(pos - 1, 0, m[3]!);
    return;
  }
  if ((m = /^-D (\S+) (.+)$/.exec(line))) {
    const c = chainOf(t, m[1]!);
    const i = c.rules.indexOf(m[2]!);
    if (i < 0) throw new Error('Bad rule (does a matching rule exist in that chain?)');
    c.rules.splice(i, 1);
    return;
  }
  if ((m = /^-X (\S+)$/.exec(line))) {
    const c = chainOf(t, m[1]!);
    if (c.builtin) throw new Error('cannot delete a built-in chain');
    if (c.rules.length > 0) throw new Error(`chain ${m[1]} is not empty`);
    for (const [n, o] of t) if (o.rules.some((r) => jumpTarget(r) === m![1])) throw new Error(`chain ${m[1]} is still referenced by ${n}`);
    t.delete(m[1]!);
    return;
  }
  throw new Error('not a command this model knows');
}
