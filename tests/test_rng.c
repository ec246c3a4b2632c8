/* test_rng.c: seeded streams are reproducible, independent and well spread. */
#include "harness.h"
#include "rng.h"

#include <math.h>

static void
test_same_seed_same_stream(void)
{
	struct rng a, b;
	rng_seed(&a, 42, 7);
	rng_seed(&b, 42, 7);
	for (int i = 0; i < 1000; i++)
		CHECK(rng_next(&a) == rng_next(&b));
}

static void
test_streams_differ(void)
{
	struct rng a, b;
	rng_seed(&a, 42, 1);
	rng_seed(&b, 42, 2);
	int same = 0;
	for (int i = 0; i < 100; i++)
		same += rng_next(&a) == rng_next(&b);
	CHECK(same == 0);
	CHECK(rng_derive(1, "sample", 0) != rng_derive(1, "sample", 1));
	CHECK(rng_derive(1, "sample", 0) != rng_derive(1, "init", 0));
}

static void
test_below_is_uniform_and_in_range(void)
{
	struct rng r;
	rng_seed(&r, 3, 0);
	int counts[10] = {0};
	for (int i = 0; i < 100000; i++) {
		uint64_t x = rng_below(&r, 10);
		CHECK(x < 10);
		counts[x]++;
	}
	for (int i = 0; i < 10; i++)
		CHECK(counts[i] > 9500 && counts[i] < 10500);
}

static void
test_gamma_mean(void)
{
	struct rng r;
	rng_seed(&r, 5, 0);
	double shapes[] = {0.3, 1.0, 4.5};
	for (int k = 0; k < 3; k++) {
		double sum = 0;
		for (int i = 0; i < 200000; i++)
			sum += rng_gamma(&r, shapes[k]);
		CHECK_NEAR(sum / 200000, shapes[k], 0.03 * shapes[k] + 0.01);
	}
}

static void
test_shuffle_is_permutation(void)
{
	struct rng r;
	rng_seed(&r, 9, 0);
	uint32_t a[100];
	int seen[100] = {0};
	for (uint32_t i = 0; i < 100; i++)
		a[i] = i;
	rng_shuffle_u32(&r, a, 100);
	int moved = 0;
	for (uint32_t i = 0; i < 100; i++) {
		seen[a[i]]++;
		moved += a[i] != i;
	}
	for (int i = 0; i < 100; i++)
		CHECK(seen[i] == 1);
	CHECK(moved > 80);
}

/* A sample is k distinct values of the input, sorted, the rest of the
 * input the other values; every value is drawn about equally often. */
static void
test_sample(void)
{
	struct rng r;
	rng_seed(&r, 11, 0);
	unsigned drawn[20] = {0};
	for (int t = 0; t < 20000; t++) {
		uint32_t a[20];
		for (uint32_t i = 0; i < 20; i++)
			a[i] = 100 + i;
		rng_sample_u32(&r, a, 20, 5);
		int seen[20] = {0};
		for (int i = 0; i < 20; i++) {
			CHECK(a[i] >= 100 && a[i] < 120);
			seen[a[i] - 100]++;
		}
		for (int i = 0; i < 20; i++)
			CHECK(seen[i] == 1);
		for (int i = 0; i < 5; i++) {
			CHECK(i == 0 || a[i - 1] < a[i]);
			drawn[a[i] - 100]++;
		}
	}
	/* 20000 * 5 / 20 = 5000 each. */
	for (int i = 0; i < 20; i++)
		CHECK(drawn[i] > 4700 && drawn[i] < 5300);
}

static void
test_hash_uniform_range(void)
{
	double sum = 0;
	for (uint64_t i = 0; i < 100000; i++) {
		float u = rng_hash_uniform(1234, i);
		CHECK(u >= 0.0f && u < 1.0f);
		sum += u;
	}
	CHECK_NEAR(sum / 100000, 0.5, 0.01);
	CHECK(rng_hash32(1, 5) == rng_hash32(1, 5));
	CHECK(rng_hash32(1, 5) != rng_hash32(2, 5));
}

int
main(void)
{
	RUN(test_same_seed_same_stream);
	RUN(test_streams_differ);
	RUN(test_below_is_uniform_and_in_range);
	RUN(test_gamma_mean);
	RUN(test_shuffle_is_permutation);
	RUN(test_sample);
	RUN(test_hash_uniform_range);
	return harness_finish();
}
