// Owned objects -> `nft -f` text. A full transaction redefines the whole
// table; a partial one touches only the changed owners' chains, sets and
// elements. Both are one transaction: nft applies all of it or none.
//
// Why a full sync flushes and redefines rather than `delete table`: the
// affinity sets hold the ClientIP -> endpoint choices; deleting the table
// every --sync-period would forget them.
import { TABLE, type NftFamily } from './names.js';
import { splitElementKey, type Decl, type Owned } from './objects.js';

/** Elements per `add element` command: keeps lines short without one command per element. */
const ELEMENTS_PER_COMMAND = 500;

export interface Existing {
  chains: Set<string>;
  sets: Set<string>;
  maps: Set<string>;
}

export interface Transaction {
  text: string;
  upserts: number;
  deletes: number;
}

class Writer {
  readonly lines: string[] = [];
  constructor(private readonly prefix: string) {}
  cmd(verb: string, what: string, name: string, rest = ''): void {
    this.lines.push(rest ? `${verb} ${what} ${this.prefix} ${name} ${rest}` : `${verb} ${what} ${this.prefix} ${name}`);
  }
  decl(name: string, d: Decl): void {
    this.cmd('add', d.kind, name, d.body);
  }
  rules(chain: string, rules: readonly string[]): void {
    for (const r of rules) this.lines.push(`add rule ${this.prefix} ${chain} ${r}`);
  }
  /** Elements grouped by map, in the order given. `values` false: keys only (delete). */
  elements(verb: 'add' | 'delete', entries: Iterable<[string, string]>, values: boolean): void {
    const byMap = new Map<string, string[]>();
    for (const [k, v] of entries) {
      const [map, key] = splitElementKey(k);
      let list = byMap.get(map);
      if (!list) byMap.set(map, (list = []));
      list.push(values && v !== '' ? `${key} : ${v}` : key);
    }
    for (const [map, list] of byMap) {
      for (let i = 0; i < list.length; i += ELEMENTS_PER_COMMAND) {
        this.cmd(verb, 'element', map, `{ ${list.slice(i, i + ELEMENTS_PER_COMMAND).join(', ')} }`);
      }
    }
  }
}

function sameRules(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  return a !== undefined && b !== undefined && a.length === b.length && a.every((r, i) => r === b[i]);
}

/**
 * The whole table from `owners` (the skeleton first). `existing`: what the
 * table holds now, so objects nobody owns any more are removed.
 */
export function fullTransaction(family: NftFamily, owners: readonly Owned[], existing: Existing): Transaction {
  const w = new Writer(`${family} ${TABLE}`);
  w.lines.push(`add table ${family} ${TABLE}`);
  const chains = new Set<string>();
  const sets = new Set<string>();
  let upserts = 0;
  for (const o of owners) {
    for (const [name, d] of o.decls) {
      if (d.kind === 'chain') {
        chains.add(name);
        continue;
      }
      sets.add(name);
      w.decl(name, d);
      // Shared maps are refilled below; affinity sets keep their entries.
      if (d.kind === 'map' || o === owners[0]) w.cmd('flush', d.kind, name);
    }
  }
  for (const o of owners) {
    for (const [name, d] of o.decls) {
      if (d.kind !== 'chain') continue;
      w.decl(name, d);
      w.cmd('flush', 'chain', name);
    }
  }
  const staleChains = [...existing.chains].filter((c) => !chains.has(c));
  for (const c of staleChains) w.cmd('flush', 'chain', c);
  for (const o of owners) {
    for (const [chain, rules] of o.rules) w.rules(chain, rules);
    upserts += o.rules.size;
  }
  for (const o of owners) {
    w.elements('add', o.elements, true);
    upserts += o.elements.size;
  }
  for (const c of staleChains) w.cmd('delete', 'chain', c);
  let deletes = staleChains.length;
  for (const kind of ['set', 'map'] as const) {
    for (const s of kind === 'set' ? existing.sets : existing.maps) {
      if (sets.has(s)) continue;
      w.cmd('delete', kind, s);
      deletes++;
    }
  }
  return { text: w.lines.join('\n') + '\n', upserts, deletes };
}

/**
 * What turns owners `before` into `after`, owner by owner (undefined: the
 * owner does not exist on that side). Order matters to nft: chains and sets
 * exist before anything refers to them, and a chain is deleted only after
 * the elements and rules that point at it.
 */
export function partialTransaction(family: NftFamily, changes: readonly { before: Owned | undefined; after: Owned | undefined }[]): Transaction {
  const w = new Writer(`${family} ${TABLE}`);
  const addDecls: [string, Decl][] = [];
  const delElements: [string, string][] = [];
  const flush: string[] = [];
  const addRules: [string, string[]][] = [];
  const addElements: [string, string][] = [];
  const delDecls: [string, Decl][] = [];
  for (const { before, after } of changes) {
    const b = before?.decls ?? new Map<string, Decl>();
    const a = after?.decls ?? new Map<string, Decl>();
    for (const [name, d] of a) {
      const old = b.get(name);
      if (!old) addDecls.push([name, d]);
      if (d.kind !== 'chain') continue;
      const rules = after!.rules.get(name)!;
      if (old && sameRules(before!.rules.get(name), rules)) continue;
      if (old) flush.push(name);
      addRules.push([name, rules]);
    }
    for (const [name, d] of b) {
      if (a.has(name)) continue;
      if (d.kind === 'chain') flush.push(name);
      delDecls.push([name, d]);
    }
    const be = before?.elements ?? new Map<string, string>();
    const ae = after?.elements ?? new Map<string, string>();
    for (const [k, v] of be) if (ae.get(k) !== v) delElements.push([k, v]);
    for (const [k, v] of ae) if (be.get(k) !== v) addElements.push([k, v]);
  }
  // Sets before chains: a new rule may update or read a new set.
  for (const [name, d] of addDecls) if (d.kind !== 'chain') w.decl(name, d);
  for (const [name, d] of addDecls) if (d.kind === 'chain') w.decl(name, d);
  w.elements('delete', delElements, false);
  for (const c of flush) w.cmd('flush', 'chain', c);
  for (const [c, rules] of addRules) w.rules(c, rules);
  w.elements('add', addElements, true);
  for (const [name, d] of delDecls) if (d.kind === 'chain') w.cmd('delete', 'chain', name);
  for (const [name, d] of delDecls) if (d.kind !== 'chain') w.cmd('delete', d.kind, name);
  const text = w.lines.length > 0 ? w.lines.join('\n') + '\n' : '';
  return { text, upserts: addRules.length + addElements.length, deletes: delDecls.length + delElements.length };
}
