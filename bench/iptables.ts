// The iptables dataplane's sync cost, in a lab node's namespace, through the
// iptables on the PATH (Debian 12: the nft backend): a full sync of N
// services, a full resync of the loaded tables, then a partial sync of one
// changed service (one endpoint added), at N = 1,000 and 10,000. Prints the
// ratio partial/full. Run: npx vite-node bench/iptables.ts (root).
import { pino } from 'pino';
import { IptablesDataplane } from '../src/dataplane/iptables/dataplane.js';
import { DEFAULT_MASQUERADE_BIT } from '../src/dataplane/iptables/objects.js';
import type { XtRunner } from '../src/dataplane/iptables/xtables.js';
import { createLab } from '../src/lab/lab.js';
import type { DesiredDataplane, PlannedService } from '../src/planner/types.js';
import { frontend, plannedBackend, plannedService } from '../test/helpers/planned.js';

function services(n: number): Map<string, PlannedService> {
  const m = new Map<string, PlannedService>();
  for (let i = 0; i < n; i++) {
    const ip = `10.96.${i >> 8}.${i & 255}`;
    const s = plannedService({ id: i + 1, frontends: [frontend('ClusterIP', ip, 80)], backends: [plannedBackend(i + 1, `10.244.${(i >> 8) & 255}.${(i & 255) || 1}`)] });
    m.set(s.key, s);
  }
  return m;
}

const desired = (svcs: Map<string, PlannedService>, generation: number): DesiredDataplane =>
  ({ generation, services: svcs, healthChecks: new Map(), nodePortAddresses: { IPv4: ['172.18.0.11'], IPv6: [] } });

const lab = await createLab({ nodes: [{ name: 'n1', pods: [] }, { name: 'n2', pods: [] }] });
try {
  for (const [i, n] of [1000, 10_000].entries()) {
    // A fresh node per size, so each starts from empty tables.
    const netns = lab.nodes[i]!.netns;
    const run: XtRunner = async (command, args, input) => {
      try {
        const r = await lab.exec(netns, [command, ...args], { input, timeoutMs: 120_000 });
        return { ok: true, stdout: r.stdout, stderr: r.stderr };
      } catch (err) {
        return { ok: false, stdout: '', stderr: (err as Error).message };
      }
    };
    const config = { clusterCidrs: { IPv4: ['10.244.0.0/16'], IPv6: [] }, masqueradeAll: false, masqueradeBit: DEFAULT_MASQUERADE_BIT, localhostNodePorts: false };
    const dp = new IptablesDataplane({ config, log: pino({ level: 'silent' }), families: ['IPv4'], run });
    const svcs = services(n);
    let t = performance.now();
    const full = await dp.sync(desired(svcs, 1), { full: true, changed: new Set() });
    const fullMs = performance.now() - t;
    if (full.errors.length) throw new Error(JSON.stringify(full.errors));
    t = performance.now();
    await dp.sync(desired(svcs, 2), { full: true, changed: new Set() });
    const refullMs = performance.now() - t;
    const partial: number[] = [];
    for (let k = 0; k < 5; k++) {
      const key = [...svcs.keys()][k * 7]!;
      const old = svcs.get(key)!;
      const changed = { ...old, internal: { ...old.internal, backends: [...old.internal.backends, plannedBackend(900_000 + k, `10.244.250.${k + 1}`)] } };
      changed.external = changed.internal;
      changed.cluster = changed.internal;
      svcs.set(key, changed);
      t = performance.now();
      const r = await dp.sync(desired(svcs, 3 + k), { full: false, changed: new Set([key]) });
      partial.push(performance.now() - t);
      if (r.errors.length) throw new Error(JSON.stringify(r.errors));
    }
    partial.sort((a, b) => a - b);
    const med = partial[2]!;
    const rules = (await lab.exec(netns, ['iptables-save', '-t', 'nat'])).stdout.split('\n').filter((l) => l.startsWith('-A')).length;
    console.log(`${n} services (${rules} nat rules): full sync ${fullMs.toFixed(0)} ms, full resync of loaded tables ${refullMs.toFixed(0)} ms, ` +
      `one endpoint added (partial) median ${med.toFixed(1)} ms: ${(med / fullMs).toFixed(4)}x of full`);
  }
} finally {
  await lab.teardown();
}
