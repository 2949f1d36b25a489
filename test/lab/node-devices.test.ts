// Issue 7: without --devices, the XDP/TC devices follow the Node object. A
// lab node with two links, eth0 on the wire and eth1 straight to the
// external client (the lab's `sideLink`); the proxy starts with
// --bind-address on eth0, so the devices chosen at start are eth0 alone. The
// Node object, written after the first sync (as the Kubernetes source
// delivers it after the datapath opened), says its InternalIP is eth1's: a
// NodePort on that IP is then served through XDP and TC on eth1, and when the
// Node moves its InternalIP back off eth1 the programs come off eth1 again
// (also after a restart, which finds eth1's pinned links).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, type Lab, type LabNode } from '../../src/lab/lab.js';
import { LabProxy } from '../../src/lab/proxy.js';
import { pods, put, service, slice, type PortSpec } from '../helpers/lab-manifests.js';
import { prepareXdpLab } from './xdp-lab.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('node-devices lab test skipped: it builds network namespaces and attaches XDP programs, which needs root');

const WEB: PortSpec[] = [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30080 }];
/** Never configured anywhere: an ExternalIP behind a cloud NAT, on no local device. */
const NAT_EXTERNAL_IP = '203.0.113.7';

const nodeYaml = (name: string, addresses: { type: string; address: string }[]) => `apiVersion: v1
kind: Node
metadata: {name: ${name}, labels: {kubernetes.io/hostname: ${name}}}
status:
  addresses:
${addresses.map((a) => `  - {type: ${a.type}, address: "${a.address}"}`).join('\n')}
`;

describe.skipIf(!isRoot)('the default --devices follows the Node\'s InternalIP (no --devices, --bind-address on eth0, InternalIP on eth1)', () => {
  let lab: Lab;
  let node: LabNode;
  let dir: string;
  let proxy: LabProxy;
  const xdpOn = async (dev: string) => /prog\/xdp id \d+/.test((await lab.exec(node.netns, ['ip', '-d', 'link', 'show', 'dev', dev])).stdout);
  const nodePort = (host: string) => lab.client('external', { proto: 'tcp', host, port: 30080, count: 4, timeoutMs: 1000 });

  beforeAll(async () => {
    lab = await createLab({ nodes: [{ name: 'node1', pods: [{ name: 'a1' }], sideLink: true }], external: true });
    node = lab.nodes[0]!;
    await prepareXdpLab(lab, [lab.external!.netns, lab.pod('a1').netns]);
    dir = mkdtempSync(join(tmpdir(), 'bpfproxy-lab-nodedev-'));
    put(dir, 'web.yaml', `${service('web', '10.96.2.10', WEB, ['type: NodePort'])}---\n${slice('web', WEB, [{ ip: lab.pod('a1').ipv4, node: 'node1' }])}`);
    proxy = LabProxy.start(lab, node, { manifests: dir, defaultDevices: true, args: ['--bind-address', node.ipv4] });
    await proxy.waitSynced(0, 45_000);
  }, 90_000);

  afterAll(async () => {
    await proxy?.stop();
    await lab?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('before the Node is read: eth0 only (the --bind-address device), and the NodePort on eth1\'s address is not served', async () => {
    expect(node.side?.ipv4).toBe('172.19.1.1');
    expect(proxy.logs.filter((l) => /--devices not given/.test(l.msg)).map((l) => l.devices)).toEqual([['eth0']]);
    expect(await xdpOn('eth0')).toBe(true);
    expect(await xdpOn('eth1')).toBe(false);
    // The node's stack has nothing on port 30080: refused, as for a node without the programs.
    const rs = await nodePort(node.side!.ipv4);
    expect(rs.every((r) => !r.ok)).toBe(true);
    // The same NodePort on eth0's address is served: the service is programmed.
    expect(pods(await nodePort(node.ipv4))).toEqual(new Set(['a1']));
  });

  it('once the Node says its InternalIP is eth1\'s: XDP and TC attach there (pinned), logged once, and the NodePort on that IP reaches the backend', async () => {
    const since = proxy.logs.length;
    put(dir, 'node.yaml', nodeYaml('node1', [{ type: 'Hostname', address: 'node1' }, { type: 'InternalIP', address: node.side!.ipv4 }, { type: 'ExternalIP', address: NAT_EXTERNAL_IP }]));
    const added = await proxy.waitFor((l) => /attached the XDP\/TC programs to eth1/.test(l.msg), 30_000, since);
    expect(added.msg).toMatch(/InternalIP 172\.19\.1\.1/);
    expect(await xdpOn('eth1')).toBe(true);
    expect(existsSync(join(node.bpffs, 'links', 'xdp-eth1'))).toBe(true);
    const rs = await nodePort(node.side!.ipv4);
    expect(pods(rs)).toEqual(new Set(['a1']));
    // The reply left through eth1's TC egress program, reverse-NATed to the address and port the client used.
    expect(new Set(rs.map((r) => (r.ok ? r.peer : `error:${r.error}`)))).toEqual(new Set([`${node.side!.ipv4}:30080`]));
    // The ExternalIP on no local device: one warning, nothing else changed.
    await proxy.waitSynced(since);
    expect(proxy.logs.slice(since).filter((l) => l.msg.includes(NAT_EXTERNAL_IP) && /on no device/.test(l.msg))).toHaveLength(1);
    expect(proxy.logs.slice(since).filter((l) => /attached the XDP\/TC programs/.test(l.msg))).toHaveLength(1);
  });

  it('a restarted proxy keeps eth1 (its pinned links served meanwhile) and finds it again without attaching twice', async () => {
    expect(await proxy.stop()).toBe(0);
    // Pinned: the datapath outlives the proxy, eth1 included.
    expect(await xdpOn('eth1')).toBe(true);
    expect(pods(await nodePort(node.side!.ipv4))).toEqual(new Set(['a1']));
    proxy = LabProxy.start(lab, node, { manifests: dir, defaultDevices: true, args: ['--bind-address', node.ipv4] });
    await proxy.waitSynced(0, 45_000);
    expect(proxy.logs.filter((l) => /--devices not given/.test(l.msg)).map((l) => l.devices)).toEqual([['eth0']]);
    expect(proxy.logs.filter((l) => /(at|de)tached the XDP\/TC programs/.test(l.msg))).toEqual([]);
    expect(await xdpOn('eth1')).toBe(true);
    expect(pods(await nodePort(node.side!.ipv4))).toEqual(new Set(['a1']));
  }, 90_000);

  it('when the Node\'s InternalIP moves back to eth0, the programs come off eth1 (pins too) and eth0 keeps serving', async () => {
    const since = proxy.logs.length;
    put(dir, 'node.yaml', nodeYaml('node1', [{ type: 'InternalIP', address: node.ipv4 }]));
    await proxy.waitFor((l) => /detached the XDP\/TC programs from eth1/.test(l.msg), 30_000, since);
    expect(await xdpOn('eth1')).toBe(false);
    expect(existsSync(join(node.bpffs, 'links', 'xdp-eth1'))).toBe(false);
    expect(await xdpOn('eth0')).toBe(true);
    expect(pods(await nodePort(node.ipv4))).toEqual(new Set(['a1']));
  });
});
