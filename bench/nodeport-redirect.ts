// NodePort packets per second to a LOCAL backend with the XDP local redirect
// (bpf/lib/redirect-local.h) against the same path without it and against
// iptables, in one lab, with the live-frames generator (bench/live-frames.ts:
// frames without an skb redirected from the wire's switch port into each
// node's eth0, as a NIC's ring hands them to its driver). Run (root):
//   npx vite-node bench/nodeport-redirect.ts      (QUICK=1: fewer rounds)
//
// Sides, all in place at once so that a round alternates them run by run:
// - `bpf redirect, pod GRO`: bpfproxy --devices eth0, its backend pod's eth0
//   with GRO on (its veth then takes redirected frames: the proxy writes
//   the redirect entry);
// - `bpf redirect, pod XDP`: the same with an XDP_PASS program on the pod's
//   eth0 instead of GRO (the other way to give the veth NAPI);
// - `bpf stack`: the same node, a backend pod with neither (no entry: DNAT
//   at XDP, XDP_PASS, the node's stack delivers it): what bpf did before;
// - `iptables` and `iptables, pod GRO`: --proxy-mode iptables on a node of
//   its own, its backend pod without and with GRO;
// - `routed`: frames addressed to the `bpf stack` pod itself through the bpf
//   node (nothing to translate): the stack's own cost, the floor of any
//   translate-and-pass dataplane;
// - `routed, redirect`: the same to the GRO pod, which the bpf node's XDP
//   redirects into its veth (stage_redirect_routed): what a backend's node
//   does with the second hop of another node's NodePort flow.
// Every node's eth0 has GRO on (the iptables node needs it, or its veth
// takes no redirected frame at all); a second pass turns it off on the bpf
// node (its XDP program gives that veth NAPI anyway). Counting: a tc program
// on each backend pod's eth0 counts and drops (LiveFrames.attachCounter).
// Rounds reverse their order every time; ratios are per round, reported as
// the median with min..max.
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { median } from './cluster.js';
import { ratioStats, record } from './results.js';
import { LiveFrames } from './live-frames.js';
import { createLab, type Lab } from '../src/lab/lab.js';
import { LabProxy } from '../src/lab/proxy.js';
import { prepareXdpLab, setLabGro } from '../src/lab/xdp.js';
import { put, service, slice, type PortSpec } from '../test/helpers/lab-manifests.js';

const QUICK = process.env.QUICK === '1';
const ROUNDS = QUICK ? 4 : 8;
const FRAMES = QUICK ? 50_000 : 200_000;
const WARMUP = 20_000;
const CHECK = 2000;
const SINK_PORT = 9000;

type Side = 'bpf redirect, pod GRO' | 'bpf redirect, pod XDP' | 'bpf stack' | 'iptables' | 'iptables, pod GRO' | 'routed' | 'routed, redirect';
interface SideSpec { side: Side; node: string; pod: string; nodePort: number | null }
const SIDES: SideSpec[] = [
  { side: 'bpf redirect, pod GRO', node: 'n-bpf', pod: 'p-gro', nodePort: 30091 },
  { side: 'bpf redirect, pod XDP', node: 'n-bpf', pod: 'p-xdp', nodePort: 30092 },
  { side: 'bpf stack', node: 'n-bpf', pod: 'p-none', nodePort: 30093 },
  { side: 'iptables', node: 'n-ipt', pod: 'q-none', nodePort: 30094 },
  { side: 'iptables, pod GRO', node: 'n-ipt', pod: 'q-gro', nodePort: 30095 },
  { side: 'routed', node: 'n-bpf', pod: 'p-none', nodePort: null },
  { side: 'routed, redirect', node: 'n-bpf', pod: 'p-gro', nodePort: null },
];

const started = Date.now();
const out = (s: string) => process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(3)} s] ${s}\n`);
const load = () => loadavg()[0]!.toFixed(1);
const k = (v: number) => `${(v / 1000).toFixed(0)}k`;
const spread = (s: { ratio: number; min: number; max: number }) => `${s.ratio.toFixed(2)} (${s.min.toFixed(2)}..${s.max.toFixed(2)})`;

function writeManifests(lab: Lab, dir: string): void {
  for (const s of SIDES) {
    if (s.nodePort === null) continue;
    const ports: PortSpec[] = [{ name: 'sink', port: SINK_PORT, protocol: 'UDP', nodePort: s.nodePort }];
    const name = `np-${s.nodePort}`;
    const pod = lab.pod(s.pod);
    put(dir, `${name}.yaml`, `${service(name, `10.96.5.${s.nodePort - 30000}`, ports, ['type: NodePort'])}---\n${slice(name, ports, [{ ip: pod.ipv4, node: pod.node }])}`);
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    out('bench/nodeport-redirect.ts needs root: it builds a lab cluster, runs bpfproxy in it and attaches XDP programs');
    process.exitCode = 1;
    return;
  }
  const lab = await createLab({
    nodes: [{ name: 'n-bpf', pods: [{ name: 'p-gro' }, { name: 'p-xdp' }, { name: 'p-none' }] }, { name: 'n-ipt', pods: [{ name: 'q-none' }, { name: 'q-gro' }] }],
    external: true,
  });
  const dir = mkdtempSync(join(tmpdir(), 'bpfproxy-bench-redirect-'));
  const proxies: LabProxy[] = [];
  let gen: LiveFrames | null = null;
  try {
    await prepareXdpLab(lab, [lab.external!.netns, ...lab.nodes.flatMap((n) => n.pods.map((p) => p.netns))]);
    gen = LiveFrames.open(lab);
    for (const p of ['p-gro', 'q-gro']) await setLabGro(lab, lab.pod(p).netns, 'eth0', true);
    gen.setXdp(lab.pod('p-xdp').netns, 'eth0', 'bench_pass');
    for (const n of lab.nodes) await gen.setGro(n.netns, 'eth0', true);
    // Neither node transmits XDP frames here (local backends only): the lab's XDP_PASS on their wire ports only taxes their skbs.
    for (const n of lab.nodes) gen.dropLabWirePass(n);
    writeManifests(lab, dir);
    // The node knows its pods' MACs once it has talked to them, as a real node has.
    for (const n of lab.nodes) for (const p of n.pods) await lab.client(n, { proto: 'tcp', host: p.ipv4, port: 80, count: 1, timeoutMs: 2000 });
    proxies.push(LabProxy.start(lab, lab.node('n-bpf'), { manifests: dir, args: ['--proxy-mode', 'bpf', '--no-fallback', '--devices', 'eth0'] }));
    proxies.push(LabProxy.start(lab, lab.node('n-ipt'), { manifests: dir, args: ['--proxy-mode', 'iptables', '--no-fallback'] }));
    await Promise.all(proxies.map((p) => p.waitSynced(0, 60_000)));
    const bpf = proxies[0]!;
    for (const p of ['p-gro', 'p-xdp']) {
      await bpf.waitFor((l) => l.msg === 'local backend reached by XDP redirect into its veth' && l.backend === lab.pod(p).ipv4, 20_000);
    }
    out(`lab up, proxies synced, redirect entries for p-gro and p-xdp (p-none has none); load ${load()}`);

    const packets = new Map<Side, Buffer>();
    for (const s of SIDES) {
      const node = lab.node(s.node);
      packets.set(s.side, await gen.packetTo(node, s.nodePort === null ? lab.pod(s.pod).ipv4 : node.ipv4, s.nodePort ?? SINK_PORT));
    }
    for (const s of SIDES) gen.attachCounter(lab.pod(s.pod), true);
    const g = gen;
    const run = (s: SideSpec, frames: number) => g.run(lab.node(s.node).wirePort, packets.get(s.side)!, frames, lab.pod(s.pod).ipv4, SINK_PORT);

    // Checks: every side delivers (a redirect that did not deliver would show here as frames lost).
    for (const s of SIDES) {
      await run(s, WARMUP);
      const r = await run(s, CHECK);
      out(`check ${s.side.padEnd(22)} ${r.counted} of ${CHECK} frames reached ${s.pod}'s eth0`);
      if (r.delivered < 0.9) throw new Error(`${s.side}: only ${r.counted} of ${CHECK} frames arrived`);
    }

    for (const bpfNodeGro of [true, false]) {
      await g.setGro(lab.node('n-bpf').netns, 'eth0', bpfNodeGro);
      await sleep(200);
      const pass = `bpf node eth0 GRO ${bpfNodeGro ? 'on' : 'off'}`;
      const runs = new Map<Side, number[]>(SIDES.map((s) => [s.side, []]));
      const before = await counters(bpf);
      for (let r = 0; r < ROUNDS; r++) {
        const order = r % 2 === 0 ? SIDES : [...SIDES].reverse();
        for (const s of order) runs.get(s.side)!.push((await run(s, FRAMES)).pps);
        out(`  ${pass}: round ${r + 1}/${ROUNDS} ${SIDES.map((s) => `${s.side} ${k(runs.get(s.side)!.at(-1)!)}`).join(', ')} (load ${load()})`);
      }
      const after = await counters(bpf);
      const ipt = runs.get('iptables')!;
      for (const s of SIDES) {
        const rs = runs.get(s.side)!;
        const vs = ratioStats(rs.map((x, i) => x / ipt[i]!));
        out(`${pass}: ${s.side.padEnd(22)} ${k(median(rs)).padStart(6)} pps  /iptables ${spread(vs)} over ${vs.pairs} rounds`);
        record({ measurement: 'nodeport-pps', dataplane: s.side, variant: `local backend, live XDP frames, ${pass}`, value: Math.round(median(rs)), unit: 'pkt/s',
          ...(s.side === 'iptables' ? {} : { baseline: { name: 'iptables', value: Math.round(median(ipt)), ...vs, better: 'higher' as const } }),
          extra: { 'frames per run': FRAMES, rounds: ROUNDS, 'load avg': Number(load()) },
          ...(s.side.startsWith('bpf redirect') ? { target: { text: 'at least 3x iptables', met: vs.ratio >= 3 } } : {}) });
      }
      const redirectRatio = ratioStats(runs.get('bpf redirect, pod GRO')!.map((x, i) => x / runs.get('bpf stack')![i]!));
      out(`${pass}: redirect (pod GRO) / stack path ${spread(redirectRatio)}; pkt_local_redirect +${after.redirect - before.redirect}, pkt_routed_redirect +${after.routed - before.routed}, pkt_local_ct +${after.ct - before.ct}`);
    }
  } finally {
    await gen?.close();
    await Promise.all(proxies.map((p) => p.stop().catch(() => 0)));
    await lab.teardown();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The bpf proxy's redirect and known-local-flow counters. */
async function counters(p: LabProxy): Promise<{ redirect: number; routed: number; ct: number }> {
  const body = (await p.http('/metrics')).body;
  const n = (label: string) => Number(body.match(new RegExp(`^bpfproxy_datapath_events_total\\{event="${label}"\\} (\\d+)`, 'm'))?.[1] ?? 0);
  return { redirect: n('pkt_local_redirect'), routed: n('pkt_routed_redirect'), ct: n('pkt_local_ct') };
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
