// The iptables dataplane: renders the plan into kube-proxy-shaped chains and
// applies it with one `iptables-restore --noflush` per family per sync (and
// ip6tables-restore for IPv6). It remembers what it applied, per owner, so a
// partial sync rewrites only the changed services' chains and the index
// chains (KUBE-SERVICES, KUBE-NODEPORTS, the filter verdicts). A failed
// restore marks the next sync full, which re-reads the tables with
// iptables-save first, as kube-proxy does after a failure.
import type { IPFamily } from '../../model/types.js';
import type { DesiredDataplane, PlannedService } from '../../planner/types.js';
import type { Logger } from '../../util/log.js';
import { RuleDataplane } from '../rule-dataplane.js';
import type { Dataplane, SyncOptions, SyncResult } from '../types.js';
import { XT_TABLES, type XtTable } from './names.js';
import { sameOwned, type Owned, type XtConfig } from './objects.js';
import { addOwned, addWritten, zeroCounts, type RuleCounts } from './counts.js';
import { builtinJumps, renderBase } from './render-base.js';
import { renderService } from './render-service.js';
import { emptyExisting, fullRestore, indexRules, parseSave, partialRestore, type Existing } from './restore.js';
import { restore, runXtables, save, type XtRunner } from './xtables.js';

interface Applied {
  base: Owned;
  services: Map<string, Owned>;
  index: Record<XtTable, Map<string, string[]>>;
}

export interface IptablesDataplaneOptions {
  config: XtConfig;
  log: Logger;
  /** The families this node has iptables for (IPv6 only when ip6tables works). */
  families: readonly IPFamily[];
  /** Runs the xtables programs; tests give a fake. */
  run?: XtRunner;
}

export class IptablesDataplane extends RuleDataplane<Owned, Partial<Record<IPFamily, Applied>>> implements Dataplane {
  readonly mode = 'iptables' as const;
  private readonly run: XtRunner;
  private readonly config: XtConfig;
  private readonly families: readonly IPFamily[];
  /** Rules written by the sync in progress or last done, per table. */
  private written: RuleCounts = zeroCounts();

  constructor(opts: IptablesDataplaneOptions) {
    super(opts.log);
    this.run = opts.run ?? runXtables;
    this.config = opts.config;
    this.families = opts.families;
  }

  protected renderService(s: PlannedService): Owned {
    return renderService(s, this.config);
  }

  async sync(desired: DesiredDataplane, opts: SyncOptions): Promise<SyncResult> {
    const started = performance.now();
    this.written = zeroCounts();
    const base = new Map(this.families.map((f) => [f, renderBase(f, desired, this.config)] as const));
    const applied = this.applied;
    const full = opts.full || applied === null || this.families.some((f) => !sameOwned(base.get(f)!, applied[f]!.base));
    const r = await (full ? this.syncFull(desired, base) : this.syncPartial(desired, opts.changed));
    this.nodeState?.synced(desired, r, started, { config: this.config });
    return r;
  }

  private async syncFull(desired: DesiredDataplane, base: Map<IPFamily, Owned>): Promise<SyncResult> {
    const next: Partial<Record<IPFamily, Applied>> = {};
    for (const f of this.families) next[f] = { base: base.get(f)!, services: new Map(), index: { nat: new Map(), filter: new Map() } };
    for (const [key, s] of desired.services) next[s.family]?.services.set(key, this.render(s));
    let upserts = 0;
    let deletes = 0;
    for (const f of this.families) {
      const a = next[f]!;
      let existing: Existing;
      if (this.mustList) {
        const r = await save(this.run, f);
        if (!r.ok) return this.xtFailed(true, f, 'save', r.stderr);
        existing = parseSave(r.stdout);
      } else {
        existing = this.namesOf(this.applied![f]!);
      }
      const t = fullRestore(a.base, a.services, builtinJumps(), existing);
      const r = await restore(this.run, f, t.text);
      if (!r.ok) return this.xtFailed(true, f, 'restore', r.stderr);
      addWritten(this.written, t.text);
      for (const table of XT_TABLES) a.index[table] = indexRules(table, a.base, a.services);
      upserts += t.upserts;
      deletes += t.deletes;
    }
    return this.synced(true, next, upserts, deletes);
  }

  private async syncPartial(desired: DesiredDataplane, changed: ReadonlySet<string>): Promise<SyncResult> {
    const applied = this.applied!;
    let upserts = 0;
    let deletes = 0;
    for (const f of this.families) {
      const a = applied[f]!;
      const changes: { key: string; before: Owned | undefined; after: Owned | undefined }[] = [];
      for (const key of changed) {
        const s = desired.services.get(key);
        const after = s && s.family === f ? this.render(s) : undefined;
        const before = a.services.get(key);
        if (before !== after) changes.push({ key, before, after });
      }
      if (changes.length === 0) continue;
      const services = new Map(a.services);
      for (const c of changes) {
        if (c.after) services.set(c.key, c.after);
        else services.delete(c.key);
      }
      const index = { nat: indexRules('nat', a.base, services), filter: indexRules('filter', a.base, services) };
      const t = partialRestore(changes, index, a.index);
      if (t.text !== '') {
        const r = await restore(this.run, f, t.text);
        if (!r.ok) return this.xtFailed(false, f, 'restore', r.stderr);
        addWritten(this.written, t.text);
      }
      a.services = services;
      a.index = index;
      upserts += t.upserts;
      deletes += t.deletes;
    }
    return this.synced(false, applied, upserts, deletes);
  }

  /** Rules we own and rules the last sync wrote, per table, both families (kube-proxy's iptables metrics). */
  ruleCounts(): { table: string; total: number; written: number }[] {
    const total = zeroCounts();
    for (const a of Object.values(this.applied ?? {})) if (a) addOwned(total, [a.base, ...a.services.values()], builtinJumps());
    return XT_TABLES.map((table) => ({ table, total: total[table], written: this.written[table] }));
  }

  /** What our last successful sync left: our chains, and the jumps exactly as we wrote them. */
  private namesOf(a: Applied): Existing {
    const e = emptyExisting();
    for (const o of [a.base, ...a.services.values()]) for (const t of XT_TABLES) for (const c of o.chains[t].keys()) e.chains[t].add(c);
    for (const j of builtinJumps()) e.jumps[j.table].push({ chain: j.chain, rule: j.rule });
    return e;
  }

  /** The tables kept what they had before this block (each table's COMMIT is atomic); the next sync is full and re-reads them. */
  private xtFailed(full: boolean, family: IPFamily, step: 'save' | 'restore', stderr: string): SyncResult {
    return this.failed(full, `${family === 'IPv4' ? 'iptables' : 'ip6tables'}-${step}`, 'IPTABLES_APPLY_FAILED', stderr);
  }
}
