/* tool-sgemm-peak.c: cohort-sgemm-peak: the single-precision GEMM rate this
 * machine reaches through OpenBLAS, at 1024^3 and at the MLP's own shapes,
 * so the engine's achieved GFLOP/s can be judged against a real ceiling.
 *
 * usage: cohort-sgemm-peak [THREADS]   (default 1) */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

#include "rng.h"
#include "util.h"

struct shape {
	const char *what;
	CBLAS_TRANSPOSE ta, tb;
	int m, n, k;
};

/* Best GFLOP/s over several timed repetitions of C = op(A) op(B). */
static double
best_gflops(const struct shape *s, float *a, float *b, float *c)
{
	double flops = 2.0 * s->m * s->n * s->k, best = 0.0;
	int lda = s->ta == CblasNoTrans ? s->k : s->m;
	int ldb = s->tb == CblasNoTrans ? s->n : s->k;
	/* About 4 GFLOP per timing (tens of ms); the first timing warms up. */
	int reps = (int)(4e9 / flops) + 1;
	for (int t = 0; t < 8; t++) {
		double t0 = now_seconds();
		for (int r = 0; r < reps; r++)
			cblas_sgemm(CblasRowMajor, s->ta, s->tb, s->m, s->n,
			            s->k, 1.0f, a, lda, b, ldb, 0.0f, c, s->n);
		double dt = now_seconds() - t0;
		if (t > 0 && flops * reps / dt / 1e9 > best)
			best = flops * reps / dt / 1e9;
	}
	return best;
}

/* Time each shape and print one line per shape. */
int
main(int argc, char **argv)
{
	if (version_requested(argc, argv, "cohort-sgemm-peak"))
		return 0;
	int threads = argc > 1 ? atoi(argv[1]) : 1;
	if (threads < 1) {
		fprintf(stderr, "usage: cohort-sgemm-peak [THREADS]\n");
		return 2;
	}
	openblas_set_num_threads(threads);
	const struct shape shapes[] = {
	    {"square 1024x1024x1024", CblasNoTrans, CblasNoTrans, 1024, 1024,
	     1024},
	    {"mlp fc1 forward  x[32,784] W^T", CblasNoTrans, CblasTrans, 32,
	     128, 784},
	    {"mlp fc1 dW       dy^T[128,32] x", CblasTrans, CblasNoTrans, 128,
	     784, 32},
	};
	size_t cap = (size_t)1024 * 1024;
	float *a = xmalloc(cap * sizeof(float)),
	      *b = xmalloc(cap * sizeof(float));
	float *c = xmalloc(cap * sizeof(float));
	struct rng r;
	rng_seed(&r, 1, 0);
	for (size_t i = 0; i < cap; i++) {
		a[i] = (float)rng_uniform(&r) - 0.5f;
		b[i] = (float)rng_uniform(&r) - 0.5f;
	}
	printf("# OpenBLAS %s, %d thread(s), best of 7 timings\n",
	       openblas_get_config(), threads);
	for (size_t i = 0; i < ARRAY_LEN(shapes); i++) {
		const struct shape *s = &shapes[i];
		printf("%-34s m=%-5d n=%-5d k=%-5d %8.1f GFLOP/s\n", s->what,
		       s->m, s->n, s->k, best_gflops(s, a, b, c));
	}
	free(a);
	free(b);
	free(c);
	return 0;
}
