// What a Maglev table size M may be. The planner builds tables of this size and
// config validates the setting, so the numbers live here, below both.

/** The default M. The paper wants M well above 100x the backends, so this suits services of up to about 160. */
export const DEFAULT_MAGLEV_M = 16381;
/** Largest Maglev table, the largest prime below 2^16: the lookup table holds 16-bit backend slots. */
export const MAX_MAGLEV_M = 65521;

export function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}
