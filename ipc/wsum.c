/* wsum.c: the weighted sum of model updates. */
#include "wsum.h"

#include <math.h>
#include <string.h>

size_t
wsum_numel(const struct tensor_manifest *m)
{
	size_t n = 0;
	for (size_t i = 0; i < m->count; i++)
		n += m->tensors[i].nbytes / sizeof(float);
	return n;
}

void
wsum_add(double *sum, const struct tensor_manifest *m, const void *region,
         double w, int first)
{
	for (size_t i = 0; i < m->count; i++) {
		const struct tensor_desc *t = &m->tensors[i];
		size_t n = t->nbytes / sizeof(float);
		wsum_span(sum,
		          (const float *)((const char *)region + t->offset), n,
		          w, first);
		sum += n;
	}
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
