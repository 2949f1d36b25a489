// Hairpin: a pod reaching its own service, of which it is the only endpoint,
// through its node's NodePort, a LoadBalancer IP and the ClusterIP, on the
// two paths a pod's packets can take:
// - the pod in the proxy's cgroup (as every lab pod, and every pod of a node
//   whose cgroup the proxy watches): connect() is translated at the socket
//   (sock.bpf.c), so the pod connects to itself and the kernel keeps the
//   packets local; getpeername() says the address it used;
// - the pod outside that cgroup: its packets reach the node on the pod
//   bridge, served at XDP/TC there (--devices eth0,br0): the pod is the
//   backend picked for its own flow, so the flow is SNATed to the node
//   (nat.h: flow_is_hairpin) and the reply is reverse-NATed back.
// Each answer must come from the pod itself and from the address and port
// the pod used. All addresses stay in lab namespaces; 192.0.2.0/24 is
// TEST-NET-1.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientArgv, parseResults, runBudgetMs, type ClientRequest, type ClientResult } from '../../src/lab/client.js';
import { createLab, type Lab } from '../../src/lab/lab.js';
import { LabProxy } from '../../src/lab/proxy.js';
import { put, slice, type PortSpec } from '../helpers/lab-manifests.js';
import { prepareXdpLab } from './xdp-lab.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('hairpin lab tests skipped: they build network namespaces and attach BPF programs, which needs root');

const CLUSTER_IP = '10.96.4.10';
const LB_IP = '192.0.2.40';
const NODE_PORT = 30090;
const PORTS: PortSpec[] = [{ name: 'http', port: 80, protocol: 'TCP', nodePort: NODE_PORT }];
const service = `apiVersion: v1
kind: Service
metadata: {name: self, namespace: lab}
spec:
  type: LoadBalancer
  clusterIP: ${CLUSTER_IP}
  ports:
  - {name: http, port: 80, targetPort: 80, protocol: TCP, nodePort: ${NODE_PORT}}
status:
  loadBalancer:
    ingress: [{ip: ${LB_IP}}]
`;

describe.skipIf(!isRoot)('hairpin: a pod reaching its own service (the only endpoint)', () => {
  let lab: Lab;
  let dir: string;
  let proxy: LabProxy | undefined;
  const frontends = () => [
    { via: 'the NodePort on its node', host: lab.nodes[0]!.ipv4, port: NODE_PORT },
    { via: 'the LoadBalancer IP', host: LB_IP, port: 80 },
    { via: 'the ClusterIP', host: CLUSTER_IP, port: 80 },
  ];

  beforeAll(async () => {
    lab = await createLab({ nodes: [{ name: 'node1', pods: [{ name: 'a1' }] }], external: true });
    const pod = lab.pod('a1');
    await prepareXdpLab(lab, [pod.netns]);
    // The LoadBalancer IP as a router would hand it to the pod's gateway (pods route only cluster ranges).
    const r = await lab.exec(pod.netns, ['ip', 'route', 'add', `${LB_IP}/32`, 'via', lab.nodes[0]!.gatewayV4]);
    if (r.code !== 0) throw new Error(`route: ${r.stderr}`);
    dir = mkdtempSync(join(tmpdir(), 'bpfproxy-lab-hairpin-'));
    put(dir, 'self.yaml', `${service}---\n${slice('self', PORTS, [{ ip: pod.ipv4, node: 'node1' }])}`);
    proxy = LabProxy.start(lab, lab.nodes[0]!, { manifests: dir, args: ['--devices', 'eth0,br0'] });
    await proxy.waitSynced(0, 45_000);
  });

  afterAll(async () => {
    await proxy?.stop();
    await lab?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** The lab client from pod a1, in its node's cgroup (the proxy's) or outside it. */
  async function fromPod(inCgroup: boolean, host: string, port: number): Promise<ClientResult[]> {
    const req: ClientRequest = { proto: 'tcp', host, port, count: 3, timeoutMs: 3000 };
    if (inCgroup) return lab.client(lab.pod('a1'), req);
    const r = await lab.exec(lab.pod('a1').netns, clientArgv(req), { cgroup: lab.external!.cgroup, timeoutMs: runBudgetMs(req) });
    if (r.code !== 0) throw new Error(`client: ${r.stderr}`);
    return parseResults(r.stdout, req.count);
  }

  for (const inCgroup of [true, false]) {
    const path = inCgroup ? 'in the proxy\'s cgroup (socket hook)' : 'outside the proxy\'s cgroup (XDP/TC on the pod bridge)';
    it(`${path}: NodePort, LoadBalancer IP and ClusterIP each answer from the pod itself, from the address the pod used`, async () => {
      for (const f of frontends()) {
        const rs = await fromPod(inCgroup, f.host, f.port);
        const seen = rs.map((r) => (r.ok ? { pod: r.pod, peer: r.peer } : { error: r.error }));
        expect(seen, `${path}, ${f.via}`).toEqual(rs.map(() => ({ pod: 'a1', peer: `${f.host}:${f.port}` })));
        // Who the pod's server saw: itself at the socket; the node (SNAT) through XDP.
        const clients = new Set(rs.map((r) => (r.ok ? r.client.split(':')[0] : '')));
        expect([...clients], `${path}, ${f.via}: the client the server saw`).toEqual([inCgroup ? lab.pod('a1').ipv4 : lab.nodes[0]!.gatewayV4]);
      }
    });
  }

  it('counts the XDP hairpin flows as SNATed (remote-style) flows', async () => {
    expect((await proxy!.http('/metrics')).body).toMatch(/bpfproxy_datapath_events_total\{event="pkt_remote_new"\} [1-9]/);
  });
});
