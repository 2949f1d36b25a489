// What the rule-based dataplanes (nftables, iptables, ipvs) share around their
// rendering: each service rendered once per planned object, the bookkeeping
// of what was applied, and kube-proxy's rule that a failed apply forgets it,
// so the next sync is full and re-reads the kernel's tables first.
import type { IdHints, PlannedService } from '../planner/types.js';
import { newIdHints } from '../planner/types.js';
import type { Logger } from '../util/log.js';
import type { NodeStateWriter } from './state-file.js';
import type { SyncResult } from './types.js';

export abstract class RuleDataplane<Owned extends object, Applied> {
  /** Rendered services by identity: the planner keeps an unchanged service's object. */
  private readonly rendered = new WeakMap<PlannedService, Owned>();
  /** What the last successful sync left; null: nothing known (first sync, or after a failure). */
  protected applied: Applied | null = null;
  /** Set when nothing is known about the kernel's tables: first sync, or after a failure. */
  protected mustList = true;
  /** Records each successful sync for `bpfproxy status` and `trace` (state-file.ts). */
  nodeState: NodeStateWriter | null = null;

  constructor(protected readonly log: Logger) {}

  protected abstract renderService(s: PlannedService): Owned;

  /** Service IDs do not appear in rules: nothing to restore. */
  async restore(): Promise<IdHints> {
    return newIdHints();
  }

  protected render(s: PlannedService): Owned {
    let o = this.rendered.get(s);
    if (!o) this.rendered.set(s, (o = this.renderService(s)));
    return o;
  }

  /** A sync that applied everything it wrote, now the kernel's state. */
  protected synced(full: boolean, applied: Applied, upserts: number, deletes: number): SyncResult {
    this.applied = applied;
    if (full) this.mustList = false;
    return { full, upserts, deletes, errors: [], unsupported: [] };
  }

  /** `cmd` failed: the kernel's state is no longer known here, so the next sync is full and re-reads it. */
  protected failed(full: boolean, cmd: string, code: string, stderr: string): SyncResult {
    this.mustList = true;
    this.applied = null;
    const message = `${cmd} failed: ${stderr.trim().split('\n').slice(0, 6).join(' | ')}`;
    this.log.error({ stderr: stderr.slice(0, 4000) }, `${cmd} failed: the next sync is full`);
    return { full, upserts: 0, deletes: 0, errors: [{ service: '', code, message }], unsupported: [] };
  }

  /** The rules stay: the datapath keeps serving across restarts. `bpfproxy cleanup` removes them. */
  async dispose(): Promise<void> {}
}
