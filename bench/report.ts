// Builds bench/results/latest.md and one SVG chart per measurement from the
// rows a `make bench` run recorded (bench/results.ts). Run by the Makefile at
// the end of `make bench`; by hand: npx vite-node bench/report.ts [raw.jsonl] [out-dir]
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chartSpec, machine, readRows, renderMarkdown, renderSvg } from './report-render.js';

async function main(): Promise<void> {
  const file = process.argv[2] ?? process.env.BENCH_RESULTS ?? 'bench/results/raw.jsonl';
  const dir = process.argv[3] ?? 'bench/results';
  const rows = readRows(file);
  if (rows.length === 0) {
    process.stdout.write(`bench report: no results in ${file}\n`);
    process.exitCode = 1;
    return;
  }
  mkdirSync(dir, { recursive: true });
  const charts = new Set<string>();
  for (const m of new Set(rows.map((r) => r.measurement))) {
    const spec = chartSpec(m, rows);
    if (!spec) continue;
    writeFileSync(join(dir, `${m}.svg`), await renderSvg(spec));
    charts.add(m);
  }
  // A chart this run did not draw (a QUICK run after a full one) would stand beside tables it does not match.
  for (const f of readdirSync(dir)) {
    const m = f.replace(/\.svg$/, '');
    if (f.endsWith('.svg') && !charts.has(m)) rmSync(join(dir, f));
  }
  const info = { ...machine(), date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC', run: process.env.QUICK === '1' ? 'make bench QUICK=1' : 'make bench' };
  writeFileSync(join(dir, 'latest.md'), renderMarkdown(rows, info, charts));
  process.stdout.write(`bench report: ${rows.length} figures, ${charts.size} charts -> ${join(dir, 'latest.md')}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench report failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
