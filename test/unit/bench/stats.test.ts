// The benches' one median and quantile (bench/stats.ts): before, six benches
// had their own median and they disagreed for an even number of samples.
import { describe, expect, it } from 'vitest';
import { median as clusterMedian } from '../../../bench/cluster.js';
import { ratioStats } from '../../../bench/results.js';
import { median, quantile } from '../../../bench/stats.js';

describe('bench statistics', () => {
  it('median: the middle value for an odd count, the mean of the two middle values for an even one, whatever the order', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([10, 20])).toBe(15);
    expect(median([7])).toBe(7);
    expect(median([])).toBeNaN();
  });

  it('does not reorder the caller\'s samples', () => {
    const xs = [3, 1, 2];
    median(xs);
    quantile(xs, 0.9);
    expect(xs).toEqual([3, 1, 2]);
  });

  it('quantile by nearest rank: a sample that occurred, the last one for q near 1', () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1
    expect(quantile(xs, 0.9)).toBe(91);
    expect(quantile(xs, 0.99)).toBe(100);
    expect(quantile(xs, 1)).toBe(100);
    expect(quantile(xs, 0)).toBe(1);
    expect(quantile([], 0.5)).toBeNaN();
  });

  it('every bench gets the same median: cluster.ts re-exports it, the report\'s ratio column uses it', () => {
    const ratios = [1.2, 0.9, 1.1, 1.0];
    expect(clusterMedian(ratios)).toBe(median(ratios));
    expect(ratioStats(ratios)).toEqual({ ratio: 1.05, min: 0.9, max: 1.2, pairs: 4 });
  });
});
