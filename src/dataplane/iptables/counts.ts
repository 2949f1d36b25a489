// Rule counts for kube-proxy's iptables metrics
// (kubeproxy_sync_proxy_rules_iptables_total and _last, by table). Pure.
import { INDEX_CHAINS, XT_TABLES, type XtTable } from './names.js';
import type { Owned } from './objects.js';
import type { BuiltinJump } from './render-base.js';

export type RuleCounts = Record<XtTable, number>;

export function zeroCounts(): RuleCounts {
  return { nat: 0, filter: 0 };
}

/** Adds the rules a restore input writes ("-A" and "-I" lines), per table block. */
export function addWritten(into: RuleCounts, restoreText: string): void {
  let table: XtTable | null = null;
  for (const line of restoreText.split('\n')) {
    if (line.startsWith('*')) table = XT_TABLES.find((t) => t === line.slice(1).trim()) ?? null;
    else if (table && (line.startsWith('-A ') || line.startsWith('-I '))) into[table]++;
  }
}

/** Adds the rules we own once applied: every chain's rules (the index chains' as the services fill them) and our jumps. */
export function addOwned(into: RuleCounts, owners: Iterable<Owned>, jumps: readonly BuiltinJump[]): void {
  for (const o of owners) {
    for (const t of XT_TABLES) {
      for (const [chain, rules] of o.chains[t]) if (!INDEX_CHAINS[t].includes(chain)) into[t] += rules.length;
      for (const rules of o.index[t].values()) into[t] += rules.length;
    }
  }
  for (const j of jumps) into[j.table]++;
}
