// The nftables dataplane's sync cost, in a lab node's namespace: a full sync
// of N services, then a partial sync of one changed service (one endpoint
// added), at N = 1,000 and 10,000. Prints the ratio partial/full.
// Run: npx vite-node bench/nftables.ts (root; not part of `make bench` yet).
import { pino } from 'pino';
import { NftablesDataplane } from '../src/dataplane/nftables/dataplane.js';
import type { NftRunner } from '../src/dataplane/nftables/nft.js';
import { createLab } from '../src/lab/lab.js';
import { measureSyncs, runIn, services } from './rule-sync.js';
import { median } from './stats.js';

const lab = await createLab({ nodes: [{ name: 'n1', pods: [] }] });
try {
  const netns = lab.nodes[0]!.netns;
  const nft: NftRunner = (args, input) => runIn(lab, netns, ['nft', ...args], input);
  for (const n of [1000, 10_000]) {
    await lab.exec(netns, ['nft', '-f', '-'], { input: 'add table ip bpfproxy\ndelete table ip bpfproxy\n' });
    const dp = new NftablesDataplane({ config: { clusterCidrs: { ip: ['10.244.0.0/16'], ip6: [] } }, log: pino({ level: 'silent' }), nft });
    const { full, fullMs, refullMs, partialMedianMs: med } = await measureSyncs(dp, services(n));
    // What nft itself costs for a one-line transaction on this table (it reads the table's chains and sets first).
    const tiny: number[] = [];
    for (let k = 0; k < 5; k++) {
      const t = performance.now();
      await lab.exec(netns, ['nft', '-f', '-'], { input: `add element ip bpfproxy nodeport-ips { 172.18.1.${k + 1} }\n` });
      tiny.push(performance.now() - t);
    }
    console.log(`${n} services: a one-element nft -f on this table: median ${median(tiny).toFixed(1)} ms`);
    console.log(`${n} services: full sync ${fullMs.toFixed(0)} ms (${full.upserts} chains+elements), full resync of a loaded table ${refullMs.toFixed(0)} ms, ` +
      `one endpoint added (partial) median ${med.toFixed(1)} ms: ${(med / fullMs).toFixed(4)}x of full`);
  }
} finally {
  await lab.teardown();
}
