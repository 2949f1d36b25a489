// What bench/report.ts renders: the markdown tables and the charts, from the
// rows a `make bench` run recorded (bench/results.ts). Pure but for machine().
//
// Charts are drawn by Vega-Lite (compiled to Vega, rendered headless to SVG):
// cost against the number of services, one line per dataplane; measurements
// without a service axis get grouped bars per variant. Charts show the host's
// measured rows only: not a bound ("over budget at N"), not a row that says
// why it was not measured, not a guest's.
//
// Rows measured in a VM guest (bench/vm-bench.ts: ipvs, and nftables and
// iptables beside it) get tables of their own, one section per guest kernel:
// a guest under software emulation runs userland about 10x slower than the
// host, so only the ratios inside that section compare.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { BenchRow } from './results.js';

/** What each measurement is, in the order the report shows them. */
const TITLES: Record<string, string> = {
  'full-sync': 'Programming cost: a full sync from empty (services x 10 endpoints)',
  'resync': 'Programming cost: a periodic full resync with nothing changed',
  'endpoint-change': 'Programming cost: one endpoint change, from the event to the dataplane holding it',
  'map-write': 'bpf map writes against the kernel\'s own batch syscalls for the same entries',
  'connect': 'Connection cost: TCP connections per second through a ClusterIP (connect, one request, close)',
  'nodeport-connect': 'Connection cost: TCP connections per second to a NodePort from the external client, against the node\'s own address',
  'nodeport-pps': 'Packet cost: UDP packets per second forwarded through a NodePort from a bounded generator in the lab',
  'packet': 'Packet cost: ns per packet through BPF_PROG_TEST_RUN',
  'maglev-build': 'Maglev: time to build one table',
  'maglev-move': 'Maglev: share of flows that move when one backend is removed or added',
  'memory': 'Memory: resident set of the proxy with the Kubernetes source',
  'kube-proxy-nft-full': 'bpf full sync against kube-proxy\'s own nftables ruleset loaded by nft -f',
  'kube-proxy-nft-change': 'bpf endpoint change against nft adding one kube-proxy-shaped service',
  'plan': 'Planning cost (pure, no kernel)',
  'run-time': 'Time plan of this run: each step against its budget',
};

/** Measurements that are not cost against a number of services: no chart. */
const NO_CHART = new Set(['run-time']);

function tool(argv: string[]): string {
  try {
    return execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).split('\n')[0]!.trim();
  } catch {
    return 'not installed';
  }
}

export function machine(): Record<string, string> {
  return {
    CPU: `${cpus()[0]?.model ?? 'unknown'} (${cpus().length} cores)`,
    kernel: release(),
    node: process.version,
    nft: tool(['nft', '--version']),
    iptables: tool(['iptables', '--version']),
    // ipvsadm --version fails where the kernel has no IPVS (this host): the package's version instead.
    ipvsadm: tool(['dpkg-query', '-W', '-f', 'ipvsadm ${Version} (Debian package)', 'ipvsadm']),
    commit: tool(['git', 'rev-parse', '--short', 'HEAD']),
    // A shared 2-core machine: what else ran colours every absolute figure (the ratios less).
    'load average at the end': loadavg().map((l) => l.toFixed(1)).join(', '),
  };
}

const num = (v: number): string => (Number.isInteger(v) ? v.toLocaleString("en-US") : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 0.1 ? v.toFixed(2) : v.toPrecision(2));

export function ratioText(r: BenchRow): string {
  const b = r.baseline;
  if (!b) return '';
  const spread = b.min !== undefined && b.max !== undefined ? ` (${b.min.toFixed(2)}..${b.max.toFixed(2)}${b.pairs ? `, ${b.pairs} pairs` : ''})` : '';
  return `${b.ratio.toFixed(2)}x${spread}`;
}

/** The value cell: the figure, a bound that ran out of its budget, or "not measured". */
function valueText(r: BenchRow): string {
  if (r.notMeasured !== undefined) return 'not measured';
  if (r.overBudget) return `over budget at ${r.services?.toLocaleString('en-US') ?? 'this size'}: > ${num(r.value)} ${r.unit}`;
  return `${num(r.value)} ${r.unit}`;
}

/** Whether a row is a measured figure of the host (what the charts draw). */
const charted = (r: BenchRow): boolean => !r.machine && !r.overBudget && r.notMeasured === undefined;

/** One line on ipvs, which only a guest measures: where its rows are, or why there are none. */
function ipvsLine(rows: readonly BenchRow[]): string {
  const guest = rows.find((r) => r.dataplane === 'ipvs' && r.machine && r.notMeasured === undefined);
  if (guest) return `ipvs: measured in a VM guest, kernel ${guest.machine!.kernel} (the host kernel has no IPVS): see "In a VM" below.`;
  const why = rows.find((r) => r.dataplane === 'ipvs' && r.notMeasured !== undefined)?.notMeasured;
  return `ipvs: not measured in this run${why ? `: ${why}` : ' (the host kernel has no IPVS; make bench measures it in a Debian guest)'}.`;
}

function renderTables(out: string[], rows: readonly BenchRow[], charts: ReadonlySet<string>, level: string): void {
  const order = [...Object.keys(TITLES), ...new Set(rows.map((r) => r.measurement))];
  for (const m of [...new Set(order)]) {
    const rs = rows.filter((r) => r.measurement === m);
    if (rs.length === 0) continue;
    out.push(`${level} ${TITLES[m] ?? m}`, '');
    const hasVariant = rs.some((r) => r.variant);
    const hasSize = rs.some((r) => r.services !== undefined);
    const head = [m === 'run-time' ? 'step' : 'dataplane', ...(hasSize ? ['services', 'endpoints'] : []), ...(hasVariant ? ['case'] : []), 'value', 'baseline', 'ratio', 'detail', 'target'];
    out.push(`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`);
    for (const r of rs) {
      const cells = [r.dataplane,
        ...(hasSize ? [r.services?.toLocaleString('en-US') ?? '', r.endpoints?.toString() ?? ''] : []),
        ...(hasVariant ? [r.variant ?? ''] : []),
        valueText(r),
        r.baseline ? `${r.baseline.name}: ${num(r.baseline.value)} ${r.unit}` : '',
        r.baseline ? `${ratioText(r)} ${r.baseline.better === 'lower' ? 'cheaper' : 'of it'}` : '',
        [r.notMeasured, ...(r.extra ? Object.entries(r.extra).map(([k, v]) => `${k} ${typeof v === 'number' ? num(v) : v}`) : [])].filter(Boolean).join(', '),
        r.target ? `${r.target.text}: ${r.target.met ? 'met' : '**not met**'}` : ''];
      out.push(`| ${cells.map((c) => c.replace(/\|/g, '/')).join(' | ')} |`);
    }
    if (charts.has(m)) out.push('', `![${TITLES[m] ?? m}](${m}.svg)`);
    out.push('');
  }
}

/** One markdown table per measurement, rows in recorded order; a guest's rows in a section per kernel. */
export function renderMarkdown(rows: readonly BenchRow[], info: Record<string, string>, charts: ReadonlySet<string>): string {
  const out: string[] = ['# bpfproxy benchmark results', '',
    'Every figure is measured next to its baseline in the same run (alternating pairs where the bench says so); ',
    'ratios are the median of the per-pair ratios, with their spread. "better" says which way the ratio is read: ',
    'for a cost, baseline / bpfproxy (above 1: bpfproxy is cheaper); for a rate, bpfproxy / baseline.', '',
    ipvsLine(rows), '',
    '| machine | |', '|---|---|', ...Object.entries(info).map(([k, v]) => `| ${k} | ${v.replace(/\|/g, '/')} |`), ''];
  renderTables(out, rows.filter((r) => !r.machine), charts, '##');
  const guests = new Map<string, BenchRow[]>();
  for (const r of rows.filter((x) => x.machine)) {
    const k = `${r.machine!.kernel}, ${r.machine!.vm}`;
    guests.set(k, [...(guests.get(k) ?? []), r]);
  }
  for (const [where, rs] of guests) {
    out.push(`## In a VM, kernel ${where}: compare ratios only`, '',
      'Measured inside one guest of the kernel-in-VM harness (docs/vm.md) with the host\'s own nft, iptables and ipvsadm: ',
      'the guest\'s kernel is the only difference. Under software emulation its userland runs about 10x slower than the ',
      'host\'s, so its absolute figures do not compare with the tables above; the ratios between its rows do.', '');
    renderTables(out, rs, new Set(), '###');
  }
  return out.join('\n');
}

/** A Vega-Lite spec for one measurement, or null when there is nothing to draw. */
export function chartSpec(m: string, rows: readonly BenchRow[]): object | null {
  if (NO_CHART.has(m)) return null;
  const rs = rows.filter((r) => r.measurement === m && charted(r));
  if (rs.length < 2) return null;
  const units = [...new Set(rs.map((r) => r.unit))];
  const sizes = new Set(rs.filter((r) => r.services !== undefined).map((r) => r.services));
  // Each dataplane's line, and each baseline as its own line when it is not a dataplane of its own.
  const points: { dataplane: string; x: number | string; y: number }[] = [];
  for (const r of rs) {
    const x = sizes.size > 1 ? r.services! : (r.variant ?? String(r.services ?? ''));
    const name = r.variant && sizes.size > 1 ? `${r.dataplane} ${r.variant}` : r.dataplane;
    points.push({ dataplane: name, x, y: r.value });
    const seen = (d: string) => points.some((q) => q.dataplane === d && q.x === x);
    if (r.baseline && !rs.some((o) => o.dataplane === r.baseline!.name) && !seen(r.baseline.name)) points.push({ dataplane: r.baseline.name, x, y: r.baseline.value });
  }
  const title = TITLES[m] ?? m;
  const y = { field: 'y', type: 'quantitative', title: units.join(', '), scale: { type: 'linear', zero: true } };
  if (sizes.size > 1) {
    return { $schema: 'https://vega.github.io/schema/vega-lite/v5.json', title, width: 520, height: 260, data: { values: points },
      mark: { type: 'line', point: true },
      encoding: { x: { field: 'x', type: 'quantitative', title: 'services', scale: { type: 'log' } }, y: { ...y, scale: { type: 'log' } }, color: { field: 'dataplane', type: 'nominal' } } };
  }
  return { $schema: 'https://vega.github.io/schema/vega-lite/v5.json', title, width: 520, height: 260, data: { values: points },
    mark: 'bar',
    encoding: { x: { field: 'x', type: 'nominal', title: null, axis: { labelAngle: -30, labelLimit: 160 } }, xOffset: { field: 'dataplane' }, y, color: { field: 'dataplane', type: 'nominal' } } };
}

export async function renderSvg(spec: object): Promise<string> {
  const compiled = vl.compile(spec as vl.TopLevelSpec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export function readRows(file: string): BenchRow[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as BenchRow);
}

