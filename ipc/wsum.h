/* wsum.h: the weighted sum of model updates, the one kernel both sides
 * fold with: the orchestrator's FedAvg accumulator (fedavg.c) and a pool
 * worker's partial sum of its own tasks (docs/protocol.md, "Partial
 * sums"). A sum is one float64 per float32 element of the model, the
 * model's tensors concatenated in manifest order (no padding), so a
 * partial sum adds into the accumulator element by element. */
#ifndef COHORT_WSUM_H
#define COHORT_WSUM_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "tensor.h"

/* Elements of a sum for models laid out as m (every tensor F32). */
size_t wsum_numel(const struct tensor_manifest *m);

/* acc[k] (+)= w * u[k] for n elements: assigned when first, else added. */
static inline void
wsum_span(double *acc, const float *u, size_t n, double w, int first)
{
	if (first)
		for (size_t k = 0; k < n; k++)
			acc[k] = w * (double)u[k];
	else
		for (size_t k = 0; k < n; k++)
			acc[k] += w * (double)u[k];
}

/* sum (+)= w * region, region laid out as m. */
void wsum_add(double *sum, const struct tensor_manifest *m, const void *region,
              double w, int first);
/* wsum_add when every element of region is finite (0); else -1 and sum
 * is as it was, up to float64 rounding (what was added before the first
 * block holding an Inf or NaN is subtracted again; first: sum is left
 * undefined, nothing was in it). Checks and folds block by block, so the
 * update is read once (a check, then a fold, of a block in L1). */
int wsum_add_finite(double *sum, const struct tensor_manifest *m,
                    const void *region, double w, int first);

/* The weight a fit's update carries under weighting (examples: its
 * examples; uniform: 1; steps: its "steps" metric): 0, or -1 with err
 * saying why it has none (0 examples, no positive steps, a weighting
 * that is none of these). */
int wsum_weight(const char *weighting, uint64_t num_examples, double steps,
                double *w, struct ipc_error *err);

#endif
