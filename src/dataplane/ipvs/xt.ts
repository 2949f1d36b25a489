// The ipvs mode's iptables rules -> `iptables-restore --noflush` input. Our
// chains are few and fixed (plus BPX-CLUSTER-POLICY), so a full sync declares
// (flushes) and rewrites all of them in one block per table, each applied
// atomically; a partial sync rewrites BPX-CLUSTER-POLICY alone when it changed.
// The jumps from the built-in chains are left alone when they are exactly
// ours; otherwise every jump of ours is deleted and ours inserted at the top.
import { BUILTIN_CHAINS, CHAIN_CLUSTER_POLICY, JUMP_MARK, OUR_CHAIN_RE, XT_TABLES, type XtTable } from './names.js';
import type { BuiltinJump, XtRender } from './render-base.js';

export interface XtExisting {
  /** Our chains (BPX-*) per table. */
  chains: Record<XtTable, Set<string>>;
  /** Our jumps in the built-in chains, in order, as iptables-save writes them. */
  jumps: Record<XtTable, { chain: string; rule: string }[]>;
}

export const emptyXtExisting = (): XtExisting => ({ chains: { nat: new Set(), filter: new Set() }, jumps: { nat: [], filter: [] } });

const isOurJump = (rule: string) => rule.includes(`"${JUMP_MARK} `);

/** Reads iptables-save output (nat and filter). */
export function parseXtSave(text: string): XtExisting {
  const e = emptyXtExisting();
  let table: XtTable | null = null;
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      const t = line.slice(1).trim();
      table = t === 'nat' || t === 'filter' ? t : null;
    } else if (table && line.startsWith(':')) {
      const name = line.slice(1).split(' ')[0]!;
      if (OUR_CHAIN_RE.test(name)) e.chains[table].add(name);
    } else if (table) {
      const m = /^-A (\S+) (.*)$/.exec(line);
      if (m && BUILTIN_CHAINS[table].includes(m[1]!) && isOurJump(m[2]!)) e.jumps[table].push({ chain: m[1]!, rule: m[2]! });
    }
  }
  return e;
}

/** What our last restore left, as parseXtSave would read it. */
export function existingOf(r: XtRender): XtExisting {
  const e = emptyXtExisting();
  for (const t of XT_TABLES) for (const c of r.chains[t].keys()) e.chains[t].add(c);
  for (const j of r.jumps) e.jumps[j.table].push({ chain: j.chain, rule: j.rule });
  return e;
}

/** The same jumps in the same order within each built-in chain (iptables-save lists the chains in its own order). */
function jumpsMatch(want: BuiltinJump[], have: { chain: string; rule: string }[]): boolean {
  const text = (list: { chain: string; rule: string }[]) => [...new Set(list.map((j) => j.chain))].sort()
    .map((c) => list.filter((j) => j.chain === c).map((j) => `${c} ${j.rule}`).join('\n')).join('\n');
  return text(want) === text(have);
}

/** The whole of our rules, replacing what `existing` says is there. */
export function fullXtRestore(r: XtRender, existing: XtExisting): string {
  let text = '';
  for (const table of XT_TABLES) {
    const chains = r.chains[table];
    const stale = [...existing.chains[table]].filter((c) => !chains.has(c));
    const lines = [`*${table}`, ...[...chains.keys(), ...stale].map((c) => `:${c} - [0:0]`)];
    for (const [c, rules] of chains) for (const rule of rules) lines.push(`-A ${c} ${rule}`);
    const want = r.jumps.filter((j) => j.table === table);
    if (!jumpsMatch(want, existing.jumps[table])) {
      for (const j of existing.jumps[table]) lines.push(`-D ${j.chain} ${j.rule}`);
      for (const j of [...want].reverse()) lines.push(`-I ${j.chain} 1 ${j.rule}`);
    }
    for (const c of stale) lines.push(`-X ${c}`);
    text += [...lines, 'COMMIT'].join('\n') + '\n';
  }
  return text;
}

/** Rewrites BPX-CLUSTER-POLICY only. */
export function policyXtRestore(rules: readonly string[]): string {
  return [`*nat`, `:${CHAIN_CLUSTER_POLICY} - [0:0]`, ...rules.map((rule) => `-A ${CHAIN_CLUSTER_POLICY} ${rule}`), 'COMMIT'].join('\n') + '\n';
}
