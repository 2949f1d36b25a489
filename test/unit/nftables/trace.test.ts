// Every golden scenario of the planner, rendered into nftables and traced:
// for every frontend of every planned service and each kind of client, the
// tracer's answer through the rendered rules must be what the plan says
// (which backend set, reject or drop when it is empty, masquerading, source
// ranges). Each step is applied as the dataplane applies it (a full sync,
// then partial syncs of the changed services) and must equal a full render
// from scratch.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeTrace, trace, type TracePacket } from '../../../src/dataplane/nftables/trace.js';
import type { BackendSet, DesiredDataplane, Frontend, PlannedService } from '../../../src/planner/types.js';
import { cidrContains, hostPort, parseCidr } from '../../../src/util/ip.js';
import { fakeNft, modelDataplane, TEST_NFT_CONFIG } from '../../helpers/nft-model.js';
import { forEachScenarioStep } from '../../helpers/scenario.js';

const CASES = join(import.meta.dirname, '..', '..', 'scenarios', 'cases');

type ClientKind = 'local pod' | 'this node' | 'external' | 'external in source ranges';
interface Client { kind: ClientKind; src: string; fromNode: boolean }

function clients(s: PlannedService): Client[] {
  const v4 = s.family === 'IPv4';
  const out: Client[] = [
    { kind: 'local pod', src: v4 ? '10.244.1.99' : 'fd00:244:1::99', fromNode: false },
    { kind: 'this node', src: v4 ? '172.18.0.11' : 'fd00:18::11', fromNode: true },
    { kind: 'external', src: v4 ? '198.18.0.7' : 'fd00:99::7', fromNode: false },
  ];
  // One client inside the first source range that is outside the cluster CIDR, when there is one.
  const outside = s.sourceRanges.map((r) => parseCidr(r)!).find((c) => !TEST_NFT_CONFIG.clusterCidrs[v4 ? 'ip' : 'ip6'].some((p) => cidrContains(parseCidr(p)!, c.text.split('/')[0]!)));
  if (outside) {
    const base = outside.text.split('/')[0]!;
    out.push({ kind: 'external in source ranges', src: v4 ? base.replace(/\.0$/, '.9') : base.replace(/::$/, '::9'), fromNode: false });
  }
  return out;
}

const inCidrs = (cidrs: readonly string[], ip: string) => cidrs.some((c) => cidrContains(parseCidr(c)!, ip));

/** What the plan says, in the tracer's words; the rules are kube-proxy's. */
function expected(s: PlannedService, f: Frontend, c: Client): string {
  const podCidrs = TEST_NFT_CONFIG.clusterCidrs[s.family === 'IPv4' ? 'ip' : 'ip6'];
  const ranges = s.sourceRanges.filter((r) => parseCidr(r)!.family === s.family);
  if (f.kind === 'LoadBalancer' && ranges.length > 0 && !inCidrs(ranges, c.src)) return 'drop';
  let set: BackendSet;
  let masquerade: boolean;
  if (f.kind === 'ClusterIP') {
    set = s.internal;
    masquerade = !inCidrs(podCidrs, c.src); // from outside the pod network
  } else if (c.kind === 'local pod' || c.kind === 'this node') {
    set = s.cluster; // short-circuited to the Cluster-policy endpoints
    masquerade = c.kind === 'this node' || !s.preserveSource;
  } else {
    set = s.external;
    masquerade = !s.preserveSource;
  }
  if (set.backends.length === 0) return set.onEmpty;
  return set.backends.map((b) => `dnat ${hostPort(b.address, b.port)}${masquerade || b.address === c.src ? ' masquerade' : ''}`).sort().join(' | ');
}

const files = readdirSync(CASES).filter((f) => f.endsWith('.yaml')).sort();

describe('nftables rules traced against every planner scenario', () => {
  it.each(files)('%s', async (file) => {
    // The planner reuses its maps from one step to the next: keep a copy of each
    // step's (immutable) planned services, then sync and trace them in order.
    const steps: { index: number; title: string; desired: { desired: DesiredDataplane; changed: ReadonlySet<string> } }[] = [];
    forEachScenarioStep(join(CASES, file), (step) => steps.push({
      index: step.index,
      title: step.title,
      desired: {
        desired: { ...step.desired, services: new Map(step.desired.services), nodePortAddresses: { IPv4: [...step.desired.nodePortAddresses.IPv4], IPv6: [...step.desired.nodePortAddresses.IPv6] } },
        changed: new Set(step.changed),
      },
    }));
    const { dp, fake } = modelDataplane();
    const failures: string[] = [];
    let packets = 0;
    for (const { index, title, desired: step } of steps) {
      const r = await dp.sync(step.desired, { full: index === 0, changed: step.changed });
      expect(r.errors, `${file} step ${index + 1}: ${JSON.stringify(r.errors)}`).toEqual([]);
      const scratch = modelDataplane(fakeNft());
      await scratch.dp.sync(step.desired, { full: true, changed: new Set() });
      expect(fake.model.dump(), `${file} step ${index + 1} (${title}): the incremental ruleset differs from a full render`).toBe(scratch.fake.model.dump());

      for (const s of step.desired.services.values()) {
        for (const f of s.frontends) {
          for (const c of clients(s)) {
            const pkt: TracePacket = { src: c.src, dst: f.address, proto: s.protocol, port: f.port, fromNode: c.fromNode };
            const got = trace(fake.model, pkt);
            const want = expected(s, f, c);
            packets++;
            // Every endpoint of the set is equally likely for a new client, as kube-proxy's numgen spreads them.
            const spread = [...got.weights].filter(([o]) => o.startsWith('dnat '));
            if (spread.some(([, w]) => Math.abs(w - 1 / spread.length) > 1e-9)) {
              failures.push(`${file} step ${index + 1}: ${s.key} ${f.kind} from ${c.kind}: uneven spread ${JSON.stringify(spread)}`);
            }
            if (describeTrace(got) !== want) {
              failures.push(`${file} step ${index + 1} (${title}): ${s.key} ${f.kind} ${hostPort(f.address, f.port)} from ${c.kind} ${c.src}:\n` +
                `    plan says:   ${want}\n    nftables:    ${describeTrace(got)}\n    path: ${[...got.paths.values()].map((p) => p.join(' > ')).join(' ; ')}`);
            }
          }
        }
      }
      // An address and port no service has.
      const stray = trace(fake.model, { src: '10.244.1.99', dst: '10.96.255.254', proto: 'TCP', port: 1 });
      expect(describeTrace(stray)).toBe('not a service');
    }
    expect(failures, failures.join('\n')).toEqual([]);
    // Scenarios whose every step is rejected plan nothing; the others must have been traced.
    if (steps.some((s) => s.desired.desired.services.size > 0)) expect(packets).toBeGreaterThan(0);
  });
});
