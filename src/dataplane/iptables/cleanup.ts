// `bpfproxy cleanup` for the iptables mode: removes exactly what bpfproxy
// made, in both families: its jumps from the built-in chains (they carry the
// "bpfproxy" comment) and its chains (kube-proxy's names; see names.ts). A
// chain that some other rule still jumps to (kube-proxy's own jumps, when
// kube-proxy ran here too) is left, with everything it reaches, and reported:
// removing kube-proxy's leftovers is a separate step (kube-proxy-cleanup.ts),
// which uses the same removal with kube-proxy's chains and jumps.
import type { IPFamily } from '../../model/types.js';
import type { ModeLeftovers } from '../mode-cleanup.js';
import { BUILTIN_CHAINS, JUMP_MARK, restoreCommand, saveCommand, XT_TABLES, type XtTable } from './names.js';
import { jumpTarget } from './model.js';
import { isOurChain } from './restore.js';
import { restore, runXtables, save, XTABLES_LOCK_WAIT_S, type XtRunner } from './xtables.js';

export interface CleanupResult {
  ok: boolean;
  /** Chains removed, per family. */
  removed: number;
  /** Chains left because other rules use them. */
  kept: string[];
  error: string;
}

/** What a removal removes: chains by name, and the rules of other chains that jump to them. */
export interface RemovalSpec {
  tables: readonly string[];
  /** A chain to remove. */
  isTarget(table: string, chain: string): boolean;
  /** A rule of a chain that is not a target, removed with the targets (a jump we or kube-proxy added). */
  isJump(table: string, chain: string, rule: string): boolean;
}

/** iptables-save text -> rules by chain, per table named in `tables`. */
function rulesByChain(text: string, tables: readonly string[]): Map<string, Map<string, string[]>> {
  const out = new Map(tables.map((t) => [t, new Map<string, string[]>()]));
  let table: Map<string, string[]> | null = null;
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      table = out.get(line.slice(1).trim()) ?? null;
    } else if (table && line.startsWith(':')) {
      table.set(line.slice(1).split(' ')[0]!, []);
    } else if (table && line.startsWith('-A ')) {
      const m = /^-A (\S+) (.*)$/.exec(line)!;
      // iptables-save declares every chain; restore input need not declare the built-in ones.
      let rules = table.get(m[1]!);
      if (!rules) table.set(m[1]!, (rules = []));
      rules.push(m[2]!);
    }
  }
  return out;
}

/**
 * The restore input that removes what `spec` names, from iptables-save
 * output; "" when there is nothing. Per table: the jumps `spec` names are
 * deleted, the target chains flushed and deleted, except a target that a
 * rule `spec` does not name still jumps to: that one is kept, with every
 * target it reaches, and reported as "table/chain".
 */
export function removalRestore(saved: string, spec: RemovalSpec): { text: string; removed: number; kept: string[]; removedChains: string[]; removedJumps: string[] } {
  const tables = rulesByChain(saved, spec.tables);
  let text = '';
  let removed = 0;
  const kept: string[] = [];
  const removedChains: string[] = [];
  const removedJumps: string[] = [];
  for (const table of spec.tables) {
    const chains = tables.get(table)!;
    const keep = new Set<string>();
    const visit = (c: string) => {
      if (keep.has(c) || !spec.isTarget(table, c)) return;
      keep.add(c);
      for (const r of chains.get(c) ?? []) {
        const t = jumpTarget(r);
        if (t) visit(t);
      }
    };
    for (const [c, rules] of chains) {
      if (spec.isTarget(table, c)) continue;
      for (const r of rules) {
        const t = jumpTarget(r);
        if (t && !spec.isJump(table, c, r)) visit(t);
      }
    }
    const remove = [...chains.keys()].filter((c) => spec.isTarget(table, c) && !keep.has(c));
    const jumps: string[] = [];
    for (const [c, rules] of chains) {
      if (spec.isTarget(table, c)) continue;
      for (const r of rules) if (spec.isJump(table, c, r)) jumps.push(`-D ${c} ${r}`);
    }
    kept.push(...[...keep].map((c) => `${table}/${c}`));
    if (remove.length === 0 && jumps.length === 0) continue;
    text += [`*${table}`, ...remove.map((c) => `:${c} - [0:0]`), ...jumps, ...remove.map((c) => `-X ${c}`), 'COMMIT'].join('\n') + '\n';
    removed += remove.length;
    removedChains.push(...remove.map((c) => `${table}/${c}`));
    removedJumps.push(...jumps.map((j) => `${table}: ${j}`));
  }
  return { text, removed, kept, removedChains, removedJumps };
}

const isXtTable = (t: string): t is XtTable => (XT_TABLES as readonly string[]).includes(t);

/** bpfproxy's chains, and its jumps from the built-in chains (they carry the bpfproxy comment). */
export const BPFPROXY_REMOVAL: RemovalSpec = {
  tables: XT_TABLES,
  isTarget: (table, chain) => isXtTable(table) && isOurChain(table, chain),
  isJump: (table, chain, rule) => isXtTable(table) && BUILTIN_CHAINS[table].includes(chain) && rule.includes(`"${JUMP_MARK} `),
};

/** The restore input that removes what bpfproxy made, from iptables-save output; "" when there is nothing. */
export function cleanupRestore(saved: string): { text: string; removed: number; kept: string[] } {
  return removalRestore(saved, BPFPROXY_REMOVAL);
}

/** iptables-save of each table of `spec` (a table the kernel does not have yet saves as nothing). */
async function saveTables(run: XtRunner, family: IPFamily, tables: readonly string[]): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  if (tables === XT_TABLES) return save(run, family);
  let stdout = '';
  for (const t of tables) {
    const r = await run(saveCommand(family), ['-t', t]);
    if (!r.ok) return r;
    stdout += r.stdout;
  }
  return { ok: true, stdout, stderr: '' };
}

export interface FamilyRemoval extends CleanupResult {
  family: IPFamily;
  removedChains: string[];
  removedJumps: string[];
}

/** One family: save, compute, one restore (atomic per table). */
export async function removeFamily(run: XtRunner, family: IPFamily, spec: RemovalSpec): Promise<FamilyRemoval> {
  const none = { family, removed: 0, kept: [] as string[], removedChains: [] as string[], removedJumps: [] as string[] };
  const s = await saveTables(run, family, spec.tables);
  if (!s.ok) return { ...none, ok: false, error: s.stderr.trim() };
  const c = removalRestore(s.stdout, spec);
  if (c.text === '') return { ...none, ok: true, kept: c.kept, error: '' };
  const r = spec.tables === XT_TABLES
    ? await restore(run, family, c.text)
    : await run(restoreCommand(family), ['-w', String(XTABLES_LOCK_WAIT_S), '--noflush'], c.text);
  if (!r.ok) return { ...none, ok: false, kept: c.kept, error: r.stderr.trim() };
  return { family, ok: true, removed: c.removed, kept: c.kept, removedChains: c.removedChains, removedJumps: c.removedJumps, error: '' };
}

/** Both families. ok is false when iptables is missing or a restore failed. */
export async function cleanupIptables(run: XtRunner = runXtables): Promise<CleanupResult> {
  const v4 = await removeFamily(run, 'IPv4', BPFPROXY_REMOVAL);
  const v6 = await removeFamily(run, 'IPv6', BPFPROXY_REMOVAL);
  return {
    ok: v4.ok && v6.ok,
    removed: v4.removed + v6.removed,
    kept: [...v4.kept.map((k) => `ip ${k}`), ...v6.kept.map((k) => `ip6 ${k}`)],
    error: [v4.error && `iptables: ${v4.error}`, v6.error && `ip6tables: ${v6.error}`].filter(Boolean).join('; '),
  };
}

/** After a change of mode (src/dataplane/mode-cleanup.ts). A missing iptables is no failure: nothing of the mode can exist without it. */
export async function removeIptablesLeftovers(run: XtRunner = runXtables): Promise<ModeLeftovers> {
  const r = await cleanupIptables(run);
  if (!r.ok && /ENOENT|not found|No such file/.test(r.error)) return { removed: [], error: '' };
  const kept = r.kept.length > 0 ? [`kept (other rules jump to them): ${r.kept.join(', ')}`] : [];
  return { removed: r.removed > 0 ? [`${r.removed} chains and their jumps`, ...kept] : [], error: r.ok ? '' : r.error };
}
