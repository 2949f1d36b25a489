// The shared rule-mode lab suite (rule-modes.suite.ts) for --proxy-mode nftables.
import { join } from 'node:path';
import { binaryRuns, ruleModeSuite } from './rule-modes.suite.js';

ruleModeSuite({
  mode: 'nftables',
  unavailable: () => (binaryRuns('nft', ['--version']) ? null : 'no nft binary (apt-get install nftables)'),
  // bpf with a --bpf-fs that is not on bpffs falls back to nftables.
  fallback: (dir) => ({ args: ['--proxy-mode', 'bpf', '--bpf-fs', join(dir, 'not-bpffs')] }),
  fallbackReason: /^fallback: the bpf dataplane cannot run here: --bpf-fs .*not-bpffs/,
  listRules: async (lab, node) => (await lab.exec(node.netns, ['nft', 'list', 'map', 'ip', 'bpfproxy', 'service-ips'])).stdout,
  rulesShow: /10\.96\.2\.10 \. tcp \. 80 : goto service-/,
  leftovers: async (lab, node) => {
    const tables = (await lab.exec(node.netns, ['nft', 'list', 'tables'])).stdout.split('\n').filter((l) => l.includes('bpfproxy'));
    // The rules without set elements (affinity entries come and go); "" once the tables are gone.
    return tables.length === 0 ? '' : (await lab.exec(node.netns, ['nft', '-t', 'list', 'ruleset'])).stdout;
  },
});
