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
import { measureSyncs, runIn, services } from './rule-sync.js';

const lab = await createLab({ nodes: [{ name: 'n1', pods: [] }, { name: 'n2', pods: [] }] });
try {
  for (const [i, n] of [1000, 10_000].entries()) {
    // A fresh node per size, so each starts from empty tables.
    const netns = lab.nodes[i]!.netns;
    const run: XtRunner = (command, args, input) => runIn(lab, netns, [command, ...args], input);
    const config = { clusterCidrs: { IPv4: ['10.244.0.0/16'], IPv6: [] }, masqueradeAll: false, masqueradeBit: DEFAULT_MASQUERADE_BIT, localhostNodePorts: false };
    const dp = new IptablesDataplane({ config, log: pino({ level: 'silent' }), families: ['IPv4'], run });
    const { fullMs, refullMs, partialMedianMs: med } = await measureSyncs(dp, services(n), true);
    const rules = (await lab.exec(netns, ['iptables-save', '-t', 'nat'])).stdout.split('\n').filter((l) => l.startsWith('-A')).length;
    console.log(`${n} services (${rules} nat rules): full sync ${fullMs.toFixed(0)} ms, full resync of loaded tables ${refullMs.toFixed(0)} ms, ` +
      `one endpoint added (partial) median ${med.toFixed(1)} ms: ${(med / fullMs).toFixed(4)}x of full`);
  }
} finally {
  await lab.teardown();
}
