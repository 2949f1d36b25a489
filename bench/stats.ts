// The benches' small statistics, in one place: every bench had its own
// median, and they differed for an even count (upper middle value in some,
// mean of the two middle values in others), so two benches could report
// different medians of the same samples.

/** The median: the middle value, or the mean of the two middle values for an even count (NaN for none). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * The q-quantile by nearest rank, as the benches' p90/p99 columns use it: the
 * value at index floor(n x q) of the sorted samples, clamped to the last
 * (a sample that occurred; NaN for none). Not interpolated: median() is the
 * 0.5 point to use.
 */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * q))]!;
}

/** Per-pair ratios as a baseline wants them: median, min, max, count. */
export function ratioStats(ratios: readonly number[]): { ratio: number; min: number; max: number; pairs: number } {
  return { ratio: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios), pairs: ratios.length };
}
