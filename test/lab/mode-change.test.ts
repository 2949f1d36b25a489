// Changing --proxy-mode on a node removes what the previous mode installed,
// once the new mode has programmed the node, and never what the mode in force
// made: iptables -> nftables leaves no chain of ours in iptables; bpf ->
// nftables leaves no pin, no link and no cgroup program.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, type Lab, type LabNode } from '../../src/lab/lab.js';
import { LabProxy } from '../../src/lab/proxy.js';
import { HTTP, pods, put, service, slice } from '../helpers/lab-manifests.js';
import { binaryRuns } from './rule-modes.suite.js';

const isRoot = process.getuid?.() === 0;
const why = !isRoot ? 'they build network namespaces, which needs root'
  : !binaryRuns('nft', ['--version']) || !binaryRuns('iptables-save', ['--version']) ? 'nft or iptables is missing' : null;
if (why) console.log(`mode-change lab tests skipped: ${why}`);

describe.skipIf(why !== null)('changing --proxy-mode on a node', () => {
  let lab: Lab;
  let dir: string;
  let node: LabNode;
  let proxy: LabProxy | null = null;

  const ours = async () => {
    const save = (await lab.exec(node.netns, ['iptables-save'])).stdout + (await lab.exec(node.netns, ['ip6tables-save'])).stdout;
    return save.split('\n').filter((l) => /KUBE-|bpfproxy/.test(l));
  };
  const nftTables = async () => (await lab.exec(node.netns, ['nft', 'list', 'tables'])).stdout.split('\n').filter((l) => l.includes('bpfproxy'));
  const start = async (mode: string) => {
    proxy = LabProxy.start(lab, node, { manifests: dir, args: ['--proxy-mode', mode, '--no-fallback', '--min-sync-period', '0s'] });
    await proxy.waitSynced();
    return proxy;
  };
  const stop = async () => {
    expect(await proxy!.stop()).toBe(0);
    proxy = null;
  };
  const serves = async () => {
    const r = await lab.client(lab.pod('client'), { proto: 'tcp', host: '10.96.3.10', port: 80, count: 5, timeoutMs: 2000 });
    expect(pods(r)).toEqual(new Set(['a1']));
  };

  beforeAll(async () => {
    lab = await createLab({ nodes: [{ name: 'node1', pods: [{ name: 'a1' }, { name: 'client' }] }] });
    node = lab.node('node1');
    dir = mkdtempSync(join(tmpdir(), 'bpfproxy-lab-modes-'));
    put(dir, 'web.yaml', `${service('web', '10.96.3.10', HTTP)}---\n${slice('web', HTTP, [{ ip: lab.pod('a1').ipv4, node: 'node1' }])}`);
  });

  afterAll(async () => {
    await proxy?.stop().catch(() => undefined);
    await lab?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('iptables -> nftables: the chains and jumps of the iptables mode are gone, the nftables tables serve', async () => {
    await start('iptables');
    expect(await ours()).not.toEqual([]);
    await stop();
    const p = await start('nftables');
    const removed = await p.waitFor((l) => l.msg === 'removed what the iptables mode left on this node');
    expect(removed).toMatchObject({ mode: 'iptables', inForce: 'nftables' });
    expect(await ours()).toEqual([]);
    expect(await nftTables()).toEqual(['table ip bpfproxy', 'table ip6 bpfproxy']);
    await serves();
    await stop();
  });

  it('nftables -> iptables: the tables go, and a restart in the same mode removes nothing of its own', async () => {
    const p = await start('iptables');
    await p.waitFor((l) => l.msg === 'removed what the nftables mode left on this node');
    expect(await nftTables()).toEqual([]);
    const rules = await ours();
    expect(rules).not.toEqual([]);
    await stop();
    const again = await start('iptables');
    await serves();
    expect(again.logs.filter((l) => /^removed what the/.test(l.msg))).toEqual([]);
    expect(await ours()).toEqual(rules);
    await stop();
  });

  it('bpf -> nftables: pins, links and the cgroup programs are gone', async () => {
    await start('bpf');
    expect(readdirSync(node.bpffs).length).toBeGreaterThan(0);
    expect(execFileSync('bpftool', ['cgroup', 'show', node.cgroup], { encoding: 'utf8' }).trim()).not.toBe('');
    // The bpf mode in force removed what the iptables mode left.
    expect(await ours()).toEqual([]);
    await stop();
    const p = await start('nftables');
    const removed = await p.waitFor((l) => l.msg === 'removed what the bpf mode left on this node');
    expect(Number(removed.count)).toBeGreaterThan(0);
    expect(existsSync(node.bpffs) ? readdirSync(node.bpffs) : []).toEqual([]);
    expect(execFileSync('bpftool', ['cgroup', 'show', node.cgroup], { encoding: 'utf8' }).trim()).toBe('');
    await serves();
    await stop();
  });
});
