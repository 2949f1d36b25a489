// ICMP errors about NodePort flows, through the XDP/TC datapath in the lab
// (bpf/lib/icmp-error.h): the external client sends UDP to node1's
// NodePort from a connected socket; the one backend's port is closed, so the
// backend's stack answers with an ICMP port unreachable. That error names
// the backend and (for a remote backend) node1's NAT port; only translated
// back does it match the client's socket, which then reads ECONNREFUSED
// instead of waiting for its timeout. Both ways an error can leave: from a
// remote backend, through node1's XDP (pkt_icmp_err_to_client), and from a
// local backend, through node1's TC egress (tc_icmp_err_rnat). And Path MTU
// discovery through a NodePort whose backend sits behind a narrower path.
// The lab stands in for real NICs as src/lab/xdp.ts describes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, type Lab } from '../../src/lab/lab.js';
import { LabProxy } from '../../src/lab/proxy.js';
import { pods, put, service, slice, type PortSpec } from '../helpers/lab-manifests.js';
import { prepareXdpLab } from './xdp-lab.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('ICMP error XDP lab tests skipped: they build network namespaces and attach XDP programs, which needs root');

const REMOTE: PortSpec[] = [{ name: 'dns', port: 53, protocol: 'UDP', nodePort: 30054 }];
const LOCAL: PortSpec[] = [{ name: 'dns', port: 53, protocol: 'UDP', nodePort: 30055 }];
const WEB: PortSpec[] = [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30086 }];
/** node2's route to its pods carries this MTU: smaller than the wire's 1500, as a tunnel or a narrower link would be. */
const POD_PATH_MTU = 1280;

describe.skipIf(!isRoot)('ICMP errors about NodePort flows reach the client as the flow it used (bpfproxy --devices eth0)', () => {
  let lab: Lab;
  let dir: string;
  let proxy: LabProxy | undefined;

  beforeAll(async () => {
    lab = await createLab({ nodes: [{ name: 'node1', pods: [{ name: 'a1' }] }, { name: 'node2', pods: [{ name: 'b1' }] }], external: true });
    await prepareXdpLab(lab, [lab.external!.netns, lab.pod('a1').netns, lab.pod('b1').netns]);
    dir = mkdtempSync(join(tmpdir(), 'bpfproxy-lab-icmp-'));
    put(dir, 'remote.yaml', `${service('remote', '10.96.3.53', REMOTE, ['type: NodePort'])}---\n${slice('remote', REMOTE, [{ ip: lab.pod('b1').ipv4, node: 'node2' }])}`);
    put(dir, 'web.yaml', `${service('web', '10.96.3.80', WEB, ['type: NodePort'])}---\n${slice('web', WEB, [{ ip: lab.pod('b1').ipv4, node: 'node2' }])}`);
    put(dir, 'local.yaml', `${service('local', '10.96.3.54', LOCAL, ['type: NodePort'])}---\n${slice('local', LOCAL, [{ ip: lab.pod('a1').ipv4, node: 'node1' }])}`);
    // node2 forwards to its pods over a route with a smaller MTU: a full-size
    // segment with DF set gets "fragmentation needed" from node2, sent to the
    // address that segment came from: node1, after SNAT.
    const n2 = lab.nodes[1]!;
    const route = await lab.exec(n2.netns, ['ip', 'route', 'replace', n2.podCidrV4, 'dev', 'br0', 'proto', 'kernel', 'scope', 'link', 'src', n2.gatewayV4, 'mtu', String(POD_PATH_MTU)]);
    if (route.code !== 0) throw new Error(`route mtu on node2: ${route.stderr}`);
    proxy = LabProxy.start(lab, lab.nodes[0]!, { manifests: dir, args: ['--devices', 'eth0'] });
    await proxy.waitSynced(0, 45_000);
  });

  afterAll(async () => {
    await proxy?.stop();
    await lab?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const node1 = () => lab.nodes[0]!.ipv4;
  const metric = async (event: string) => {
    const m = /(\d+)$/.exec(((await proxy!.http('/metrics')).body.split('\n').find((l) => l.startsWith(`bpfproxy_datapath_events_total{event="${event}"}`))) ?? '0');
    return Number(m?.[1] ?? 0);
  };

  it('served while the backends listen (the flows work both ways before any error)', async () => {
    expect(pods(await lab.client('external', { proto: 'udp-connected', host: node1(), port: 30054, count: 2, timeoutMs: 3000 }))).toEqual(new Set(['b1']));
    expect(pods(await lab.client('external', { proto: 'udp-connected', host: node1(), port: 30055, count: 2, timeoutMs: 3000 }))).toEqual(new Set(['a1']));
  });

  it('remote backend with its port closed: its port unreachable, translated at node1\'s XDP, gives the client ECONNREFUSED, not a timeout', async () => {
    const before = await metric('pkt_icmp_err_to_client');
    await lab.setPodUp('b1', false);
    try {
      // One attempt per second at most: the backend's stack rate-limits its ICMP errors per destination.
      const rs = await lab.client('external', { proto: 'udp-connected', host: node1(), port: 30054, count: 2, timeoutMs: 3000, intervalMs: 1100 });
      expect(pods(rs)).toEqual(new Set(['error:ECONNREFUSED']));
      expect(rs.every((r) => r.ms < 2500)).toBe(true);
    } finally {
      await lab.setPodUp('b1', true);
    }
    expect(await metric('pkt_icmp_err_to_client')).toBeGreaterThanOrEqual(before + 2);
  });

  it('local backend with its port closed: its port unreachable, translated at node1\'s TC egress, gives the client ECONNREFUSED', async () => {
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

  it('Path MTU discovery through the NodePort: node2\'s "fragmentation needed" about node1\'s SNATed segment reaches the client, which sends smaller segments and gets its answer', async () => {
    const before = await metric('pkt_icmp_err_to_client');
    const conn = await lab.openConnection('external', node1(), 30086, { timeoutMs: 8000 });
    try {
      const line = 'x'.repeat(3000);	// two full-size segments: each larger than node2's pod route allows
      expect(await conn.send(line)).toBe(`b1 ${line}`);
    } finally {
      await conn.close();
    }
    // The client learnt the path's MTU toward the address it used.
    expect((await lab.exec(lab.external!.netns, ['ip', 'route', 'get', node1()])).stdout).toMatch(new RegExp(`mtu ${POD_PATH_MTU}`));
    expect(await metric('pkt_icmp_err_to_client')).toBeGreaterThanOrEqual(before + 1);
  });
});
