// Resident memory of the real proxy process fed by the Kubernetes source, as
// root, inside a lab node. Run:
//
//   npx vite-node bench/memory.ts [services] [endpoints-per-service]    (default 10,000 and 30,000 x 10; QUICK=1: 10,000 x 10)
//   PROFILE=DIR: also writes, per loaded run, DIR/N-RUN.json (smaps_rollup, V8 heap spaces)
//   and DIR/N-RUN.heapsnapshot (read it with bench/heap-breakdown.ts)
//   PROXY_NODE_OPTIONS='...': node flags for the proxy instead of the DaemonSet's (deploy/bpfproxy.yaml's
//   NODE_OPTIONS, which the proxy runs with by default here: the proxy as deployed)
//
// The fake API server (test/helpers/fake-apiserver.ts, through bench/apiserver.ts)
// runs inside the node's network namespace and serves N services x E endpoints;
// `bpfproxy run --kubeconfig ...` runs there too, in the node's cgroup, pinning into the node's bpffs directory (src/lab/proxy.ts).
// Once it has synced everything and /healthz is 200, its VmRSS (and VmHWM, the
// peak) is read from /proc and its V8 heap from its own /metrics.
// Baseline, same run: the same proxy against an API server serving no
// services (Node, the Kubernetes client and the BPF object loaded). The two run
// in alternating pairs (A B, B A); the median of the per-pair ratios and their
// spread are printed. The pins are removed between runs (`bpfproxy cleanup`), so
// every run starts from empty maps. Everything is removed at the end.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { mapSizesFor, median, ratioSummary } from './cluster.js';
import { ratioStats, record } from './results.js';
import { createLab, type Lab, type LabNode } from '../src/lab/lab.js';
import type { LabProcess } from '../src/lab/process.js';
import { LabProxy, type LogLine } from '../src/lab/proxy.js';
import { parseAllDocuments } from 'yaml';
import { PACKAGE_ROOT } from '../src/util/paths.js';

const QUICK = process.env.QUICK === '1';
/** Services per run: 10,000 and 30,000 (QUICK: 10,000), or the one size given. */
const SIZES = process.argv[2] ? [Number(process.argv[2])] : QUICK ? [10_000] : [10_000, 30_000];
const E = Number(process.argv[3] ?? 10);
/** Pairs per size: the largest, the figure with a target, gets two. */
const pairsFor = (n: number): number => (QUICK || n < 30_000 ? 1 : 2);
const TARGET_MB = 250;
/** How long the proxy may take from start to its first full sync. */
const SYNC_TIMEOUT_MS = QUICK ? 90_000 : 240_000;
/** After the sync, what is left once the list's garbage had a chance to go. */
const SETTLE_MS = 3_000;
/** Where to write a heap snapshot and memory figures of each loaded run, if anywhere. */
const PROFILE = process.env.PROFILE;
let profileRuns = 0;

interface Served {
  kubeconfig: string;
  services: number;
  loadMs: number;
}

interface Sample {
  rss: number;
  peak: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  entries: number;
  /** Start of the process to its first full sync, and within it: the sources' first lists, then that sync. */
  syncMs: number;
  listMs: number;
  firstSyncMs: number;
}

/** The NODE_OPTIONS the DaemonSet gives the proxy's container (deploy/bpfproxy.yaml). */
function deployedNodeOptions(): string {
  for (const doc of parseAllDocuments(readFileSync(join(PACKAGE_ROOT, 'deploy', 'bpfproxy.yaml'), 'utf8'))) {
    const o = doc.toJS() as { kind?: string; spec?: { template?: { spec?: { containers?: Array<{ env?: Array<{ name: string; value?: string }> }> } } } };
    if (o?.kind !== 'DaemonSet') continue;
    const env = o.spec?.template?.spec?.containers?.[0]?.env ?? [];
    const v = env.find((e) => e.name === 'NODE_OPTIONS')?.value;
    if (v !== undefined) return v;
  }
  throw new Error('deploy/bpfproxy.yaml: no NODE_OPTIONS in the DaemonSet container');
}

/** Node flags of the proxy under test. */
const NODE_FLAGS = process.env.PROXY_NODE_OPTIONS ?? deployedNodeOptions();

const MB = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`;

/** Starts the fake API server inside the node's namespace; resolves once it listens. */
async function serve(lab: Lab, node: LabNode, n: number, dir: string): Promise<Served> {
  const argv = [process.execPath, join(PACKAGE_ROOT, 'node_modules', 'vite-node', 'vite-node.mjs'), join(PACKAGE_ROOT, 'bench', 'apiserver.ts'),
    String(n), String(E), dir, node.name, node.ipv4];
  const proc: LabProcess = lab.spawn(node.netns, argv);
  let stderr = '';
  proc.child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const first = new Promise<string>((resolve) => createInterface({ input: proc.child.stdout! }).once('line', resolve));
  const failed = proc.exited.then((st) => Promise.reject(new Error(`fake apiserver exited (${st.code}): ${stderr.trim()}`)));
  const ac = new AbortController();
  const timeout = sleep(120_000, null, { signal: ac.signal }).then(() => Promise.reject(new Error('fake apiserver: not listening within 120 s')));
  timeout.catch(() => undefined); // aborted once the server is up
  const line = await Promise.race([first, failed, timeout]).finally(() => ac.abort());
  const ready = JSON.parse(line) as { kubeconfig: string; loadMs: number };
  return { kubeconfig: ready.kubeconfig, services: n, loadMs: ready.loadMs };
}

function procStatus(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kB = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kB('VmRSS'), peak: kB('VmHWM') };
}

/** A log line's time in epoch ms (pino writes epoch ms, or ISO text with a time formatter). */
function logTime(l: LogLine | undefined): number {
  if (!l) return NaN;
  return typeof l.time === 'number' ? l.time : Date.parse(String(l.time));
}

/** The sum of a metric's samples in Prometheus text format. */
function metric(text: string, name: string): number {
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'gm'))) sum += Number(m[1]);
  return sum;
}

async function measure(lab: Lab, node: LabNode, served: Served, n: number): Promise<Sample> {
  const sizes = mapSizesFor(n, E);
  const t = performance.now();
  const proxy = LabProxy.start(lab, node, {
    args: [
      '--kubeconfig', served.kubeconfig,
      // Only the lab node's own address may become a NodePort frontend.
      '--nodeport-addresses', `${node.ipv4}/32`,
      ...Object.entries(sizes).flatMap(([k, v]) => ['--bpf-map-size', `${k}=${v}`]),
    ],
    env: { NODE_OPTIONS: [NODE_FLAGS, PROFILE && served.services > 0 ? `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${PROFILE}` : ''].join(' ').trim() },
  });
  try {
    // The proxy is node itself once sh and nsenter have exec'ed into it.
    const synced = await proxy.waitFor((l) => l.msg === 'synced' && Number(l.services) >= served.services, SYNC_TIMEOUT_MS);
    const syncMs = performance.now() - t;
    const listMs = logTime(proxy.logs.find((l) => l.msg.startsWith('every source has listed'))) - logTime(proxy.logs.find((l) => l.msg.startsWith('bpfproxy started')));
    if (Number(synced.failed) !== 0) throw new Error(`the proxy failed to program ${String(synced.failed)} services: ${JSON.stringify(synced)}`);
    const deadline = Date.now() + 10_000;
    while ((await proxy.http('/healthz', 'healthz')).status !== 200) {
      if (Date.now() > deadline) throw new Error('/healthz not 200 within 10 s of the sync');
      await sleep(200);
    }
    await sleep(SETTLE_MS);
    const comm = readFileSync(`/proc/${proxy.proc.pid}/comm`, 'utf8').trim();
    if (comm !== 'node') throw new Error(`pid ${proxy.proc.pid} is ${comm}, not the proxy's node process`);
    const { rss, peak } = procStatus(proxy.proc.pid);
    const metrics = await proxy.http('/metrics');
    if (metrics.status !== 200) throw new Error(`/metrics answered ${metrics.status}`);
    if (PROFILE && served.services > 0) await profile(proxy.proc.pid, n, metrics.body);
    return {
      rss, peak, syncMs, listMs, firstSyncMs: Number(synced.ms),
      heapUsed: metric(metrics.body, 'nodejs_heap_size_used_bytes'),
      heapTotal: metric(metrics.body, 'nodejs_heap_size_total_bytes'),
      external: metric(metrics.body, 'nodejs_external_memory_bytes'),
      entries: metric(metrics.body, 'bpfproxy_bpf_map_entries'),
    };
  } finally {
    await proxy.stop();
    // The pins outlive the proxy (the datapath keeps serving): the next run starts from empty maps.
    const r = await lab.exec(node.netns, [process.execPath, join(PACKAGE_ROOT, 'bin', 'bpfproxy'), 'cleanup', '--bpf-fs', node.bpffs, '--cgroup-root', node.cgroup], { timeoutMs: 30_000 });
    if (r.code !== 0) throw new Error(`bpfproxy cleanup: ${r.stderr}`);
  }
}

/** Memory figures of the process (smaps_rollup, V8 heap spaces), then a heap snapshot (SIGUSR2), into PROFILE. */
async function profile(pid: number, n: number, metricsText: string): Promise<void> {
  const name = `${n}-${++profileRuns}`;
  const spaces: Record<string, number> = {};
  for (const m of metricsText.matchAll(/^nodejs_heap_space_size_(used|total)_bytes\{space="([^"]+)"\} ([0-9.e+-]+)$/gm)) spaces[`${m[2]!} ${m[1]!}`] = Number(m[3]);
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  writeFileSync(join(PROFILE!, `${name}.json`), JSON.stringify({ pid, spaces, rollup }, null, 1));
  // Every mapping, for what lies outside the V8 heap (malloc arenas, thread stacks, code).
  writeFileSync(join(PROFILE!, `${name}.smaps`), readFileSync(`/proc/${pid}/smaps`, 'utf8'));
  const before = new Set(readdirSync(PROFILE!));
  process.kill(pid, 'SIGUSR2');
  // Written by the proxy's main thread; done once its size stops changing.
  let last = -1;
  for (const deadline = Date.now() + 300_000; Date.now() < deadline; ) {
    await sleep(2000);
    const file = readdirSync(PROFILE!).find((f) => f.endsWith('.heapsnapshot') && !before.has(f));
    if (!file) continue;
    const size = statSync(join(PROFILE!, file)).size;
    if (size > 0 && size === last) {
      renameSync(join(PROFILE!, file), join(PROFILE!, `${name}.heapsnapshot`));
      process.stdout.write(`  heap snapshot: ${join(PROFILE!, `${name}.heapsnapshot`)}\n`);
      return;
    }
    last = size;
  }
  throw new Error('no heap snapshot within 300 s');
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stdout.write('bench/memory.ts needs root: it builds a lab node and runs the proxy there\n');
    process.exitCode = 1;
    return;
  }
  const lab = await createLab({ nodes: [{ name: 'node1', pods: [] }] });
  const dir = mkdtempSync(join(tmpdir(), 'bpfproxy-bench-mem-'));
  try {
    const node = lab.node('node1');
    for (const N of SIZES) {
      // One directory per server: each writes its kubeconfig there.
      for (const d of [`full-${N}`, `empty-${N}`]) mkdirSync(join(dir, d));
      const full = await serve(lab, node, N, join(dir, `full-${N}`));
      const empty = await serve(lab, node, 0, join(dir, `empty-${N}`));
      process.stdout.write(`resident memory of the proxy, Kubernetes source: ${N} services x ${E} endpoints (fake API server loaded in ${(full.loadMs / 1000).toFixed(1)} s)\n`);
      process.stdout.write(`  NODE_OPTIONS=${JSON.stringify(NODE_FLAGS)} (${process.env.PROXY_NODE_OPTIONS === undefined ? 'the DaemonSet\'s' : 'PROXY_NODE_OPTIONS'})\n`);

      const fulls: Sample[] = [];
      const empties: Sample[] = [];
      const ratios: number[] = [];
      for (let p = 0; p < pairsFor(N); p++) {
        const order = p % 2 === 0 ? [full, empty] : [empty, full];
        const got = new Map<Served, Sample>();
        for (const served of order) got.set(served, await measure(lab, node, served, N));
        fulls.push(got.get(full)!);
        empties.push(got.get(empty)!);
        ratios.push(got.get(full)!.rss / got.get(empty)!.rss);
      }
      const med = (xs: Sample[], f: (s: Sample) => number) => median(xs.map(f));
      const row = (what: string, ours: number, base: number, extra: string) =>
        process.stdout.write(`${what.padEnd(46)} ${MB(ours).padStart(8)}   empty cluster ${MB(base).padStart(8)}   ${extra}\n`);
      const rss = med(fulls, (s) => s.rss);
      const rssEmpty = med(empties, (s) => s.rss);
      row(`RSS at ${N} x ${E}, synced`, rss, rssEmpty, `difference ${MB(rss - rssEmpty)}, ratio ${ratioSummary(ratios)}`);
      row('  peak RSS (VmHWM)', med(fulls, (s) => s.peak), med(empties, (s) => s.peak), '');
      row('  V8 heap used (of heap total)', med(fulls, (s) => s.heapUsed), med(empties, (s) => s.heapUsed),
        `heap total ${MB(med(fulls, (s) => s.heapTotal))} vs ${MB(med(empties, (s) => s.heapTotal))}`);
      row('  outside the V8 heap (ArrayBuffers, Buffers)', med(fulls, (s) => s.external), med(empties, (s) => s.external), '');
      const sec = (xs: Sample[], f: (s: Sample) => number) => `${(med(xs, f) / 1000).toFixed(1)} s`;
      process.stdout.write(`${'  map entries; start to first full sync'.padEnd(46)} ${med(fulls, (s) => s.entries).toFixed(0)} entries, ${sec(fulls, (s) => s.syncMs)}` +
        ` (lists ${sec(fulls, (s) => s.listMs)}, then the sync ${sec(fulls, (s) => s.firstSyncMs)}; empty cluster: ${sec(empties, (s) => s.syncMs)})\n`);
      record({ measurement: 'memory', dataplane: 'bpf', services: N, endpoints: E, value: rss / 1e6, unit: 'MB',
        baseline: { name: 'empty cluster', value: rssEmpty / 1e6, ...ratioStats(ratios), better: 'closer' },
        extra: { 'peak (VmHWM) MB': med(fulls, (s) => s.peak) / 1e6, 'V8 heap MB': med(fulls, (s) => s.heapUsed) / 1e6 },
        ...(N === 30_000 && E === 10 ? { target: { text: `under ${TARGET_MB} MB`, met: rss < TARGET_MB * 1e6 } } : {}) });
      process.stdout.write(`${'  target'.padEnd(46)} under ${TARGET_MB} MB at 30000 x 10: ${N === 30_000 && E === 10 ? (rss < TARGET_MB * 1e6 ? 'met' : 'NOT met') : 'not this size'}\n`);
    }
  } finally {
    await lab.teardown();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
