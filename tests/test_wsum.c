/* test_wsum.c: the fused check-and-fold of a partial sum (wsum_add_finite)
 * gives wsum_add's sum bit for bit on a finite update; an Inf or NaN in a
 * later block leaves the sum as it was (up to float64 rounding) and
 * returns -1, in the first tensor, a later one, and the last element. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tensor.h"
#include "wsum.h"

/* Two tensors of 10,000 and 3,000 floats: blocks cross a tensor end. */
static void
make_model(struct tensor_manifest *m)
{
	tensor_manifest_init(m);
	uint64_t a[] = {100, 100}, b[] = {3000};
	CHECK_EQ_INT(tensor_manifest_add(m, "a", DTYPE_F32, 2, a, NULL), 0);
	CHECK_EQ_INT(tensor_manifest_add(m, "b", DTYPE_F32, 1, b, NULL), 0);
}

static void
test_fused(void)
{
	struct tensor_manifest m;
	make_model(&m);
	size_t n = wsum_numel(&m);
	CHECK_EQ_INT(n, 13000);
	float *u = malloc(m.total_size), *v = malloc(m.total_size);
	for (size_t k = 0; k < n; k++) {
		u[k] = (float)sin((double)k) * 3.0f;
		v[k] = (float)cos((double)k) / 7.0f;
	}
	double *want = malloc(n * sizeof *want), *got = malloc(n * sizeof *got);
	wsum_add(want, &m, u, 60, 1);
	wsum_add(want, &m, v, 54, 0);
	CHECK_EQ_INT(wsum_add_finite(got, &m, u, 60, 1), 0);
	CHECK_EQ_INT(wsum_add_finite(got, &m, v, 54, 0), 0);
	CHECK(memcmp(want, got, n * sizeof *got) == 0);

	const size_t at[] = {5, 9999, 10000, 12999};
	for (size_t i = 0; i < 4; i++) {
		float *bad = malloc(m.total_size);
		memcpy(bad, v, m.total_size);
		bad[at[i]] = i % 2 ? NAN : INFINITY;
		double *keep = malloc(n * sizeof *keep);
		memcpy(keep, got, n * sizeof *got);
		CHECK_EQ_INT(wsum_add_finite(got, &m, bad, 54, 0), -1);
		size_t off = 0;
		for (size_t k = 0; k < n; k++)
			off += fabs(got[k] - keep[k]) >
			       1e-12 * fabs(keep[k]) + 1e-15;
		CHECK_EQ_INT(off, 0);
		free(keep);
		free(bad);
	}
	float *bad = malloc(m.total_size);
	memcpy(bad, u, m.total_size);
	bad[12000] = NAN;
	CHECK_EQ_INT(wsum_add_finite(got, &m, bad, 1, 1), -1);
	free(bad);
	free(u);
	free(v);
	free(want);
	free(got);
	tensor_manifest_free(&m);
}

int
main(void)
{
	RUN(test_fused);
	return harness_finish();
}
