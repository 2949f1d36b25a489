// glibc's malloc, told to give large blocks their own mappings for good.
//
// Every typed array the proxy grows (the index and ID tables of the planner
// and of the dataplane, by doubling) has its bytes from malloc. glibc serves
// a block of 128 KiB or more with its own mmap, returned to the system when
// freed, but it raises that threshold to the size of each such block freed
// (up to 32 MiB), so after the first few growths the larger arrays come
// from its heap instead, and when they are freed (outgrown) they leave holes
// that only the top of the heap is ever trimmed from. Measured at 30,000
// services x 10 endpoints (bench/memory.ts, docs/findings.md): pinning the
// threshold (mallopt(M_MMAP_THRESHOLD), which turns the raising off; the
// same as MALLOC_MMAP_THRESHOLD_=131072 in the environment) left 8-15 MB
// less resident after the first sync, no slower; malloc_trim(0) after the
// sync instead won nothing back.
import koffi from 'koffi';

/** mallopt's parameter (malloc.h). */
const M_MMAP_THRESHOLD = -3;
/** glibc's initial threshold, kept: below it, blocks are small enough to reuse. */
const MMAP_THRESHOLD = 128 * 1024;

/** Pins the threshold; false where there is no glibc (musl has no dynamic threshold to pin). */
export function pinMallocMmapThreshold(): boolean {
  try {
    const mallopt = koffi.load('libc.so.6').func('int mallopt(int param, int value)') as (param: number, value: number) => number;
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) === 1;
  } catch {
    return false;
  }
}
