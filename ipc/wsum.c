/* wsum.c: the weighted sum of model updates. */
#include "wsum.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

size_t
wsum_numel(const struct tensor_manifest *m)
{
	size_t n = 0;
	for (size_t i = 0; i < m->count; i++)
		n += m->tensors[i].nbytes / sizeof(float);
	return n;
}

/* sum (+)= w * region for its first count elements (manifest order). */
static void
add_prefix(double *sum, const struct tensor_manifest *m, const void *region,
           double w, int first, size_t count)
{
	for (size_t i = 0; i < m->count && count > 0; i++) {
		const struct tensor_desc *t = &m->tensors[i];
		size_t n = t->nbytes / sizeof(float);
		if (n > count)
			n = count;
		wsum_span(sum,
		          (const float *)((const char *)region + t->offset), n,
		          w, first);
		sum += n;
		count -= n;
	}
}

void
wsum_add(double *sum, const struct tensor_manifest *m, const void *region,
         double w, int first)
{
	add_prefix(sum, m, region, w, first, SIZE_MAX);
}

/* Elements per block of wsum_add_finite: 16 KB of float32. */
enum { WSUM_BLOCK = 4096 };

/* One block of wsum_add_finite: -1 when one of u's n values is an Inf or
 * a NaN (all exponent bits set; nothing added), else acc (+)= w * u. Built
 * twice, and the AVX2 build runs where the CPU has it (chosen when the
 * program loads): the baseline x86-64 build converts two floats to double
 * per instruction, AVX2 four. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
static int
wsum_block(double *acc, const float *u, size_t n, double w, int first)
{
	uint32_t bad = 0;
	for (size_t k = 0; k < n; k++) {
		uint32_t bits;
		memcpy(&bits, &u[k], sizeof bits);
		bad |= (bits & 0x7f800000u) == 0x7f800000u;
	}
	if (bad)
		return -1;
	wsum_span(acc, u, n, w, first);
	return 0;
}

int
wsum_add_finite(double *sum, const struct tensor_manifest *m,
                const void *region, double w, int first)
{
	size_t added = 0; /* elements of sum updated so far */
	for (size_t i = 0; i < m->count; i++) {
		const struct tensor_desc *t = &m->tensors[i];
		const float *u =
		    (const float *)((const char *)region + t->offset);
		size_t n = t->nbytes / sizeof(float);
		for (size_t b = 0; b < n; b += WSUM_BLOCK) {
			size_t len = n - b < WSUM_BLOCK ? n - b : WSUM_BLOCK;
			if (wsum_block(sum + added, u + b, len, w, first) !=
			    0) {
				if (!first) /* take back what was added */
					add_prefix(sum, m, region, -w, 0,
					           added);
				return -1;
			}
			added += len;
		}
	}
	return 0;
}

int
wsum_weight(const char *weighting, uint64_t num_examples, double steps,
            double *w, struct ipc_error *err)
{
	if (strcmp(weighting, "uniform") == 0) {
		*w = 1.0;
		return 0;
	}
	if (strcmp(weighting, "steps") == 0) {
		if (!(steps > 0) || !isfinite(steps))
			return ipc_error_set(
			    err, IPC_E_BAD_VALUE,
			    "strategy.weighting is steps but the result has "
			    "no positive \"steps\" metric");
		*w = steps;
		return 0;
	}
	if (strcmp(weighting, "examples") != 0)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "weighting \"%.32s\" is not examples, "
		                     "uniform or steps",
		                     weighting);
	if (num_examples == 0)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "result reports 0 examples");
	*w = (double)num_examples;
	return 0;
}
