// The nftables dataplane against a model of the kernel's table: what a sync
// writes, that a partial sync writes only what the changed service owns, and
// that a failed `nft -f` is reported and makes the next sync full.
import { describe, expect, it } from 'vitest';
import { cleanupText } from '../../../src/dataplane/nftables/nft.js';
import { describeTrace, trace } from '../../../src/dataplane/nftables/trace.js';
import { modelDataplane } from '../../helpers/nft-model.js';
import { desired, fromPod, fromScratch, svc } from '../../helpers/rule-fixtures.js';

describe('NftablesDataplane', () => {
  it('a partial sync writes only the changed service, and the result equals a full sync', async () => {
    const { dp, fake } = modelDataplane();
    const a = svc(1, ['10.244.1.10']);
    const b = svc(2, ['10.244.2.10', '10.244.2.11']);
    expect((await dp.sync(desired([a, b]), { full: true, changed: new Set() })).errors).toEqual([]);
    const b2 = svc(2, ['10.244.2.10', '10.244.2.12'], { affinity: true });
    const r = await dp.sync(desired([a, b2]), { full: false, changed: new Set([b2.key]) });
    expect(r).toMatchObject({ full: false, errors: [] });
    const text = fake.calls.at(-1)!.input;
    expect(text).toContain('s2/');
    expect(text).not.toContain('s1/');
    expect(text).not.toMatch(/^flush (map|table)/m);
    expect(describeTrace(trace(fake.model, fromPod('10.96.0.2')))).toBe('dnat 10.244.2.10:8080 | dnat 10.244.2.12:8080');
    expect(describeTrace(trace(fake.model, fromPod('10.96.0.1')))).toBe('dnat 10.244.1.10:8080');

    expect(fake.model.dump()).toBe(await fromScratch(modelDataplane(), desired([a, b2])));

    // Removing a service deletes its chains after the map elements that point at them.
    await dp.sync(desired([a]), { full: false, changed: new Set([b2.key]) });
    expect(describeTrace(trace(fake.model, fromPod('10.96.0.2')))).toBe('not a service');
    expect(fake.model.dump()).not.toContain('s2/');
  });

  it('a hairpin connection (an endpoint reaching itself through the service) is masqueraded', async () => {
    const { dp, fake } = modelDataplane();
    await dp.sync(desired([svc(1, ['10.244.1.10'])]), { full: true, changed: new Set() });
    expect(describeTrace(trace(fake.model, { src: '10.244.1.10', dst: '10.96.0.1', proto: 'TCP', port: 80 }))).toBe('dnat 10.244.1.10:8080 masquerade');
  });

  it('a failed nft -f is a sync error with its stderr; the next sync is full and re-reads the table', async () => {
    const { dp, fake } = modelDataplane();
    const a = svc(1, ['10.244.1.10']);
    await dp.sync(desired([a]), { full: true, changed: new Set() });
    fake.failNext = 'Error: Could not process rule: No buffer space available';
    const a2 = svc(1, ['10.244.1.11']);
    const r = await dp.sync(desired([a2]), { full: false, changed: new Set([a2.key]) });
    expect(r.errors).toEqual([{ service: '', code: 'NFT_APPLY_FAILED', message: expect.stringContaining('No buffer space available') }]);
    // The kernel kept the old state.
    expect(describeTrace(trace(fake.model, fromPod('10.96.0.1')))).toBe('dnat 10.244.1.10:8080');
    const calls = fake.calls.length;
    const next = await dp.sync(desired([a2]), { full: false, changed: new Set() });
    expect(next).toMatchObject({ full: true, errors: [] });
    expect(fake.calls.slice(calls).map((c) => c.args.join(' '))).toEqual(['-t list table ip bpfproxy', '-t list table ip6 bpfproxy', '-f -']);
    expect(describeTrace(trace(fake.model, fromPod('10.96.0.1')))).toBe('dnat 10.244.1.11:8080');
  });

  it('a full sync removes chains nobody owns any more, also ones a previous run left', async () => {
    const first = modelDataplane();
    await first.dp.sync(desired([svc(1, ['10.244.1.10']), svc(2, ['10.244.2.10'])]), { full: true, changed: new Set() });
    // A new process (restart) over the same table, where service 2 is gone.
    const { dp, fake } = modelDataplane(first.fake);
    await dp.sync(desired([svc(1, ['10.244.1.10'])]), { full: true, changed: new Set() });
    expect(fake.model.dump()).not.toContain('s2/');
    expect(fake.model.dump()).toBe(await fromScratch(modelDataplane(), desired([svc(1, ['10.244.1.10'])])));
  });

  it('cleanup removes both tables, and succeeds when they are absent', () => {
    const { fake } = modelDataplane();
    fake.model.apply(cleanupText());
    expect(fake.model.tables.size).toBe(0);
  });
});
