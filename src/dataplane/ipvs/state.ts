// The sum of every service's parts: what the kernel should hold. Entries and
// addresses are counted, because two services may share one (a ClusterIP
// with two ports binds one address; two services may share an endpoint's
// hairpin entry): one leaves the kernel only when no service wants it.
// `set` returns the keys it touched, so a partial sync diffs only those.
import type { IPFamily } from '../../model/types.js';
import { vsKey, type ServiceParts, type VirtualServer } from './objects.js';

export interface Touched {
  vs: Set<string>;
  entries: Set<string>;
  addresses: Set<string>;
  /** The families whose BPX-CLUSTER-POLICY rules changed. */
  policy: Set<IPFamily>;
}

export const newTouched = (): Touched => ({ vs: new Set(), entries: new Set(), addresses: new Set(), policy: new Set() });

function bump(m: Map<string, number>, k: string, d: number): void {
  const n = (m.get(k) ?? 0) + d;
  if (n > 0) m.set(k, n);
  else m.delete(k);
}

export class IpvsState {
  readonly vs = new Map<string, VirtualServer>();
  readonly entries = new Map<string, number>();
  readonly addresses = new Map<string, number>();
  private readonly parts = new Map<string, ServiceParts>();
  /** Virtual servers by key -> how many services claim it (the planner refuses conflicts; this keeps a stray one from deleting another's). */
  private readonly vsRefs = new Map<string, number>();

  /** Replaces service `key`'s parts (undefined: the service is gone), noting what it touched in `t`. */
  set(key: string, parts: ServiceParts | undefined, t: Touched): void {
    const old = this.parts.get(key);
    if (old === parts) return;
    if (old) {
      for (const v of old.virtualServers) {
        const k = vsKey(v);
        t.vs.add(k);
        bump(this.vsRefs, k, -1);
        if (!this.vsRefs.has(k)) this.vs.delete(k);
      }
      for (const e of old.entries) (t.entries.add(e), bump(this.entries, e, -1));
      for (const a of old.addresses) (t.addresses.add(a), bump(this.addresses, a, -1));
      if (old.policyRules.length > 0) t.policy.add(old.family);
      this.parts.delete(key);
    }
    if (parts) {
      for (const v of parts.virtualServers) {
        const k = vsKey(v);
        t.vs.add(k);
        bump(this.vsRefs, k, 1);
        this.vs.set(k, v);
      }
      for (const e of parts.entries) (t.entries.add(e), bump(this.entries, e, 1));
      for (const a of parts.addresses) (t.addresses.add(a), bump(this.addresses, a, 1));
      if (parts.policyRules.length > 0) t.policy.add(parts.family);
      this.parts.set(key, parts);
    }
  }

  partsOf(key: string): ServiceParts | undefined {
    return this.parts.get(key);
  }

  /** BPX-CLUSTER-POLICY of a family: every service's rules, in service-key order. */
  policyRules(family: IPFamily): string[] {
    return [...this.parts.keys()].sort().flatMap((k) => {
      const p = this.parts.get(k)!;
      return p.family === family ? p.policyRules : [];
    });
  }
}
