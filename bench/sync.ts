// Dataplane benchmark, as root, inside a lab cluster. Run:
//
//   npx vite-node bench/sync.ts [services endpoints-per-service]
//
// Sizes: 10,000 x 10 (bench/modes.ts and bench/dataplane.ts take the others);
// QUICK=1: 1,000 x 10; or the one size given. What this bench alone measures,
// each figure next to a baseline measured in the same run (the periodic
// resync is bench/dataplane.ts's, connections through a ClusterIP
// bench/modes.ts's):
// 1. Full sync of N services: bpfproxy (plan + write the pinned maps, from
//    empty) against `nft -f` of the same services in kube-proxy's nftables
//    shape (a service map, a chain per service and per endpoint), loaded in a
//    lab node's namespace. The nft load is bounded in time (make bench's time
//    plan, bench/run.ts); one that runs out is reported as such.
// 2. One endpoint change, event to datapath (one endpoint of a service
//    replaced by a new address): the slice's upsert into the
//    model, checkout, plan, partial sync of the pinned maps; 200 of them,
//    median and p99. Baseline: nft adding one kube-proxy-shaped service to
//    the loaded ruleset (kube-proxy's partial sync in nftables mode). The two
//    alternate in pairs (one nft add, then a block of 40 changes; the next
//    pair the other way round, 200 ms apart); the median of per-pair ratios
//    and their spread are printed. 20 changes before them are not counted
//    (a running proxy's code is compiled); the changes that took 1 ms or
//    more are counted, with how many of them a garbage collection fell into
//    and how many the kernel preempted (on a loaded 2-core machine, most).
// Everything runs in the lab's namespaces and cgroup and is removed at the end.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance, PerformanceObserver } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { clusterIP, endpointsOf, mapSizesFor, median, NAMESPACE, quantile, ratioSummary, service, slice } from './cluster.js';
import { ratioStats, record } from './results.js';
import { BpfDataplane } from '../src/dataplane/bpf/dataplane.js';
import { cleanupPins } from '../src/dataplane/bpf/loader.js';
import { TableSync } from '../src/dataplane/bpf/sync.js';
import { createLab, type Lab } from '../src/lab/lab.js';
import { ClusterState } from '../src/model/state.js';
import { DEFAULT_VALIDATION } from '../src/model/types.js';
import { DEFAULT_PLANNER_LIMITS, Planner } from '../src/planner/planner.js';
import { silentLogger } from '../src/util/log.js';
import { demoteHelperThreads } from '../src/util/thread-priority.js';

const QUICK = process.env.QUICK === '1';
const SIZES: [number, number][] = process.argv[2]
  ? [[Number(process.argv[2]), Number(process.argv[3] ?? 1)]]
  : QUICK ? [[1_000, 10]] : [[10_000, 10]];
const CHANGES = 200;
const PAIRS = 5;
/** One `nft -f` of a whole ruleset; nft 1.0.6 loads kube-proxy's shape in superlinear time (docs/findings.md). */
const NFT_LOAD_BUDGET_MS = QUICK ? 20_000 : 30_000;
/**
 * Loading the ruleset in chunks instead, when the single load ran out: the
 * one-change baseline needs it loaded. nft's cost is superlinear in the size
 * of one transaction more than in the ruleset already loaded (measured here,
 * 10 endpoints per service: chunks of 1,000 services took 1.4-3.1 s each,
 * growing slowly, 23 s for 10,000; chunks of 3,000 took 15-30 s each).
 */
const NFT_CHUNK = 1_000;
const NFT_CHUNKED_BUDGET_MS = QUICK ? 20_000 : 45_000;
const NFT_ONE_TIMEOUT_MS = 60_000;
const TARGET_CHANGE_P99_MS = 1;
/** Changes made before the counted ones (the running proxy's code is compiled long before). */
const WARMUP_CHANGES = 20;
/** A pause between the two sides of a pair, so that one's aftermath (deferred kernel work, an exiting nft) does not land on the other. */
const SETTLE_MS = 200;

/** Every garbage collection of the run, to tell whether a slow change fell into one. */
const gcs: { start: number; end: number }[] = [];
new PerformanceObserver((list) => {
  for (const g of list.getEntries()) gcs.push({ start: g.startTime, end: g.startTime + g.duration });
}).observe({ entryTypes: ['gc'] });

/**
 * kube-proxy's nftables shape (pkg/proxy/nftables/proxier.go), for `count`
 * services of e endpoints: a service map, a chain per service whose
 * `numgen random mod E vmap { ... }` picks an endpoint chain, which DNATs.
 * kube-proxy writes the vmap even for one endpoint (Debian 12's nft 1.0.6
 * loads a vmap per service in superlinear time).
 */
function nftRuleset(first: number, count: number, e: number, withBase: boolean): string {
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
    const eps = endpointsOf(i, e);
    eps.forEach((ip, j) => {
      out.push(`add chain ip kube-proxy endpoint-${i}-${j}`);
      out.push(`add rule ip kube-proxy endpoint-${i}-${j} ip saddr ${ip} jump mark-for-masquerade`);
      out.push(`add rule ip kube-proxy endpoint-${i}-${j} meta l4proto tcp dnat to ${ip}:8080`);
    });
    out.push(`add chain ip kube-proxy service-${i}`);
    out.push(`add rule ip kube-proxy service-${i} ip daddr ${clusterIP(i)} tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade`);
    out.push(`add rule ip kube-proxy service-${i} numgen random mod ${e} vmap { ${eps.map((_, j) => `${j} : goto endpoint-${i}-${j}`).join(', ')} }`);
    out.push(`add element ip kube-proxy service-ips { ${clusterIP(i)} . tcp . 80 : goto service-${i} }`);
  }
  return out.join('\n') + '\n';
}

/** `nft -f FILE` in netns: its wall time, or null when it did not finish within timeoutMs (it is killed: nothing is committed). */
async function nftLoad(lab: Lab, netns: string, file: string, timeoutMs: number): Promise<number | null> {
  const t = performance.now();
  try {
    const r = await lab.exec(netns, ['nft', '-f', file], { timeoutMs });
    if (r.code !== 0) throw new Error(`nft -f ${file}: ${r.stderr}`);
  } catch (err) {
    if (performance.now() - t >= timeoutMs) return null;
    throw err;
  }
  return performance.now() - t;
}

async function nftFlush(lab: Lab, netns: string): Promise<void> {
  await lab.exec(netns, ['nft', 'delete', 'table', 'ip', 'kube-proxy'], { timeoutMs: 120_000 });
}

const fmt = (ms: number) => (ms < 10 ? ms.toFixed(3) : ms.toFixed(0));
const out = (s: string) => process.stdout.write(s + '\n');

/** One measurement: ours, the baseline (null: it ran out of time, at least `bound`), and the ratio. */
function line(what: string, ours: number, base: number | null, baseName: string, bound = 0, unit = 'ms', lowerIsBetter = true): void {
  const baseText = base === null ? `> ${fmt(bound)}` : fmt(base);
  const ratio = base === null ? `> ${(bound / ours).toFixed(0)}x faster (nft stopped)` : `${(lowerIsBetter ? base / ours : ours / base).toFixed(2)}x ${lowerIsBetter ? 'faster' : 'of it'}`;
  out(`${what.padEnd(46)} bpfproxy ${fmt(ours).padStart(8)} ${unit}   ${baseName} ${baseText.padStart(8)} ${unit}   ${ratio}`);
}

async function benchSize(lab: Lab, tmp: string, n: number, e: number): Promise<void> {
  const node = lab.node('node1');
  out(`\n${n} services x ${e} endpoints`);

  // --- nftables, in node2's namespace (nothing there uses it) ---
  const nsNft = lab.node('node2').netns;
  const fullFile = join(tmp, 'full.nft');
  writeFileSync(fullFile, nftRuleset(0, n, e, true));
  const nftFull = await nftLoad(lab, nsNft, fullFile, NFT_LOAD_BUDGET_MS);
  // The one-change baseline needs the ruleset loaded: if the single load ran
  // out of time, load it in chunks (one transaction each, each far cheaper),
  // as far as a second budget allows.
  let loaded = nftFull === null ? 0 : n;
  if (nftFull === null) {
    const deadline = performance.now() + NFT_CHUNKED_BUDGET_MS;
    while (loaded < n && performance.now() < deadline) {
      const count = Math.min(NFT_CHUNK, n - loaded);
      writeFileSync(join(tmp, 'chunk.nft'), nftRuleset(loaded, count, e, loaded === 0));
      if ((await nftLoad(lab, nsNft, join(tmp, 'chunk.nft'), Math.max(1, deadline - performance.now()))) === null) break;
      loaded += count;
    }
  }

  // --- bpfproxy, attached to node1's cgroup, pinned in a directory of node1's bpffs dir ---
  const pinDir = join(node.bpffs, `${n}x${e}`);
  const state = new ClusterState('node1', DEFAULT_VALIDATION, { rejected: (r) => { throw new Error(r.reason); }, warned: () => undefined });
  for (let i = 0; i < n; i++) {
    state.upsert('Service', `${NAMESPACE}/s${i}`, service(i), 'bench');
    state.upsert('EndpointSlice', `${NAMESPACE}/s${i}-1`, slice(i, endpointsOf(i, e)), 'bench');
  }
  state.markSynced();
  const dp = BpfDataplane.open({ pinDir, cgroupRoot: node.cgroup, mapSizes: mapSizesFor(n, e), log: silentLogger() });
  try {
    const planner = new Planner({ nodeName: 'node1', nodePortAddresses: [], maglevTableSize: 16381, ...DEFAULT_PLANNER_LIMITS }, await dp.restore());
    let t = performance.now();
    const plan = planner.plan(state, state.checkout().services, {});
    const planMs = performance.now() - t;
    t = performance.now();
    const first = await dp.sync(plan.desired, { full: true, changed: plan.changed });
    const writeMs = performance.now() - t;
    if (first.errors.length > 0) throw new Error(first.errors[0]!.message);
    line('full sync: plan + write every service', planMs + writeMs, nftFull, 'nft -f (kube-proxy shape)', NFT_LOAD_BUDGET_MS);
    const tm = TableSync.last!;
    out(`${''.padEnd(46)} (plan ${fmt(planMs)} ms + write ${fmt(writeMs)} ms, ${first.upserts} map entries; the write: encode ${fmt(tm.encode)} ms, ` +
      `diff ${fmt(tm.diff)} ms, JavaScript around the writes ${fmt(tm.upsert + tm.prune - tm.kernel)} ms, batch syscalls ${fmt(tm.kernel)} ms)`);
    record({ measurement: 'kube-proxy-nft-full', dataplane: 'bpf', services: n, endpoints: e, value: planMs + writeMs, unit: 'ms',
      baseline: { name: nftFull === null ? `nft -f (stopped at ${NFT_LOAD_BUDGET_MS} ms)` : 'nft -f', value: nftFull ?? NFT_LOAD_BUDGET_MS, ratio: (nftFull ?? NFT_LOAD_BUDGET_MS) / (planMs + writeMs), pairs: 1, better: 'lower' },
      extra: { 'plan ms': planMs, 'write ms': writeMs, entries: first.upserts } });

    // One endpoint change: pairs of (one nft add, a block of our changes), alternating which goes first.
    let k = 0;
    const change: number[] = [];
    /** [start, end] of each counted change, to tell which ones a garbage collection fell into. */
    const spans: [number, number][] = [];
    /** The model's and the planner's share of each change (the rest is the dataplane's partial sync). */
    const modelAndPlan: number[] = [];
    /** Whether the kernel took the CPU away during the change (an involuntary context switch; on a loaded machine the main cause of a slow one). */
    const preempted: boolean[] = [];
    const nftOne: number[] = [];
    const ratios: number[] = [];
    const oneChange = async (): Promise<number> => {
      const i = (k * 7919) % n;
      // One endpoint replaced (a pod restarted with a new address), the others kept.
      const ips = endpointsOf(i, e);
      ips[0] = `10.250.${k & 255}.${1 + (k >> 8)}`;
      const event = slice(i, ips);
      // From here: the event arrives at the model.
      const switches = process.resourceUsage().involuntaryContextSwitches;
      const t0 = performance.now();
      state.upsert('EndpointSlice', `${NAMESPACE}/s${i}-1`, event, 'bench');
      const co = state.checkout();
      const p = planner.plan(state, co.services);
      const tp = performance.now();
      const r = await dp.sync(p.desired, { full: false, changed: p.changed });
      const t1 = performance.now();
      if (r.errors.length > 0) throw new Error(r.errors[0]!.message);
      k++;
      spans.push([t0, t1]);
      preempted.push(process.resourceUsage().involuntaryContextSwitches > switches);
      modelAndPlan.push(tp - t0);
      return t1 - t0;
    };
    // A running proxy has compiled this path long ago: the first changes (JIT) are not counted.
    for (let w = 0; w < WARMUP_CHANGES; w++) await oneChange();
    spans.length = 0;
    modelAndPlan.length = 0;
    preempted.length = 0;
    const ourBlock = async (): Promise<number> => {
      const block: number[] = [];
      for (let b = 0; b < CHANGES / PAIRS; b++) block.push(await oneChange());
      change.push(...block);
      return median(block);
    };
    const nftAdd = async (p: number): Promise<number> => {
      const file = join(tmp, 'one.nft');
      writeFileSync(file, nftRuleset(n + p, 1, e, false));
      const ms = await nftLoad(lab, nsNft, file, NFT_ONE_TIMEOUT_MS);
      if (ms === null) throw new Error(`nft adding one service took over ${NFT_ONE_TIMEOUT_MS} ms`);
      nftOne.push(ms);
      return ms;
    };
    for (let p = 0; p < PAIRS; p++) {
      let ours: number;
      let theirs: number;
      if (p % 2 === 0) {
        theirs = await nftAdd(p);
        await sleep(SETTLE_MS);
        ours = await ourBlock();
      } else {
        ours = await ourBlock();
        await sleep(SETTLE_MS);
        theirs = await nftAdd(p);
      }
      await sleep(SETTLE_MS);
      ratios.push(theirs / ours);
    }
    await nftFlush(lab, nsNft);
    await sleep(1); // garbage-collection entries arrive on a later turn
    const p99 = quantile(change, 0.99);
    const slow = spans.map((s, j) => ({ s, j })).filter(({ s: [a, b] }) => b - a >= TARGET_CHANGE_P99_MS);
    const slowInGc = slow.filter(({ s: [a, b] }) => gcs.some((g) => g.start < b && g.end > a)).length;
    const slowPreempted = slow.filter(({ j }) => preempted[j]).length;
    out(`${'one endpoint change, event to datapath'.padEnd(46)} bpfproxy ${fmt(median(change)).padStart(8)} ms median, ${fmt(p99)} ms p99, ${fmt(Math.max(...change))} ms max (${change.length})` +
      `   nft add one service ${fmt(median(nftOne))} ms (median of ${nftOne.length})   ${ratioSummary(ratios)} faster`);
    record({ measurement: 'kube-proxy-nft-change', dataplane: 'bpf', services: n, endpoints: e, value: median(change), unit: 'ms',
      baseline: { name: 'nft adding one service', value: median(nftOne), ...ratioStats(ratios), better: 'lower' },
      extra: { p99, changes: change.length, 'slow in GC': slowInGc, 'slow preempted': slowPreempted },
      target: { text: `p99 under ${TARGET_CHANGE_P99_MS} ms`, met: p99 < TARGET_CHANGE_P99_MS } });
    const syncShare = spans.map(([a, b], j) => b - a - modelAndPlan[j]!);
    out(`${''.padEnd(46)} median split: upsert + checkout + plan ${fmt(median(modelAndPlan))} ms, dataplane partial sync ${fmt(median(syncShare))} ms`);
    out(`${''.padEnd(46)} target p99 under ${TARGET_CHANGE_P99_MS} ms: ${p99 < TARGET_CHANGE_P99_MS ? 'met' : 'NOT met'}; ${slow.length} of ${change.length} changes took ${TARGET_CHANGE_P99_MS} ms or more: ${slowInGc} during a garbage collection, ${slowPreempted} preempted` +
      (loaded < n ? `\n${''.padEnd(46)} nft's ruleset held ${loaded} of the ${n} services (loaded in chunks of ${NFT_CHUNK} until its time budget ran out)` : ''));

    out(`${'resident memory of this bench process'.padEnd(46)} ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB (heap ${(process.memoryUsage().heapUsed / 1e6).toFixed(0)} MB; bench/memory.ts measures the proxy's)`);
  } finally {
    await dp.dispose();
    // Unpins the maps and detaches the programs: the next size starts from empty maps.
    cleanupPins(pinDir);
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stdout.write('bench/sync.ts needs root: it builds a lab cluster and loads BPF programs\n');
    process.exitCode = 1;
    return;
  }
  // As the proxy's main() does (src/util/thread-priority.ts): V8's helpers no longer preempt the changes.
  demoteHelperThreads();
  const lab = await createLab({ nodes: [{ name: 'node1', pods: [] }, { name: 'node2', pods: [] }] });
  const tmp = mkdtempSync(join(tmpdir(), 'bpfproxy-bench-'));
  try {
    for (const [n, e] of SIZES) await benchSize(lab, tmp, n, e);
  } finally {
    await lab.teardown();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
