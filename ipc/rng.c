/* rng.c: xoshiro256** streams and the distributions cohort draws from. */
#include "rng.h"

#include <math.h>
#include <stdlib.h>

static uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

void
rng_seed(struct rng *r, uint64_t seed, uint64_t stream)
{
	uint64_t z = seed ^ rng_mix64(stream + 0x6a09e667f3bcc909ULL);
	for (int i = 0; i < 4; i++) {
		z += 0x9e3779b97f4a7c15ULL;
		r->s[i] = rng_mix64(z);
	}
	if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0)
		r->s[0] = 1;
}

uint64_t
rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

double
rng_uniform(struct rng *r)
{
	return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t
rng_below(struct rng *r, uint64_t n)
{
	/* Rejection sampling on the top of the range removes modulo bias. */
	uint64_t limit = UINT64_MAX - UINT64_MAX % n;
	uint64_t x;
	do
		x = rng_next(r);
	while (x >= limit);
	return x % n;
}

double
rng_normal(struct rng *r)
{
	double u1 = rng_uniform(r), u2 = rng_uniform(r);
	if (u1 < 1e-300)
		u1 = 1e-300;
	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

double
rng_gamma(struct rng *r, double shape)
{
	if (shape < 1.0) {
		/* Boost: Gamma(a) = Gamma(a + 1) * U^(1/a). */
		double u = rng_uniform(r);
		return rng_gamma(r, shape + 1.0) *
		       pow(u > 0 ? u : 1e-300, 1.0 / shape);
	}
	double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
	for (;;) {
		double x, v;
		do {
			x = rng_normal(r);
			v = 1.0 + c * x;
		} while (v <= 0.0);
		v = v * v * v;
		double u = rng_uniform(r);
		if (u < 1.0 - 0.0331 * x * x * x * x)
			return d * v;
		if (log(u) < 0.5 * x * x + d * (1.0 - v + log(v)))
			return d * v;
	}
}

void
rng_shuffle_u32(struct rng *r, uint32_t *a, size_t n)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)rng_below(r, i);
		uint32_t t = a[i - 1];
		a[i - 1] = a[j];
		a[j] = t;
	}
}

/* Ascending order for uint32 values. */
static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

void
rng_sample_u32(struct rng *r, uint32_t *a, size_t n, size_t k)
{
	for (size_t i = 0; i < k; i++) {
		size_t j = i + (size_t)rng_below(r, n - i);
		uint32_t t = a[i];
		a[i] = a[j];
		a[j] = t;
	}
	qsort(a, k, sizeof *a, cmp_u32);
}

uint64_t
rng_derive(uint64_t seed, const char *label, uint64_t index)
{
	/* FNV-1a over the label, then mixed with seed and index. */
	uint64_t h = 0xcbf29ce484222325ULL;
	for (const unsigned char *p = (const unsigned char *)label; *p; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	return rng_mix64(seed ^ rng_mix64(h ^ rng_mix64(index)));
}
