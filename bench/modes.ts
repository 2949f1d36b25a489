// Every dataplane that runs on this kernel, side by side, in one lab
// (root). Run: npx vite-node bench/modes.ts   (QUICK=1: 10 and 1,000 services)
//
// For each size (services x 10 endpoints, plus one service that answers) and
// each dataplane (bpf, nftables, iptables; ipvs only in the kernel-in-VM
// harness), in that dataplane's own lab node:
// 1. a full sync from empty: plan + program, bounded in time (a rule mode that
//    runs out is reported as such and not tried at larger sizes: its cost
//    only grows);
// 2. one endpoint change, event to dataplane: the slice's upsert, checkout,
//    plan and partial sync; up to 200 changes or a time budget, median and p99;
// 3. connections per second (connect, one request, close) from a pod of that
//    node through the ClusterIP, against the same client straight to the pod,
//    in alternating pairs (A B, B A, ...): the median of per-pair ratios.
// Each node's rules apply only to its own pods' traffic; all of it stays in
// the lab's namespaces, and everything is removed at the end.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { endpointsOf, mapSizesFor, median, NAMESPACE, quantile, service, slice } from './cluster.js';
import { ratioStats, record } from './results.js';
import { runIn } from './rule-sync.js';
import { BpfDataplane } from '../src/dataplane/bpf/dataplane.js';
import { cleanupPins } from '../src/dataplane/bpf/loader.js';
import { IptablesDataplane } from '../src/dataplane/iptables/dataplane.js';
import { DEFAULT_MASQUERADE_BIT } from '../src/dataplane/iptables/objects.js';
import type { XtRunner } from '../src/dataplane/iptables/xtables.js';
import { NftablesDataplane } from '../src/dataplane/nftables/dataplane.js';
import type { NftRunner } from '../src/dataplane/nftables/nft.js';
import type { Dataplane } from '../src/dataplane/types.js';
import { createLab, type Lab } from '../src/lab/lab.js';
import { ClusterState } from '../src/model/state.js';
import { DEFAULT_VALIDATION } from '../src/model/types.js';
import { DEFAULT_PLANNER_LIMITS, Planner } from '../src/planner/planner.js';
import { silentLogger } from '../src/util/log.js';
import { join } from 'node:path';

const QUICK = process.env.QUICK === '1';
const SIZES = QUICK ? [10, 1_000] : [10, 1_000, 10_000, 30_000];
const E = 10;
const MODES = ['bpf', 'nftables', 'iptables'] as const;
type Mode = (typeof MODES)[number];
/** A rule mode's full sync that takes longer is stopped there (and the mode skipped at larger sizes). */
const FULL_BUDGET_MS = QUICK ? 30_000 : 90_000;
const MAX_CHANGES = 200;
const CHANGE_BUDGET_MS = QUICK ? 4_000 : 15_000;
const MIN_CHANGES = 5;
const CONNECT_PAIRS = QUICK ? 4 : 8;
const CONNECTIONS = QUICK ? 100 : 200;
const LIVE_IP = '10.96.255.254';
const TARGET_CHANGE_P99_MS = 1;
const TARGET_CONNECT = 0.98;

const out = (s: string) => process.stdout.write(s + '\n');
const fmt = (ms: number) => (ms < 10 ? ms.toFixed(3) : ms.toFixed(0));

class Budget extends Error {}

/** The model of n services x E endpoints (and the live one), as the proxy's sources would fill it. */
function model(nodeName: string, n: number, server: string): ClusterState {
  const state = new ClusterState(nodeName, DEFAULT_VALIDATION, { rejected: (r) => { throw new Error(r.reason); }, warned: () => undefined });
  for (let i = 0; i < n; i++) {
    state.upsert('Service', `${NAMESPACE}/s${i}`, service(i), 'bench');
    state.upsert('EndpointSlice', `${NAMESPACE}/s${i}-1`, slice(i, endpointsOf(i, E)), 'bench');
  }
  state.upsert('Service', `${NAMESPACE}/live`, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'live', namespace: NAMESPACE }, spec: { clusterIP: LIVE_IP, ports: [{ name: 'http', port: 80 }] } }, 'bench');
  state.upsert('EndpointSlice', `${NAMESPACE}/live-1`, { ...slice(0, [server]), metadata: { name: 'live-1', namespace: NAMESPACE, labels: { 'kubernetes.io/service-name': 'live' } }, ports: [{ name: 'http', port: 80, protocol: 'TCP' }] }, 'bench');
  state.markSynced();
  return state;
}

function openMode(lab: Lab, mode: Mode, nodeName: string, n: number): Dataplane {
  const node = lab.node(nodeName);
  const log = pino({ level: 'silent' });
  if (mode === 'bpf') return BpfDataplane.open({ pinDir: join(node.bpffs, `modes-${n}`), cgroupRoot: node.cgroup, mapSizes: mapSizesFor(n, E), log: silentLogger() });
  if (mode === 'nftables') {
    const nft: NftRunner = (args, input) => runIn(lab, node.netns, ['nft', ...args], input);
    return new NftablesDataplane({ config: { clusterCidrs: { ip: ['10.244.0.0/16'], ip6: [] } }, log, nft });
  }
  const run: XtRunner = (command, args, input) => runIn(lab, node.netns, [command, ...args], input);
  const config = { clusterCidrs: { IPv4: ['10.244.0.0/16'], IPv6: [] }, masqueradeAll: false, masqueradeBit: DEFAULT_MASQUERADE_BIT, localhostNodePorts: false };
  return new IptablesDataplane({ config, log, families: ['IPv4'], run });
}

async function withBudget<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Budget()), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

interface Figures { fullMs: number | null; change: number[]; perSecond?: number; direct?: number; ratios?: number[] }

async function benchMode(lab: Lab, mode: Mode, n: number, serverIp: string): Promise<Figures> {
  const nodeName = `n-${mode}`;
  const client = lab.pod(`c-${mode}`);
  const state = model(nodeName, n, serverIp);
  const dp = openMode(lab, mode, nodeName, n);
  try {
    const planner = new Planner({ nodeName, nodePortAddresses: [], maglevTableSize: 16381, ...DEFAULT_PLANNER_LIMITS }, await dp.restore());
    let t = performance.now();
    const plan = planner.plan(state, state.checkout().services, {});
    const sync = dp.sync(plan.desired, { full: true, changed: plan.changed });
    let first;
    try {
      first = await withBudget(sync, FULL_BUDGET_MS);
    } catch (err) {
      if (!(err instanceof Budget)) throw err;
      await sync.catch(() => undefined); // let the tool finish before the node is reused or removed
      return { fullMs: null, change: [] };
    }
    const fullMs = performance.now() - t;
    if (first.errors.length > 0) throw new Error(`${mode}: ${first.errors[0]!.message}`);

    const change: number[] = [];
    const budgetEnd = performance.now() + CHANGE_BUDGET_MS;
    for (let k = 0; k < MAX_CHANGES + 5 && (k < MIN_CHANGES + 5 || performance.now() < budgetEnd); k++) {
      const i = (k * 7919) % n;
      const ips = endpointsOf(i, E);
      ips[0] = `10.250.${k & 255}.${1 + (k >> 8)}`;
      t = performance.now();
      state.upsert('EndpointSlice', `${NAMESPACE}/s${i}-1`, slice(i, ips), 'bench');
      const p = planner.plan(state, state.checkout().services);
      const r = await dp.sync(p.desired, { full: false, changed: p.changed });
      const ms = performance.now() - t;
      if (r.errors.length > 0) throw new Error(`${mode}: ${r.errors[0]!.message}`);
      if (k >= 5) change.push(ms); // the first few compile the path
    }

    // Connections: through the ClusterIP and straight to the pod, alternating which goes first.
    const rate = async (host: string): Promise<number> => {
      const rs = await lab.client(client, { proto: 'tcp', host, port: 80, count: CONNECTIONS, timeoutMs: 2000 });
      const failed = rs.filter((x) => !x.ok).length;
      if (failed > 0) throw new Error(`${mode}: ${failed} of ${CONNECTIONS} connections to ${host} failed`);
      return (1000 * CONNECTIONS) / rs.reduce((sum, x) => sum + x.ms, 0);
    };
    const ratios: number[] = [];
    const svc: number[] = [];
    const dir: number[] = [];
    for (let p = 0; p < CONNECT_PAIRS; p++) {
      let a: number;
      let b: number;
      if (p % 2 === 0) { a = await rate(LIVE_IP); await sleep(100); b = await rate(serverIp); }
      else { b = await rate(serverIp); await sleep(100); a = await rate(LIVE_IP); }
      svc.push(a);
      dir.push(b);
      ratios.push(a / b);
    }
    return { fullMs, change, perSecond: median(svc), direct: median(dir), ratios };
  } finally {
    // An empty full sync leaves the node's tables empty for the next size; bpf unpins.
    if (mode !== 'bpf') {
      const empty = new Planner({ nodeName, nodePortAddresses: [], maglevTableSize: 16381, ...DEFAULT_PLANNER_LIMITS }, await dp.restore());
      const none = new ClusterState(nodeName, DEFAULT_VALIDATION, { rejected: () => undefined, warned: () => undefined });
      none.markSynced();
      const p = empty.plan(none, none.checkout().services, {});
      await dp.sync(p.desired, { full: true, changed: p.changed }).catch(() => undefined);
    }
    await dp.dispose();
    if (mode === 'bpf') cleanupPins(join(lab.node(nodeName).bpffs, `modes-${n}`));
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    out('bench/modes.ts needs root: it builds a lab cluster and programs each dataplane in it');
    process.exitCode = 1;
    return;
  }
  const lab = await createLab({ nodes: [...MODES.map((m) => ({ name: `n-${m}`, pods: [{ name: `c-${m}` }] })), { name: 'n-server', pods: [{ name: 'server' }] }] });
  const stopped = new Set<Mode>();
  try {
    const serverIp = lab.pod('server').ipv4;
    out(`dataplanes side by side: services x ${E} endpoints; full sync budget ${FULL_BUDGET_MS / 1000} s; up to ${MAX_CHANGES} endpoint changes or ${CHANGE_BUDGET_MS / 1000} s; ${CONNECT_PAIRS} pairs of ${CONNECTIONS} connections`);
    out(`${'services'.padStart(8)} ${'dataplane'.padEnd(9)} ${'full sync'.padStart(10)} ${'change p50'.padStart(11)} ${'p99'.padStart(8)} ${'n'.padStart(4)} ${'conn/s'.padStart(7)} ${'direct'.padStart(7)} ${'ratio (min..max)'.padStart(20)}`);
    for (const n of SIZES) {
      const figures = new Map<Mode, Figures>();
      for (const mode of MODES) {
        if (stopped.has(mode)) {
          out(`${String(n).padStart(8)} ${mode.padEnd(9)} not run: its full sync ran out of ${FULL_BUDGET_MS / 1000} s at a smaller size`);
          continue;
        }
        const f = await benchMode(lab, mode, n, serverIp);
        figures.set(mode, f);
        if (f.fullMs === null) {
          stopped.add(mode);
          out(`${String(n).padStart(8)} ${mode.padEnd(9)} full sync > ${FULL_BUDGET_MS / 1000} s (stopped)`);
          record({ measurement: 'full-sync', dataplane: mode, services: n, endpoints: E, value: FULL_BUDGET_MS, unit: 'ms', extra: { note: 'ran out of its budget: at least this' } });
          continue;
        }
        const st = ratioStats(f.ratios!);
        out(`${String(n).padStart(8)} ${mode.padEnd(9)} ${fmt(f.fullMs).padStart(7)} ms ${fmt(median(f.change)).padStart(8)} ms ${fmt(quantile(f.change, 0.99)).padStart(5)} ms ${String(f.change.length).padStart(4)} ` +
          `${f.perSecond!.toFixed(0).padStart(7)} ${f.direct!.toFixed(0).padStart(7)} ${`${st.ratio.toFixed(2)} (${st.min.toFixed(2)}..${st.max.toFixed(2)})`.padStart(20)}`);
        record({ measurement: 'connect', dataplane: mode, services: n, value: f.perSecond!, unit: 'conn/s',
          baseline: { name: 'direct', value: f.direct!, ...st, better: 'higher' }, target: { text: `at least ${TARGET_CONNECT} of direct`, met: st.ratio >= TARGET_CONNECT } });
        record({ measurement: 'endpoint-change', dataplane: mode, services: n, endpoints: E, value: median(f.change), unit: 'ms',
          extra: { p99: quantile(f.change, 0.99), changes: f.change.length },
          ...(mode === 'bpf' ? { target: { text: `p99 under ${TARGET_CHANGE_P99_MS} ms`, met: quantile(f.change, 0.99) < TARGET_CHANGE_P99_MS } } : {}) });
      }
      // Full sync: the rule modes are the baselines of bpf's figure (one measurement each: a full
      // load of a rule mode at scale takes too long to repeat in pairs).
      const bpf = figures.get('bpf');
      const nft = figures.get('nftables');
      const ipt = figures.get('iptables');
      const timeTarget = n === 10_000 ? 100 : n === 30_000 ? 300 : undefined;
      if (bpf?.fullMs) {
        const base = nft?.fullMs ? { name: 'nftables', value: nft.fullMs } : ipt?.fullMs ? { name: 'iptables', value: ipt.fullMs } : undefined;
        const vsNft = nft?.fullMs ? nft.fullMs / bpf.fullMs : undefined;
        record({ measurement: 'full-sync', dataplane: 'bpf', services: n, endpoints: E, value: bpf.fullMs, unit: 'ms',
          ...(base ? { baseline: { ...base, ratio: base.value / bpf.fullMs, pairs: 1, better: 'lower' as const } } : {}),
          ...(ipt?.fullMs ? { extra: { 'iptables / bpf': ipt.fullMs / bpf.fullMs } } : {}),
          ...(timeTarget !== undefined ? { target: { text: `under ${timeTarget} ms and 4x faster than nftables`, met: bpf.fullMs < timeTarget && (vsNft === undefined || vsNft >= 4) } } : {}) });
      }
      for (const [mode, f] of [['nftables', nft], ['iptables', ipt]] as const) {
        if (f?.fullMs) record({ measurement: 'full-sync', dataplane: mode, services: n, endpoints: E, value: f.fullMs, unit: 'ms' });
      }
    }
  } finally {
    await lab.teardown();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
