// ICMP and ICMPv6 errors about NodePort flows, through the XDP/TC datapath
// in the lab (bpf/lib/icmp-error.h), once per family: the external client
// sends UDP to node1's NodePort from a connected socket; the one backend's
// port is closed, so the backend's stack answers with a port unreachable.
// That error names the backend and (for a remote backend) node1's NAT port;
// only translated back does it match the client's socket, which then reads
// ECONNREFUSED instead of waiting for its timeout. Both ways an error can
// leave: from a remote backend, through node1's XDP (pkt_icmp_err_to_client),
// and from a local backend, through node1's TC egress (tc_icmp_err_rnat).
// And Path MTU discovery through a NodePort whose backend sits behind a
// narrower path ("fragmentation needed" / "packet too big" from node2 about
// node1's SNATed segment). The lab stands in for real NICs as src/lab/xdp.ts
// describes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, type Lab, type LabNode, type LabPod } from '../../src/lab/lab.js';
import { LabProxy } from '../../src/lab/proxy.js';
import { pods, put, service, slice, type PortSpec } from '../helpers/lab-manifests.js';
import { prepareXdpLab } from './xdp-lab.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('ICMP error XDP lab tests skipped: they build network namespaces and attach XDP programs, which needs root');

const REMOTE: PortSpec[] = [{ name: 'dns', port: 53, protocol: 'UDP', nodePort: 30054 }];
const LOCAL: PortSpec[] = [{ name: 'dns', port: 53, protocol: 'UDP', nodePort: 30055 }];
const WEB: PortSpec[] = [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30086 }];
/** node2's route to its pods carries this MTU (IPv6's minimum, and less than
 * the wire's 1500 for IPv4, as a tunnel or a narrower link would be). */
const POD_PATH_MTU = 1280;

/** What differs between the families; the cases are the same. */
interface Family {
  name: string;
  ipv6: boolean;
  ip: string;
  clusterIp(last: string): string;
  extra: string[];
  sliceFamily: 'IPv4' | 'IPv6';
  nodeIp(n: LabNode): string;
  podIp(p: LabPod): string;
  /** node2's route to its pods, with the smaller MTU. */
  podRoute(n: LabNode): string[];
  fragNeeded: string;
}

const FAMILIES: Family[] = [
  {
    name: 'ICMP errors about NodePort flows', ipv6: false, ip: 'ip', clusterIp: (l) => `10.96.3.${l}`, extra: ['type: NodePort'], sliceFamily: 'IPv4',
    nodeIp: (n) => n.ipv4, podIp: (p) => p.ipv4,
    podRoute: (n) => ['ip', 'route', 'replace', n.podCidrV4, 'dev', 'br0', 'proto', 'kernel', 'scope', 'link', 'src', n.gatewayV4, 'mtu', String(POD_PATH_MTU)],
    fragNeeded: '"fragmentation needed"',
  },
  {
    name: 'ICMPv6 errors about IPv6 NodePort flows', ipv6: true, ip: 'ip -6', clusterIp: (l) => `fd00:96::3:${l}`, extra: ['type: NodePort', 'ipFamilies: [IPv6]'], sliceFamily: 'IPv6',
    nodeIp: (n) => n.ipv6!, podIp: (p) => p.ipv6!,
    podRoute: (n) => ['ip', '-6', 'route', 'replace', n.podCidrV6!, 'dev', 'br0', 'proto', 'kernel', 'metric', '256', 'mtu', String(POD_PATH_MTU)],
    fragNeeded: '"packet too big"',
  },
];

describe.skipIf(!isRoot).each(FAMILIES)('$name reach the client as the flow it used (bpfproxy --devices eth0)', (f) => {
  let lab: Lab;
  let dir: string;
  let proxy: LabProxy | undefined;

  beforeAll(async () => {
    lab = await createLab({ nodes: [{ name: 'node1', pods: [{ name: 'a1' }] }, { name: 'node2', pods: [{ name: 'b1' }] }], external: true, ipv6: f.ipv6 });
    await prepareXdpLab(lab, [lab.external!.netns, lab.pod('a1').netns, lab.pod('b1').netns]);
    dir = mkdtempSync(join(tmpdir(), 'bpfproxy-lab-icmp-'));
    const b1 = [{ ip: f.podIp(lab.pod('b1')), node: 'node2' }];
    put(dir, 'remote.yaml', `${service('remote', f.clusterIp('53'), REMOTE, f.extra)}---\n${slice('remote', REMOTE, b1, f.sliceFamily)}`);
    put(dir, 'web.yaml', `${service('web', f.clusterIp('80'), WEB, f.extra)}---\n${slice('web', WEB, b1, f.sliceFamily)}`);
    put(dir, 'local.yaml', `${service('local', f.clusterIp('54'), LOCAL, f.extra)}---\n${slice('local', LOCAL, [{ ip: f.podIp(lab.pod('a1')), node: 'node1' }], f.sliceFamily)}`);
    // node2 forwards to its pods over a route with a smaller MTU: a full-size
    // segment gets the error from node2, sent to the address that segment
    // came from: node1, after SNAT.
    const route = await lab.exec(lab.nodes[1]!.netns, f.podRoute(lab.nodes[1]!));
    if (route.code !== 0) throw new Error(`route mtu on node2: ${route.stderr}`);
    proxy = LabProxy.start(lab, lab.nodes[0]!, { manifests: dir, args: ['--devices', 'eth0'] });
    await proxy.waitSynced(0, 45_000);
  });

  afterAll(async () => {
    await proxy?.stop();
    await lab?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const node1 = () => f.nodeIp(lab.nodes[0]!);
  const metric = async (event: string) =>
    Number(new RegExp(`bpfproxy_datapath_events_total\\{event="${event}"\\} (\\d+)`).exec((await proxy!.http('/metrics')).body)?.[1] ?? 0);

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

  it(`Path MTU discovery through the NodePort: node2's ${f.fragNeeded} about node1's SNATed segment reaches the client, which sends smaller segments and gets its answer`, async () => {
    const before = await metric('pkt_icmp_err_to_client');
    const conn = await lab.openConnection('external', node1(), 30086, { timeoutMs: 8000 });
    try {
      const line = 'x'.repeat(3000);	// two full-size segments: each larger than node2's pod route allows
      expect(await conn.send(line)).toBe(`b1 ${line}`);
    } finally {
      await conn.close();
    }
    // The client learnt the path's MTU toward the address it used.
    expect((await lab.exec(lab.external!.netns, [...f.ip.split(' '), 'route', 'get', node1()])).stdout).toMatch(new RegExp(`mtu ${POD_PATH_MTU}`));
    expect(await metric('pkt_icmp_err_to_client')).toBeGreaterThanOrEqual(before + 1);
  });
});
