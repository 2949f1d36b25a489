// Big typed arrays for the tables' batches and mirrors, faulted in 2 MB at a
// time. On this machine the first touch of a 4 KB page costs 70-95 us of
// wall time (a Firecracker guest; docs/findings.md), so a first sync of
// 30,000 services x 10 endpoints, which touches about 25 MB of new batches
// and indexes, paid more for page faults than for its writes. Memory advised
// MADV_HUGEPAGE before it is touched (native/flat.c) is faulted a huge page
// at a time: 64 MB in 9-17 ms instead of 1.4-1.7 s. Where the kernel has no
// transparent huge pages the advice is refused and ordinary pages are used.
import { adviseHuge } from './native.js';

/** Below two huge pages an array seldom holds a whole aligned one: not worth a call. */
const WORTH = 4 << 20;

type Big = Uint8Array | Uint32Array | Int32Array;

/** A zeroed array of n elements; when big, advised to be faulted in huge pages (before anything touches it). */
export function bigArray<T extends Big>(ctor: new (n: number) => T, n: number): T {
  const a = new ctor(n);
  // A hint: when refused (no THP, a kernel without it), the array is as good with 4 KB pages.
  if (a.byteLength >= WORTH) adviseHuge(a);
  return a;
}

/** `a` grown to `n` elements with its contents (flat-index.ts's grown(), through bigArray). */
export function grownBig<T extends Big>(a: T, n: number): T {
  if (a.length >= n) return a;
  const out = bigArray(a.constructor as new (n: number) => T, n);
  out.set(a);
  return out;
}
