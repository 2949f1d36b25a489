// NodePort from outside the node through the XDP/TC datapath: two lab nodes,
// each running the real bpfproxy, node1 with --devices eth0 and node2 with
// the default device list (which must come to eth0 alone), pods on both, and the
// lab's external client on the wire connecting to node1's (and node2's)
// NodePorts over TCP and UDP.
// The lab stands in for real NICs as src/lab/xdp.ts describes.
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
if (!isRoot) console.log('NodePort XDP lab tests skipped: they build network namespaces and attach XDP programs, which needs root');

const WEB: PortSpec[] = [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30080 }];
const DNS: PortSpec[] = [{ name: 'dns', port: 53, protocol: 'UDP', nodePort: 30053 }];
const LOCAL: PortSpec[] = [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30081 }];
const NONE: PortSpec[] = [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30082 }];

const okPeers = (rs: ClientResult[]) => new Set(rs.map((r) => (r.ok ? r.peer : `error:${r.error}`)));
const clientsSeen = (rs: ClientResult[], pod: string) => new Set(rs.filter((r) => r.ok && r.pod === pod).map((r) => (r.ok ? r.client.split(':')[0] : '')));

describe.skipIf(!isRoot)('NodePort from an external client through XDP and TC (bpfproxy --devices eth0 on two nodes)', () => {
  let lab: Lab;
  let dir: string;
  let proxies: LabProxy[] = [];

  beforeAll(async () => {
    lab = await createLab({ nodes: [{ name: 'node1', pods: [{ name: 'a1' }] }, { name: 'node2', pods: [{ name: 'b1' }] }], external: true });
    await prepareXdpLab(lab, [lab.external!.netns, lab.pod('a1').netns, lab.pod('b1').netns]);
    const eps = [{ ip: lab.pod('a1').ipv4, node: 'node1' }, { ip: lab.pod('b1').ipv4, node: 'node2' }];
    dir = mkdtempSync(join(tmpdir(), 'bpfproxy-lab-np-'));
    put(dir, 'web.yaml', `${service('web', '10.96.2.10', WEB, ['type: NodePort'])}---\n${slice('web', WEB, eps)}`);
    put(dir, 'dns.yaml', `${service('dns', '10.96.2.53', DNS, ['type: NodePort'])}---\n${slice('dns', DNS, eps)}`);
    put(dir, 'local.yaml', `${service('local', '10.96.2.20', LOCAL, ['type: NodePort', 'externalTrafficPolicy: Local'])}---\n${slice('local', LOCAL, eps.filter((e) => e.node === 'node1'))}`);
    put(dir, 'none.yaml', `${service('none', '10.96.2.30', NONE, ['type: NodePort'])}---\n${slice('none', NONE, [])}`);
    // node2 chooses its own devices, inside its lab namespace: eth0 (br0 is the pod bridge, lo is loopback).
    proxies = lab.nodes.map((n, i) => LabProxy.start(lab, n, i === 0 ? { manifests: dir, args: ['--devices', 'eth0'] } : { manifests: dir, defaultDevices: true }));
    await Promise.all(proxies.map((p) => p.waitSynced(0, 45_000)));
  });

  afterAll(async () => {
    await Promise.all(proxies.map((p) => p.stop()));
    await lab?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('without --devices, the proxy chooses the devices holding the node\'s addresses and logs the list once: eth0, not the pod bridge', () => {
    const chosen = (p: LabProxy) => p.logs.filter((l) => /--devices not given/.test(l.msg));
    expect(chosen(proxies[0]!)).toEqual([]);
    expect(chosen(proxies[1]!).map((l) => l.devices)).toEqual([['eth0']]);
    expect(chosen(proxies[1]!)[0]!.skipped).toEqual([{ device: 'br0', why: expect.stringMatching(/bridge/) }]);
  });

  it('probes the kernel once at start (one log line per proxy), then attaches XDP and TC to eth0 of each node only', async () => {
    for (const p of proxies) expect(p.logs.filter((l) => /kernel probe|lacks what the XDP\/TC datapath needs/.test(l.msg)).map((l) => l.msg)).toEqual(['kernel probe: this kernel has what the XDP/TC datapath needs']);
    for (const n of lab.nodes) {
      const link = (await lab.exec(n.netns, ['ip', '-d', 'link', 'show', 'dev', 'eth0'])).stdout;
      expect(link).toMatch(/prog\/xdp id \d+/);
      const br = (await lab.exec(n.netns, ['ip', '-d', 'link', 'show', 'dev', 'br0'])).stdout;
      expect(br).not.toMatch(/prog\/xdp/);
    }
  });

  it('TCP to node1\'s NodePort reaches the remote backend, SNATed to node1; replies come from the address and port the client used', async () => {
    const node1 = lab.nodes[0]!.ipv4;
    const rs = await lab.client('external', { proto: 'tcp', host: node1, port: 30080, count: 12, timeoutMs: 1500 });
    expect(pods(rs)).toContain('b1');
    expect(new Set(rs.filter((r) => r.ok).map((r) => (r.ok ? r.peer : '')))).toEqual(new Set([`${node1}:30080`]));
    expect(clientsSeen(rs, 'b1')).toEqual(new Set([node1]));
  });

  it('TCP to node1\'s NodePort also reaches its local backend, which sees the client\'s own address', async () => {
    const rs = await lab.client('external', { proto: 'tcp', host: lab.nodes[0]!.ipv4, port: 30080, count: 12, timeoutMs: 1500 });
    expect(pods(rs)).toEqual(new Set(['a1', 'b1']));
    expect(clientsSeen(rs, 'a1')).toEqual(new Set([lab.external!.ipv4]));
  });

  it('UDP to node1\'s NodePort reaches backends on both nodes; replies come from the address and port the client used', async () => {
    const node1 = lab.nodes[0]!.ipv4;
    const rs = await lab.client('external', { proto: 'udp', host: node1, port: 30053, count: 24, timeoutMs: 3000 });
    expect(pods(rs)).toEqual(new Set(['a1', 'b1']));
    expect(okPeers(rs)).toEqual(new Set([`${node1}:30053`]));
  });

  it('TCP and UDP to node2\'s NodePort work the same way (UDP: both backends; TCP: the remote one)', async () => {
    const node2 = lab.nodes[1]!.ipv4;
    const tcp = await lab.client('external', { proto: 'tcp', host: node2, port: 30080, count: 12, timeoutMs: 1500 });
    const udp = await lab.client('external', { proto: 'udp', host: node2, port: 30053, count: 16, timeoutMs: 3000 });
    expect(pods(tcp)).toContain('a1');
    expect(pods(udp)).toEqual(new Set(['a1', 'b1']));
    expect(okPeers(udp)).toEqual(new Set([`${node2}:30053`]));
    expect(new Set(tcp.filter((r) => r.ok).map((r) => (r.ok ? r.peer : '')))).toEqual(new Set([`${node2}:30080`]));
  });

  it('Local policy: node2, without a local backend, drops (the client times out)', async () => {
    const dropped = await lab.client('external', { proto: 'tcp', host: lab.nodes[1]!.ipv4, port: 30081, count: 1, timeoutMs: 1500 });
    expect(pods(dropped)).toEqual(new Set(['error:ETIMEDOUT']));
  });

  // The same known failure as above (TCP to a local backend).
  it('Local policy: node1 serves with the client\'s own address kept', async () => {
    const served = await lab.client('external', { proto: 'tcp', host: lab.nodes[0]!.ipv4, port: 30081, count: 3, timeoutMs: 1500 });
    expect(pods(served)).toEqual(new Set(['a1']));
    expect(clientsSeen(served, 'a1')).toEqual(new Set([lab.external!.ipv4]));
  });

  it('no endpoints: refused at once (a TCP RST sent back by XDP)', async () => {
    const rs = await lab.client('external', { proto: 'tcp', host: lab.nodes[0]!.ipv4, port: 30082, count: 2, timeoutMs: 3000 });
    expect(pods(rs)).toEqual(new Set(['error:ECONNREFUSED']));
    expect(rs.every((r) => r.ms < 1000)).toBe(true);
  });

  it('counts what it did: translated flows and the Local-policy drop in each proxy\'s metrics', async () => {
    const m1 = (await proxies[0]!.http('/metrics')).body;
    const m2 = (await proxies[1]!.http('/metrics')).body;
    expect(m1).toMatch(/bpfproxy_datapath_events_total\{event="pkt_remote_new"\} [1-9]/);
    expect(m1).toMatch(/bpfproxy_datapath_events_total\{event="pkt_local_new"\} [1-9]/);
    expect(m1).toMatch(/bpfproxy_datapath_events_total\{event="tc_reply_rnat"\} [1-9]/);
    expect(m2).toMatch(/bpfproxy_datapath_drops_total\{reason="no_local_backend"\} [1-9]/);
  });
});
