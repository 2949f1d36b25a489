// The ipvs dataplane: renders the plan into virtual servers, ipset entries,
// kube-ipvs0 addresses and a fixed set of iptables rules, and writes only the
// difference from what the kernel holds: after a start or a failure, what
// `ipvsadm -S -n`, `ipset save`, `ip addr` and iptables-save list (ours
// only, see ownership.ts); otherwise what the last sync left. A partial sync
// diffs only what the changed services own, so its cost follows the change.
//
// Order within a sync, so no packet meets a rule that points nowhere: sets and
// entries (the iptables rules match on them), then addresses to bind, the
// virtual servers, the iptables rules, and last the addresses to unbind.
// ipvsadm -R is not atomic (one command per line): a failure anywhere marks
// the next sync full, which lists the kernel's state again.
import type { IPFamily } from '../../model/types.js';
import type { DesiredDataplane, PlannedService } from '../../planner/types.js';
import { canonicalIP } from '../../util/ip.js';
import type { Logger } from '../../util/log.js';
import { RuleDataplane } from '../rule-dataplane.js';
import type { Dataplane, SyncOptions, SyncResult } from '../types.js';
import {
  addressLine, createDummy, dummyAddresses, dummyDevice, ipBatch, ipsetRestore, ipsetSave, ipvsList, ipvsRestore, ipvsSave, runCommand, xtRestore, xtSave, type Runner,
} from './exec.js';
import { Draining, DRAIN_CHECK_INTERVAL_MS, parseConnectionCounts } from './graceful.js';
import { createLines, entryLines, parseIpsetSave } from './ipset.js';
import { ipvsScript, parseSave } from './ipvsadm.js';
import { CHAIN_CLUSTER_POLICY, XT_TABLES } from './names.js';
import { vsKey, type IpvsConfig, type ServiceParts, type VirtualServer } from './objects.js';
import { ourAddresses, ourVirtualServers } from './ownership.js';
import { renderChains, type XtRender } from './render-base.js';
import { renderService } from './render-service.js';
import { IpvsState, newTouched } from './state.js';
import { existingOf, fullXtRestore, parseXtSave, policyXtRestore, type XtExisting } from './xt.js';

interface Applied {
  state: IpvsState;
  xt: Partial<Record<IPFamily, XtRender>>;
}

/** The kernel's state, ours only. */
interface Existing {
  vs: Map<string, VirtualServer>;
  entries: Set<string>;
  addresses: Set<string>;
  xt: Partial<Record<IPFamily, XtExisting>>;
}

export interface IpvsDataplaneOptions {
  config: IpvsConfig;
  log: Logger;
  /** The families this node has ip(6)tables for. */
  families: readonly IPFamily[];
  /** Runs the commands; tests give a fake. */
  run?: Runner;
  /** Milliseconds, for the drain check's interval; tests give a fake. */
  now?: () => number;
}

function sameChains(a: XtRender | undefined, b: XtRender): boolean {
  if (!a) return false;
  return XT_TABLES.every((t) => a.chains[t].size === b.chains[t].size &&
    [...b.chains[t]].every(([c, rules]) => a.chains[t].get(c)?.join('\n') === rules.join('\n')));
}

export class IpvsDataplane extends RuleDataplane<ServiceParts, Applied> implements Dataplane {
  readonly mode = 'ipvs' as const;
  private readonly run: Runner;
  private readonly config: IpvsConfig;
  private readonly families: readonly IPFamily[];
  private readonly now: () => number;
  /** TCP real servers at weight 0 until their connections end (graceful.ts). */
  private readonly draining = new Draining();
  private lastDrainCheck: number;

  constructor(opts: IpvsDataplaneOptions) {
    super(opts.log);
    this.run = opts.run ?? runCommand;
    this.config = opts.config;
    this.families = opts.families;
    this.now = opts.now ?? Date.now;
    this.lastDrainCheck = this.now();
  }

  protected renderService(s: PlannedService): ServiceParts {
    return renderService(s, this.config);
  }

  private partsFor(s: PlannedService | undefined): ServiceParts | undefined {
    return s && this.families.includes(s.family) ? this.render(s) : undefined;
  }

  async sync(desired: DesiredDataplane, opts: SyncOptions): Promise<SyncResult> {
    return opts.full || this.applied === null ? this.syncFull(desired) : this.syncPartial(desired, opts.changed);
  }

  /** What the kernel holds of ours; null when a listing failed (the result says why). */
  private async listExisting(): Promise<Existing | SyncResult> {
    const sets = await ipsetSave(this.run);
    if (!sets.ok) return this.failed(true, 'ipset save', 'IPVS_APPLY_FAILED', sets.stderr);
    const { entries } = parseIpsetSave(sets.stdout);
    const saved = await ipvsSave(this.run);
    if (!saved.ok) return this.failed(true, 'ipvsadm -S -n', 'IPVS_APPLY_FAILED', saved.stderr);
    let all: Map<string, VirtualServer>;
    try {
      all = parseSave(saved.stdout);
    } catch (err) {
      return this.failed(true, 'ipvsadm -S -n', 'IPVS_APPLY_FAILED', (err as Error).message);
    }
    const device = await dummyDevice(this.run);
    if (device === 'absent') {
      const r = await createDummy(this.run);
      if (!r.ok) return this.failed(true, 'ip link add kube-ipvs0 type dummy', 'IPVS_APPLY_FAILED', r.stderr);
    }
    const addrs = await dummyAddresses(this.run);
    if (!addrs.ok) return this.failed(true, 'ip addr show dev kube-ipvs0', 'IPVS_APPLY_FAILED', addrs.stderr);
    const xt: Partial<Record<IPFamily, XtExisting>> = {};
    for (const f of this.families) {
      const r = await xtSave(this.run, f);
      if (!r.ok) return this.failed(true, `${f === 'IPv4' ? 'iptables' : 'ip6tables'}-save`, 'IPVS_APPLY_FAILED', r.stderr);
      xt[f] = parseXtSave(r.stdout);
    }
    return {
      vs: ourVirtualServers(all, entries),
      entries,
      addresses: ourAddresses(addrs.addresses, device !== 'theirs', entries),
      xt,
    };
  }

  private async syncFull(desired: DesiredDataplane): Promise<SyncResult> {
    const state = new IpvsState();
    const t = newTouched();
    for (const [key, s] of desired.services) {
      const parts = this.partsFor(s);
      if (parts) state.set(key, parts, t);
    }
    let existing: Existing;
    const applied = this.applied;
    if (this.mustList || !applied) {
      const listed = await this.listExisting();
      if ('errors' in listed) return listed;
      existing = listed;
    } else {
      const xt: Partial<Record<IPFamily, XtExisting>> = {};
      for (const f of this.families) if (applied.xt[f]) xt[f] = existingOf(applied.xt[f]!);
      const vs = new Map([...applied.state.vs].map(([k, v]) => [k, this.draining.overlay(v)] as const));
      existing = { vs, entries: new Set(applied.state.entries.keys()), addresses: new Set(applied.state.addresses.keys()), xt };
    }
    const xt: Partial<Record<IPFamily, XtRender>> = {};
    for (const f of this.families) xt[f] = renderChains(f, this.config, state.policyRules(f));
    const sets = entryLines(existing.entries, new Set(state.entries.keys()));
    const expired = await this.expiredDrains();
    const after = new Map<string, VirtualServer>();
    for (const key of new Set([...existing.vs.keys(), ...state.vs.keys()])) {
      const v = this.draining.settle(key, existing.vs.get(key), state.vs.get(key), expired);
      if (v) after.set(key, v);
    }
    const vs = ipvsScript(existing.vs, after);
    const bind = [...state.addresses.keys()].filter((a) => !existing.addresses.has(a));
    const unbind = [...existing.addresses].filter((a) => !state.addresses.has(a));
    const r = await this.apply({
      sets: [...createLines(this.families), ...sets.lines],
      bind,
      vs: vs.lines,
      xt: this.families.flatMap((f) => (this.mustList || !sameChains(applied?.xt[f], xt[f]!) ? [[f, fullXtRestore(xt[f]!, existing.xt[f] ?? existingOf(xt[f]!))] as const] : [])),
      unbind,
    }, true);
    if (r) return r;
    return this.synced(true, { state, xt }, sets.upserts + vs.upserts + bind.length, sets.deletes + vs.deletes + unbind.length);
  }

  private async syncPartial(desired: DesiredDataplane, changed: ReadonlySet<string>): Promise<SyncResult> {
    const applied = this.applied!;
    const st = applied.state;
    const next = new Map<string, ServiceParts | undefined>();
    const keys = newTouched();
    for (const key of changed) {
      const parts = this.partsFor(desired.services.get(key));
      const old = st.partsOf(key);
      if (parts === old) continue;
      next.set(key, parts);
      for (const p of [old, parts]) {
        if (!p) continue;
        for (const v of p.virtualServers) keys.vs.add(vsKey(v));
        for (const e of p.entries) keys.entries.add(e);
        for (const a of p.addresses) keys.addresses.add(a);
      }
    }
    if (next.size === 0) return this.synced(false, applied, 0, 0);
    const beforeVs = new Map([...keys.vs].flatMap((k) => (st.vs.has(k) ? [[k, this.draining.overlay(st.vs.get(k)!)] as const] : [])));
    const beforeEntries = new Set([...keys.entries].filter((e) => st.entries.has(e)));
    const beforeAddresses = new Set([...keys.addresses].filter((a) => st.addresses.has(a)));
    const t = newTouched();
    for (const [key, parts] of next) st.set(key, parts, t);
    const sets = entryLines(beforeEntries, new Set([...keys.entries].filter((e) => st.entries.has(e))), keys.entries);
    const afterVs = new Map<string, VirtualServer>();
    for (const k of keys.vs) {
      const v = this.draining.settle(k, beforeVs.get(k), st.vs.get(k));
      if (v) afterVs.set(k, v);
    }
    const vs = ipvsScript(beforeVs, afterVs, keys.vs);
    const bind = [...keys.addresses].filter((a) => st.addresses.has(a) && !beforeAddresses.has(a));
    const unbind = [...beforeAddresses].filter((a) => !st.addresses.has(a));
    const xt: [IPFamily, string][] = [];
    for (const f of t.policy) {
      const last = applied.xt[f];
      const rules = st.policyRules(f);
      if (!last || last.chains.nat.get(CHAIN_CLUSTER_POLICY)?.join('\n') === rules.join('\n')) continue;
      last.chains.nat.set(CHAIN_CLUSTER_POLICY, rules);
      xt.push([f, policyXtRestore(rules)]);
    }
    const r = await this.apply({ sets: sets.lines, bind, vs: vs.lines, xt, unbind }, false);
    if (r) return r;
    return this.synced(false, applied, sets.upserts + vs.upserts + bind.length + xt.length, sets.deletes + vs.deletes + unbind.length);
  }

  /**
   * At most once a minute while real servers drain: the ones IPVS counts no
   * connection for, which this sync then deletes. A failed listing is
   * logged and waits for the next check: draining longer is the safe side.
   */
  private async expiredDrains(): Promise<Set<string> | undefined> {
    if (this.draining.size === 0) return undefined;
    const now = this.now();
    if (now - this.lastDrainCheck < DRAIN_CHECK_INTERVAL_MS) return undefined;
    this.lastDrainCheck = now;
    const r = await ipvsList(this.run);
    if (!r.ok) {
      this.log.warn({ stderr: r.stderr.slice(0, 2000) }, 'ipvsadm -L -n failed: draining real servers stay until the next check');
      return undefined;
    }
    const expired = this.draining.expired(parseConnectionCounts(r.stdout, canonicalIP));
    if (expired.size > 0) this.log.debug({ realServers: [...expired].slice(0, 20), count: expired.size }, 'deleting drained real servers');
    return expired;
  }

  /** Runs the steps in order; the failure's result, or null. */
  private async apply(steps: { sets: string[]; bind: string[]; vs: string[]; xt: (readonly [IPFamily, string])[]; unbind: string[] }, full: boolean): Promise<SyncResult | null> {
    if (steps.sets.length > 0) {
      const r = await ipsetRestore(this.run, steps.sets);
      if (!r.ok) return this.failed(full, 'ipset restore', 'IPVS_APPLY_FAILED', r.stderr);
    }
    if (steps.bind.length > 0) {
      const r = await ipBatch(this.run, steps.bind.map((a) => addressLine('add', a)));
      if (!r.ok) return this.failed(full, 'ip address add', 'IPVS_APPLY_FAILED', r.stderr);
    }
    if (steps.vs.length > 0) {
      const r = await ipvsRestore(this.run, steps.vs);
      if (!r.ok) return this.failed(full, 'ipvsadm -R', 'IPVS_APPLY_FAILED', r.stderr);
    }
    for (const [f, text] of steps.xt) {
      const r = await xtRestore(this.run, f, text);
      if (!r.ok) return this.failed(full, `${f === 'IPv4' ? 'iptables' : 'ip6tables'}-restore`, 'IPVS_APPLY_FAILED', r.stderr);
    }
    if (steps.unbind.length > 0) {
      const r = await ipBatch(this.run, steps.unbind.map((a) => addressLine('del', a)));
      if (!r.ok) return this.failed(full, 'ip address del', 'IPVS_APPLY_FAILED', r.stderr);
    }
    return null;
  }
}
