// The IPv6 twin of icmp-error-xdp.test.ts: ICMPv6 errors about IPv6
// NodePort flows through the XDP/TC datapath (bpf/lib/icmp-error.h). A UDP
// client's connected socket reads ECONNREFUSED when the backend's port is
// closed (its ICMPv6 port unreachable translated at node1's XDP for a remote
// backend, at TC egress for a local one), and Path MTU discovery works
// through the NodePort: node2's "packet too big" about node1's SNATed
// segment reaches the client. The lab stands in for real NICs as
// src/lab/xdp.ts describes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, type Lab } from '../../src/lab/lab.js';
import { LabProxy } from '../../src/lab/proxy.js';
import { pods, put, service, slice, type PortSpec } from '../helpers/lab-manifests.js';
import { prepareXdpLab } from './xdp-lab.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('IPv6 ICMP error XDP lab tests skipped: they build network namespaces and attach XDP programs, which needs root');

const REMOTE: PortSpec[] = [{ name: 'dns', port: 53, protocol: 'UDP', nodePort: 30054 }];
const LOCAL: PortSpec[] = [{ name: 'dns', port: 53, protocol: 'UDP', nodePort: 30055 }];
const WEB: PortSpec[] = [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30086 }];
const V6 = ['type: NodePort', 'ipFamilies: [IPv6]'];
/** node2's route to its pods carries this MTU (IPv6's minimum), smaller than the wire's 1500. */
const POD_PATH_MTU = 1280;

describe.skipIf(!isRoot)('ICMPv6 errors about IPv6 NodePort flows reach the client as the flow it used (bpfproxy --devices eth0)', () => {
  let lab: Lab;
  let dir: string;
  let proxy: LabProxy | undefined;

  beforeAll(async () => {
    lab = await createLab({ nodes: [{ name: 'node1', pods: [{ name: 'a1' }] }, { name: 'node2', pods: [{ name: 'b1' }] }], external: true, ipv6: true });
    await prepareXdpLab(lab, [lab.external!.netns, lab.pod('a1').netns, lab.pod('b1').netns]);
    dir = mkdtempSync(join(tmpdir(), 'bpfproxy-lab-icmp6-'));
    const b1 = [{ ip: lab.pod('b1').ipv6!, node: 'node2' }];
    put(dir, 'remote.yaml', `${service('remote', 'fd00:96::3:53', REMOTE, V6)}---\n${slice('remote', REMOTE, b1, 'IPv6')}`);
    put(dir, 'web.yaml', `${service('web', 'fd00:96::3:80', WEB, V6)}---\n${slice('web', WEB, b1, 'IPv6')}`);
    put(dir, 'local.yaml', `${service('local', 'fd00:96::3:54', LOCAL, V6)}---\n${slice('local', LOCAL, [{ ip: lab.pod('a1').ipv6!, node: 'node1' }], 'IPv6')}`);
    const n2 = lab.nodes[1]!;
    const route = await lab.exec(n2.netns, ['ip', '-6', 'route', 'replace', n2.podCidrV6!, 'dev', 'br0', 'proto', 'kernel', 'metric', '256', 'mtu', String(POD_PATH_MTU)]);
    if (route.code !== 0) throw new Error(`route mtu on node2: ${route.stderr}`);
    proxy = LabProxy.start(lab, lab.nodes[0]!, { manifests: dir, args: ['--devices', 'eth0'] });
    await proxy.waitSynced(0, 45_000);
  });

  afterAll(async () => {
    await proxy?.stop();
    await lab?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const node1 = () => lab.nodes[0]!.ipv6!;
  const metric = async (event: string) =>
    Number(new RegExp(`bpfproxy_datapath_events_total\\{event="${event}"\\} (\\d+)`).exec((await proxy!.http('/metrics')).body)?.[1] ?? 0);

  it('served while the backends listen', async () => {
    expect(pods(await lab.client('external', { proto: 'udp-connected', host: node1(), port: 30054, count: 2, timeoutMs: 3000 }))).toEqual(new Set(['b1']));
    expect(pods(await lab.client('external', { proto: 'udp-connected', host: node1(), port: 30055, count: 2, timeoutMs: 3000 }))).toEqual(new Set(['a1']));
  });

  it('remote backend with its port closed: its ICMPv6 port unreachable, translated at node1\'s XDP, gives the client ECONNREFUSED', async () => {
    const before = await metric('pkt_icmp_err_to_client');
    await lab.setPodUp('b1', false);
    try {
      const rs = await lab.client('external', { proto: 'udp-connected', host: node1(), port: 30054, count: 2, timeoutMs: 3000, intervalMs: 1100 });
      expect(pods(rs)).toEqual(new Set(['error:ECONNREFUSED']));
    } finally {
      await lab.setPodUp('b1', true);
    }
    expect(await metric('pkt_icmp_err_to_client')).toBeGreaterThanOrEqual(before + 2);
  });

  it('local backend with its port closed: its ICMPv6 port unreachable, translated at node1\'s TC egress, gives the client ECONNREFUSED', async () => {
    const before = await metric('tc_icmp_err_rnat');
    await lab.setPodUp('a1', false);
    try {
      const rs = await lab.client('external', { proto: 'udp-connected', host: node1(), port: 30055, count: 2, timeoutMs: 3000, intervalMs: 1100 });
      expect(pods(rs)).toEqual(new Set(['error:ECONNREFUSED']));
    } finally {
      await lab.setPodUp('a1', true);
    }
    expect(await metric('tc_icmp_err_rnat')).toBeGreaterThanOrEqual(before + 2);
  });

  it('Path MTU discovery through the IPv6 NodePort: node2\'s "packet too big" about node1\'s SNATed segment reaches the client, which sends smaller segments and gets its answer', async () => {
    const before = await metric('pkt_icmp_err_to_client');
    const conn = await lab.openConnection('external', node1(), 30086, { timeoutMs: 8000 });
    try {
      const line = 'x'.repeat(3000);
      expect(await conn.send(line)).toBe(`b1 ${line}`);
    } finally {
      await conn.close();
    }
    expect((await lab.exec(lab.external!.netns, ['ip', '-6', 'route', 'get', node1()])).stdout).toMatch(new RegExp(`mtu ${POD_PATH_MTU}`));
    expect(await metric('pkt_icmp_err_to_client')).toBeGreaterThanOrEqual(before + 1);
  });
});
