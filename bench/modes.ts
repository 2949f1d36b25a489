// Every dataplane that runs on this kernel, side by side, in one lab
// (root). Run: npx vite-node bench/modes.ts   (QUICK=1: 10 and 1,000 services)
//
//   BENCH_MODES=ipvs,nftables,iptables BENCH_SIZES=100,1000   other dataplanes and sizes
//   BENCH_FULL_BUDGET_S=N BENCH_CHANGE_BUDGET_S=N             other time budgets
//   BENCH_CONNECT_PAIRS=N BENCH_CONNECTIONS=N                  fewer connection pairs (a slow guest)
//
// The first dataplane named is the one whose full sync is compared with the
// others' (bpf here; ipvs in the VM guest of bench/vm-bench.ts, the only place
// ipvs runs: the host kernel has no IPVS).
//
// For each size (services x 10 endpoints, plus one service that answers) and
// each dataplane, in that dataplane's own lab node:
// 1. a full sync from empty: plan + program, once, bounded in time: a rule
//    mode that runs out is stopped there (its tool is killed, not waited
//    for), recorded as "over budget at N" and not tried at larger sizes, its
//    cost only grows; a mode whose cost is known to exceed the run's time
//    plan at a size (LIMITS) is recorded as not measured there, with why;
// 2. one endpoint change, event to dataplane: the slice's upsert, checkout,
//    plan and partial sync. bpf: BENCH_CHANGES (1,000) changes sent open loop
//    by a worker thread every BENCH_CHANGE_PACE_MS (4 ms: about a tenth of a
//    core), through the proxy's runner and with the state-file writer on,
//    timed from the event's send to the end of its sync
//    (bench/change-latency.ts); p50, p90, p99 and max, and the cause of every
//    slow one. The rule modes: one change at a time, up to 200 or a time
//    budget;
// 3. connections per second (connect, one request, close) from a pod of that
//    node through the ClusterIP, against the same client straight to the pod,
//    in alternating pairs (A B, B A, ...): the median of per-pair ratios.
// Each node's rules apply only to its own pods' traffic; all of it stays in
// the lab's namespaces, and everything is removed at the end.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { getHeapSpaceStatistics } from 'node:v8';
import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { endpointsOf, mapSizesFor, median, NAMESPACE, quantile, service, slice } from './cluster.js';
import { ratioStats, record } from './results.js';
import { runIn } from './rule-sync.js';
import { execFileSync } from 'node:child_process';
import { BpfDataplane } from '../src/dataplane/bpf/dataplane.js';
import { cleanupPins } from '../src/dataplane/bpf/loader.js';
import { IptablesDataplane } from '../src/dataplane/iptables/dataplane.js';
import { DEFAULT_MASQUERADE_BIT } from '../src/dataplane/iptables/objects.js';
import { IpvsDataplane } from '../src/dataplane/ipvs/dataplane.js';
import { createDummy } from '../src/dataplane/ipvs/exec.js';
import { DEFAULT_IPVS_SCHEDULER } from '../src/util/ipvs-schedulers.js';
import type { XtRunner } from '../src/dataplane/iptables/xtables.js';
import { NftablesDataplane } from '../src/dataplane/nftables/dataplane.js';
import type { NftRunner } from '../src/dataplane/nftables/nft.js';
import type { Dataplane } from '../src/dataplane/types.js';
import { createLab, type Lab } from '../src/lab/lab.js';
import { ClusterState } from '../src/model/state.js';
import { DEFAULT_VALIDATION } from '../src/model/types.js';
import { DEFAULT_PLANNER_LIMITS, Planner } from '../src/planner/planner.js';
import { silentLogger } from '../src/util/log.js';
import { NodeStateWriter } from '../src/dataplane/state-file.js';
import { bracket, latency, measureChanges, slowSummary, type ChangeRun, type Interval } from './change-latency.js';
import { join } from 'node:path';
import { demoteHelperThreads } from '../src/util/thread-priority.js';

const QUICK = process.env.QUICK === '1';
/** In a VM guest (bench/vm-bench.ts): its kernel. The guest is slow: progress lines within each mode. */
const GUEST = process.env.BPFPROXY_VM;
const ALL_MODES = ['bpf', 'nftables', 'iptables', 'ipvs'] as const;
type Mode = (typeof ALL_MODES)[number];
const MODES: Mode[] = (process.env.BENCH_MODES ?? 'bpf,nftables,iptables').split(',').map((m) => {
  if (!(ALL_MODES as readonly string[]).includes(m)) throw new Error(`BENCH_MODES: unknown dataplane ${m} (${ALL_MODES.join(', ')})`);
  return m as Mode;
});
const SIZES = process.env.BENCH_SIZES ? process.env.BENCH_SIZES.split(',').map(Number) : QUICK ? [10, 1_000] : [10, 1_000, 10_000, 30_000];
const E = 10;
/**
 * The largest size a mode is tried at, and why not beyond: make bench has 20
 * minutes in all (bench/run.ts). In the full run of 2 December 2026 on an idle
 * machine, iptables' full sync of 10,000 x 10 ran out of 90 s (nftables
 * loaded 30,000 x 10 in 73 s, bpf in 2.5 s).
 */
const LIMITS: Partial<Record<Mode, { max: number; why: string }>> = {
  iptables: { max: 10_000, why: 'its full sync of 10,000 services x 10 already ran out of 90 s on an idle machine, and grows faster than the ruleset: larger sizes do not fit make bench\'s 20 minutes' },
};
/**
 * A full sync that takes longer is stopped there, its tool killed (the mode
 * is then skipped at larger sizes): one try, not repeated, since a rule mode's
 * full load at 30,000 costs a minute or more (bench/run.ts has the time plan).
 */
const FULL_BUDGET_MS = process.env.BENCH_FULL_BUDGET_S ? 1000 * Number(process.env.BENCH_FULL_BUDGET_S) : QUICK ? 20_000 : 60_000;
/** nftables at 30,000 took 73 s on an idle machine: the largest size gets that much more room. */
const fullBudgetMs = (n: number): number => (n >= 30_000 && !process.env.BENCH_FULL_BUDGET_S ? 90_000 : FULL_BUDGET_MS);
const MAX_CHANGES = 200;
/**
 * bpf: changes per size. A p99 of 200 is the second slowest, so two stalls
 * decide it; of 1,000 it is the eleventh. Paced (open loop) so the run
 * measures latency, not a saturated loop: 1,000 x 4 ms is 4 s per size.
 */
const BPF_CHANGES = Number(process.env.BENCH_CHANGES ?? (QUICK ? 500 : 1000));
const CHANGE_PACE_MS = Number(process.env.BENCH_CHANGE_PACE_MS ?? 4);
const BPF_WARMUP = 50;
const CHANGE_BUDGET_MS = process.env.BENCH_CHANGE_BUDGET_S ? 1000 * Number(process.env.BENCH_CHANGE_BUDGET_S) : QUICK ? 3_000 : 10_000;
const MIN_CHANGES = 5;
const CONNECT_PAIRS = Number(process.env.BENCH_CONNECT_PAIRS ?? (QUICK ? 3 : 6));
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? (QUICK ? 100 : 200));
/**
 * In a VM guest: the modules the rule modes' first sync would make the kernel
 * load one by one (each autoload took tens of seconds under TCG; see
 * test/lab/ipvs.test.ts), loaded once before anything is timed.
 */
const GUEST_MODULES = ['ip_vs', 'ip_vs_rr', 'dummy', 'ip_set_hash_ipport', 'ip_set_hash_ipportip', 'ip_set_hash_ipportnet', 'ip_set_bitmap_port', 'xt_set',
  'xt_addrtype', 'xt_mark', 'xt_comment', 'xt_conntrack', 'xt_MASQUERADE', 'xt_tcpudp', 'xt_statistic', 'ipt_REJECT', 'nft_compat', 'nft_chain_nat',
  'nft_numgen', 'nft_ct', 'nft_reject_inet', 'nf_tables'];
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

/** Until when the rule tools may run (performance.now()): a full sync's budget ends them; set by benchMode. */
let toolDeadline = Infinity;
const toolTimeout = () => Math.min(120_000, Math.max(1, toolDeadline - performance.now()));

async function openMode(lab: Lab, mode: Mode, nodeName: string, n: number): Promise<Dataplane> {
  const node = lab.node(nodeName);
  const log = pino({ level: 'silent' });
  if (mode === 'bpf') return BpfDataplane.open({ pinDir: join(node.bpffs, `modes-${n}`), cgroupRoot: node.cgroup, mapSizes: mapSizesFor(n, E), log: silentLogger() });
  if (mode === 'nftables') {
    const nft: NftRunner = (args, input) => runIn(lab, node.netns, ['nft', ...args], input, toolTimeout());
    return new NftablesDataplane({ config: { clusterCidrs: { ip: ['10.244.0.0/16'], ip6: [] } }, log, nft });
  }
  const run: XtRunner = (command, args, input) => runIn(lab, node.netns, [command, ...args], input, toolTimeout());
  if (mode === 'ipvs') {
    // What openIpvs (src/dataplane/ipvs/mode.ts) prepares, in the node's namespace: kube-ipvs0 and the
    // sysctl that lets the masquerade rules see IPVS traffic (the modules are loaded in main()).
    if (!(await lab.exec(node.netns, ['ip', '-o', 'link', 'show'])).stdout.includes('kube-ipvs0')) {
      const r = await createDummy(run);
      if (!r.ok) throw new Error(`ipvs: cannot create kube-ipvs0: ${r.stderr}`);
    }
    await lab.exec(node.netns, ['sysctl', '-qw', 'net.ipv4.vs.conntrack=1']);
    const config = { clusterCidrs: { IPv4: ['10.244.0.0/16'], IPv6: [] }, masqueradeAll: false, masqueradeBit: DEFAULT_MASQUERADE_BIT, scheduler: DEFAULT_IPVS_SCHEDULER };
    return new IpvsDataplane({ config, log, families: ['IPv4'], run });
  }
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

/** BENCH_CHANGE_PROFILE=PREFIX: a CPU profile of the changes alone (PREFIX-<size>.cpuprofile, for Chrome's DevTools). */
async function startProfile(): Promise<() => Promise<object>> {
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object) => new Promise<unknown>((resolve, reject) => session.post(method, params ?? {}, (err, r) => (err ? reject(err) : resolve(r))));
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 100 });
  await post('Profiler.start');
  return async () => {
    const r = (await post('Profiler.stop')) as { profile: object };
    session.disconnect();
    return r.profile;
  };
}

/**
 * Bytes allocated per change, by stage (median of ALLOC_CHANGES, untimed,
 * after the timed ones): what fills the young generation, whose
 * scavenges are the garbage collections the changes meet. Measured as the
 * growth of V8's new space across each stage, a stage that met a scavenge
 * skipped, less what the measuring itself allocates.
 */
const ALLOC_CHANGES = 200;
async function allocationPerChange(dp: BpfDataplane, state: ClusterState, planner: Planner, n: number): Promise<Record<string, number>> {
  const used = () => getHeapSpaceStatistics().find((x) => x.space_name === 'new_space')!.space_used_size;
  const stages: Record<string, number[]> = { event: [], 'model upsert': [], 'checkout + plan': [], 'bpf sync': [] };
  const self: number[] = [];
  const take = (name: string, a: number, b: number) => { if (b >= a) stages[name]!.push(b - a); };
  for (let k = 0; k < ALLOC_CHANGES; k++) {
    const a0 = used();
    const a1 = used();
    if (a1 >= a0) self.push(a1 - a0);
    const i = ((100_000 + k) * 7919) % n;
    const event = changedSlice(i, 2000 + k);
    const a2 = used();
    state.upsert('EndpointSlice', `${NAMESPACE}/s${i}-1`, event, 'bench');
    const a3 = used();
    const p = planner.plan(state, state.checkout().services);
    const a4 = used();
    await dp.sync(p.desired, { full: false, changed: p.changed });
    const a5 = used();
    take('event', a1, a2);
    take('model upsert', a2, a3);
    take('checkout + plan', a3, a4);
    take('bpf sync', a4, a5);
  }
  const base = median(self);
  return Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, Math.max(0, median(v) - base)]));
}

/** Service i's slice with its first endpoint replaced: change k. */
function changedSlice(i: number, k: number) {
  const ips = endpointsOf(i, E);
  ips[0] = `10.250.${k & 255}.${1 + (k >> 8)}`;
  return slice(i, ips);
}

/**
 * Step 2 for bpf: paced changes through the proxy's runner, with the state
 * file written beside them as in the proxy (a temporary directory, removed
 * after), each write recorded so a change that waited for one says so.
 */
async function bpfChanges(dp: BpfDataplane, state: ClusterState, planner: Planner, n: number): Promise<ChangeRun & { writes: number; periodicMs: number; alloc: Record<string, number> }> {
  const stalls: Interval[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'bpfproxy-bench-state-'));
  const writer = new NodeStateWriter(join(dir, 'state.msgpack'), { mode: 'bpf', reason: 'bench', node: 'n-bpf', pinDir: dir }, {
    schedule: (ms, fn) => {
      const t = setTimeout(() => bracket(stalls, 'state file write', fn), ms);
      t.unref();
      return () => clearTimeout(t);
    },
  });
  dp.nodeState = writer;
  let failure: Error | null = null;
  const profile = process.env.BENCH_CHANGE_PROFILE ? await startProfile() : null;
  try {
    const run = await measureChanges({
      count: BPF_CHANGES, warmup: BPF_WARMUP, paceMs: CHANGE_PACE_MS, budgetMs: Math.max(CHANGE_BUDGET_MS, 3 * (BPF_CHANGES + BPF_WARMUP) * CHANGE_PACE_MS), stalls,
      // The state file's first write after a start sizes the encoder's arrays (state-file.ts) once; a
      // running proxy did that at its start. Later writes, every one in the run, are counted.
      settle: async () => { while (writer.stats.writes === 0) await sleep(5); },
      apply: (k) => {
        const i = (k * 7919) % n;
        state.upsert('EndpointSlice', `${NAMESPACE}/s${i}-1`, changedSlice(i, k), 'bench');
      },
      sync: async (full) => {
        const p = planner.plan(state, state.checkout().services);
        const r = await dp.sync(p.desired, { full, changed: p.changed });
        if (r.errors.length > 0) failure ??= new Error(`bpf: ${r.errors[0]!.message}`);
      },
    });
    if (failure) throw failure;
    // The proxy's periodic full sync (--sync-period, 30 s) runs on the same loop: an event that
    // arrives during it waits for all of it. Timed once, with the mirror clean, as it runs then.
    const t0 = performance.now();
    const p = planner.plan(state, state.checkout().services);
    await dp.sync(p.desired, { full: true, changed: p.changed });
    const periodicMs = performance.now() - t0;
    return { ...run, writes: writer.stats.writes, periodicMs, alloc: await allocationPerChange(dp, state, planner, n) };
  } finally {
    if (profile) writeFileSync(`${process.env.BENCH_CHANGE_PROFILE}-${n}.cpuprofile`, JSON.stringify(await profile()));
    dp.nodeState = null;
    writer.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Figures { fullMs: number | null; change: number[]; perSecond?: number; direct?: number; ratios?: number[] }

async function benchMode(lab: Lab, mode: Mode, n: number, serverIp: string, last: boolean): Promise<Figures> {
  const nodeName = `n-${mode}`;
  const client = lab.pod(`c-${mode}`);
  const state = model(nodeName, n, serverIp);
  const dp = await openMode(lab, mode, nodeName, n);
  let stopped = false;
  try {
    const planner = new Planner({ nodeName, nodePortAddresses: [], maglevTableSize: 16381, ...DEFAULT_PLANNER_LIMITS }, await dp.restore());
    let t = performance.now();
    toolDeadline = t + fullBudgetMs(n);
    const plan = planner.plan(state, state.checkout().services, {});
    const sync = dp.sync(plan.desired, { full: true, changed: plan.changed });
    let first;
    try {
      first = await withBudget(sync, fullBudgetMs(n));
      // A tool killed at the deadline fails the sync just before the budget's own timer fires.
      if (first.errors.length > 0 && performance.now() >= toolDeadline) throw new Budget();
    } catch (err) {
      if (!(err instanceof Budget)) throw err;
      await sync.catch(() => undefined); // its tool is killed at the same deadline: this is short
      stopped = true;
      return { fullMs: null, change: [] };
    } finally {
      toolDeadline = Infinity;
    }
    const fullMs = performance.now() - t;
    if (GUEST) out(`   ${mode} at ${n}: full sync ${fmt(fullMs)} ms; endpoint changes next`);
    if (first.errors.length > 0) throw new Error(`${mode}: ${first.errors[0]!.message}`);

    let change: number[] = [];
    if (dp instanceof BpfDataplane) {
      const run = await bpfChanges(dp, state, planner, n);
      change = run.samples.map(latency);
      const x = run.samples.map((s) => s.cpuMs);
      const queued = run.samples.map((s) => s.received - s.sent);
      out(`${''.padStart(8)} ${''.padEnd(9)} ${slowSummary(run, TARGET_CHANGE_P99_MS)}`);
      out(`${''.padStart(8)} ${''.padEnd(9)} ${run.samples.length} of ${BPF_CHANGES} changes in ${run.syncs} syncs${run.unfinished > 0 ? ` (${run.unfinished} not done within the budget)` : ''}; ` +
        `queued (send to receipt) p50 ${fmt(median(queued))} ms, p99 ${fmt(quantile(queued, 0.99))} ms; on the main thread's CPU from receipt to datapath p50 ${fmt(median(x))} ms, p90 ${fmt(quantile(x, 0.9))} ms, p99 ${fmt(quantile(x, 0.99))} ms, max ${fmt(Math.max(...x))} ms; event loop delay p50 ${fmt(run.loopDelay.p50)} ms, p99 ${fmt(run.loopDelay.p99)} ms, max ${fmt(run.loopDelay.max)} ms; ` +
        `state file written ${run.writes} times; allocated per change ${Object.entries(run.alloc).map(([k, v]) => `${k} ${(v / 1024).toFixed(1)} KiB`).join(', ')}; a periodic full sync holds the loop ${fmt(run.periodicMs)} ms (every --sync-period: ${(run.periodicMs / 300).toFixed(2)}% of the time at 30 s)`);
    } else {
      const budgetEnd = performance.now() + CHANGE_BUDGET_MS;
      const warmup = 5;
      for (let k = 0; k < MAX_CHANGES + warmup && (k < MIN_CHANGES + warmup || performance.now() < budgetEnd); k++) {
        const i = (k * 7919) % n;
        t = performance.now();
        state.upsert('EndpointSlice', `${NAMESPACE}/s${i}-1`, changedSlice(i, k), 'bench');
        const p = planner.plan(state, state.checkout().services);
        const r = await dp.sync(p.desired, { full: false, changed: p.changed });
        const end = performance.now();
        if (r.errors.length > 0) throw new Error(`${mode}: ${r.errors[0]!.message}`);
        if (k >= warmup) change.push(end - t);
      }
    }

    if (GUEST) out(`   ${mode} at ${n}: ${change.length} endpoint changes; connections next`);
    // Connections: through the ClusterIP and straight to the pod, alternating which goes first.
    // In a guest under emulation a connection now and then outlasts its 2 s (the direct ones too):
    // a few are tolerated there, and the rate is over those that completed.
    const tolerated = GUEST ? Math.floor(CONNECTIONS / 10) : 0;
    const rate = async (host: string): Promise<number> => {
      const rs = await lab.client(client, { proto: 'tcp', host, port: 80, count: CONNECTIONS, timeoutMs: 2000 });
      const ok = rs.filter((x) => x.ok);
      if (CONNECTIONS - ok.length > tolerated) throw new Error(`${mode}: ${CONNECTIONS - ok.length} of ${CONNECTIONS} connections to ${host} failed`);
      return (1000 * ok.length) / ok.reduce((sum, x) => sum + x.ms, 0);
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
    // An empty full sync leaves the node's tables empty for the next size; bpf unpins. Not after the
    // last size nor a stopped mode (the node is not used again: the lab's teardown removes it all).
    if (mode !== 'bpf' && !last && !stopped) {
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
  if (GUEST) {
    try {
      execFileSync('modprobe', ['-a', '-q', ...GUEST_MODULES], { stdio: 'pipe' });
    } catch {
      // Built in, or missing: a mode that lacks one fails its first sync with the tool's message.
    }
  }
  // As the proxy's main() does, before any Worker is made (src/util/thread-priority.ts); BENCH_HELPER_IDLE=0 leaves them (the comparison).
  const helpers = process.env.BENCH_HELPER_IDLE === '0' ? null : demoteHelperThreads();
  out(helpers ? `Node's helper threads (${helpers.lowered}) as SCHED_IDLE, as the proxy starts them${helpers.failed.length ? `; ${helpers.failed.length} refused` : ''}` : 'Node\'s helper threads left at the event loop\'s priority (BENCH_HELPER_IDLE=0; the proxy lowers them)');
  const lab = await createLab({ nodes: [...MODES.map((m) => ({ name: `n-${m}`, pods: [{ name: `c-${m}` }] })), { name: 'n-server', pods: [{ name: 'server' }] }] });
  /** Why a mode is not run at the sizes left. */
  const stopped = new Map<Mode, string>();
  try {
    const serverIp = lab.pod('server').ipv4;
    out(`dataplanes side by side${process.env.BPFPROXY_VM ? ` in a VM guest, kernel ${process.env.BPFPROXY_VM}` : ''}: ${MODES.join(', ')} at ${SIZES.join(', ')} services x ${E} endpoints; ` +
      `full sync once, budget ${FULL_BUDGET_MS / 1000} s${SIZES.some((n) => fullBudgetMs(n) !== FULL_BUDGET_MS) ? ` (${fullBudgetMs(30_000) / 1000} s at 30,000)` : ''}; ` +
      `bpf: ${BPF_CHANGES} endpoint changes, one every ${CHANGE_PACE_MS} ms, through the runner; the others: up to ${MAX_CHANGES} or ${CHANGE_BUDGET_MS / 1000} s; ${CONNECT_PAIRS} pairs of ${CONNECTIONS} connections`);
    out(`${'services'.padStart(8)} ${'dataplane'.padEnd(9)} ${'full sync'.padStart(10)} ${'change p50'.padStart(11)} ${'p90'.padStart(8)} ${'p99'.padStart(8)} ${'max'.padStart(8)} ${'n'.padStart(4)} ${'conn/s'.padStart(7)} ${'direct'.padStart(7)} ${'ratio (min..max)'.padStart(20)}`);
    for (const [idx, n] of SIZES.entries()) {
      const figures = new Map<Mode, Figures>();
      for (const mode of MODES) {
        const limit = LIMITS[mode];
        if (!stopped.has(mode) && limit && n > limit.max) stopped.set(mode, `tried up to ${limit.max.toLocaleString('en-US')} services only: ${limit.why}`);
        const why = stopped.get(mode);
        if (why) {
          out(`${String(n).padStart(8)} ${mode.padEnd(9)} not measured: ${why}`);
          record({ measurement: 'full-sync', dataplane: mode, services: n, endpoints: E, value: 0, unit: 'ms', notMeasured: why });
          continue;
        }
        const f = await benchMode(lab, mode, n, serverIp, idx === SIZES.length - 1);
        figures.set(mode, f);
        if (f.fullMs === null) {
          const budget = fullBudgetMs(n);
          stopped.set(mode, `its full sync ran over its ${budget / 1000} s budget at ${n.toLocaleString('en-US')} services`);
          out(`${String(n).padStart(8)} ${mode.padEnd(9)} full sync over budget at ${n.toLocaleString('en-US')}: stopped after ${budget / 1000} s`);
          record({ measurement: 'full-sync', dataplane: mode, services: n, endpoints: E, value: budget, unit: 'ms', overBudget: true });
          continue;
        }
        const st = ratioStats(f.ratios!);
        out(`${String(n).padStart(8)} ${mode.padEnd(9)} ${fmt(f.fullMs).padStart(7)} ms ${fmt(median(f.change)).padStart(8)} ms ${fmt(quantile(f.change, 0.9)).padStart(5)} ms ${fmt(quantile(f.change, 0.99)).padStart(5)} ms ${fmt(Math.max(...f.change)).padStart(5)} ms ${String(f.change.length).padStart(4)} ` +
          `${f.perSecond!.toFixed(0).padStart(7)} ${f.direct!.toFixed(0).padStart(7)} ${`${st.ratio.toFixed(2)} (${st.min.toFixed(2)}..${st.max.toFixed(2)})`.padStart(20)}`);
        record({ measurement: 'connect', dataplane: mode, services: n, value: f.perSecond!, unit: 'conn/s',
          baseline: { name: 'direct', value: f.direct!, ...st, better: 'higher' }, target: { text: `at least ${TARGET_CONNECT} of direct`, met: st.ratio >= TARGET_CONNECT } });
        record({ measurement: 'endpoint-change', dataplane: mode, services: n, endpoints: E, value: median(f.change), unit: 'ms',
          extra: { p90: quantile(f.change, 0.9), p99: quantile(f.change, 0.99), max: Math.max(...f.change), changes: f.change.length },
          ...(mode === 'bpf' ? { target: { text: `p99 under ${TARGET_CHANGE_P99_MS} ms`, met: quantile(f.change, 0.99) < TARGET_CHANGE_P99_MS } } : {}) });
      }
      // Full sync: the rule modes are the baselines of the first mode's figure (one measurement each:
      // a full load of a rule mode at scale takes too long to repeat in pairs).
      const subject = MODES[0]!;
      const ours = figures.get(subject);
      const nft = subject === 'nftables' ? undefined : figures.get('nftables');
      const ipt = subject === 'iptables' ? undefined : figures.get('iptables');
      const timeTarget = subject !== 'bpf' ? undefined : n === 10_000 ? 100 : n === 30_000 ? 300 : undefined;
      if (ours?.fullMs) {
        const base = nft?.fullMs ? { name: 'nftables', value: nft.fullMs } : ipt?.fullMs ? { name: 'iptables', value: ipt.fullMs } : undefined;
        const vsNft = nft?.fullMs ? nft.fullMs / ours.fullMs : undefined;
        record({ measurement: 'full-sync', dataplane: subject, services: n, endpoints: E, value: ours.fullMs, unit: 'ms',
          ...(base ? { baseline: { ...base, ratio: base.value / ours.fullMs, pairs: 1, better: 'lower' as const } } : {}),
          ...(ipt?.fullMs ? { extra: { [`iptables / ${subject}`]: ipt.fullMs / ours.fullMs } } : {}),
          ...(timeTarget !== undefined ? { target: { text: `under ${timeTarget} ms and 4x faster than nftables`, met: ours.fullMs < timeTarget && (vsNft === undefined || vsNft >= 4) } } : {}) });
      }
      for (const mode of MODES.slice(1)) {
        const f = figures.get(mode);
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
