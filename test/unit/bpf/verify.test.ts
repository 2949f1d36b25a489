// The periodic check of the maps (issue 6): TableSync.verify() compares
// dumps made off the event loop with the mirror, never repairs, and tells a
// map the proxy wrote while it was being dumped from one edited behind its
// back. The maps are in memory (fake-maps.ts); a dump's "while" is simulated
// by writing from inside dumpWordsAsync.
import { describe, expect, it } from 'vitest';
import { FE_VAL } from '../../../src/dataplane/bpf/layout.js';
import { VERIFY_ATTEMPTS, type MapIO } from '../../../src/dataplane/bpf/sync.js';
import type { PlannedBackend, PlannedService } from '../../../src/planner/types.js';
import { FakeLb, FakeMap, feKeyHex } from '../../helpers/fake-maps.js';
import { frontend, plannedBackend, plannedService } from '../../helpers/planned.js';

const backend = (id: number, last: number): PlannedBackend => plannedBackend(id, `10.244.0.${last}`);
const service = (id: number, backends: PlannedBackend[]): PlannedService =>
  plannedService({ id, backends, frontends: [frontend('ClusterIP', `10.96.0.${id}`, 80)] });

/** Two services programmed, then one changed by a partial sync: the mirror's fingerprints were kept while writing. */
function programmed(): FakeLb {
  const lb = new FakeLb();
  lb.apply([service(1, [backend(1, 10)]), service(2, [backend(2, 11)])]);
  lb.apply([service(2, [backend(2, 11), backend(3, 12)])], [2]);
  return lb;
}

/** Makes the map's async dump run `during` between taking the dump and handing it back: a write racing the dump. */
function racing(m: FakeMap, during: (attempt: number) => void): void {
  let attempt = 0;
  const io: MapIO = m;
  io.dumpWordsAsync = async () => {
    const d = m.dumpWords();
    during(attempt++);
    await Promise.resolve();
    return d;
  };
}

describe('the periodic check of the maps', () => {
  it('finds nothing when the maps hold what the proxy wrote, comparing no entry one by one', async () => {
    const lb = programmed();
    const compared = lb.sync.compared;
    const dumps = lb.maps.map((m) => m.dumps);
    expect(await lb.sync.verify()).toEqual({ drift: [], raced: [] });
    expect(lb.sync.compared).toBe(compared);
    expect(lb.maps.map((m) => m.dumps)).toEqual(dumps.map((n) => n + 1));
  });

  it('reports a value edited behind the proxy\'s back as drift, leaves the mirror alone, and the full sync repairs it', async () => {
    const lb = programmed();
    const key = feKeyHex('10.96.0.1', 80);
    const edited = lb.fe.entries.get(key)!.slice();
    edited[FE_VAL.fields.local_set.offset] = 99;
    lb.fe.entries.set(key, edited);
    expect(await lb.sync.verify()).toEqual({ drift: ['bpx_fe_v1'], raced: [] });
    expect(await lb.sync.verify()).toEqual({ drift: ['bpx_fe_v1'], raced: [] }); // not repaired by the check
    const log = lb.logged(() => lb.apply([service(1, [backend(1, 10)]), service(2, [backend(2, 11), backend(3, 12)])]));
    expect(log.map((w) => [w.map, Buffer.from(w.key).toString('hex')])).toEqual([['bpx_fe_v1', key]]);
    expect(await lb.sync.verify()).toEqual({ drift: [], raced: [] });
  });

  it('reports an entry removed or added behind its back', async () => {
    const lb = programmed();
    const [first] = lb.be.entries.keys();
    lb.be.entries.delete(first!);
    lb.set.entries.set('ff'.repeat(lb.set.keySize), new Uint8Array(lb.set.valueSize));
    expect((await lb.sync.verify()).drift.sort()).toEqual(['bpx_be_v1', 'bpx_set_v1']);
  });

  it('dumps again a map the proxy wrote while it was being dumped, rather than calling the stale dump drift', async () => {
    const lb = programmed();
    // The dump is taken, then a partial sync adds a backend before it comes back: the dump lacks it.
    racing(lb.be, (attempt) => {
      if (attempt === 0) lb.apply([service(1, [backend(1, 10), backend(4, 13)])], [1]);
    });
    const redumped = lb.sync.redumped;
    expect(await lb.sync.verify()).toEqual({ drift: [], raced: [] });
    expect(lb.sync.redumped).toBe(redumped + 1);
    // The stale dump alone would have been drift: the mirror holds a backend it lacks.
    expect(lb.be.entries.size).toBe(4);
  });

  it('leaves a map written during every dump for the next period, as raced, not drift', async () => {
    const lb = programmed();
    let n = 0;
    racing(lb.be, () => {
      n++;
      lb.apply([service(1, [backend(1, 10), backend(10 + n, 20 + n)])], [1]);
    });
    expect(await lb.sync.verify()).toEqual({ drift: [], raced: ['bpx_be_v1'] });
    expect(n).toBe(VERIFY_ATTEMPTS);
  });

  it('still finds drift in a map whose racing write was only the first dump\'s', async () => {
    const lb = programmed();
    const key = feKeyHex('10.96.0.2', 80);
    lb.fe.entries.delete(key);
    racing(lb.fe, (attempt) => {
      // An unrelated service's frontend is written during the first dump only.
      if (attempt === 0) lb.apply([service(3, [backend(5, 14)])], [3]);
    });
    expect(await lb.sync.verify()).toEqual({ drift: ['bpx_fe_v1'], raced: [] });
  });
});
