// Dataplane benchmark, as root, inside a lab cluster. Run:
//
//   npx vite-node bench/sync.ts [services=10000] [endpoints-per-service=1]
//
// Every figure is printed next to a baseline measured in the same run:
// 1. Full sync of N services: bpfproxy (plan + write the pinned maps, from
//    empty) against `nft -f` of the same services in kube-proxy's nftables
//    shape (a service map, a chain per service and per endpoint), loaded in a
//    lab node's namespace.
// 2. Periodic full resync with nothing changed (dump + diff), against the
//    same full load (kube-proxy rewrites its whole ruleset on a full sync).
// 3. One endpoint change, event to maps, against nftables adding one service
//    to the loaded ruleset (kube-proxy's partial sync in nftables mode).
// 4. Connections per second through a ClusterIP against straight to the pod.
// 5. Resident memory of this process (it holds the state, the plan and the mirror).
// Everything runs in the lab's namespaces and cgroup and is removed at the end.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { BpfDataplane } from '../src/dataplane/bpf/dataplane.js';
import { createLab, type Lab } from '../src/lab/lab.js';
import { ClusterState } from '../src/model/state.js';
import type { KubeObject } from '../src/model/objects.js';
import { DEFAULT_VALIDATION } from '../src/model/types.js';
import { DEFAULT_PLANNER_LIMITS, Planner } from '../src/planner/planner.js';
import { silentLogger } from '../src/runtime/log.js';

const N = Number(process.argv[2] ?? 10_000);
const E = Number(process.argv[3] ?? 1);
const CHANGES = 200;

const clusterIP = (i: number) => `10.96.${(i >> 8) & 255}.${i & 255}`;
const endpointIP = (i: number, j: number) => {
  const n = i * E + j;
  return `10.${128 | ((n >> 16) & 127)}.${(n >> 8) & 255}.${n & 255}`;
};

function service(i: number): KubeObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name: `s${i}`, namespace: 'bench' }, spec: { clusterIP: clusterIP(i), ports: [{ name: 'http', port: 80 }] } };
}

function slice(i: number, ips: string[]): KubeObject {
  return {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: { name: `s${i}-1`, namespace: 'bench', labels: { 'kubernetes.io/service-name': `s${i}` } },
    addressType: 'IPv4', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: ips.map((ip) => ({ addresses: [ip], nodeName: 'other' })),
  };
}

/**
 * kube-proxy's nftables shape (pkg/proxy/nftables/proxier.go), for `count`
 * services of E endpoints: a service map, a chain per service whose
 * `numgen random mod E vmap { ... }` picks an endpoint chain, which DNATs.
 * kube-proxy writes the vmap even for one endpoint. `plainGoto` replaces it
 * with a direct goto: not what kube-proxy does, a friendlier second baseline
 * (Debian 12's nft 1.0.6 loads a vmap per service in superlinear time).
 */
function nftRuleset(first: number, count: number, withBase: boolean, plainGoto = false): string {
  const out: string[] = [];
  if (withBase) {
    out.push('add table ip kube-proxy',
      'add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; }',
      'add chain ip kube-proxy mark-for-masquerade',
      'add rule ip kube-proxy mark-for-masquerade mark set mark or 0x4000',
      'add chain ip kube-proxy services',
      'add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips',
      'add chain ip kube-proxy nat-output { type nat hook output priority -100 ; policy accept ; }',
      'add rule ip kube-proxy nat-output jump services',
      'add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; policy accept ; }',
      'add rule ip kube-proxy nat-prerouting jump services');
  }
  for (let i = first; i < first + count; i++) {
    const eps = Array.from({ length: E }, (_, j) => endpointIP(i, j));
    eps.forEach((ip, j) => {
      out.push(`add chain ip kube-proxy endpoint-${i}-${j}`);
      out.push(`add rule ip kube-proxy endpoint-${i}-${j} ip saddr ${ip} jump mark-for-masquerade`);
      out.push(`add rule ip kube-proxy endpoint-${i}-${j} meta l4proto tcp dnat to ${ip}:8080`);
    });
    out.push(`add chain ip kube-proxy service-${i}`);
    out.push(`add rule ip kube-proxy service-${i} ip daddr ${clusterIP(i)} tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade`);
    out.push(plainGoto
      ? `add rule ip kube-proxy service-${i} goto endpoint-${i}-0`
      : `add rule ip kube-proxy service-${i} numgen random mod ${E} vmap { ${eps.map((_, j) => `${j} : goto endpoint-${i}-${j}`).join(', ')} }`);
    out.push(`add element ip kube-proxy service-ips { ${clusterIP(i)} . tcp . 80 : goto service-${i} }`);
  }
  return out.join('\n') + '\n';
}

async function timed(lab: Lab, netns: string, argv: string[]): Promise<number> {
  const t = performance.now();
  const r = await lab.exec(netns, argv, { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
  return performance.now() - t;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const fmt = (ms: number) => (ms < 10 ? ms.toFixed(3) : ms.toFixed(0));
function line(what: string, ours: number, base: number, baseName: string, unit = 'ms', lowerIsBetter = true): void {
  const ratio = lowerIsBetter ? base / ours : ours / base;
  process.stdout.write(`${what.padEnd(46)} bpfproxy ${fmt(ours).padStart(8)} ${unit}   ${baseName} ${fmt(base).padStart(8)} ${unit}   ${ratio.toFixed(2)}x ${lowerIsBetter ? 'faster' : 'of it'}\n`);
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stdout.write('bench/sync.ts needs root: it builds a lab cluster and loads BPF programs\n');
    process.exitCode = 1;
    return;
  }
  const lab = await createLab({ nodes: [{ name: 'node1', pods: [{ name: 'client' }] }, { name: 'node2', pods: [{ name: 'server' }] }] });
  const tmp = mkdtempSync(join(tmpdir(), 'bpfproxy-bench-'));
  try {
    const node = lab.node('node1');
    process.stdout.write(`${N} services x ${E} endpoints\n`);

    // --- nftables, in node2's namespace (nothing there uses it) ---
    const nsNft = lab.node('node2').netns;
    writeFileSync(join(tmp, 'full.nft'), nftRuleset(0, N, true));
    const nftFull = await timed(lab, nsNft, ['nft', '-f', join(tmp, 'full.nft')]);
    const nftOne: number[] = [];
    for (let k = 0; k < 10; k++) {
      writeFileSync(join(tmp, 'one.nft'), nftRuleset(N + k, 1, false));
      nftOne.push(await timed(lab, nsNft, ['nft', '-f', join(tmp, 'one.nft')]));
    }
    await lab.exec(nsNft, ['nft', 'delete', 'table', 'ip', 'kube-proxy']);
    writeFileSync(join(tmp, 'plain.nft'), nftRuleset(0, N, true, true));
    const nftPlain = await timed(lab, nsNft, ['nft', '-f', join(tmp, 'plain.nft')]);
    await lab.exec(nsNft, ['nft', 'delete', 'table', 'ip', 'kube-proxy']);

    // --- bpfproxy, attached to node1's cgroup, pinned in node1's bpffs dir ---
    const state = new ClusterState('node1', DEFAULT_VALIDATION, { rejected: (r) => { throw new Error(r.reason); }, warned: () => undefined });
    for (let i = 0; i < N; i++) {
      state.upsert('Service', `bench/s${i}`, service(i), 'bench');
      state.upsert('EndpointSlice', `bench/s${i}-1`, slice(i, Array.from({ length: E }, (_, j) => endpointIP(i, j))), 'bench');
    }
    // One service that really answers, for the connection rate.
    const server = lab.pod('server');
    state.upsert('Service', 'bench/live', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'live', namespace: 'bench' }, spec: { clusterIP: '10.96.255.254', ports: [{ name: 'http', port: 80 }] } }, 'bench');
    state.upsert('EndpointSlice', 'bench/live-1', { ...slice(0, [server.ipv4]), metadata: { name: 'live-1', namespace: 'bench', labels: { 'kubernetes.io/service-name': 'live' } }, ports: [{ name: 'http', port: 80, protocol: 'TCP' }] }, 'bench');
    state.markSynced();
    const dp = BpfDataplane.open({ pinDir: node.bpffs, cgroupRoot: node.cgroup, mapSizes: {}, log: silentLogger() });
    try {
      const planner = new Planner({ nodeName: 'node1', nodePortAddresses: [], maglevTableSize: 16381, ...DEFAULT_PLANNER_LIMITS }, await dp.restore());
      let t = performance.now();
      const plan = planner.plan(state, state.checkout().services, {});
      const planMs = performance.now() - t;
      t = performance.now();
      const first = await dp.sync(plan.desired, { full: true, changed: plan.changed });
      const writeMs = performance.now() - t;
      if (first.errors.length > 0) throw new Error(first.errors[0]!.message);
      line('full sync: plan + write every service', planMs + writeMs, nftFull, 'nft -f (kube-proxy shape)');
      line('', planMs + writeMs, nftPlain, 'nft -f (goto, no vmap)');
      process.stdout.write(`${''.padEnd(46)} (plan ${fmt(planMs)} ms + write ${fmt(writeMs)} ms, ${first.upserts} map entries)\n`);

      const resync: number[] = [];
      for (let k = 0; k < 5; k++) {
        t = performance.now();
        await dp.sync(plan.desired, { full: true, changed: new Set() });
        resync.push(performance.now() - t);
      }
      // kube-proxy's nftables mode rewrites the whole ruleset on a full sync: a full load is its cost.
      line('periodic full resync, nothing changed', median(resync), nftFull, 'nft -f (kube-proxy shape)');

      const change: number[] = [];
      for (let k = 0; k < CHANGES; k++) {
        const i = (k * 7919) % N;
        t = performance.now();
        state.upsert('EndpointSlice', `bench/s${i}-1`, slice(i, [endpointIP(i, 0), `10.250.${k & 255}.1`]), 'bench');
        const co = state.checkout();
        const p = planner.plan(state, co.services);
        await dp.sync(p.desired, { full: false, changed: p.changed });
        change.push(performance.now() - t);
      }
      line('one endpoint change, event to datapath', median(change), median(nftOne), 'nft add one service');

      // Connections: the same client and server, through the service or
      // straight, in alternating rounds so that machine noise hits both alike.
      const rounds = 6;
      const count = 400;
      let directMs = 0;
      let serviceMs = 0;
      for (let r = 0; r < rounds; r++) {
        for (const [host, add] of [[server.ipv4, (ms: number) => (directMs += ms)], ['10.96.255.254', (ms: number) => (serviceMs += ms)]] as const) {
          const rs = await lab.client(lab.pod('client'), { proto: 'tcp', host, port: 80, count, timeoutMs: 2000 });
          const failed = rs.filter((x) => !x.ok).length;
          if (failed > 0) throw new Error(`${failed} of ${count} connections to ${host} failed`);
          add(rs.reduce((n, x) => n + x.ms, 0));
        }
      }
      const perSecond = (ms: number) => (1000 * rounds * count) / ms;
      line('connections per second through the ClusterIP', perSecond(serviceMs), perSecond(directMs), 'direct', 'c/s', false);
      process.stdout.write(`${'resident memory of this process'.padEnd(46)} ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB (heap ${(process.memoryUsage().heapUsed / 1e6).toFixed(0)} MB)\n`);
    } finally {
      await dp.dispose();
    }
  } finally {
    await lab.teardown();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
