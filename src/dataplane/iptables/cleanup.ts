// `bpfproxy cleanup` for the iptables mode: removes exactly what bpfproxy
// made, in both families: its jumps from the built-in chains (they carry the
// "bpfproxy" comment) and its chains (kube-proxy's names; see names.ts). A
// chain that some other rule still jumps to (kube-proxy's own jumps, when
// kube-proxy ran here too) is left, with everything it reaches, and reported:
// removing kube-proxy's leftovers is a separate step.
import type { IPFamily } from '../../model/types.js';
import { BUILTIN_CHAINS, JUMP_MARK, XT_TABLES, type XtTable } from './names.js';
import { jumpTarget } from './model.js';
import { isOurChain } from './restore.js';
import { restore, runXtables, save, type XtRunner } from './xtables.js';

export interface CleanupResult {
  ok: boolean;
  /** Chains removed, per family. */
  removed: number;
  /** Chains left because other rules use them. */
  kept: string[];
  error: string;
}

/** iptables-save text -> rules by chain, per table. */
function rulesByChain(text: string): Record<XtTable, Map<string, string[]>> {
  const out: Record<XtTable, Map<string, string[]>> = { nat: new Map(), filter: new Map() };
  let table: XtTable | null = null;
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      const t = line.slice(1).trim();
      table = t === 'nat' || t === 'filter' ? t : null;
    } else if (table && line.startsWith(':')) {
      out[table].set(line.slice(1).split(' ')[0]!, []);
    } else if (table && line.startsWith('-A ')) {
      const m = /^-A (\S+) (.*)$/.exec(line)!;
      out[table].get(m[1]!)?.push(m[2]!);
    }
  }
  return out;
}

const ours = (table: XtTable, chain: string, rule: string) => BUILTIN_CHAINS[table].includes(chain) && rule.includes(`"${JUMP_MARK} `);

/** The restore input that removes what bpfproxy made, from iptables-save output; "" when there is nothing. */
export function cleanupRestore(saved: string): { text: string; removed: number; kept: string[] } {
  const tables = rulesByChain(saved);
  let text = '';
  let removed = 0;
  const kept: string[] = [];
  for (const table of XT_TABLES) {
    const chains = tables[table];
    // Ours unless reached from a rule that is not ours.
    const keep = new Set<string>();
    const visit = (c: string) => {
      if (keep.has(c) || !isOurChain(table, c)) return;
      keep.add(c);
      for (const r of chains.get(c) ?? []) {
        const t = jumpTarget(r);
        if (t) visit(t);
      }
    };
    for (const [c, rules] of chains) {
      if (isOurChain(table, c)) continue;
      for (const r of rules) {
        const t = jumpTarget(r);
        if (t && !ours(table, c, r)) visit(t);
      }
    }
    const remove = [...chains.keys()].filter((c) => isOurChain(table, c) && !keep.has(c));
    const jumps: string[] = [];
    for (const c of BUILTIN_CHAINS[table]) for (const r of chains.get(c) ?? []) if (ours(table, c, r)) jumps.push(`-D ${c} ${r}`);
    kept.push(...[...keep].map((c) => `${table}/${c}`));
    if (remove.length === 0 && jumps.length === 0) continue;
    text += [`*${table}`, ...remove.map((c) => `:${c} - [0:0]`), ...jumps, ...remove.map((c) => `-X ${c}`), 'COMMIT'].join('\n') + '\n';
    removed += remove.length;
  }
  return { text, removed, kept };
}

async function cleanupFamily(run: XtRunner, family: IPFamily): Promise<CleanupResult> {
  const s = await save(run, family);
  if (!s.ok) return { ok: false, removed: 0, kept: [], error: s.stderr.trim() };
  const c = cleanupRestore(s.stdout);
  if (c.text === '') return { ok: true, removed: 0, kept: c.kept, error: '' };
  const r = await restore(run, family, c.text);
  return { ok: r.ok, removed: r.ok ? c.removed : 0, kept: c.kept, error: r.stderr.trim() };
}

/** Both families. ok is false when iptables is missing or a restore failed. */
export async function cleanupIptables(run: XtRunner = runXtables): Promise<CleanupResult> {
  const v4 = await cleanupFamily(run, 'IPv4');
  const v6 = await cleanupFamily(run, 'IPv6');
  return {
    ok: v4.ok && v6.ok,
    removed: v4.removed + v6.removed,
    kept: [...v4.kept.map((k) => `ip ${k}`), ...v6.kept.map((k) => `ip6 ${k}`)],
    error: [v4.error && `iptables: ${v4.error}`, v6.error && `ip6tables: ${v6.error}`].filter(Boolean).join('; '),
  };
}
