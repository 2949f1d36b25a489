// The shared rule-mode lab suite (rule-modes.suite.ts) for --proxy-mode iptables,
// through the iptables on the PATH (Debian 12: the nft backend, iptables-nft).
import { join } from 'node:path';
import type { Lab } from '../../src/lab/lab.js';
import { binaryRuns, ruleModeSuite } from './rule-modes.suite.js';

const save = async (lab: Lab, netns: string, cmd: string) => (await lab.exec(netns, [cmd])).stdout;

ruleModeSuite({
  mode: 'iptables',
  unavailable: () => (binaryRuns('iptables-restore', ['--version']) ? null : 'no iptables-restore (apt-get install iptables)'),
  // nftables whose nft does not exist falls back to iptables.
  fallback: (dir) => ({ args: ['--proxy-mode', 'nftables'], env: { BPFPROXY_NFT: join(dir, 'no-such-nft') } }),
  fallbackReason: /^fallback: the nftables dataplane cannot run here: `.*no-such-nft list tables` failed/,
  listRules: (lab, node) => save(lab, node.netns, 'iptables-save'),
  rulesShow: /^-A KUBE-SERVICES -d 10\.96\.2\.10\/32 -p tcp -m comment --comment "lab\/web:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-[A-Z2-7]{16}$/m,
  leftovers: async (lab, node) => {
    const text = (await save(lab, node.netns, 'iptables-save')) + (await save(lab, node.netns, 'ip6tables-save'));
    return text.split('\n').filter((l) => /KUBE-|bpfproxy/.test(l)).map((l) => l.replace(/ \[\d+:\d+\]$/, '')).join('\n');
  },
});
