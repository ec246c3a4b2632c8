/* rng.h: seeded random numbers. Every random choice in a job (sampling,
 * partitions, init, shuffles, dropout) derives from the job seed through here,
 * so a rerun reproduces the same curve. */
#ifndef COHORT_RNG_H
#define COHORT_RNG_H

#include <stddef.h>
#include <stdint.h>

#if defined(__CUDACC__)
#define RNG_HD __host__ __device__ static inline
#else
#define RNG_HD static inline
#endif

/* xoshiro256** stream; the state is plain data so checkpoints can save it. */
struct rng {
	uint64_t s[4];
};

/* Seed a stream from (seed, stream id): distinct ids give independent streams.
 */
void rng_seed(struct rng *r, uint64_t seed, uint64_t stream);
uint64_t rng_next(struct rng *r);
/* Uniform double in [0, 1). */
double rng_uniform(struct rng *r);
/* Uniform integer in [0, n), unbiased; n > 0. */
uint64_t rng_below(struct rng *r, uint64_t n);
/* Standard normal (Box-Muller). */
double rng_normal(struct rng *r);
/* Gamma(shape, 1) (Marsaglia-Tsang), shape > 0; used for Dirichlet draws. */
double rng_gamma(struct rng *r, double shape);
/* Fisher-Yates shuffle. */
void rng_shuffle_u32(struct rng *r, uint32_t *a, size_t n);
/* A uniform sample of k of the n values of a, without replacement, into
 * a[0..k) in ascending order (a partial Fisher-Yates shuffle: k draws); the
 * rest of a keeps the other values. k <= n. */
void rng_sample_u32(struct rng *r, uint32_t *a, size_t n, size_t k);

/* Derive a sub-seed from the job seed, a purpose label and an index
 * (e.g. rng_derive(seed, "sample", round)). */
uint64_t rng_derive(uint64_t seed, const char *label, uint64_t index);

/* splitmix64 finaliser: a strong 64-bit mixing function. */
RNG_HD uint64_t
rng_mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Counter-based draw: a pure function of (key, counter), identical on the CPU
 * and in CUDA kernels, so dropout masks agree between backends. */
RNG_HD uint32_t
rng_hash32(uint64_t key, uint64_t counter)
{
	return (uint32_t)(rng_mix64(key ^ rng_mix64(counter +
	                                            0x9e3779b97f4a7c15ULL)) >>
	                  32);
}

/* Uniform float in [0, 1) from rng_hash32, 24 bits of precision. */
RNG_HD float
rng_hash_uniform(uint64_t key, uint64_t counter)
{
	return (float)(rng_hash32(key, counter) >> 8) * (1.0f / 16777216.0f);
}

#endif
