// Backend choice of the XDP datapath across nodes: two lab nodes running the
// real bpfproxy with --devices eth0, four UDP backends (two per node), and
// the external client sending from fixed source ports (xdp-lab.ts), so a
// "flow" is a 5-tuple the test can send again, to either node.
// - Maglev: a flow lands on the same backend whichever node receives it, and
//   removing one of N backends moves close to 1/N of the flows (printed).
// - Re-selection: a flow whose backend leaves the service moves to a live
//   backend within a second, instead of following its conntrack entry.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, type Lab } from '../../src/lab/lab.js';
import { LabProxy } from '../../src/lab/proxy.js';
import { put, service, slice, type PortSpec } from '../helpers/lab-manifests.js';
import { prepareXdpLab, udpFromPorts, udpStream } from './xdp-lab.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('NodePort Maglev lab tests skipped: they build network namespaces and attach XDP programs, which needs root');

const DNS: PortSpec[] = [{ name: 'dns', port: 53, protocol: 'UDP', nodePort: 30053 }];
const STICKY: PortSpec[] = [{ name: 'dns', port: 53, protocol: 'UDP', nodePort: 30054 }];
const AFFINITY_S = 1;
const PODS = ['a1', 'a2', 'b1', 'b2'];
const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

describe.skipIf(!isRoot)('Maglev and re-selection of the XDP datapath (bpfproxy --devices eth0 on two nodes, 4 UDP backends)', () => {
  let lab: Lab;
  let dir: string;
  let proxies: LabProxy[] = [];
  const MAGLEV_TABLES = 2;
  const eps = () => PODS.map((p) => ({ ip: lab.pod(p).ipv4, node: lab.pod(p).node }));
  /** Rewrites the service's endpoints and waits until both proxies synced after the change. */
  async function setEndpoints(list: { ip: string; node: string }[]): Promise<number[]> {
    const marks = proxies.map((p) => p.logs.length);
    put(dir, 'dns.yaml', `${service('dns', '10.96.2.53', DNS, ['type: NodePort'])}---\n${slice('dns', DNS, list)}`);
    const lines = await Promise.all(proxies.map((p, i) => p.waitSynced(marks[i], 30_000)));
    return lines.map((l) => (typeof l.time === 'number' ? l.time : Date.parse(String(l.time ?? ''))) || Date.now());
  }

  beforeAll(async () => {
    lab = await createLab({ nodes: [{ name: 'node1', pods: [{ name: 'a1' }, { name: 'a2' }] }, { name: 'node2', pods: [{ name: 'b1' }, { name: 'b2' }] }], external: true });
    await prepareXdpLab(lab, [lab.external!.netns, ...PODS.map((p) => lab.pod(p).netns)]);
    dir = mkdtempSync(join(tmpdir(), 'bpfproxy-lab-maglev-'));
    put(dir, 'dns.yaml', `${service('dns', '10.96.2.53', DNS, ['type: NodePort'])}---\n${slice('dns', DNS, eps())}`);
    put(dir, 'sticky.yaml', `${service('sticky', '10.96.2.54', STICKY, ['type: NodePort', 'sessionAffinity: ClientIP', `sessionAffinityConfig: {clientIP: {timeoutSeconds: ${AFFINITY_S}}}`])}---\n${slice('sticky', STICKY, eps())}`);
    // Exactly as many Maglev tables as services with NodePorts here: the array is sized from the setting.
    proxies = lab.nodes.map((n) => LabProxy.start(lab, n, { manifests: dir, args: ['--devices', 'eth0', '--bpf-lb-maglev-map-max', String(MAGLEV_TABLES)] }));
    await Promise.all(proxies.map((p) => p.waitSynced(0, 45_000)));
  });

  afterAll(async () => {
    await Promise.all(proxies.map((p) => p.stop()));
    await lab?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('runs the bpf mode with XDP on eth0 (a fallback to a rule mode would make every test below meaningless)', async () => {
    for (const p of proxies) expect((await p.http('/proxyMode')).body.trim()).toBe('bpf');
    for (const n of lab.nodes) expect((await lab.exec(n.netns, ['ip', '-d', 'link', 'show', 'dev', 'eth0'])).stdout).toMatch(/prog\/xdp id \d+/);
  });

  it('sizes the Maglev array from --bpf-lb-maglev-map-max, logs its bytes, and fits both services', () => {
    for (const p of proxies) {
      const line = p.logs.find((l) => /^Maglev array:/.test(l.msg));
      expect(line, p.node.name).toMatchObject({ tables: MAGLEV_TABLES, bytes: MAGLEV_TABLES * 16381 * 4 });
      expect(p.logs.filter((l) => /no free Maglev table/.test(l.msg))).toEqual([]);
    }
  });

  it('the same flow lands on the same backend whichever node receives it', async () => {
    const ports = range(41000, 80);
    const [n1, n2] = lab.nodes;
    const via1 = await udpFromPorts(lab, lab.external!.netns, n1!.ipv4, 30053, ports);
    const via2 = await udpFromPorts(lab, lab.external!.netns, n2!.ipv4, 30053, ports);
    expect(via1).not.toContain(null);
    expect(new Set(via1)).toEqual(new Set(PODS)); // every backend is used
    expect(via2).toEqual(via1);
  });

  it('removing one of 4 backends moves close to 1/4 of the flows', async () => {
    const ports = range(42000, 240);
    const [n1, n2] = lab.nodes;
    // Before, through node1; after, through node2, whose conntrack has never
    // seen these flows: Maglev alone decides (the test above shows both
    // nodes decide alike).
    const before = await udpFromPorts(lab, lab.external!.netns, n1!.ipv4, 30053, ports);
    await setEndpoints(eps().filter((e) => e.ip !== lab.pod('b2').ipv4));
    const after = await udpFromPorts(lab, lab.external!.netns, n2!.ipv4, 30053, ports);
    expect(before).not.toContain(null);
    expect(after).not.toContain(null);
    expect(after).not.toContain('b2');
    const moved = before.filter((p, i) => p !== after[i]).length / ports.length;
    const onRemoved = before.filter((p) => p === 'b2').length / ports.length;
    const strayed = before.filter((p, i) => p !== 'b2' && p !== after[i]).length / ports.length;
    console.log(`Maglev in the lab (M=16381), 4 -> 3 backends: ${(moved * 100).toFixed(1)}% of ${ports.length} flows moved (ideal 25%); `
      + `${(onRemoved * 100).toFixed(1)}% had been on the removed backend, ${(strayed * 100).toFixed(1)}% moved between the others`);
    expect(moved).toBeGreaterThan(0.12);
    expect(moved).toBeLessThan(0.4);
    expect(strayed).toBeLessThan(0.05);
    await setEndpoints(eps());
  });

  it('an existing UDP flow (fixed source port) whose backend is removed moves to a live backend within a second', async () => {
    const node1 = lab.nodes[0]!.ipv4;
    const sport = 43000;
    const [first] = await udpFromPorts(lab, lab.external!.netns, node1, 30053, [sport]);
    expect(PODS).toContain(first);
    // The same 5-tuple keeps sending (conntrack holds it on node1) while its backend is removed.
    const stream = udpStream(lab, lab.external!.netns, { host: node1, port: 30053, sport, intervalMs: 100, durationMs: 4000 });
    await new Promise((r) => setTimeout(r, 1200));
    const wrote = Date.now();
    const [synced1] = await setEndpoints(eps().filter((e) => e.ip !== lab.pod(first!).ipv4));
    const answers = await stream;
    const lastOld = Math.max(...answers.filter(([, p]) => p === first).map(([t]) => t));
    const firstNew = answers.find(([t, p]) => t > lastOld && p !== null && p !== first);
    console.log(`re-selection: the flow on ${first} answered from it until ${Math.round(lastOld - wrote)} ms after the endpoint was removed from the manifest `
      + `(node1 synced at ${Math.round(synced1! - wrote)} ms), then from ${firstNew?.[1]} at ${firstNew ? Math.round(firstNew[0] - wrote) : '-'} ms`);
    expect(answers.filter(([t]) => t < wrote).every(([, p]) => p === first)).toBe(true);
    expect(firstNew).toBeDefined();
    expect(firstNew![0] - synced1!).toBeLessThan(1000);
    // After the move, the flow stays on its new backend (a datagram answered
    // later than the 100 ms the client waits shows as null on a loaded machine).
    expect(new Set(answers.filter(([t, p]) => t > firstNew![0] && p !== null).map(([, p]) => p))).toEqual(new Set([firstNew![1]]));
    await setEndpoints(eps());
  });

  it(`sessionAffinity ClientIP on a NodePort: a client's new flows stay on one backend for the timeout (${AFFINITY_S} s), and pick afresh after it`, async () => {
    const node1 = lab.nodes[0]!.ipv4;
    const rounds: (string | null)[][] = [];
    for (let r = 0; r < 6; r++) {
      await new Promise((res) => setTimeout(res, AFFINITY_S * 1000 + 500));
      rounds.push(await udpFromPorts(lab, lab.external!.netns, node1, 30054, range(44000 + r * 10, 8)));
    }
    console.log(`affinity rounds (8 new flows each, ${AFFINITY_S + 0.5} s apart): ${rounds.map((r) => [...new Set(r)].join('/')).join(', ')}`);
    for (const r of rounds) expect(new Set(r).size, r.join(',')).toBe(1);
    expect(rounds.flat()).not.toContain(null);
    // Without the timeout every round would repeat the first backend: 6 rounds on one of 4 by chance is 1 in 1024.
    expect(new Set(rounds.map((r) => r[0])).size).toBeGreaterThan(1);
  });
});
