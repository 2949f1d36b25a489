// Owned chains -> `iptables-restore --noflush` input, one table block per
// table, each applied atomically by the kernel (one table replace per table
// with the legacy backend, one nft transaction with the nft backend).
//
// `:CHAIN - [0:0]` creates a chain or flushes it; chains not named are left
// alone (--noflush). So a full sync names every chain we own, and a partial
// sync names only the changed services' chains and the index chains every
// service writes into (KUBE-SERVICES, KUBE-NODEPORTS, the filter verdicts),
// which are rewritten whole, as kube-proxy does. A chain is deleted (-X) after
// it was flushed and after the index chains that jumped to it were rewritten.
import {
  BUILTIN_CHAINS, FIXED_CHAINS, INDEX_CHAINS, JUMP_MARK, SERVICE_CHAIN_RE, XT_TABLES, type XtTable,
} from './names.js';
import type { Owned } from './objects.js';
import type { BuiltinJump } from './render-base.js';

/** What the kernel's tables hold, as far as we care (from iptables-save). */
export interface Existing {
  /** Chain names per table. */
  chains: Record<XtTable, Set<string>>;
  /** Our jumps in the built-in chains, as iptables-save writes them (valid after "-D CHAIN "). */
  jumps: Record<XtTable, { chain: string; rule: string }[]>;
}

export function emptyExisting(): Existing {
  return { chains: { nat: new Set(), filter: new Set() }, jumps: { nat: [], filter: [] } };
}

/** Reads `iptables-save` output. */
export function parseSave(text: string): Existing {
  const e = emptyExisting();
  let table: XtTable | null = null;
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      const t = line.slice(1).trim();
      table = t === 'nat' || t === 'filter' ? t : null;
      continue;
    }
    if (!table) continue;
    if (line.startsWith(':')) {
      e.chains[table].add(line.slice(1).split(' ')[0]!);
      continue;
    }
    const m = /^-A (\S+) (.*)$/.exec(line);
    if (m && BUILTIN_CHAINS[table].includes(m[1]!) && line.includes(`"${JUMP_MARK} `)) e.jumps[table].push({ chain: m[1]!, rule: m[2]! });
  }
  return e;
}

export interface Restore {
  /** The restore input, "" when there is nothing to write. */
  text: string;
  upserts: number;
  deletes: number;
}

/** Is this a chain bpfproxy makes (kube-proxy's prefixes with our hashes, or a fixed one)? */
export function isOurChain(table: XtTable, name: string): boolean {
  return SERVICE_CHAIN_RE.test(name) || FIXED_CHAINS[table].includes(name);
}

/** Every index chain's rules: services in key order, then the base (KUBE-SERVICES ends with the NodePort jumps). */
export function indexRules(table: XtTable, base: Owned, services: ReadonlyMap<string, Owned>): Map<string, string[]> {
  const out = new Map<string, string[]>(INDEX_CHAINS[table].map((c) => [c, []]));
  const keys = [...services.keys()].sort();
  for (const o of [...keys.map((k) => services.get(k)!), base]) {
    for (const [chain, rules] of o.index[table]) out.get(chain)!.push(...rules);
  }
  return out;
}

class Block {
  readonly decls: string[] = [];
  readonly rules: string[] = [];
  readonly tail: string[] = [];
  constructor(readonly table: XtTable) {}
  declare(chain: string): void {
    this.decls.push(`:${chain} - [0:0]`);
  }
  add(chain: string, rules: readonly string[]): void {
    for (const r of rules) this.rules.push(`-A ${chain} ${r}`);
  }
  text(): string {
    return [`*${this.table}`, ...this.decls, ...this.rules, ...this.tail, 'COMMIT'].join('\n') + '\n';
  }
}

/** Our jumps, in the order wanted; rewritten only when what is there differs. */
function fixJumps(b: Block, jumps: readonly BuiltinJump[], existing: Existing): number {
  const want = jumps.filter((j) => j.table === b.table);
  const have = existing.jumps[b.table];
  const key = (chain: string, rule: string) => `${chain} ${/-j (\S+)/.exec(rule)?.[1] ?? ''} ${/--comment "?([^"]*)"?/.exec(rule)?.[1] ?? ''}`;
  const same = have.length === want.length && want.every((j, i) => key(j.chain, j.rule) === key(have[i]!.chain, have[i]!.rule));
  if (same) return 0;
  for (const h of have) b.tail.push(`-D ${h.chain} ${h.rule}`);
  // Inserted at the top, as kube-proxy does, so other software's rules (Docker's) come after.
  for (const j of [...want].reverse()) b.tail.push(`-I ${j.chain} 1 ${j.rule}`);
  return want.length;
}

/** Everything we own, from scratch: chains named in `existing` that we own but no longer render are removed. */
export function fullRestore(base: Owned, services: ReadonlyMap<string, Owned>, jumps: readonly BuiltinJump[], existing: Existing): Restore {
  let text = '';
  let upserts = 0;
  let deletes = 0;
  for (const table of XT_TABLES) {
    const b = new Block(table);
    const index = indexRules(table, base, services);
    const declared = new Set<string>();
    for (const o of [base, ...services.values()]) {
      for (const [chain, rules] of o.chains[table]) {
        declared.add(chain);
        b.declare(chain);
        b.add(chain, index.get(chain) ?? rules);
        upserts++;
      }
    }
    const stale = [...existing.chains[table]].filter((c) => !declared.has(c) && isOurChain(table, c));
    for (const c of stale) b.declare(c);
    upserts += fixJumps(b, jumps, existing);
    for (const c of stale) b.tail.push(`-X ${c}`);
    deletes += stale.length;
    text += b.text();
  }
  return { text, upserts, deletes };
}

function sameRules(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  return a !== undefined && b !== undefined && a.length === b.length && a.every((r, i) => r === b[i]);
}

/**
 * What turns the changed services from `before` into `after` (undefined: the
 * service does not exist on that side). `index`: the index chains after the
 * change; `lastIndex`: as last written, so an unchanged table is skipped.
 */
export function partialRestore(
  changes: readonly { before: Owned | undefined; after: Owned | undefined }[],
  index: Record<XtTable, Map<string, string[]>>,
  lastIndex: Record<XtTable, Map<string, string[]>>,
): Restore {
  let text = '';
  let upserts = 0;
  let deletes = 0;
  for (const table of XT_TABLES) {
    const b = new Block(table);
    const removed: string[] = [];
    for (const { before, after } of changes) {
      const bc = before?.chains[table] ?? new Map<string, string[]>();
      const ac = after?.chains[table] ?? new Map<string, string[]>();
      for (const [chain, rules] of ac) {
        if (sameRules(bc.get(chain), rules)) continue;
        b.declare(chain);
        b.add(chain, rules);
        upserts++;
      }
      for (const chain of bc.keys()) {
        if (ac.has(chain)) continue;
        b.declare(chain);
        removed.push(chain);
      }
    }
    const indexChanged = INDEX_CHAINS[table].some((c) => !sameRules(index[table].get(c), lastIndex[table].get(c)));
    if (b.decls.length === 0 && !indexChanged) continue;
    // The index chains are rewritten whenever anything in the table changes: a new chain must be reached, a removed one unreferenced.
    for (const c of INDEX_CHAINS[table]) {
      b.declare(c);
      b.add(c, index[table].get(c)!);
      upserts++;
    }
    for (const c of removed) b.tail.push(`-X ${c}`);
    deletes += removed.length;
    text += b.text();
  }
  return { text, upserts, deletes };
}
