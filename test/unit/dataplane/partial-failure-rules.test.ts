// The rule modes when an application fails midway (issue 12, item 8): the
// Nth `nft -f` or `iptables-restore` of a full or a partial sync fails,
// refused or after the kernel took it. Each application is atomic per table,
// so every family's table holds either its old or its new rules, never a mix;
// the next sync is full, re-reads the tables, and leaves exactly what the plan
// programmed from scratch leaves.
import { describe, expect, it } from 'vitest';
import type { DesiredDataplane } from '../../../src/planner/types.js';
import { FailingApplier, type ApplyFault } from '../../helpers/apply-faults.js';
import { fakeXtables, modelIptables } from '../../helpers/iptables-model.js';
import { fakeNft, modelDataplane } from '../../helpers/nft-model.js';
import { desired, fromScratch, svc } from '../../helpers/rule-fixtures.js';
import type { Dataplane } from '../../../src/dataplane/types.js';

const BEFORE = desired([svc(1, ['10.244.1.10']), svc(2, ['10.244.2.10', '10.244.2.11'])]);
const AFTER = desired([svc(1, ['10.244.1.10', '10.244.1.12'], { affinity: true }), svc(3, ['10.244.3.10'])]);
const CHANGED = new Set([...BEFORE.services.keys(), ...AFTER.services.keys()]);

interface World {
  dp: Dataplane;
  applier: FailingApplier<never[]>;
  /** What the kernel's tables hold, per part that is applied atomically. */
  parts(): string[];
  dump(): string;
  code: string;
}

const MODES: [string, () => World, () => { dp: Dataplane; fake: { model: { dump(): string } } }][] = [
  ['nftables', () => {
    const fake = fakeNft();
    const applier = new FailingApplier(fake.run, (args: readonly string[]) => args[0] === '-f');
    const { dp } = modelDataplane({ ...fake, run: applier.run });
    return { dp, applier: applier as unknown as FailingApplier<never[]>, parts: () => [fake.model.dump()], dump: () => fake.model.dump(), code: 'NFT_APPLY_FAILED' };
  }, () => modelDataplane()],
  ['iptables', () => {
    const fake = fakeXtables();
    const applier = new FailingApplier(fake.run, (command: string) => command.endsWith('-restore'));
    const { dp } = modelIptables({ ...fake, run: applier.run });
    // One restore per family: the canonical dump cut where IPv6 starts.
    const parts = () => fake.model.dump().split(/^(?=IPv6 nat$)/m);
    return { dp, applier: applier as unknown as FailingApplier<never[]>, parts, dump: () => fake.model.dump(), code: 'IPTABLES_APPLY_FAILED' };
  }, () => modelIptables()],
];

async function applications(world: () => World, full: boolean): Promise<number> {
  const w = world();
  await w.dp.sync(BEFORE, { full: true, changed: new Set() });
  w.applier.arm(0);
  await w.dp.sync(AFTER, { full, changed: CHANGED });
  return w.applier.applies;
}

/** The parts of a world that was given `d` from scratch. */
async function partsOf(world: () => World, d: DesiredDataplane): Promise<string[]> {
  const w = world();
  await w.dp.sync(d, { full: true, changed: new Set() });
  return w.parts();
}

describe.each(MODES)('%s: an application that fails midway', (_mode, world, fresh) => {
  for (const full of [true, false]) {
    for (const how of ['refused', 'applied then failed'] as ApplyFault[]) {
      it(`${full ? 'full' : 'partial'} sync, ${how}: each table old or new, then the next sync is full and matches the plan`, async () => {
        const total = await applications(world, full);
        expect(total).toBeGreaterThanOrEqual(1);
        const before = await partsOf(world, BEFORE);
        const after = await partsOf(world, AFTER);
        const want = await fromScratch(fresh(), AFTER);
        expect(before).toHaveLength(_mode === 'iptables' ? 2 : 1);
        for (let n = 1; n <= total; n++) {
          const w = world();
          await w.dp.sync(BEFORE, { full: true, changed: new Set() });
          w.applier.arm(n, how);
          const r = await w.dp.sync(AFTER, { full, changed: CHANGED });
          expect(r.errors.map((e) => e.code), `application ${n}`).toEqual([w.code]);
          // Nothing half-written: every atomic part holds its whole old or whole new rules.
          w.parts().forEach((p, i) => expect([before[i], after[i]], `application ${n}, part ${i}`).toContain(p));
          w.applier.arm(0);
          const next = await w.dp.sync(AFTER, { full: false, changed: new Set() });
          expect(next).toMatchObject({ full: true, errors: [] });
          expect(w.dump(), `after application ${n} failed (${how})`).toBe(want);
        }
      });
    }
  }
});
