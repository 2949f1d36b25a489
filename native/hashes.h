/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The two hashes the control plane also computes in TypeScript, word for
 * word: murmur3's mixing steps (src/util/murmur.ts), the hash index's key
 * hash (src/util/flat-index.ts, hash()) and a map entry's fingerprint hash
 * (src/dataplane/bpf/fingerprint.ts). Change one side, change the other:
 * test/unit/bpf/adopt-native.test.ts checks them against each other.
 */
#ifndef BPFPROXY_NATIVE_HASHES_H
#define BPFPROXY_NATIVE_HASHES_H

#include <stdint.h>

#define FP_SEED_A 0x9747b28cu
#define FP_SEED_B 0x5bd1e995u

static inline uint32_t rotl32(uint32_t x, int r)
{
	return (x << r) | (x >> (32 - r));
}

static inline uint32_t mix_word(uint32_t h, uint32_t k)
{
	k *= 0xcc9e2d51u;
	k = rotl32(k, 15);
	k *= 0x1b873593u;
	h ^= k;
	h = rotl32(h, 13);
	return h * 5 + 0xe6546b64u;
}

static inline uint32_t fmix32(uint32_t h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

/* A key of kw words, as the hash index places it (flat-index.ts). */
static inline uint32_t key_hash(const uint32_t *k, uint32_t kw)
{
	uint32_t h = 0x9747b28cu ^ kw, i;

	for (i = 0; i < kw; i++)
		h = mix_word(h, k[i]);
	return fmix32(h);
}

/* One entry's share of a map fingerprint under one seed (fingerprint.ts). */
static inline uint32_t entry_hash(const uint32_t *k, uint32_t kw, const uint32_t *v, uint32_t vw, uint32_t seed)
{
	uint32_t h = seed, i;

	for (i = 0; i < kw; i++)
		h = mix_word(h, k[i]);
	for (i = 0; i < vw; i++)
		h = mix_word(h, v[i]);
	return fmix32(h ^ (kw + vw));
}

#endif
