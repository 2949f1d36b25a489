// LoadBalancer ingress IPs and externalIPs from outside, through XDP, and
// loadBalancerSourceRanges: two lab nodes running the real bpfproxy with
// --devices eth0, the external client with a second address on the wire (two
// clients: 172.18.0.100 inside the service's range, 172.18.0.101 outside),
// and routes on the client sending the LoadBalancer IP to node1 and the
// external IP to node2, as a router in front of the cluster would, and the
// service CIDR to node1 (ClusterIPs routed to a node from elsewhere). All
// addresses stay in lab namespaces; 192.0.2.0/24 is TEST-NET-1.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, type Lab } from '../../src/lab/lab.js';
import { LabProxy } from '../../src/lab/proxy.js';
import { put, slice, type PortSpec } from '../helpers/lab-manifests.js';
import { prepareXdpLab, udpFromPorts } from './xdp-lab.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('LoadBalancer XDP lab tests skipped: they build network namespaces and attach XDP programs, which needs root');

const LB_IP = '192.0.2.10';
const EXTERNAL_IP = '192.0.2.20';
const EMPTY_LB_IP = '192.0.2.11';
const INSIDE = '172.18.0.100';
const OUTSIDE = '172.18.0.101';
const PORTS: PortSpec[] = [{ name: 'dns', port: 53, protocol: 'UDP', nodePort: 30055 }];
const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

const lbService = `apiVersion: v1
kind: Service
metadata: {name: lb, namespace: lab}
spec:
  type: LoadBalancer
  clusterIP: 10.96.2.55
  externalIPs: [${EXTERNAL_IP}]
  loadBalancerSourceRanges: [${INSIDE}/32]
  ports:
  - {name: dns, port: 53, targetPort: 53, protocol: UDP, nodePort: 30055}
status:
  loadBalancer:
    ingress: [{ip: ${LB_IP}}]
`;

// ClusterIP-only services, reached through the client's route for the service CIDR via node1.
const WEB_IP = '10.96.2.60';
const LOCAL_IP = '10.96.2.61';
const HTTP: PortSpec[] = [{ name: 'http', port: 80, protocol: 'TCP' }];
const clusterIPService = (name: string, ip: string, extra = '') => `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: lab}
spec:
  clusterIP: ${ip}
${extra}  ports:
  - {name: http, port: 80, targetPort: 80, protocol: TCP}
`;

const EMPTY_PORTS: PortSpec[] = [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30056 }, { name: 'dns', port: 53, protocol: 'UDP', nodePort: 30057 }];
const emptyService = `apiVersion: v1
kind: Service
metadata: {name: empty, namespace: lab}
spec:
  type: LoadBalancer
  clusterIP: 10.96.2.56
  ports:
  - {name: http, port: 80, targetPort: 80, protocol: TCP, nodePort: 30056}
  - {name: dns, port: 53, targetPort: 53, protocol: UDP, nodePort: 30057}
status:
  loadBalancer:
    ingress: [{ip: ${EMPTY_LB_IP}}]
`;

describe.skipIf(!isRoot)('LoadBalancer IPs, externalIPs and loadBalancerSourceRanges at XDP (bpfproxy --devices eth0 on two nodes)', () => {
  let lab: Lab;
  let dir: string;
  let proxies: LabProxy[] = [];

  beforeAll(async () => {
    lab = await createLab({ nodes: [{ name: 'node1', pods: [{ name: 'a1' }] }, { name: 'node2', pods: [{ name: 'b1' }] }], external: true });
    const ext = lab.external!.netns;
    await prepareXdpLab(lab, [ext, lab.pod('a1').netns, lab.pod('b1').netns]);
    for (const cmd of [
      ['ip', 'addr', 'add', `${OUTSIDE}/24`, 'dev', 'eth0'],
      ['ip', 'route', 'add', `${LB_IP}/32`, 'via', lab.nodes[0]!.ipv4],
      ['ip', 'route', 'add', `${EXTERNAL_IP}/32`, 'via', lab.nodes[1]!.ipv4],
      ['ip', 'route', 'add', `${EMPTY_LB_IP}/32`, 'via', lab.nodes[0]!.ipv4],
      ['ip', 'route', 'add', '10.96.0.0/16', 'via', lab.nodes[0]!.ipv4],
    ]) {
      const r = await lab.exec(ext, cmd);
      if (r.code !== 0) throw new Error(`${cmd.join(' ')}: ${r.stderr}`);
    }
    dir = mkdtempSync(join(tmpdir(), 'bpfproxy-lab-lb-'));
    const eps = [{ ip: lab.pod('a1').ipv4, node: 'node1' }, { ip: lab.pod('b1').ipv4, node: 'node2' }];
    put(dir, 'lb.yaml', `${lbService}---\n${slice('lb', PORTS, eps)}`);
    put(dir, 'empty.yaml', `${emptyService}---\n${slice('empty', EMPTY_PORTS, [])}`);
    put(dir, 'web.yaml', `${clusterIPService('web', WEB_IP)}---\n${slice('web', HTTP, eps)}`);
    // internalTrafficPolicy Local, its one endpoint on node2: nothing for node1 to serve.
    put(dir, 'local.yaml', `${clusterIPService('local', LOCAL_IP, '  internalTrafficPolicy: Local\n')}---\n${slice('local', HTTP, [eps[1]!])}`);
    proxies = lab.nodes.map((n) => LabProxy.start(lab, n, { manifests: dir, args: ['--devices', 'eth0'] }));
    await Promise.all(proxies.map((p) => p.waitSynced(0, 45_000)));
  });

  afterAll(async () => {
    await Promise.all(proxies.map((p) => p.stop()));
    await lab?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('runs the bpf mode with XDP on eth0', async () => {
    for (const p of proxies) expect((await p.http('/proxyMode')).body.trim()).toBe('bpf');
  });

  it('the LoadBalancer IP routed to node1 is served at XDP to a client inside the source range, on backends of both nodes', async () => {
    const rs = await udpFromPorts(lab, lab.external!.netns, LB_IP, 53, range(45000, 16), 1000, INSIDE);
    expect(new Set(rs)).toEqual(new Set(['a1', 'b1']));
    const m = (await proxies[0]!.http('/metrics')).body;
    expect(m).toMatch(/bpfproxy_datapath_events_total\{event="pkt_remote_new"\} [1-9]/);
  });

  it('a client outside the source range gets nothing from the LoadBalancer IP, counted as source_range on node1', async () => {
    const before = dropCount((await proxies[0]!.http('/metrics')).body);
    const rs = await udpFromPorts(lab, lab.external!.netns, LB_IP, 53, range(45100, 4), 500, OUTSIDE);
    expect(rs).toEqual([null, null, null, null]);
    // Two tries per port, each dropped at XDP.
    expect(dropCount((await proxies[0]!.http('/metrics')).body) - before).toBe(8);
    // The same client is served by the same service's other frontends (kube-proxy filters LoadBalancer IPs only).
    expect(await udpFromPorts(lab, lab.external!.netns, lab.nodes[0]!.ipv4, 30055, [45200], 1000, OUTSIDE)).not.toContain(null);
  });

  it('the external IP routed to node2 is served at XDP (no source ranges on it)', async () => {
    const inside = await udpFromPorts(lab, lab.external!.netns, EXTERNAL_IP, 53, range(45300, 12), 1000, INSIDE);
    const outside = await udpFromPorts(lab, lab.external!.netns, EXTERNAL_IP, 53, range(45400, 12), 1000, OUTSIDE);
    expect(new Set(inside)).toEqual(new Set(['a1', 'b1']));
    expect(outside).not.toContain(null);
    const m = (await proxies[1]!.http('/metrics')).body;
    expect(m).toMatch(/bpfproxy_datapath_events_total\{event="pkt_local_new"\} [1-9]/);
  });

  it('a LoadBalancer IP without endpoints refuses at once, generated at XDP (the node does not own the address, so no stack would): TCP RST, ICMP port unreachable', async () => {
    const tcp = await lab.client('external', { proto: 'tcp', host: EMPTY_LB_IP, port: 80, count: 2, timeoutMs: 3000 });
    const udp = await lab.client('external', { proto: 'udp-connected', host: EMPTY_LB_IP, port: 53, count: 2, timeoutMs: 3000 });
    expect(tcp.map((r) => (r.ok ? 'ok' : r.error))).toEqual(['ECONNREFUSED', 'ECONNREFUSED']);
    expect(udp.map((r) => (r.ok ? 'ok' : r.error))).toEqual(['ECONNREFUSED', 'ECONNREFUSED']);
    console.log(`refusals from ${EMPTY_LB_IP}: TCP in ${tcp.map((r) => r.ms).join(', ')} ms, UDP in ${udp.map((r) => r.ms).join(', ')} ms`);
    expect((await proxies[0]!.http('/metrics')).body).toMatch(/bpfproxy_datapath_events_total\{event="pkt_refused_no_endpoints"\} [4-9]/);
  });

  it('a ClusterIP routed to node1 from outside is served at XDP: backends on both nodes, the remote one SNATed, replies from the ClusterIP and port (TCP)', async () => {
    const rs = await lab.client('external', { proto: 'tcp', host: WEB_IP, port: 80, count: 24, timeoutMs: 3000 });
    expect(rs.filter((r) => !r.ok)).toEqual([]);
    const ok = rs.flatMap((r) => (r.ok ? [r] : []));
    expect(new Set(ok.map((r) => r.pod))).toEqual(new Set(['a1', 'b1']));
    expect(new Set(ok.map((r) => r.peer))).toEqual(new Set([`${WEB_IP}:80`]));
    // a1 (node1's) sees the client; b1 (node2's) sees node1, which SNATed the flow.
    for (const r of ok) expect(r.client.split(':')[0], r.pod).toBe(r.pod === 'a1' ? INSIDE : lab.nodes[0]!.ipv4);
  });

  it('the LoadBalancer service\'s ClusterIP routed to node1 answers UDP from the ClusterIP and port', async () => {
    const rs = await lab.client('external', { proto: 'udp', host: '10.96.2.55', port: 53, count: 16, timeoutMs: 2000 });
    const ok = rs.flatMap((r) => (r.ok ? [r] : []));
    expect(ok.length).toBe(16);
    expect(new Set(ok.map((r) => r.pod))).toEqual(new Set(['a1', 'b1']));
    expect(new Set(ok.map((r) => r.peer))).toEqual(new Set(['10.96.2.55:53']));
  });

  it('internalTrafficPolicy Local on a node without a local endpoint: dropped at XDP (the client times out), as kube-proxy drops', async () => {
    const before = dropCountOf((await proxies[0]!.http('/metrics')).body, 'no_local_backend');
    const rs = await lab.client('external', { proto: 'tcp', host: LOCAL_IP, port: 80, count: 1, timeoutMs: 1500 });
    expect(rs.map((r) => (r.ok ? r.pod : r.error))).toEqual(['ETIMEDOUT']);
    expect(dropCountOf((await proxies[0]!.http('/metrics')).body, 'no_local_backend')).toBeGreaterThan(before);
  });
});

function dropCountOf(metrics: string, reason: string): number {
  const m = new RegExp(`bpfproxy_datapath_drops_total\\{reason="${reason}"\\} (\\d+)`).exec(metrics);
  return m ? Number(m[1]) : 0;
}

function dropCount(metrics: string): number {
  const m = /bpfproxy_datapath_drops_total\{reason="source_range"\} (\d+)/.exec(metrics);
  return m ? Number(m[1]) : 0;
}
