// Every golden scenario of the planner, rendered into the ipvs mode's state
// and traced (the agreement of all modes with the plan is in
// test/unit/iptables/trace.test.ts; this one also checks what only ipvs has):
// each step applied as the dataplane applies it (a full sync, then partial
// syncs of the changed services) equals a full render from scratch, and a
// restarted dataplane that lists the kernel's state converges on it too.
import { describe, expect, it } from 'vitest';
import { trace } from '../../../src/dataplane/ipvs/trace.js';
import { describeTrace } from '../../../src/dataplane/trace.js';
import { hostPort } from '../../../src/util/ip.js';
import { fakeIpvs, modelIpvs, TEST_IPVS_CONFIG } from '../../helpers/ipvs-model.js';
import { fromScratch } from '../../helpers/rule-fixtures.js';
import { oracleCases, scenarioFiles, scenarioSteps, TEST_POD_CIDRS, unevenSpread } from '../../helpers/trace-oracle.js';

const withoutDraining = (dump: string) => dump.split('\n').filter((l) => !/^ {4}\S+ w0$/.test(l)).join('\n');

const VARIANTS = [
  { name: 'default flags', config: TEST_IPVS_CONFIG },
  { name: '--masquerade-all --iptables-masquerade-bit 3 --ipvs-scheduler mh', config: { ...TEST_IPVS_CONFIG, masqueradeAll: true, masqueradeBit: 3, scheduler: 'mh' as const } },
];

describe.each(VARIANTS)('ipvs state traced against every planner scenario ($name)', ({ config }) => {
  const oracle = { podCidrs: TEST_POD_CIDRS, masqueradeAll: config.masqueradeAll };
  it.each(scenarioFiles())('%s', async (file) => {
    const { dp, fake } = modelIpvs(fakeIpvs(), config);
    const failures: string[] = [];
    for (const step of scenarioSteps(file)) {
      const { index, title } = step;
      const r = await dp.sync(step.desired, { full: index === 0, changed: step.changed });
      expect(r.errors, `${file} step ${index + 1}: ${JSON.stringify(r.errors)}`).toEqual([]);
      const scratch = await fromScratch(modelIpvs(fakeIpvs(), config), step.desired);
      // TCP real servers that left drain at weight 0 (graceful.ts, its own tests): the rest is the full render's.
      expect(withoutDraining(fake.model.dump()), `${file} step ${index + 1} (${title}): the incremental state differs from a full render`).toBe(scratch);
      fake.model.nodeAddresses.clear();
      for (const a of [...step.desired.nodePortAddresses.IPv4, ...step.desired.nodePortAddresses.IPv6]) fake.model.nodeAddresses.add(a);
      for (const { s, f, c, pkt, want } of oracleCases(step.desired, oracle)) {
        const got = trace(fake.model, pkt);
        const uneven = unevenSpread(got);
        if (uneven) failures.push(`${file} step ${index + 1}: ${s.key} ${f.kind} from ${c.kind}: uneven spread ${uneven}`);
        if (describeTrace(got) !== want) {
          failures.push(`${file} step ${index + 1} (${title}): ${s.key} ${f.kind} ${s.protocol} ${hostPort(f.address, f.port)} from ${c.kind} ${c.src}:\n` +
            `    plan says: ${want}\n    ipvs:      ${describeTrace(got)}\n    path: ${[...got.paths.values()].map((p) => p.join(' > ')).join(' ; ')}`);
        }
      }
      expect(describeTrace(trace(fake.model, { src: '10.244.1.99', dst: '10.96.255.254', proto: 'TCP', port: 1 }))).toBe('not a service');
    }
    expect(failures, failures.join('\n')).toEqual([]);
  });
});
