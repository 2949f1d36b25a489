// A removed UDP backend, seen from an application's sockets. A pod streams
// datagrams to a ClusterIP with two backends from fixed source ports: over a
// connected socket (translated once, at connect()) and an unconnected one
// (translated per sendmsg). When the backend both use is removed, no datagram
// may reach it later than a second after the change: the connected socket is
// destroyed by the proxy (the application gets ECONNABORTED and reconnects,
// to the live backend), the unconnected one picks again by itself. The cases
// run once per way the kernel offers to destroy a socket: the socket
// iterator with bpf_sock_destroy (6.5+) and sock_diag's SOCK_DESTROY (the
// way of older kernels, forced through BPFPROXY_SOCK_DESTROY where both work). The same holds for an IPv6 connected socket, and for a NodePort
// and an IPv4-mapped ClusterIP reached from the pod when they picked the
// removed backend. Sockets connected to the backend's address directly, or
// through another service that still has it, are left alone.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeSockDestroy } from '../../src/dataplane/bpf/probe.js';
import { FORCE_ENV } from '../../src/dataplane/bpf/sock-destroy.js';
import { sockDiagProbe } from '../../src/dataplane/bpf/sock-diag-native.js';
import { statePathFor } from '../../src/dataplane/state-file.js';
import { createLab, type Lab } from '../../src/lab/lab.js';
import { LabProxy } from '../../src/lab/proxy.js';
import { LAB_TIME_SCALE, labMs } from '../../src/lab/time-scale.js';
import { UdpStream, type StreamRecord } from '../../src/lab/udp-stream.js';
import { PACKAGE_ROOT } from '../../src/util/paths.js';
import { DNS, put, service, slice } from '../helpers/lab-manifests.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('UDP dead-backend lab test skipped: it builds network namespaces and attaches BPF programs, which needs root');

/** The ways to destroy a socket, each with why this kernel cannot use it (null: it can). */
const WAYS = [
  { way: 'iterator', logged: /moved off removed backends \(socket iterator/, missing: isRoot ? probeSockDestroy() : 'needs root' },
  { way: 'sock-diag', logged: /moved off removed backends \(sock_diag/, missing: isRoot ? sockDiagProbe() : 'needs root' },
];
if (isRoot) for (const w of WAYS) if (w.missing) console.log(`UDP dead-backend lab cases over the ${w.way} skipped: it cannot run here: ${w.missing}`);

const VIP = '10.96.7.53';
const VIP6 = 'fd00:96::7:53';
/** A second service that keeps the backend the first one loses. */
const OTHER_VIP = '10.96.7.54';
const CONNECTED_PORT = 41053;
const UNCONNECTED_PORT = 41054;
const CONNECTED_V6_PORT = 41055;
const NODEPORT_SOCKET_PORT = 41056;
const MAPPED_SOCKET_PORT = 41057;
const NODE_PORT = 30053;
/** The bound the issue sets: no datagram to a removed backend later than this after the change. */
const MOVE_WITHIN_S = 1;
/**
 * The bound as asserted: the issue's on the host; in a guest under software
 * emulation (BPFPROXY_LAB_TIME_SCALE), where the proxy's own userland (file
 * watch, plan, sync) runs about 10x slower, scaled like the lab's waits. The
 * times measured are printed either way.
 */
const WITHIN_S = labMs(MOVE_WITHIN_S * 1000) / 1000;

describe.skipIf(!isRoot).each(WAYS)('connected and unconnected UDP sockets leave a removed backend within a second ($way)', ({ way, logged, missing }) => {
  let lab: Lab;
  let dir: string;
  let proxy: LabProxy;
  let stream: UdpStream | null = null;

  beforeAll(async () => {
    if (missing) return;
    lab = await createLab({ nodes: [{ name: 'node1', pods: [{ name: 'c1' }, { name: 'a1' }, { name: 'a2' }] }], ipv6: true });
    dir = mkdtempSync(join(tmpdir(), 'bpfproxy-lab-udp-dead-'));
    putDns(['a1', 'a2']);
    proxy = LabProxy.start(lab, lab.node('node1'), { manifests: dir, env: { [FORCE_ENV]: way } });
    await proxy.waitSynced();
  });

  afterAll(async () => {
    await stream?.stop().catch(() => undefined);
    await proxy?.stop().catch(() => undefined);
    await lab?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const backends = (names: string[], family: 'IPv4' | 'IPv6' = 'IPv4') => names.map((n) => ({ ip: family === 'IPv4' ? lab.pod(n).ipv4 : lab.pod(n).ipv6!, node: 'node1' }));
  /** The dual-stack UDP service with these endpoint pods. */
  const putDns = (pods: string[]) => put(dir, 'dns.yaml', `apiVersion: v1
kind: Service
metadata: {name: dns, namespace: lab}
spec:
  type: NodePort
  ipFamilyPolicy: RequireDualStack
  ipFamilies: [IPv4, IPv6]
  clusterIPs: [${VIP}, ${VIP6}]
  ports: [{name: dns, port: 53, protocol: UDP, nodePort: ${NODE_PORT}}]
---
${slice('dns', DNS, backends(pods))}---
${slice('dns', DNS, backends(pods, 'IPv6'), 'IPv6')}`);
  const SERVICE_SOCKETS = ['connected', 'unconnected', 'connected-v6'];
  const answered = (recs: StreamRecord[]) => recs.filter((r) => r.pod !== undefined);
  /** What a socket the proxy must leave alone may not see: an error other than an unanswered datagram (a loaded machine loses one now and then), or a reconnect. */
  const disturbed = (recs: StreamRecord[]) => recs.filter((r) => (r.error && r.error !== 'ETIMEDOUT') || r.reconnected);

  /** Starts the stream until the service sockets talk to the same backend (each picks at random: 1 in 4), bounded. */
  async function streamOnOneBackend(): Promise<{ s: UdpStream; backend: string }> {
    for (let attempt = 0; attempt < 40; attempt++) {
      const s = UdpStream.start(lab, lab.pod('c1'), [
        { name: 'connected', host: VIP, port: 53, bind: CONNECTED_PORT, connect: true },
        { name: 'unconnected', host: VIP, port: 53, bind: UNCONNECTED_PORT, connect: false },
        { name: 'connected-v6', host: VIP6, port: 53, bind: CONNECTED_V6_PORT, connect: true },
        // These two pick on their own: on the removed backend they must move like the others, on the live one be left alone.
        { name: 'nodeport', host: lab.node('node1').ipv4, port: NODE_PORT, bind: NODEPORT_SOCKET_PORT, connect: true },
        { name: 'v4-mapped', host: `::ffff:${VIP}`, port: 53, bind: MAPPED_SOCKET_PORT, connect: true },
        { name: 'direct-a1', host: lab.pod('a1').ipv4, port: 53, bind: CONNECTED_PORT + 10, connect: true },
        { name: 'direct-a2', host: lab.pod('a2').ipv4, port: 53, bind: CONNECTED_PORT + 11, connect: true },
      ], { maxMs: labMs(60_000) });
      await s.waitUntil(() => SERVICE_SOCKETS.every((n) => answered(s.of(n)).length >= 3), labMs(10_000), 'three answers on each service socket');
      // A socket stays on the backend it picked: at connect(), or for the unconnected flow (120 s idle).
      const picked = SERVICE_SOCKETS.map((n) => new Set(answered(s.of(n)).map((r) => r.pod)));
      for (const p of picked) expect(p.size).toBe(1);
      const all = new Set(picked.flatMap((p) => [...p]));
      if (all.size === 1) return { s, backend: [...all][0]! };
      await s.stop();
    }
    throw new Error('the service sockets never picked the same backend in 40 tries');
  }

  it.skipIf(missing !== null)(`uses the ${way}, says so in one log line and in \`bpfproxy status\``, async () => {
    const chosen = proxy.logs.filter((l) => /connected UDP sockets are moved off removed backends/.test(l.msg));
    expect(chosen.map((l) => l.msg)).toEqual([expect.stringMatching(logged)]);
    expect(chosen[0]?.path).toBe(way);
    console.log(`udp dead backend (${way}): ${chosen[0]?.msg}${chosen[0]?.ms === undefined ? '' : ` (${String(chosen[0].ms)} ms)`}`);
    expect(proxy.logs.some((l) => /keep a removed backend until they reconnect/.test(l.msg))).toBe(false);
    if (way === 'sock-diag') {
      // Built in on the host; a module on Debian's kernels, which the first request loads (docs/findings.md).
      const modules = existsSync('/proc/modules') ? readFileSync('/proc/modules', 'utf8') : ''; // no module support: all built in
      console.log(`udp dead backend (sock-diag): inet_diag ${/^inet_diag /m.test(modules) ? 'loaded as a module' : 'built in'}, udp_diag ${/^udp_diag /m.test(modules) ? 'loaded as a module' : 'built in'}`);
    }
    // What status shows, once the state file of the first sync is there.
    const node = lab.node('node1');
    for (let i = 0; i < 50 && !existsSync(statePathFor(node.bpffs)); i++) await new Promise((r) => setTimeout(r, 100));
    const r = await lab.exec(node.netns, [process.execPath, join(PACKAGE_ROOT, 'bin', 'bpfproxy'), 'status', '--bpf-fs', node.bpffs], { timeoutMs: labMs(20_000) });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^UDP sockets:\\s+connected UDP sockets are moved off removed backends \\(${way === 'iterator' ? 'socket iterator' : 'sock_diag'}`, 'm'));
  });

  it.skipIf(missing !== null)('moves the service sockets to the live backend; connected ones (IPv4, IPv6) see ECONNABORTED and reconnect', async () => {
    const { s, backend: removed } = await streamOnOneBackend();
    stream = s;
    const live = removed === 'a1' ? 'a2' : 'a1';
    // Another service that keeps the removed backend, and a socket connected through it.
    put(dir, 'other.yaml', `${service('other', OTHER_VIP, DNS)}---\n${slice('other', DNS, backends([removed]))}`);
    await proxy.waitSynced(proxy.logs.length);
    const bystander = UdpStream.start(lab, lab.pod('c1'), [{ name: 'other-service', host: OTHER_VIP, port: 53, bind: CONNECTED_PORT + 20, connect: true }], { maxMs: labMs(60_000) });
    await bystander.waitUntil(() => answered(bystander.of('other-service')).length >= 3, labMs(10_000), 'answers through the other service');
    const since = proxy.logs.length;
    const changedAt = Date.now() / 1000;
    putDns([live]);
    const synced = await proxy.waitSynced(since);
    const syncedAt = Date.now() / 1000;
    // Where the bound runs from: the change, on the host; in a guest under
    // emulation, where the manifest watch and the plan alone take seconds,
    // the sync that applied it (its log line's time: the destroy ran in it).
    const from = LAB_TIME_SCALE > 1 ? Date.parse(String(synced.time)) / 1000 : changedAt;
    // Both service sockets answered by the live backend, then a second more of traffic.
    await s.waitUntil(
      () => SERVICE_SOCKETS.every((n) => answered(s.of(n)).some((r) => r.sent! > changedAt && r.pod === live)),
      labMs(10_000), 'answers from the live backend on both service sockets');
    const settled = Date.now() / 1000;
    await s.waitUntil(() => answered(s.of('connected')).some((r) => r.sent! > settled + 1), labMs(10_000), 'a second of traffic after the move');
    await s.stop();
    await bystander.stop();
    stream = null;

    // The times first: they matter most when an assertion below fails.
    const said = proxy.logs.slice(since).find((l) => /closed connected UDP sockets/.test(l.msg));
    const firstLive = (name: string) => answered(s.of(name)).find((r) => r.sent! > changedAt && r.pod === live);
    const after = (t: number | undefined) => (t === undefined ? 'never' : ms(t - changedAt));
    // The aborted receive carries no send time: the reconnect after it does.
    const abortedAt = s.of('connected').find((r) => r.error === 'ECONNABORTED')?.sent ?? s.of('connected').find((r) => r.after === 'ECONNABORTED')?.reconnected;
    console.log(`udp dead backend (${way}): change -> synced ${ms(syncedAt - changedAt)} (sync logged ${after(Date.parse(String(synced.time)) / 1000)}), -> ECONNABORTED ${after(abortedAt)}, ` +
      `-> first answer from the live backend: connected ${after(firstLive('connected')?.sent)}, unconnected ${after(firstLive('unconnected')?.sent)}; ` +
      `${way} run ${String(said?.ms)} ms over ${String(said?.namespaces)} namespaces, ${String(said?.destroyed)} destroyed`);

    for (const name of SERVICE_SOCKETS) {
      const late = answered(s.of(name)).filter((r) => r.pod === removed && r.sent! > from + WITHIN_S);
      expect(late, name).toEqual([]);
    }
    const c1 = lab.pod('c1');
    for (const name of ['connected', 'connected-v6']) {
      const recs = s.of(name);
      const aborted = recs.find((r) => r.error === 'ECONNABORTED');
      expect(aborted, `${name}: ${JSON.stringify(recs.filter((r) => r.error || r.reconnected))}`).toBeDefined();
      const reconnect = recs.find((r) => r.reconnected !== undefined && r.after === 'ECONNABORTED');
      expect(reconnect, name).toBeDefined();
      expect(reconnect?.error, name).toBeUndefined();
    }
    // The same sockets and source ports, now on the live backend.
    const sources = { connected: `${c1.ipv4}:${CONNECTED_PORT}`, unconnected: `${c1.ipv4}:${UNCONNECTED_PORT}`, 'connected-v6': `[${c1.ipv6!}]:${CONNECTED_V6_PORT}` };
    for (const name of SERVICE_SOCKETS) {
      expect(firstLive(name)?.client, name).toBe(sources[name as keyof typeof sources]);
      expect(firstLive(name)!.sent! - from, name).toBeLessThan(WITHIN_S);
    }
    // The unconnected socket never errs: it re-picks on its next sendmsg.
    expect(s.of('unconnected').filter((r) => r.error && r.error !== 'ETIMEDOUT')).toEqual([]);
    // A NodePort from a pod and an IPv4-mapped ClusterIP on an IPv6 socket, through the same hooks:
    // moved when on the removed backend, untouched otherwise.
    const onRemoved: string[] = [];
    for (const [name, source] of [['nodeport', `${c1.ipv4}:${NODEPORT_SOCKET_PORT}`], ['v4-mapped', `${c1.ipv4}:${MAPPED_SOCKET_PORT}`]] as const) {
      const recs = s.of(name);
      const was = answered(recs).find((r) => r.sent! < changedAt)?.pod;
      expect(answered(recs).filter((r) => r.pod === removed && r.sent! > from + WITHIN_S), name).toEqual([]);
      if (was === removed) {
        onRemoved.push(name);
        expect(recs.some((r) => r.error === 'ECONNABORTED'), name).toBe(true);
      } else {
        expect(disturbed(recs), name).toEqual([]);
      }
      const after = answered(recs).filter((r) => r.sent! > settled);
      expect(after.length, name).toBeGreaterThan(0);
      expect(after.every((r) => r.pod === live && r.client === source), name).toBe(true);
    }
    // Sockets connected to a backend address without a service are not the proxy's: both keep talking.
    for (const name of ['direct-a1', 'direct-a2']) {
      expect(disturbed(s.of(name)), name).toEqual([]);
      expect(answered(s.of(name)).filter((r) => r.sent! > settled).length, name).toBeGreaterThan(0);
    }
    // Nor is a socket connected through a service that keeps the backend.
    expect(disturbed(bystander.of('other-service'))).toEqual([]);
    expect(answered(bystander.of('other-service')).filter((r) => r.sent! > settled).every((r) => r.pod === removed)).toBe(true);
    expect(answered(bystander.of('other-service')).filter((r) => r.sent! > settled).length).toBeGreaterThan(0);
    expect(said?.path).toBe(way);
    expect(said?.destroyed).toBe(2 + onRemoved.length); // the IPv4 and the IPv6 connected sockets, and those of onRemoved
    console.log(`udp dead backend (${way}): also moved: ${onRemoved.join(', ') || 'none (NodePort and v4-mapped were on the live backend)'}`);
  });
});

const ms = (s: number) => `${Math.round(s * 1000)} ms`;
