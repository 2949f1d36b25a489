// IPv6 NodePort from outside the node through the XDP/TC datapath: the lab
// with IPv6 on the wire, nodes and pods (DAD off, as topology.ts sets up),
// the real bpfproxy with --devices eth0 on two nodes, IPv6 single-stack
// NodePort services, and the external client connecting to each node's
// IPv6 address over TCP and UDP. The IPv4 twin is nodeport-xdp.test.ts;
// the lab stands in for real NICs as src/lab/xdp.ts describes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClientResult } from '../../src/lab/client.js';
import { createLab, type Lab } from '../../src/lab/lab.js';
import { LabProxy } from '../../src/lab/proxy.js';
import { pods, put, service, slice, type PortSpec } from '../helpers/lab-manifests.js';
import { prepareXdpLab } from './xdp-lab.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('IPv6 NodePort XDP lab tests skipped: they build network namespaces and attach XDP programs, which needs root');

const WEB: PortSpec[] = [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30080 }];
const DNS: PortSpec[] = [{ name: 'dns', port: 53, protocol: 'UDP', nodePort: 30053 }];
const LOCAL: PortSpec[] = [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30081 }];
const NONE: PortSpec[] = [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30082 }, { name: 'dns', port: 53, protocol: 'UDP', nodePort: 30083 }];
const V6 = ['type: NodePort', 'ipFamilies: [IPv6]'];

/** "[fd00:18::100]:40000" -> "fd00:18::100" */
const hostOf = (hostPort: string) => hostPort.replace(/^\[(.*)\]:\d+$/, '$1');
const okPeers = (rs: ClientResult[]) => new Set(rs.map((r) => (r.ok ? r.peer : `error:${r.error}`)));
const clientsSeen = (rs: ClientResult[], pod: string) => new Set(rs.filter((r) => r.ok && r.pod === pod).map((r) => (r.ok ? hostOf(r.client) : '')));

describe.skipIf(!isRoot)('IPv6 NodePort from an external client through XDP and TC (bpfproxy --devices eth0 on two nodes)', () => {
  let lab: Lab;
  let dir: string;
  let proxies: LabProxy[] = [];
  const node = (i: number) => lab.nodes[i]!.ipv6!;
  /** Node i's count of flows refused at XDP. */
  const refused = async (i: number) => Number(/bpfproxy_datapath_events_total\{event="pkt_refused_no_endpoints"\} (\d+)/.exec((await proxies[i]!.http('/metrics')).body)?.[1] ?? 0);

  beforeAll(async () => {
    lab = await createLab({ nodes: [{ name: 'node1', pods: [{ name: 'a1' }] }, { name: 'node2', pods: [{ name: 'b1' }] }], external: true, ipv6: true });
    await prepareXdpLab(lab, [lab.external!.netns, lab.pod('a1').netns, lab.pod('b1').netns]);
    const eps = [{ ip: lab.pod('a1').ipv6!, node: 'node1' }, { ip: lab.pod('b1').ipv6!, node: 'node2' }];
    dir = mkdtempSync(join(tmpdir(), 'bpfproxy-lab-np6-'));
    put(dir, 'web.yaml', `${service('web', 'fd00:96::2:10', WEB, V6)}---\n${slice('web', WEB, eps, 'IPv6')}`);
    put(dir, 'dns.yaml', `${service('dns', 'fd00:96::2:53', DNS, V6)}---\n${slice('dns', DNS, eps, 'IPv6')}`);
    put(dir, 'local.yaml', `${service('local', 'fd00:96::2:20', LOCAL, [...V6, 'externalTrafficPolicy: Local'])}---\n${slice('local', LOCAL, eps.filter((e) => e.node === 'node1'), 'IPv6')}`);
    put(dir, 'none.yaml', `${service('none', 'fd00:96::2:30', NONE, V6)}---\n${slice('none', NONE, [], 'IPv6')}`);
    proxies = lab.nodes.map((n) => LabProxy.start(lab, n, { manifests: dir, args: ['--devices', 'eth0'] }));
    await Promise.all(proxies.map((p) => p.waitSynced(0, 45_000)));
  });

  afterAll(async () => {
    await Promise.all(proxies.map((p) => p.stop()));
    await lab?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('TCP to node1\'s IPv6 NodePort reaches the remote backend, which sees node1\'s IPv6 address; replies come from the address and port the client used', async () => {
    const rs = await lab.client('external', { proto: 'tcp', host: node(0), port: 30080, count: 12, timeoutMs: 1500 });
    expect(pods(rs)).toContain('b1');
    expect(okPeers(rs)).toEqual(new Set([`[${node(0)}]:30080`]));
    expect(clientsSeen(rs, 'b1')).toEqual(new Set([node(0)]));
  });

  it('TCP to node1\'s IPv6 NodePort also reaches its local backend, which sees the client\'s own IPv6 address', async () => {
    const rs = await lab.client('external', { proto: 'tcp', host: node(0), port: 30080, count: 12, timeoutMs: 1500 });
    expect(pods(rs)).toEqual(new Set(['a1', 'b1']));
    expect(clientsSeen(rs, 'a1')).toEqual(new Set([lab.external!.ipv6!]));
  });

  it('UDP to node1\'s IPv6 NodePort reaches backends on both nodes; replies come from the address and port the client used', async () => {
    const rs = await lab.client('external', { proto: 'udp', host: node(0), port: 30053, count: 24, timeoutMs: 3000 });
    expect(pods(rs)).toEqual(new Set(['a1', 'b1']));
    expect(okPeers(rs)).toEqual(new Set([`[${node(0)}]:30053`]));
    expect(clientsSeen(rs, 'b1')).toEqual(new Set([node(0)]));
    expect(clientsSeen(rs, 'a1')).toEqual(new Set([lab.external!.ipv6!]));
  });

  it('TCP and UDP to node2\'s IPv6 NodePort work the same way', async () => {
    const tcp = await lab.client('external', { proto: 'tcp', host: node(1), port: 30080, count: 12, timeoutMs: 1500 });
    const udp = await lab.client('external', { proto: 'udp', host: node(1), port: 30053, count: 16, timeoutMs: 3000 });
    expect(pods(tcp)).toContain('a1');
    expect(clientsSeen(tcp, 'a1')).toEqual(new Set([node(1)]));
    expect(okPeers(tcp)).toEqual(new Set([`[${node(1)}]:30080`]));
    expect(pods(udp)).toEqual(new Set(['a1', 'b1']));
    expect(okPeers(udp)).toEqual(new Set([`[${node(1)}]:30053`]));
  });

  it('Local policy over IPv6: node1 serves with the client\'s address kept; node2, without a local backend, drops', async () => {
    const served = await lab.client('external', { proto: 'tcp', host: node(0), port: 30081, count: 3, timeoutMs: 1500 });
    expect(pods(served)).toEqual(new Set(['a1']));
    expect(clientsSeen(served, 'a1')).toEqual(new Set([lab.external!.ipv6!]));
    const dropped = await lab.client('external', { proto: 'tcp', host: node(1), port: 30081, count: 1, timeoutMs: 1500 });
    expect(pods(dropped)).toEqual(new Set(['error:ETIMEDOUT']));
  });

  it('no endpoints over IPv6: refused at once, TCP by a RST and connected UDP by an ICMPv6 port unreachable, both sent by XDP', async () => {
    // The kernel would refuse a NodePort on its own address too: the counter shows XDP answered.
    const before = await refused(0);
    const tcp = await lab.client('external', { proto: 'tcp', host: node(0), port: 30082, count: 2, timeoutMs: 3000 });
    expect(pods(tcp)).toEqual(new Set(['error:ECONNREFUSED']));
    expect(tcp.every((r) => r.ms < 1000)).toBe(true);
    const udp = await lab.client('external', { proto: 'udp-connected', host: node(0), port: 30083, count: 2, timeoutMs: 3000 });
    expect(pods(udp)).toEqual(new Set(['error:ECONNREFUSED']));
    expect(udp.every((r) => r.ms < 1000)).toBe(true);
    expect(await refused(0) - before).toBeGreaterThanOrEqual(4);
  });

  it('counts what it did (only IPv6 services here): translated flows, replies, refusals and the Local-policy drop', async () => {
    const m1 = (await proxies[0]!.http('/metrics')).body;
    const m2 = (await proxies[1]!.http('/metrics')).body;
    expect(m1).toMatch(/bpfproxy_datapath_events_total\{event="pkt_remote_new"\} [1-9]/);
    expect(m1).toMatch(/bpfproxy_datapath_events_total\{event="pkt_local_new"\} [1-9]/);
    expect(m1).toMatch(/bpfproxy_datapath_events_total\{event="pkt_reply_rnat"\} [1-9]/);
    expect(m1).toMatch(/bpfproxy_datapath_events_total\{event="tc_reply_rnat"\} [1-9]/);
    expect(m1).toMatch(/bpfproxy_datapath_events_total\{event="pkt_refused_no_endpoints"\} [1-9]/);
    expect(m2).toMatch(/bpfproxy_datapath_drops_total\{reason="no_local_backend"\} [1-9]/);
  });
});
