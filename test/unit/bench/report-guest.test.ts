// The report's handling of what make bench's time plan and its VM step add:
// rows from a guest kernel, bounds that ran out of their budget, figures not
// measured and why, and the run's own time per step.
import { describe, expect, it } from 'vitest';
import { chartSpec, renderMarkdown } from '../../../bench/report-render.js';
import type { BenchRow } from '../../../bench/results.js';

const guest = { kernel: '6.1.0-57-amd64', vm: 'qemu, software emulation (TCG)' };
const host: BenchRow[] = [
  { measurement: 'full-sync', dataplane: 'bpf', services: 10_000, endpoints: 10, value: 80, unit: 'ms' },
  { measurement: 'full-sync', dataplane: 'nftables', services: 10_000, endpoints: 10, value: 9000, unit: 'ms' },
  { measurement: 'full-sync', dataplane: 'iptables', services: 10_000, endpoints: 10, value: 60_000, unit: 'ms', overBudget: true },
  { measurement: 'full-sync', dataplane: 'iptables', services: 30_000, endpoints: 10, value: 0, unit: 'ms', notMeasured: 'not measured beyond 10,000 services: too slow' },
  { measurement: 'full-sync', dataplane: 'bpf', services: 30_000, endpoints: 10, value: 250, unit: 'ms' },
  { measurement: 'run-time', dataplane: 'modes', variant: 'every dataplane side by side', value: 250, unit: 's', extra: { 'budget s': 270, status: 'inside its budget' } },
];
const vm: BenchRow[] = [
  { measurement: 'full-sync', dataplane: 'ipvs', services: 1000, endpoints: 10, value: 4000, unit: 'ms', baseline: { name: 'nftables', value: 30_000, ratio: 7.5, pairs: 1, better: 'lower' }, machine: guest },
  { measurement: 'full-sync', dataplane: 'nftables', services: 1000, endpoints: 10, value: 30_000, unit: 'ms', machine: guest },
];

describe('bench report: guests, budgets, the time plan', () => {
  it('puts a guest\'s rows in a section naming its kernel, apart from the host\'s tables', () => {
    const md = renderMarkdown([...host, ...vm], { kernel: '6.18' }, new Set());
    const section = md.indexOf('## In a VM, kernel 6.1.0-57-amd64, qemu, software emulation (TCG): compare ratios only');
    expect(section).toBeGreaterThan(0);
    expect(md.indexOf('| ipvs | 1,000 | 10 | 4,000 ms | nftables: 30,000 ms | 7.50x cheaper |')).toBeGreaterThan(section);
    // The host's full-sync table ends before the guest's section and has no guest row in it.
    expect(md.slice(0, section)).not.toContain('| ipvs |');
    expect(md).toContain('ipvs: measured in a VM guest, kernel 6.1.0-57-amd64');
  });

  it('says "over budget at N" and "not measured" with the reason instead of a figure', () => {
    const md = renderMarkdown(host, { kernel: '6.18' }, new Set());
    expect(md).toContain('| iptables | 10,000 | 10 | over budget at 10,000: > 60,000 ms |');
    expect(md).toContain('| iptables | 30,000 | 10 | not measured |  |  | not measured beyond 10,000 services: too slow |');
    expect(md).toMatch(/^ipvs: not measured in this run/m);
  });

  it('shows each step of the run against its budget, without a chart', () => {
    const md = renderMarkdown(host, { kernel: '6.18' }, new Set());
    expect(md).toContain('| step | case | value |');
    expect(md).toContain('| modes | every dataplane side by side | 250 s |');
    expect(chartSpec('run-time', host)).toBeNull();
  });

  it('charts only the host\'s measured figures', () => {
    const spec = chartSpec('full-sync', [...host, ...vm]) as { data: { values: { dataplane: string; x: number }[] } };
    const points = spec.data.values.map((p) => `${p.dataplane}@${p.x}`).sort();
    expect(points).toEqual(['bpf@10000', 'bpf@30000', 'nftables@10000']);
  });
});
