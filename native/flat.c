// SPDX-License-Identifier: Apache-2.0
/*
 * See bpfproxy.h. Why in C: a first sync into empty maps registers every
 * entry it wrote (660,000 at 30,000 services x 10 endpoints) in the mirror's
 * hash index and fingerprint, once, in code the JIT has not compiled yet;
 * in TypeScript that pass cost more than the batch syscalls themselves
 * (docs/findings.md). Here it is about 40 ns of CPU per entry. The index and fingerprint stay TypeScript's (src/util/flat-index.ts,
 * src/dataplane/bpf/fingerprint.ts): these functions fill the same typed
 * arrays the same way.
 */
#include "bpfproxy.h"
#include "hashes.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#define EMPTY (-1)

/*
 * How many entries ahead a pass hashes and prefetches: the buckets of a big
 * table (2 MB at 300,000 keys) miss the cache on nearly every lookup, and a
 * miss on this machine costs about 100 ns, more than the rest of the entry's
 * work; with the misses of 16 entries in flight at once the pass took a
 * third of the time (measured: docs/findings.md).
 */
#define AHEAD 16

/* The bucket holding the key at k (hashed to h), or the empty bucket where it would go. */
static uint32_t probe(const uint32_t *keys, uint32_t kw, const int32_t *buckets, uint32_t mask, const uint32_t *k, uint32_t h)
{
	uint32_t b = h & mask;
	int32_t s;

	while ((s = buckets[b]) != EMPTY) {
		if (!memcmp(keys + (size_t)s * kw, k, (size_t)kw * 4))
			break;
		b = (b + 1) & mask;
	}
	return b;
}

/* Hashes the key at k into ring[at] and starts loading its bucket. */
static inline void look_ahead(uint32_t *ring, uint32_t at, const uint32_t *k, uint32_t kw, const int32_t *buckets, uint32_t mask)
{
	uint32_t h = key_hash(k, kw);

	ring[at % AHEAD] = h;
	__builtin_prefetch(&buckets[h & mask]);
}

uint32_t bpx_flat_adopt(uint32_t *keys, uint32_t kw, uint32_t *values, uint32_t vw, uint32_t *owners, uint32_t n,
			int32_t *buckets, uint32_t mask, uint8_t *used, uint32_t fp_out[2])
{
	uint32_t i, kept = 0, a = 0, b = 0, ring[AHEAD];

	/* Keys at i and beyond are read before anything moves over them (kept <= i). */
	for (i = 0; i < n && i < AHEAD; i++)
		look_ahead(ring, i, keys + (size_t)i * kw, kw, buckets, mask);
	for (i = 0; i < n; i++) {
		uint32_t *k = keys + (size_t)i * kw;
		uint32_t *v = values + (size_t)i * vw;
		uint32_t bucket = probe(keys, kw, buckets, mask, k, ring[i % AHEAD]);

		if (i + AHEAD < n)
			look_ahead(ring, i + AHEAD, keys + (size_t)(i + AHEAD) * kw, kw, buckets, mask);
		if (buckets[bucket] != EMPTY)
			continue; /* a key met again (a backend several services name): kept once */
		if (i != kept) {
			/* Entries kept..i-1 were left out: entry i moves down (regions never overlap). */
			k = memcpy(keys + (size_t)kept * kw, k, (size_t)kw * 4);
			v = memcpy(values + (size_t)kept * vw, v, (size_t)vw * 4);
			owners[kept] = owners[i];
		}
		buckets[bucket] = (int32_t)kept;
		used[kept] = 1;
		a += entry_hash(k, kw, v, vw, FP_SEED_A);
		b += entry_hash(k, kw, v, vw, FP_SEED_B);
		kept++;
	}
	fp_out[0] = a;
	fp_out[1] = b;
	return kept;
}

void bpx_flat_count_refs(const uint32_t *words, uint32_t stride, uint32_t off, uint32_t n, const uint32_t *keys,
			 uint32_t kw, const int32_t *buckets, uint32_t mask, int32_t *refs)
{
	uint32_t j, ring[AHEAD];

	for (j = 0; j < n && j < AHEAD; j++)
		look_ahead(ring, j, words + (size_t)j * stride + off, kw, buckets, mask);
	for (j = 0; j < n; j++) {
		const uint32_t *k = words + (size_t)j * stride + off;
		int32_t s = buckets[probe(keys, kw, buckets, mask, k, ring[j % AHEAD])];

		if (j + AHEAD < n)
			look_ahead(ring, j + AHEAD, words + (size_t)(j + AHEAD) * stride + off, kw, buckets, mask);
		if (s != EMPTY)
			refs[s]++;
	}
}

/*
 * First touches of fresh memory are this machine's costliest step: a 4 KB
 * page fault costs 70-95 us of wall time here (a Firecracker guest, measured
 * in docs/findings.md), so a first sync's 20 MB of new batches cost more in
 * faults than in writes. The same memory advised MADV_HUGEPAGE is faulted
 * 2 MB at a time (64 MB: 9-17 ms instead of 1.4-1.7 s). Only whole 2 MB
 * pages inside [p, p + len) are advised; the rest stays as it was.
 */
#define HUGE_PAGE (2UL << 20)

int bpx_advise_huge(void *p, size_t len)
{
	uintptr_t a = ((uintptr_t)p + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
	uintptr_t b = ((uintptr_t)p + len) & ~(HUGE_PAGE - 1);

	if (b <= a)
		return 0;
	return madvise((void *)a, b - a, MADV_HUGEPAGE) ? -errno : 0;
}
