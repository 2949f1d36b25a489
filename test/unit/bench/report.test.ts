import { describe, expect, it } from 'vitest';
import { chartSpec, ratioText, renderMarkdown, renderSvg } from '../../../bench/report-render.js';
import { ratioStats } from '../../../bench/results.js';
import type { BenchRow } from '../../../bench/results.js';

const rows: BenchRow[] = [
  { measurement: 'full-sync', dataplane: 'bpf', services: 1000, endpoints: 10, value: 12.5, unit: 'ms', baseline: { name: 'nftables', value: 500, ratio: 40, pairs: 1, better: 'lower' }, target: { text: 'under 100 ms', met: true } },
  { measurement: 'full-sync', dataplane: 'nftables', services: 1000, endpoints: 10, value: 500, unit: 'ms' },
  { measurement: 'full-sync', dataplane: 'bpf', services: 10000, endpoints: 10, value: 150, unit: 'ms', target: { text: 'under 100 ms', met: false } },
  { measurement: 'full-sync', dataplane: 'nftables', services: 10000, endpoints: 10, value: 9000, unit: 'ms' },
  { measurement: 'maglev-move', dataplane: 'backend removed', variant: 'M=16381, N=10', value: 10.5, unit: '%', baseline: { name: 'ideal 1/N', value: 10, ratio: 1.05, better: 'closer' } },
  { measurement: 'maglev-move', dataplane: 'backend added', variant: 'M=16381, N=10', value: 9.5, unit: '%', baseline: { name: 'ideal 1/N', value: 10, ratio: 0.95, better: 'closer' } },
];

describe('bench report', () => {
  it('reads a ratio as the median of per-pair ratios with its spread', () => {
    expect(ratioStats([3, 1, 2, 10])).toEqual({ ratio: 2.5, min: 1, max: 10, pairs: 4 });
    expect(ratioStats([3, 1, 2])).toMatchObject({ ratio: 2 });
    expect(ratioText({ ...rows[0]!, baseline: { name: 'x', value: 1, ratio: 2, min: 1.5, max: 3, pairs: 4, better: 'lower' } })).toBe('2.00x (1.50..3.00, 4 pairs)');
  });

  it('writes one table per measurement, with the machine, the baselines and the targets', () => {
    const md = renderMarkdown(rows, { kernel: '6.18', nft: 'nftables v1.0.6' }, new Set(['full-sync']));
    expect(md).toContain('| kernel | 6.18 |');
    expect(md).toMatch(/## Programming cost: a full sync/);
    expect(md).toContain('| bpf | 1,000 | 10 | 12.5 ms | nftables: 500 ms | 40.00x cheaper |');
    expect(md).toContain('under 100 ms: **not met**');
    expect(md).toContain('![Programming cost: a full sync from empty (services x 10 endpoints)](full-sync.svg)');
    // Maglev's rows are read as "of the ideal", not as cheaper.
    expect(md).toContain('1.05x of it');
    expect(md).not.toContain('maglev-move.svg');
  });

  it('draws a line per dataplane over the service counts, and each baseline once per case', async () => {
    const lines = chartSpec('full-sync', rows) as { mark: { type: string }; data: { values: { dataplane: string; x: number }[] } };
    expect(lines.mark.type).toBe('line');
    expect(lines.data.values.filter((p) => p.dataplane === 'nftables').map((p) => p.x)).toEqual([1000, 10000]);
    const bars = chartSpec('maglev-move', rows) as { mark: string; data: { values: { dataplane: string }[] } };
    expect(bars.mark).toBe('bar');
    expect(bars.data.values.filter((p) => p.dataplane === 'ideal 1/N')).toHaveLength(1);
    const svg = await renderSvg(lines);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('nftables');
  });
});
