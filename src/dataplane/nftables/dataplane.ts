// The nftables dataplane: renders the plan into our two tables (ip and ip6)
// and applies it with one `nft -f -` per sync. It remembers what it applied,
// per owner, so a partial sync writes only what the changed services own.
// A failed transaction changes nothing in the kernel (nft is atomic), but the
// next sync is full and re-reads the table's names, as kube-proxy does.
//
// Measured (bench/nftables.ts, nft 1.0.6): the text of a partial sync follows
// the change, but nft itself reads the table's chains and sets before any
// transaction, so even a one-element `nft -f` costs 40 ms at 1,000 services
// and 133 ms at 10,000; a one-endpoint partial sync costs 45 and 160 ms, a
// full sync 0.43 and 2.7 s.
import type { DesiredDataplane, PlannedService } from '../../planner/types.js';
import type { Logger } from '../../util/log.js';
import { RuleDataplane } from '../rule-dataplane.js';
import type { Dataplane, SyncOptions, SyncResult } from '../types.js';
import { NFT_FAMILIES, nftFamily, type NftFamily } from './names.js';
import { listExisting, runNft, type NftRunner } from './nft.js';
import type { NftConfig, Owned } from './objects.js';
import { renderBase } from './render-base.js';
import { renderService } from './render-service.js';
import { fullTransaction, partialTransaction, type Existing } from './transaction.js';

/** What one family's table holds, as last applied. */
interface Applied {
  base: Owned;
  services: Map<string, Owned>;
}

export interface NftablesDataplaneOptions {
  config: NftConfig;
  log: Logger;
  /** Runs nft; tests give a fake. */
  nft?: NftRunner;
}

function sameOwned(a: Owned, b: Owned): boolean {
  if (a.elements.size !== b.elements.size || a.rules.size !== b.rules.size || a.decls.size !== b.decls.size) return false;
  for (const [k, v] of a.elements) if (b.elements.get(k) !== v) return false;
  for (const [k, d] of a.decls) if (b.decls.get(k)?.body !== d.body) return false;
  for (const [k, r] of a.rules) {
    const o = b.rules.get(k);
    if (!o || o.length !== r.length || o.some((x, i) => x !== r[i])) return false;
  }
  return true;
}

export class NftablesDataplane extends RuleDataplane<Owned, Record<NftFamily, Applied>> implements Dataplane {
  readonly mode = 'nftables' as const;
  private readonly nft: NftRunner;
  private readonly config: NftConfig;

  constructor(opts: NftablesDataplaneOptions) {
    super(opts.log);
    this.nft = opts.nft ?? runNft;
    this.config = opts.config;
  }

  protected renderService(s: PlannedService): Owned {
    return renderService(s, this.config);
  }

  async sync(desired: DesiredDataplane, opts: SyncOptions): Promise<SyncResult> {
    const started = performance.now();
    const base = { ip: renderBase('ip', desired), ip6: renderBase('ip6', desired) };
    const full = opts.full || this.applied === null || !NFT_FAMILIES.every((f) => sameOwned(base[f], this.applied![f].base));
    const r = await (full ? this.syncFull(desired, base) : this.syncPartial(desired, opts.changed));
    this.nodeState?.synced(desired, r, started, { config: this.config });
    return r;
  }

  private async syncFull(desired: DesiredDataplane, base: Record<NftFamily, Owned>): Promise<SyncResult> {
    const next: Record<NftFamily, Applied> = { ip: { base: base.ip, services: new Map() }, ip6: { base: base.ip6, services: new Map() } };
    for (const [key, s] of desired.services) next[nftFamily(s.family)].services.set(key, this.render(s));
    let text = '';
    let upserts = 0;
    let deletes = 0;
    for (const f of NFT_FAMILIES) {
      let existing: Existing;
      try {
        existing = this.mustList ? await listExisting(this.nft, f) : this.namesOf(this.applied![f]);
      } catch (err) {
        return this.nftFailed(true, (err as Error).message);
      }
      const t = fullTransaction(f, [next[f].base, ...next[f].services.values()], existing);
      text += t.text;
      upserts += t.upserts;
      deletes += t.deletes;
    }
    const r = await this.nft(['-f', '-'], text);
    if (!r.ok) return this.nftFailed(true, r.stderr);
    return this.synced(true, next, upserts, deletes);
  }

  private async syncPartial(desired: DesiredDataplane, changed: ReadonlySet<string>): Promise<SyncResult> {
    const applied = this.applied!;
    const changes: Record<NftFamily, { key: string; before: Owned | undefined; after: Owned | undefined }[]> = { ip: [], ip6: [] };
    for (const key of changed) {
      const s = desired.services.get(key);
      const after = s ? this.render(s) : undefined;
      for (const f of NFT_FAMILIES) {
        const before = applied[f].services.get(key);
        const mine = s ? nftFamily(s.family) === f : false;
        if (before === undefined && !mine) continue;
        if (before === after) continue;
        changes[f].push({ key, before, after: mine ? after : undefined });
      }
    }
    let text = '';
    let upserts = 0;
    let deletes = 0;
    for (const f of NFT_FAMILIES) {
      if (changes[f].length === 0) continue;
      const t = partialTransaction(f, changes[f]);
      text += t.text;
      upserts += t.upserts;
      deletes += t.deletes;
    }
    if (text !== '') {
      const r = await this.nft(['-f', '-'], text);
      if (!r.ok) return this.nftFailed(false, r.stderr);
    }
    for (const f of NFT_FAMILIES) {
      for (const c of changes[f]) {
        if (c.after) applied[f].services.set(c.key, c.after);
        else applied[f].services.delete(c.key);
      }
    }
    return this.synced(false, applied, upserts, deletes);
  }

  private namesOf(a: Applied): Existing {
    const e: Existing = { chains: new Set(), sets: new Set(), maps: new Set() };
    for (const o of [a.base, ...a.services.values()]) {
      for (const [name, d] of o.decls) e[d.kind === 'chain' ? 'chains' : d.kind === 'set' ? 'sets' : 'maps'].add(name);
    }
    return e;
  }

  /** The kernel kept its previous state (nft is atomic); the next sync is full and re-reads what the table holds. */
  private nftFailed(full: boolean, stderr: string): SyncResult {
    return this.failed(full, 'nft -f', 'NFT_APPLY_FAILED', stderr);
  }
}
