// The node-side commands against a real proxy in a lab node: `bpfproxy
// status`, `services` and `trace` while it runs in bpf mode, again after it
// stopped (they read the pins and the state file, not the process), and in
// nftables mode. Each command is the real binary, run in the node's network
// namespace; trace's answer is checked against where connections really go.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statePathFor } from '../../src/dataplane/state-file.js';
import { createLab, type Lab, type LabNode } from '../../src/lab/lab.js';
import { LabProxy } from '../../src/lab/proxy.js';
import { PACKAGE_ROOT } from '../../src/util/paths.js';
import { HTTP, pods, put, service, slice } from '../helpers/lab-manifests.js';
import { binaryRuns } from './rule-modes.suite.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('node-view lab tests skipped: they build network namespaces and attach BPF programs, which needs root');

describe.skipIf(!isRoot)('bpfproxy status, services and trace against a lab node', () => {
  let lab: Lab;
  let node: LabNode;
  let dir: string;
  let proxy: LabProxy | null = null;
  const ip = (pod: string) => lab.pod(pod).ipv4;

  /** Runs `bpfproxy ARGS --bpf-fs <node's>` in the node; resolves with exit code and output. */
  async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
    const r = await lab.exec(node.netns, [process.execPath, join(PACKAGE_ROOT, 'bin', 'bpfproxy'), ...args, '--bpf-fs', node.bpffs], { timeoutMs: 20_000 });
    return { code: r.code, out: r.stdout, err: r.stderr };
  }

  /** The state file is written just after a sync (coalesced): wait for it, bounded. */
  async function stateWritten(): Promise<void> {
    for (let i = 0; i < 50 && !existsSync(statePathFor(node.bpffs)); i++) await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(statePathFor(node.bpffs))).toBe(true);
  }

  async function start(args: string[]): Promise<void> {
    proxy = LabProxy.start(lab, node, { manifests: dir, args: ['--min-sync-period', '0s', '--cluster-cidr', '10.244.0.0/16', ...args] });
    await proxy.waitSynced();
    await stateWritten();
  }

  async function stop(): Promise<void> {
    expect(await proxy!.stop()).toBe(0);
    proxy = null;
  }

  beforeAll(async () => {
    lab = await createLab({ nodes: [{ name: 'node1', pods: [{ name: 'a1' }, { name: 'a2' }, { name: 'client' }] }] });
    node = lab.node('node1');
    dir = mkdtempSync(join(tmpdir(), 'bpfproxy-lab-view-'));
    const eps = ['a1', 'a2'].map((p) => ({ ip: ip(p), node: 'node1' }));
    put(dir, 'web.yaml', `${service('web', '10.96.4.10', HTTP)}---\n${slice('web', HTTP, eps)}`);
    put(dir, 'sticky.yaml', `${service('sticky', '10.96.4.30', HTTP, ['sessionAffinity: ClientIP'])}---\n${slice('sticky', HTTP, eps)}`);
    put(dir, 'empty.yaml', `${service('empty', '10.96.4.99', HTTP)}---\n${slice('empty', HTTP, [])}`);
  });

  afterAll(async () => {
    await proxy?.stop().catch(() => undefined);
    rmSync(statePathFor(node?.bpffs ?? '/nonexistent'), { force: true });
    await lab?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('says so when nothing is pinned or recorded', async () => {
    const r = await cli('status');
    expect(r.code).toBe(1);
    expect(r.err).toContain(`no bpfproxy state under ${node.bpffs}: is it running in bpf mode?`);
  });

  /** What each command must show in bpf mode, running or not. */
  async function checkBpfViews(running: boolean): Promise<void> {
    const status = await cli('status');
    expect(status.code, status.err).toBe(0);
    expect(status.out).toMatch(/^Mode:\s+bpf \(--proxy-mode bpf\)$/m);
    expect(status.out).toMatch(running ? /^Proxy:\s+running \(pid \d+\)$/m : /^Proxy:\s+not running/m);
    expect(status.out).toMatch(/^Counts:\s+3 services, 3 frontends, 2 backends$/m);
    // The frontend map holds the three ClusterIPs: its fill is read from the pin.
    expect(status.out).toMatch(/^bpx_fe_v1\s+hash\s+3\s+\d+\s+[\d.<]+%$/m);
    expect(status.out).toMatch(/^bpx_connect4\s+cgroup\s+\d+\s+\d+\s+-$/m);

    const json = await cli('services', '-o', 'json');
    expect(json.code, json.err).toBe(0);
    const rows = JSON.parse(json.out) as { service: string; type: string; affinity: number; backends: { onEmpty: string; backends: { address: string; node: string; state: string }[] } }[];
    expect(rows.map((r) => r.service)).toEqual(['lab/empty:http', 'lab/sticky:http', 'lab/web:http']);
    expect(rows[0]!.backends).toMatchObject({ onEmpty: 'reject', backends: [] });
    expect(rows[1]!.affinity).toBe(10800);
    expect(rows[2]!.backends.backends.map((b) => [b.address, b.node, b.state]).sort()).toEqual([[ip('a1'), 'node1', 'active'], [ip('a2'), 'node1', 'active']].sort());
    const table = await cli('services');
    expect(table.out).toMatch(/10\.96\.4\.99:80\/TCP\s+ClusterIP\s+lab\/empty:http\s+-\s+\(no endpoints: refused\)/);

    const trace = await cli('trace', ip('client'), '10.96.4.10:80/tcp');
    expect(trace.code, trace.err).toBe(0);
    expect(trace.out).toMatch(/frontend\s+10\.96\.4\.10:80\/TCP\s+ClusterIP\s+lab\/web:http/);
    for (const p of ['a1', 'a2']) expect(trace.out).toMatch(new RegExp(`${ip(p).replace(/\./g, '\\.')}:80/TCP\\s+50\\.0%`));
    expect((await cli('trace', ip('client'), '10.96.4.99:80/tcp')).out).toContain('refused (ECONNREFUSED)');
  }

  it('in bpf mode: status, services and trace read the running proxy\'s pins; trace names where connections really go', async () => {
    await start(['--no-fallback']);
    await checkBpfViews(true);
    const results = await lab.client(lab.pod('client'), { proto: 'tcp', host: '10.96.4.10', port: 80, count: 20, timeoutMs: 2000 });
    expect(pods(results)).toEqual(new Set(['a1', 'a2']));
  });

  it('in bpf mode with the proxy stopped: the same answers, from the pins it left', async () => {
    await stop();
    await checkBpfViews(false);
    // And the datapath they describe still serves.
    const results = await lab.client(lab.pod('client'), { proto: 'tcp', host: '10.96.4.10', port: 80, count: 4, timeoutMs: 2000 });
    expect([...pods(results)].every((p) => p === 'a1' || p === 'a2')).toBe(true);
  });

  it.skipIf(!binaryRuns('nft', ['--version']))('in nftables mode: status and trace (through the rules of the last sync), running and stopped', async () => {
    const cleanup = await cli('cleanup');
    expect(cleanup.code, cleanup.err).toBe(0);
    expect(existsSync(statePathFor(node.bpffs))).toBe(false);
    await start(['--proxy-mode', 'nftables']);
    for (const running of [true, false]) {
      const status = await cli('status');
      expect(status.code, status.err).toBe(0);
      expect(status.out).toMatch(/^Mode:\s+nftables \(--proxy-mode nftables\)$/m);
      expect(status.out).toMatch(running ? /^Proxy:\s+running/m : /^Proxy:\s+not running/m);
      expect(status.out).toContain('No pinned maps: the nftables mode keeps its rules in the kernel');
      const trace = await cli('trace', ip('client'), '10.96.4.10:80/tcp');
      expect(trace.code, trace.err).toBe(0);
      for (const p of ['a1', 'a2']) expect(trace.out).toMatch(new RegExp(`dnat ${ip(p).replace(/\./g, '\\.')}:80\\s+50\\.0%\\s+via `));
      expect((await cli('trace', ip('client'), '10.96.4.99:80/tcp')).out).toMatch(/reject\s+100\.0%/);
      const services = await cli('services');
      expect(services.out).toMatch(/lab\/web:http/);
      if (running) {
        // The rules it traces are the ones serving.
        const results = await lab.client(lab.pod('client'), { proto: 'tcp', host: '10.96.4.10', port: 80, count: 20, timeoutMs: 2000 });
        expect(pods(results)).toEqual(new Set(['a1', 'a2']));
        await stop();
      }
    }
  });
});
