// ClusterIP end to end: the real bpfproxy binary runs in each node of a lab
// cluster, reads a manifest directory, and pods reach services through it.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, type Lab } from '../../src/lab/lab.js';
import { LabProxy } from '../../src/lab/proxy.js';
import { PACKAGE_ROOT } from '../../src/util/paths.js';
import { expectRefusedAtOnce, expectUdpSpread } from '../helpers/lab-checks.js';
import { endpointPods, TWO_NODES } from '../helpers/lab-cluster.js';
import { DNS, HTTP, pods, put, service, slice } from '../helpers/lab-manifests.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('ClusterIP lab tests skipped: they build network namespaces and attach BPF programs, which needs root');

describe.skipIf(!isRoot)('ClusterIP through bpfproxy in a lab cluster', () => {
  let lab: Lab;
  let dir: string;
  let proxies: LabProxy[] = [];
  const backends = () => endpointPods(lab);

  beforeAll(async () => {
    lab = await createLab({
      nodes: TWO_NODES,
      ipv6: true,
    });
    dir = mkdtempSync(join(tmpdir(), 'bpfproxy-lab-manifests-'));
    put(dir, 'web.yaml', `${service('web', '10.96.1.10', HTTP)}---\n${slice('web', HTTP, backends())}`);
    put(dir, 'dns.yaml', `${service('dns', '10.96.1.53', DNS)}---\n${slice('dns', DNS, backends())}`);
    put(dir, 'empty.yaml', `${service('empty', '10.96.1.99', [...HTTP, ...DNS])}---\n${slice('empty', [...HTTP, ...DNS], [])}`);
    put(dir, 'shrink.yaml', `${service('shrink', '10.96.1.20', HTTP)}---\n${slice('shrink', HTTP, backends())}`);
    put(dir, 'sticky.yaml', `${service('sticky', '10.96.1.30', HTTP)}  sessionAffinity: ClientIP\n---\n${slice('sticky', HTTP, backends())}`);
    put(dir, 'local.yaml', `${service('local', '10.96.1.50', HTTP)}  internalTrafficPolicy: Local\n---\n${slice('local', HTTP, backends().filter((b) => b.node === 'node1'))}`);
    put(dir, 'np.yaml', `apiVersion: v1
kind: Service
metadata: {name: np, namespace: lab}
spec:
  type: NodePort
  externalTrafficPolicy: Local
  clusterIP: 10.96.1.60
  ports: [{name: http, port: 80, targetPort: 80, nodePort: 30080, protocol: TCP}]
---
${slice('np', HTTP, backends())}`);
    put(dir, 'lb.yaml', `apiVersion: v1
kind: Service
metadata: {name: lb, namespace: lab}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  healthCheckNodePort: 32100
  clusterIP: 10.96.1.70
  ports: [{name: http, port: 80, targetPort: 80, nodePort: 30100, protocol: TCP}]
status:
  loadBalancer: {ingress: [{ip: 192.0.2.70}]}
---
${slice('lb', HTTP, backends().filter((b) => b.node === 'node1'))}`);
    const v6 = endpointPods(lab, 'IPv6');
    put(dir, 'dual.yaml', `apiVersion: v1
kind: Service
metadata: {name: dual, namespace: lab}
spec:
  ipFamilyPolicy: RequireDualStack
  ipFamilies: [IPv6, IPv4]
  clusterIPs: [fd00:96::40, 10.96.1.40]
  ports: [{name: http, port: 80, protocol: TCP}, {name: dns, port: 53, protocol: UDP}]
---
${slice('dual', [...HTTP, ...DNS], backends())}---
${slice('dual', [...HTTP, ...DNS], v6, 'IPv6')}`);
    proxies = lab.nodes.map((n) => LabProxy.start(lab, n, { manifests: dir }));
    await Promise.all(proxies.map((p) => p.waitSynced()));
  });

  afterAll(async () => {
    for (const p of proxies) await p.stop().catch(() => undefined);
    await lab?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const client = () => lab.pod('client');

  it('spreads TCP connections over every backend; the client sees the ClusterIP, the backend sees the client', async () => {
    const results = await lab.client(client(), { proto: 'tcp', host: '10.96.1.10', port: 80, count: 60, timeoutMs: 2000 });
    expect(pods(results)).toEqual(new Set(['a1', 'a2', 'b1']));
    for (const r of results) {
      expect(r.ok).toBe(true);
      if (!r.ok) continue;
      expect(r.peer).toBe('10.96.1.10:80');
      expect(r.client.split(':')[0]).toBe(client().ipv4); // no SNAT: the pod's own address
    }
  });

  it('spreads UDP, connected and unconnected, over every backend and answers from the ClusterIP', async () => {
    await expectUdpSpread(lab, client(), '10.96.1.53', ['a1', 'a2', 'b1']);
  });

  it('serves IPv6 and dual-stack services from the same socket hooks', async () => {
    const c = client();
    for (const host of ['fd00:96::40', '10.96.1.40']) {
      const tcp = await lab.client(c, { proto: 'tcp', host, port: 80, count: 40, timeoutMs: 2000 });
      expect(pods(tcp), host).toEqual(new Set(['a1', 'a2', 'b1']));
      const own = host.includes(':') ? c.ipv6! : c.ipv4;
      for (const r of tcp) if (r.ok) {
        expect(r.peer, host).toBe(host.includes(':') ? `[${host}]:80` : `${host}:80`);
        expect(r.client.replace(/^\[?(.*?)\]?:\d+$/, '$1'), host).toBe(own);
      }
      const udp = await lab.client(c, { proto: 'udp', host, port: 53, count: 30, timeoutMs: 2000 });
      expect(pods(udp), host).toEqual(new Set(['a1', 'a2', 'b1']));
    }
  });

  it('keeps a client on one backend with sessionAffinity: ClientIP', async () => {
    const a = await lab.client(client(), { proto: 'tcp', host: '10.96.1.30', port: 80, count: 30, timeoutMs: 2000 });
    expect(pods(a).size).toBe(1);
    // Another pod (another network namespace) is another client.
    const others = new Set<string>();
    for (const from of ['a1', 'a2', 'b1'] as const) {
      const r = await lab.client(lab.pod(from), { proto: 'tcp', host: '10.96.1.30', port: 80, count: 10, timeoutMs: 2000 });
      expect(pods(r).size, from).toBe(1);
      others.add([...pods(r)][0]!);
    }
    expect([...others].every((p) => ['a1', 'a2', 'b1'].includes(p))).toBe(true);
  });

  it('internalTrafficPolicy Local: local endpoints only, and an immediate failure where there are none', async () => {
    const onNode1 = await lab.client(lab.pod('a1'), { proto: 'tcp', host: '10.96.1.50', port: 80, count: 30, timeoutMs: 2000 });
    expect(pods(onNode1)).toEqual(new Set(['a1', 'a2']));
    // node2 has no endpoint of it: kube-proxy drops; a socket hook fails the connect at once instead of letting it hang.
    const onNode2 = await lab.client(client(), { proto: 'tcp', host: '10.96.1.50', port: 80, count: 2, timeoutMs: 2000 });
    for (const r of onNode2) {
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.error).toBe('EHOSTUNREACH');
        expect(r.ms).toBeLessThan(1000);
      }
    }
  });

  it('NodePort on its own node, reached from a pod, goes to every endpoint whatever the external policy', async () => {
    // kube-proxy short-circuits pod -> external frontend traffic to the Cluster-policy
    // endpoints even with externalTrafficPolicy: Local; the socket hook does the same.
    // (Another node's NodePort arrives there as packets: that is the XDP/TC datapath's job, not built yet.)
    const node2 = lab.node('node2').ipv4;
    const results = await lab.client(client(), { proto: 'tcp', host: node2, port: 30080, count: 40, timeoutMs: 2000 });
    expect(pods(results)).toEqual(new Set(['a1', 'a2', 'b1']));
    for (const r of results) if (r.ok) expect(r.peer).toBe(`${node2}:30080`);
  });

  it('answers load balancer health checks on healthCheckNodePort like kube-proxy: 200 with local endpoints, 503 without', async () => {
    const probe = async (node: 'node1' | 'node2') => {
      const n = lab.node(node);
      const r = await lab.exec(n.netns, ['curl', '-s', '-o', '-', '-w', '\n%{http_code}', `http://${n.ipv4}:32100/`], { timeoutMs: 5000 });
      const cut = r.stdout.lastIndexOf('\n');
      return { status: Number(r.stdout.slice(cut + 1)), body: JSON.parse(r.stdout.slice(0, cut)) as unknown };
    };
    expect(await probe('node1')).toEqual({ status: 200, body: { service: { namespace: 'lab', name: 'lb' }, localEndpoints: 2, serviceProxyHealthy: true } });
    expect(await probe('node2')).toEqual({ status: 503, body: { service: { namespace: 'lab', name: 'lb' }, localEndpoints: 0, serviceProxyHealthy: true } });
  });

  it('refuses a connection to a service without endpoints at once', async () => {
    await expectRefusedAtOnce(lab, client(), '10.96.1.99');
  });

  it('sends no new connection to an endpoint one second after it was removed', async () => {
    const before = await lab.client(client(), { proto: 'tcp', host: '10.96.1.20', port: 80, count: 40, timeoutMs: 2000 });
    expect(pods(before)).toContain('b1');
    const marks = proxies.map((p) => p.logs.length);
    put(dir, 'shrink.yaml', `${service('shrink', '10.96.1.20', HTTP)}---\n${slice('shrink', HTTP, backends().filter((b) => b.node === 'node1'))}`);
    await Promise.all(proxies.map((p, i) => p.waitSynced(marks[i])));
    await new Promise((r) => setTimeout(r, 1000));
    const after = await lab.client(client(), { proto: 'tcp', host: '10.96.1.20', port: 80, count: 60, timeoutMs: 2000 });
    expect(pods(after)).toEqual(new Set(['a1', 'a2']));
  });

  it('keeps the last good version of a service whose new version is bad, and logs the rejection once', async () => {
    const node2 = proxies[1]!;
    const mark = node2.logs.length;
    put(dir, 'broken.yaml', 'apiVersion: v1\nkind: Service\nmetadata: {name: oops\n  namespace: lab\n');
    put(dir, 'web.yaml', `${service('web', '10.96.1.10', [{ name: 'http', port: 70000, protocol: 'TCP' }])}---\n${slice('web', HTTP, backends())}`);
    const rejected = await node2.waitFor((l) => l.msg.startsWith('rejected') && l.object === 'lab/web', 10_000, mark);
    expect(String(rejected.reason)).toContain('spec.ports[0].port');
    expect(String(rejected.reason)).toContain('70000');
    expect(String(rejected.origin)).toContain(join(dir, 'web.yaml'));
    expect(rejected.keptPrevious).toBe(true);
    const unreadable = await node2.waitFor((l) => l.msg === 'ignoring what could not be read', 10_000, mark);
    expect(String(unreadable.origin)).toContain('broken.yaml');

    // The last good version still serves, and so does everything else.
    const web = await lab.client(client(), { proto: 'tcp', host: '10.96.1.10', port: 80, count: 30, timeoutMs: 2000 });
    expect(pods(web)).toEqual(new Set(['a1', 'a2', 'b1']));
    const dns = await lab.client(client(), { proto: 'udp', host: '10.96.1.53', port: 53, count: 10, timeoutMs: 2000 });
    expect([...pods(dns)].every((p) => !p.startsWith('error'))).toBe(true);

    // An unrelated change makes the proxy sync and the manifest source rescan: no second log line.
    const mark2 = node2.logs.length;
    put(dir, 'dns.yaml', `${service('dns', '10.96.1.53', DNS)}---\n${slice('dns', DNS, backends().slice(0, 2))}`);
    await node2.waitSynced(mark2);
    await new Promise((r) => setTimeout(r, 2500)); // longer than a periodic rescan of the directory
    const count = (pred: (l: { msg: string; [k: string]: unknown }) => boolean) => node2.logs.slice(mark).filter(pred).length;
    expect(count((l) => l.msg.startsWith('rejected') && l.object === 'lab/web')).toBe(1);
    expect(count((l) => l.msg === 'ignoring what could not be read')).toBe(1);

    put(dir, 'web.yaml', `${service('web', '10.96.1.10', HTTP)}---\n${slice('web', HTTP, backends())}`);
    rmSync(join(dir, 'broken.yaml'));
  });

  it('serves /healthz and kube-proxy metrics, with the datapath counters', async () => {
    const healthz = await proxies[0]!.http('/healthz', 'healthz');
    expect(healthz.status).toBe(200);
    expect(JSON.parse(healthz.body)).toMatchObject({ nodeEligible: true });
    const metrics = await proxies[1]!.http('/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain('kubeproxy_sync_proxy_rules_duration_seconds_bucket');
    expect(metrics.body).toContain('kubeproxy_network_programming_duration_seconds_bucket');
    const xlate = /bpfproxy_datapath_events_total\{event="sock_xlate"\} (\d+)/.exec(metrics.body);
    expect(Number(xlate?.[1])).toBeGreaterThan(0);
  });

  it('keeps an open connection working across a proxy restart, and refuses no new one meanwhile', async () => {
    const node2 = proxies[1]!;
    const conn = await lab.openConnection(client(), '10.96.1.10', 80);
    try {
      expect(await conn.send('before')).toMatch(/^(a1|a2|b1) before$/);
      // New connections all through the restart: stop, start, sync.
      const during = lab.client(client(), { proto: 'tcp', host: '10.96.1.10', port: 80, count: 150, timeoutMs: 2000 });
      expect(await node2.stop()).toBe(0);
      expect(await conn.send('while stopped')).toMatch(/ while stopped$/);
      const restarted = LabProxy.start(lab, node2.node, { manifests: dir });
      proxies[1] = restarted;
      const synced = await restarted.waitSynced();
      // It converged on what the first run left: nothing was flushed or rewritten.
      expect(synced).toMatchObject({ full: true, upserts: 0, deletes: 0 });
      await restarted.waitFor((l) => l.msg.startsWith('found the datapath of an earlier run'));
      expect(await conn.send('after')).toMatch(/ after$/);
      const results = await during;
      expect(results.filter((r) => !r.ok)).toEqual([]);
    } finally {
      conn.close();
    }
  });

  it('bpfproxy cleanup removes every pin and detaches every program', async () => {
    const node1 = proxies[0]!;
    expect(await node1.stop()).toBe(0);
    const before = execFileSync('bpftool', ['cgroup', 'show', node1.node.cgroup], { encoding: 'utf8' });
    expect(before).toContain('bpx_connect4');
    execFileSync(process.execPath, [join(PACKAGE_ROOT, 'bin', 'bpfproxy'), 'cleanup', '--bpf-fs', node1.node.bpffs], { stdio: 'pipe' });
    expect(existsSync(node1.node.bpffs) ? readdirSync(node1.node.bpffs) : []).toEqual([]);
    expect(execFileSync('bpftool', ['cgroup', 'show', node1.node.cgroup], { encoding: 'utf8' }).trim()).toBe('');
    // node1 no longer translates: its pods' connections to the ClusterIP go nowhere.
    const results = await lab.client(lab.pod('a1'), { proto: 'tcp', host: '10.96.1.10', port: 80, count: 1, timeoutMs: 500 });
    expect(results[0]!.ok).toBe(false);
  });
});
