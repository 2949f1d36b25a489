// Every golden scenario of the planner, rendered into nftables and traced:
// for every frontend of every planned service and each kind of client, the
// tracer's answer through the rendered rules must be what the plan says
// (test/helpers/trace-oracle.ts). Each step is applied as the dataplane
// applies it (a full sync, then partial syncs of the changed services) and
// must equal a full render from scratch.
import { describe, expect, it } from 'vitest';
import { describeTrace, trace } from '../../../src/dataplane/nftables/trace.js';
import { hostPort } from '../../../src/util/ip.js';
import { fakeNft, modelDataplane } from '../../helpers/nft-model.js';
import { fromScratch } from '../../helpers/rule-fixtures.js';
import { oracleCases, scenarioFiles, scenarioSteps, TEST_POD_CIDRS, unevenSpread } from '../../helpers/trace-oracle.js';

const oracle = { podCidrs: TEST_POD_CIDRS };

describe('nftables rules traced against every planner scenario', () => {
  it.each(scenarioFiles())('%s', async (file) => {
    const steps = scenarioSteps(file);
    const { dp, fake } = modelDataplane();
    const failures: string[] = [];
    let packets = 0;
    for (const step of steps) {
      const { index, title } = step;
      const r = await dp.sync(step.desired, { full: index === 0, changed: step.changed });
      expect(r.errors, `${file} step ${index + 1}: ${JSON.stringify(r.errors)}`).toEqual([]);
      const scratch = await fromScratch(modelDataplane(fakeNft()), step.desired);
      expect(fake.model.dump(), `${file} step ${index + 1} (${title}): the incremental ruleset differs from a full render`).toBe(scratch);

      for (const { s, f, c, pkt, want } of oracleCases(step.desired, oracle)) {
        const got = trace(fake.model, pkt);
        packets++;
        const uneven = unevenSpread(got);
        if (uneven) failures.push(`${file} step ${index + 1}: ${s.key} ${f.kind} from ${c.kind}: uneven spread ${uneven}`);
        if (describeTrace(got) !== want) {
          failures.push(`${file} step ${index + 1} (${title}): ${s.key} ${f.kind} ${hostPort(f.address, f.port)} from ${c.kind} ${c.src}:\n` +
            `    plan says:   ${want}\n    nftables:    ${describeTrace(got)}\n    path: ${[...got.paths.values()].map((p) => p.join(' > ')).join(' ; ')}`);
        }
      }
      // An address and port no service has.
      const stray = trace(fake.model, { src: '10.244.1.99', dst: '10.96.255.254', proto: 'TCP', port: 1 });
      expect(describeTrace(stray)).toBe('not a service');
    }
    expect(failures, failures.join('\n')).toEqual([]);
    // Scenarios whose every step is rejected plan nothing; the others must have been traced.
    if (steps.some((s) => s.desired.services.size > 0)) expect(packets).toBeGreaterThan(0);
  });
});
