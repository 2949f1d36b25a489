// `bpfproxy cleanup --kube-proxy` inside a lab node that holds what kube-proxy
// leaves behind (iptables in both families, nftables tables) next to kubelet's
// KUBE-* chains, bpfproxy's own table and pins, and other software's chains and
// tables: kube-proxy's go, with a log line for each kind, and everything else stays exactly as it was.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, type Lab, type LabNode } from '../../src/lab/lab.js';
import { PACKAGE_ROOT } from '../../src/util/paths.js';
import { binaryRuns } from './rule-modes.suite.js';

const FIXTURES = join(PACKAGE_ROOT, 'test', 'fixtures', 'kube-proxy');
const isRoot = process.getuid?.() === 0;
const why = !isRoot ? 'they build network namespaces, which needs root'
  : !binaryRuns('nft', ['--version']) || !binaryRuns('iptables-restore', ['--version']) ? 'nft or iptables is missing' : null;
if (why) console.log(`kube-proxy cleanup lab tests skipped: ${why}`);

/** kube-proxy's chain names, as they appear in iptables-save lines. */
const KUBE_PROXY = /KUBE-(SERVICES|EXTERNAL-SERVICES|NODEPORTS|POSTROUTING|MARK-MASQ|FORWARD|PROXY-FIREWALL|PROXY-CANARY|(SVC|SEP|EXT|FW|SVL)-[A-Z2-7]{16})\b/;

describe.skipIf(why !== null)('bpfproxy cleanup --kube-proxy', () => {
  let lab: Lab;
  let node: LabNode;

  /** The rule lines of both families, counters dropped. */
  const saved = async () => {
    const text = (await lab.exec(node.netns, ['iptables-save'])).stdout + (await lab.exec(node.netns, ['ip6tables-save'])).stdout;
    return text.split('\n').filter((l) => l.startsWith('-A ') || l.startsWith(':')).map((l) => l.replace(/ \[\d+:\d+\]$/, ''));
  };
  // iptables-nft keeps its own tables (ip nat, ip filter, ...) there too: only kube-proxy's and the bystander matter.
  const tables = async () => (await lab.exec(node.netns, ['nft', 'list', 'tables'])).stdout.trim().split('\n').filter((t) => /kube-proxy|lab-other|bpfproxy/.test(t)).sort();
  /** A map pinned where a running bpfproxy keeps its maps: --kube-proxy must leave bpfproxy's own state serving. */
  const pin = () => join(node.bpffs, 'bpx_keep_v1');

  beforeAll(async () => {
    lab = await createLab({ nodes: [{ name: 'node1', pods: [{ name: 'a1' }] }] });
    node = lab.node('node1');
    for (const [cmd, file] of [['iptables-restore', 'iptables-v4.rules'], ['ip6tables-restore', 'iptables-v6.rules']] as const) {
      const r = await lab.exec(node.netns, [cmd, '--noflush'], { input: readFileSync(join(FIXTURES, file), 'utf8') });
      expect(r.code, r.stderr).toBe(0);
    }
    const r = await lab.exec(node.netns, ['nft', '-f', join(FIXTURES, 'nftables.nft')]);
    expect(r.code, r.stderr).toBe(0);
    // bpfproxy's own state on the same node: its nftables table and a pinned map.
    expect((await lab.exec(node.netns, ['nft', '-f', '-'], { input: 'add table ip bpfproxy\nadd chain ip bpfproxy services\n' })).code).toBe(0);
    mkdirSync(node.bpffs, { recursive: true });
    const m = await lab.exec(node.netns, ['bpftool', 'map', 'create', pin(), 'type', 'hash', 'key', '4', 'value', '4', 'entries', '1', 'name', 'bpx_keep']);
    expect(m.code, m.stderr).toBe(0);
  });

  afterAll(async () => {
    await lab?.teardown();
  });

  it('removes kube-proxy\'s chains, jumps and nftables tables, and nothing else', async () => {
    const before = await saved();
    expect(before.filter((l) => KUBE_PROXY.test(l)).length).toBeGreaterThan(40);
    expect(await tables()).toEqual(['table inet lab-other', 'table ip bpfproxy', 'table ip kube-proxy', 'table ip6 kube-proxy']);

    const r = await lab.exec(node.netns, [process.execPath, join(PACKAGE_ROOT, 'bin', 'bpfproxy'), 'cleanup', '--kube-proxy', '--bpf-fs', node.bpffs], { timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(0);
    const logs = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; [k: string]: unknown });

    const after = await saved();
    expect(after.filter((l) => KUBE_PROXY.test(l))).toEqual([]);
    // Everything that did not name a kube-proxy chain is still there: kubelet's chains, LAB-APP, LAB-SNAT, LAB-V6 and their jumps.
    expect(after).toEqual(before.filter((l) => !KUBE_PROXY.test(l)));
    expect(after).toEqual(expect.arrayContaining(['-A INPUT -j KUBE-FIREWALL', '-A FORWARD -j LAB-APP', '-A POSTROUTING -j LAB-SNAT', '-A OUTPUT -j LAB-V6', ':KUBE-KUBELET-CANARY -', ':KUBE-IPTABLES-HINT -']));
    expect(await tables()).toEqual(['table inet lab-other', 'table ip bpfproxy']);
    expect(existsSync(pin())).toBe(true);

    const msgs = logs.map((l) => l.msg);
    expect(msgs).toContain('removed kube-proxy\'s iptables chains and the jumps to them');
    expect(msgs).toContain('removed kube-proxy\'s ip6tables chains and the jumps to them');
    expect(msgs).toContain('removed kube-proxy\'s nftables table ip kube-proxy');
    expect(msgs).toContain('removed kube-proxy\'s nftables table ip6 kube-proxy');
    const v4 = logs.find((l) => l.msg === 'removed kube-proxy\'s iptables chains and the jumps to them')!;
    const fixtureChains = readFileSync(join(FIXTURES, 'iptables-v4.rules'), 'utf8').split('\n').filter((l) => l.startsWith(':') && KUBE_PROXY.test(l));
    expect(v4.chains).toBe(fixtureChains.length);
  });

  it('a second run finds nothing and says so', async () => {
    const r = await lab.exec(node.netns, [process.execPath, join(PACKAGE_ROOT, 'bin', 'bpfproxy'), 'cleanup', '--kube-proxy', '--bpf-fs', node.bpffs], { timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('no kube-proxy chains in iptables');
    expect(r.stderr).not.toContain('removed kube-proxy');
  });
});
