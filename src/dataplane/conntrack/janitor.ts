// Conntrack hygiene for the modes whose service NAT is netfilter's
// (nftables, iptables, ipvs): after a sync put the rules in, the entries the
// change left stale are deleted (plan.ts says which). It remembers the
// connectionless services as last synced, so a partial sync looks only at the
// services it changed. A failed delete is retried with the next sync.
import type { DesiredDataplane, PlannedService } from '../../planner/types.js';
import type { ProxyMode } from '../../util/modes.js';
import type { Logger } from '../../util/log.js';
import { clearConntrack, type ConntrackClearer } from './netlink.js';
import { isConnectionless, staleFlowRules, type StaleFlowRule } from './plan.js';

/** The modes that NAT services through netfilter's conntrack; the bpf mode keeps its own flow table. */
export function usesNetfilterConntrack(mode: ProxyMode): boolean {
  return mode === 'nftables' || mode === 'iptables' || mode === 'ipvs';
}

export interface FamilyCleanup {
  family: 'IPv4' | 'IPv6';
  /** Frontends looked at. */
  rules: number;
  deleted: number;
  seconds: number;
  /** "" when it worked. */
  error: string;
}

export class ConntrackJanitor {
  /** Connectionless services as of the last sync this janitor saw through. */
  private readonly known = new Map<string, PlannedService>();
  /** Keys whose entries could not be cleared: looked at again next time. */
  private retry = new Set<string>();

  constructor(private readonly log: Logger, private readonly clear: ConntrackClearer = clearConntrack) {}

  /** After a sync that applied everything: `changed` the keys it touched, or 'all' for a full sync. */
  afterSync(desired: DesiredDataplane, changed: ReadonlySet<string> | 'all'): FamilyCleanup[] {
    const keys = new Set(this.retry);
    if (changed === 'all') {
      for (const k of this.known.keys()) keys.add(k);
      for (const [k, s] of desired.services) if (isConnectionless(s.protocol)) keys.add(k);
    } else {
      for (const k of changed) keys.add(k);
    }
    const rules = staleFlowRules(this.known, desired.services, keys);
    const result: FamilyCleanup[] = [];
    for (const family of ['IPv4', 'IPv6'] as const) {
      const mine = rules.filter((r) => r.family === family);
      if (mine.length === 0) continue;
      const started = performance.now();
      const r = this.clear(family === 'IPv4' ? 4 : 6, mine);
      result.push({ family, rules: mine.length, deleted: r.deleted, seconds: (performance.now() - started) / 1000, error: r.error });
      this.report(family, mine, r.deleted, r.error);
    }
    // After a failure the services stay as they were known, so the same rules come out again next time.
    if (result.some((r) => r.error !== '')) {
      this.retry = keys;
      return result;
    }
    this.retry = new Set();
    for (const k of keys) {
      const s = desired.services.get(k);
      if (s && isConnectionless(s.protocol)) this.known.set(k, s);
      else this.known.delete(k);
    }
    return result;
  }

  private report(family: 'IPv4' | 'IPv6', rules: readonly StaleFlowRule[], deleted: number, error: string): void {
    const frontends = rules.slice(0, 10).map((r) => `${r.protocol} ${family === 'IPv6' ? `[${r.address}]` : r.address}:${r.port}`);
    if (error) {
      this.log.warn({ family, frontends, deleted, error }, 'could not delete stale conntrack entries: retrying with the next sync');
    } else if (deleted > 0) {
      this.log.info({ family, frontends, deleted }, 'deleted conntrack entries that pointed to removed endpoints');
    } else {
      this.log.debug({ family, frontends }, 'no stale conntrack entries');
    }
  }
}
