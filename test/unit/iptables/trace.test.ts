// Every golden scenario of the planner, rendered into iptables and traced:
// for every frontend of every planned service and each kind of client, the
// iptables tracer's answer must be what the plan says and what the nftables
// rules and the ipvs state do (the same scenario, synced into every mode). A disagreement names
// the scenario, the packet and every answer. Each step is applied as the
// dataplane applies it (a full sync, then partial syncs of the changed
// services) and must equal a full render from scratch. The scenarios run
// again with --masquerade-all and another masquerade bit.
import { describe, expect, it } from 'vitest';
import { trace } from '../../../src/dataplane/iptables/trace.js';
import { trace as traceNft } from '../../../src/dataplane/nftables/trace.js';
import { trace as traceIpvs } from '../../../src/dataplane/ipvs/trace.js';
import { describeTrace } from '../../../src/dataplane/trace.js';
import { hostPort } from '../../../src/util/ip.js';
import { fakeXtables, modelIptables, TEST_XT_CONFIG } from '../../helpers/iptables-model.js';
import { modelDataplane } from '../../helpers/nft-model.js';
import { fakeIpvs, modelIpvs, TEST_IPVS_CONFIG } from '../../helpers/ipvs-model.js';
import { fromScratch } from '../../helpers/rule-fixtures.js';
import { oracleCases, scenarioFiles, scenarioSteps, TEST_POD_CIDRS, unevenSpread } from '../../helpers/trace-oracle.js';

const VARIANTS = [
  { name: 'default flags', config: TEST_XT_CONFIG, compareNft: true, ipvsConfig: TEST_IPVS_CONFIG },
  { name: '--masquerade-all --iptables-masquerade-bit 3', config: { ...TEST_XT_CONFIG, masqueradeAll: true, masqueradeBit: 3 }, compareNft: false, ipvsConfig: { ...TEST_IPVS_CONFIG, masqueradeAll: true, masqueradeBit: 3 } },
];

describe.each(VARIANTS)('iptables rules traced against every planner scenario ($name)', ({ config, compareNft, ipvsConfig }) => {
  const oracle = { podCidrs: TEST_POD_CIDRS, masqueradeAll: config.masqueradeAll };
  it.each(scenarioFiles())('%s', async (file) => {
    const steps = scenarioSteps(file);
    const { dp, fake } = modelIptables(fakeXtables(), config);
    const nft = modelDataplane();
    const ipvs = modelIpvs(fakeIpvs(), ipvsConfig);
    const failures: string[] = [];
    let packets = 0;
    for (const step of steps) {
      const { index, title } = step;
      const r = await dp.sync(step.desired, { full: index === 0, changed: step.changed });
      expect(r.errors, `${file} step ${index + 1}: ${JSON.stringify(r.errors)}`).toEqual([]);
      if (compareNft) expect((await nft.dp.sync(step.desired, { full: index === 0, changed: step.changed })).errors).toEqual([]);
      expect((await ipvs.dp.sync(step.desired, { full: index === 0, changed: step.changed })).errors).toEqual([]);
      ipvs.fake.model.nodeAddresses.clear();
      for (const a of [...step.desired.nodePortAddresses.IPv4, ...step.desired.nodePortAddresses.IPv6]) ipvs.fake.model.nodeAddresses.add(a);
      const scratch = await fromScratch(modelIptables(fakeXtables(), config), step.desired);
      expect(fake.model.dump(), `${file} step ${index + 1} (${title}): the incremental tables differ from a full render`).toBe(scratch);

      for (const { s, f, c, pkt, want } of oracleCases(step.desired, oracle)) {
        const got = trace(fake.model, pkt);
        const nftSays = compareNft ? describeTrace(traceNft(nft.fake.model, pkt)) : want;
        const ipvsSays = describeTrace(traceIpvs(ipvs.fake.model, pkt));
        packets++;
        const uneven = unevenSpread(got);
        if (uneven) failures.push(`${file} step ${index + 1}: ${s.key} ${f.kind} from ${c.kind}: uneven spread ${uneven}`);
        if (describeTrace(got) !== want || nftSays !== want || ipvsSays !== want) {
          failures.push(`${file} step ${index + 1} (${title}): ${s.key} ${f.kind} ${s.protocol} ${hostPort(f.address, f.port)} from ${c.kind} ${c.src}:\n` +
            `    plan says:   ${want}\n    iptables:    ${describeTrace(got)}\n    nftables:    ${nftSays}\n    ipvs:        ${ipvsSays}\n` +
            `    path: ${[...got.paths.values()].map((p) => p.join(' > ')).join(' ; ')}`);
        }
      }
      const stray = trace(fake.model, { src: '10.244.1.99', dst: '10.96.255.254', proto: 'TCP', port: 1 });
      expect(describeTrace(stray)).toBe('not a service');
    }
    expect(failures, failures.join('\n')).toEqual([]);
    if (steps.some((s) => s.desired.services.size > 0)) expect(packets).toBeGreaterThan(0);
  });
});
