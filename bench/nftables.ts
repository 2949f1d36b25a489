// The nftables dataplane's sync cost, in a lab node's namespace: a full sync
// of N services, then a partial sync of one changed service (one endpoint
// added), at N = 1,000 and 10,000. Prints the ratio partial/full.
// Run: npx vite-node bench/nftables.ts (root; not part of `make bench` yet).
import { pino } from 'pino';
import { NftablesDataplane } from '../src/dataplane/nftables/dataplane.js';
import type { NftRunner } from '../src/dataplane/nftables/nft.js';
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

const lab = await createLab({ nodes: [{ name: 'n1', pods: [] }] });
try {
  const netns = lab.nodes[0]!.netns;
  const nft: NftRunner = async (args, input) => {
    try {
      const r = await lab.exec(netns, ['nft', ...args], { input, timeoutMs: 120_000 });
      return { ok: true, stdout: r.stdout, stderr: r.stderr };
    } catch (err) {
      return { ok: false, stdout: '', stderr: (err as Error).message };
    }
  };
  for (const n of [1000, 10_000]) {
    await lab.exec(netns, ['nft', '-f', '-'], { input: 'add table ip bpfproxy\ndelete table ip bpfproxy\n' });
    const dp = new NftablesDataplane({ config: { clusterCidrs: { ip: ['10.244.0.0/16'], ip6: [] } }, log: pino({ level: 'silent' }), nft });
    const svcs = services(n);
    let t = performance.now();
    const full = await dp.sync(desired(svcs, 1), { full: true, changed: new Set() });
    const fullMs = performance.now() - t;
    // The periodic full resync on a loaded table (flush and redefine).
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
    // What nft itself costs for a one-line transaction on this table (it reads the table's chains and sets first).
    const tiny: number[] = [];
    for (let k = 0; k < 5; k++) {
      t = performance.now();
      await lab.exec(netns, ['nft', '-f', '-'], { input: `add element ip bpfproxy nodeport-ips { 172.18.1.${k + 1} }\n` });
      tiny.push(performance.now() - t);
    }
    tiny.sort((a, b) => a - b);
    console.log(`${n} services: a one-element nft -f on this table: median ${tiny[2]!.toFixed(1)} ms`);
    partial.sort((a, b) => a - b);
    const med = partial[2]!;
    console.log(`${n} services: full sync ${fullMs.toFixed(0)} ms (${full.upserts} chains+elements), full resync of a loaded table ${refullMs.toFixed(0)} ms, ` +
      `one endpoint added (partial) median ${med.toFixed(1)} ms: ${(med / fullMs).toFixed(4)}x of full`);
  }
} finally {
  await lab.teardown();
}
