// The nftables dataplane for real: bpfproxy --proxy-mode nftables in each node
// of a lab cluster. Nothing is attached to the lab's cgroups in this mode, so
// every connection below goes through the rules in the node's namespace: pods
// to ClusterIPs (DNAT in prerouting, forwarded), the external client on the
// wire to NodePorts (DNAT, masquerade for the Cluster policy).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, type Lab } from '../../src/lab/lab.js';
import { LabProxy } from '../../src/lab/proxy.js';
import { PACKAGE_ROOT } from '../../src/util/paths.js';
import { DNS, HTTP, pods, put, service, slice } from '../helpers/lab-manifests.js';

const isRoot = process.getuid?.() === 0;
let hasNft = false;
try {
  execFileSync('nft', ['--version'], { stdio: 'pipe' });
  hasNft = true;
} catch { /* reported below */ }
if (!isRoot) console.log('nftables lab tests skipped: they build network namespaces, which needs root');
else if (!hasNft) console.log('nftables lab tests skipped: no nft binary (apt-get install nftables)');

describe.skipIf(!isRoot || !hasNft)('ClusterIP and NodePort through --proxy-mode nftables in a lab cluster', () => {
  let lab: Lab;
  let dir: string;
  let proxies: LabProxy[] = [];
  const backends = () => [
    { ip: lab.pod('a1').ipv4, node: 'node1' },
    { ip: lab.pod('a2').ipv4, node: 'node1' },
    { ip: lab.pod('b1').ipv4, node: 'node2' },
  ];
  const client = () => lab.pod('client');

  beforeAll(async () => {
    lab = await createLab({
      nodes: [
        { name: 'node1', pods: [{ name: 'a1' }, { name: 'a2' }] },
        { name: 'node2', pods: [{ name: 'b1' }, { name: 'client' }] },
      ],
      external: true,
      ipv6: true,
    });
    dir = mkdtempSync(join(tmpdir(), 'bpfproxy-lab-nft-'));
    put(dir, 'web.yaml', `${service('web', '10.96.2.10', HTTP)}---\n${slice('web', HTTP, backends())}`);
    put(dir, 'dns.yaml', `${service('dns', '10.96.2.53', DNS)}---\n${slice('dns', DNS, backends())}`);
    put(dir, 'empty.yaml', `${service('empty', '10.96.2.99', [...HTTP, ...DNS])}---\n${slice('empty', [...HTTP, ...DNS], [])}`);
    put(dir, 'web6.yaml', `${service('web6', 'fd00:96::210', HTTP, ['ipFamilies: [IPv6]'])}---\n` +
      slice('web6', HTTP, backends().map((b, i) => ({ ip: lab.pod(['a1', 'a2', 'b1'][i]!).ipv6!, node: b.node })), 'IPv6'));
    put(dir, 'shrink.yaml', `${service('shrink', '10.96.2.20', HTTP)}---\n${slice('shrink', HTTP, backends())}`);
    put(dir, 'np.yaml', `${service('np', '10.96.2.60', [{ ...HTTP[0]!, nodePort: 30080 }], ['type: NodePort'])}---\n${slice('np', HTTP, backends())}`);
    put(dir, 'nplocal.yaml', `${service('nplocal', '10.96.2.61', [{ ...HTTP[0]!, nodePort: 30081 }], ['type: NodePort', 'externalTrafficPolicy: Local'])}---\n` +
      slice('nplocal', HTTP, backends().filter((b) => b.node === 'node1')));
    // node1 asks for bpf with a --bpf-fs that is not on bpffs: it must fall back to nftables.
    const common = ['--cluster-cidr', '10.244.0.0/16,fd00:244::/32', '--min-sync-period', '0s'];
    proxies = [
      LabProxy.start(lab, lab.node('node1'), { manifests: dir, args: [...common, '--proxy-mode', 'bpf', '--bpf-fs', join(dir, 'not-bpffs')] }),
      LabProxy.start(lab, lab.node('node2'), { manifests: dir, args: [...common, '--proxy-mode', 'nftables', '--no-fallback'] }),
    ];
    await Promise.all(proxies.map((p) => p.waitSynced()));
  });

  afterAll(async () => {
    for (const p of proxies) await p.stop().catch(() => undefined);
    await lab?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('runs in nftables mode, asked for or as the fallback from bpf; its table is in the node, nothing is attached to the node cgroup', async () => {
    const started = proxies[1]!.logs.find((l) => l.msg === 'dataplane: nftables');
    expect(started).toMatchObject({ mode: 'nftables', reason: '--proxy-mode nftables' });
    const fellBack = proxies[0]!.logs.find((l) => l.msg === 'dataplane: nftables');
    expect(String(fellBack?.reason)).toMatch(/^fallback: the bpf dataplane cannot run here: --bpf-fs .*not-bpffs/);
    expect(proxies[0]!.logs.filter((l) => /falling back to nftables$/.test(l.msg))).toHaveLength(1);
    expect(execFileSync('bpftool', ['cgroup', 'show', lab.node('node1').cgroup], { encoding: 'utf8' }).trim()).toBe('');
    const rules = await lab.exec(lab.node('node2').netns, ['nft', 'list', 'map', 'ip', 'bpfproxy', 'service-ips']);
    expect(rules.stdout).toContain('10.96.2.10 . tcp . 80 : goto service-');
    expect(execFileSync('bpftool', ['cgroup', 'show', lab.node('node2').cgroup], { encoding: 'utf8' }).trim()).toBe('');
  });

  it('spreads TCP connections over every backend; the client sees the ClusterIP, the backend sees the client', async () => {
    const results = await lab.client(client(), { proto: 'tcp', host: '10.96.2.10', port: 80, count: 60, timeoutMs: 2000 });
    expect(pods(results)).toEqual(new Set(['a1', 'a2', 'b1']));
    for (const r of results) {
      if (!r.ok) continue;
      expect(r.peer).toBe('10.96.2.10:80');
      expect(r.client.split(':')[0]).toBe(client().ipv4); // a pod of the cluster CIDR: not masqueraded
    }
  });

  it('spreads UDP, connected and unconnected, over every backend and answers from the ClusterIP', async () => {
    for (const proto of ['udp', 'udp-connected'] as const) {
      const results = await lab.client(client(), { proto, host: '10.96.2.53', port: 53, count: 60, timeoutMs: 2000 });
      expect(pods(results), proto).toEqual(new Set(['a1', 'a2', 'b1']));
      for (const r of results) if (r.ok) expect(r.peer, proto).toBe('10.96.2.53:53');
    }
  });

  it('serves an IPv6 ClusterIP from the ip6 table', async () => {
    const results = await lab.client(client(), { proto: 'tcp', host: 'fd00:96::210', port: 80, count: 40, timeoutMs: 2000 });
    expect(pods(results)).toEqual(new Set(['a1', 'a2', 'b1']));
    for (const r of results) if (r.ok) expect(r.peer).toBe('[fd00:96::210]:80');
  });

  it('refuses a connection to a service without endpoints at once', async () => {
    for (const proto of ['tcp', 'udp-connected'] as const) {
      const port = proto === 'tcp' ? 80 : 53;
      const results = await lab.client(client(), { proto, host: '10.96.2.99', port, count: 3, timeoutMs: 2000 });
      for (const r of results) {
        expect(r.ok, proto).toBe(false);
        if (!r.ok) {
          expect(r.error, proto).toBe('ECONNREFUSED');
          expect(r.ms, proto).toBeLessThan(1000);
        }
      }
    }
  });

  it('NodePort from outside the cluster: every endpoint, masqueraded (externalTrafficPolicy Cluster)', async () => {
    const node1 = lab.node('node1');
    const results = await lab.client('external', { proto: 'tcp', host: node1.ipv4, port: 30080, count: 60, timeoutMs: 2000 });
    expect(pods(results)).toEqual(new Set(['a1', 'a2', 'b1']));
    for (const r of results) {
      if (!r.ok) continue;
      expect(r.peer).toBe(`${node1.ipv4}:30080`);
      // The backend sees node1 (its wire or bridge address), so its reply comes back through node1.
      expect([node1.ipv4, node1.gatewayV4]).toContain(r.client.split(':')[0]);
    }
  });

  it('NodePort with externalTrafficPolicy Local: local endpoints with the client address kept, dropped on a node without any', async () => {
    const ext = lab.external!.ipv4;
    const onNode1 = await lab.client('external', { proto: 'tcp', host: lab.node('node1').ipv4, port: 30081, count: 30, timeoutMs: 2000 });
    expect(pods(onNode1)).toEqual(new Set(['a1', 'a2']));
    for (const r of onNode1) if (r.ok) expect(r.client.split(':')[0]).toBe(ext);
    const onNode2 = await lab.client('external', { proto: 'tcp', host: lab.node('node2').ipv4, port: 30081, count: 1, timeoutMs: 700 });
    expect(onNode2[0]).toMatchObject({ ok: false, error: 'ETIMEDOUT' });
  });

  it('sends no new connection to an endpoint once the sync that removed it is done', async () => {
    const before = await lab.client(client(), { proto: 'tcp', host: '10.96.2.20', port: 80, count: 40, timeoutMs: 2000 });
    expect(pods(before)).toContain('b1');
    const marks = proxies.map((p) => p.logs.length);
    put(dir, 'shrink.yaml', `${service('shrink', '10.96.2.20', HTTP)}---\n${slice('shrink', HTTP, backends().filter((b) => b.node === 'node1'))}`);
    const synced = await Promise.all(proxies.map((p, i) => p.waitSynced(marks[i])));
    // A partial sync: only the changed service's chains and elements were written.
    expect(synced[1]).toMatchObject({ full: false, changed: 1 });
    const after = await lab.client(client(), { proto: 'tcp', host: '10.96.2.20', port: 80, count: 60, timeoutMs: 2000 });
    expect(pods(after)).toEqual(new Set(['a1', 'a2']));
  });

  it('keeps serving after the proxy stops; bpfproxy cleanup removes both tables', async () => {
    const node2 = proxies[1]!;
    expect(await node2.stop()).toBe(0);
    const still = await lab.client(client(), { proto: 'tcp', host: '10.96.2.10', port: 80, count: 10, timeoutMs: 2000 });
    expect([...pods(still)].every((p) => ['a1', 'a2', 'b1'].includes(p))).toBe(true);
    await lab.exec(node2.node.netns, [process.execPath, join(PACKAGE_ROOT, 'bin', 'bpfproxy'), 'cleanup', '--bpf-fs', node2.node.bpffs]);
    const tables = await lab.exec(node2.node.netns, ['nft', 'list', 'tables']);
    expect(tables.stdout).not.toContain('bpfproxy');
  });
});
