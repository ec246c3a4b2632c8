/* fedavg.c: the streaming weighted average of client updates. */
#include "fedavg.h"

#include <stdlib.h>
#include <string.h>

int
fedavg_init(struct fedavg *a, const struct tensor_manifest *m,
            struct ipc_error *err)
{
	memset(a, 0, sizeof *a);
	for (size_t i = 0; i < m->count; i++) {
		if (m->tensors[i].dtype != DTYPE_F32)
			return ipc_error_set(
			    err, IPC_E_DTYPE,
			    "model tensor %s is %s; FedAvg "
			    "aggregates F32 tensors only",
			    m->tensors[i].name,
			    tensor_dtype_name(m->tensors[i].dtype));
		a->numel += m->tensors[i].nbytes / sizeof(float);
	}
	a->model = m;
	a->acc = xcalloc(a->numel ? a->numel : 1, sizeof *a->acc);
	return 0;
}

void
fedavg_reset(struct fedavg *a)
{
	memset(a->acc, 0, a->numel * sizeof *a->acc);
	a->weight = 0;
	a->folded = 0;
}

void
fedavg_add(struct fedavg *a, const void *region, double weight)
{
	double *acc = a->acc;
	for (size_t i = 0; i < a->model->count; i++) {
		const struct tensor_desc *t = &a->model->tensors[i];
		const float *u =
		    (const float *)((const char *)region + t->offset);
		size_t n = t->nbytes / sizeof(float);
		for (size_t k = 0; k < n; k++)
			acc[k] += weight * (double)u[k];
		acc += n;
	}
	a->weight += weight;
	a->folded++;
}

void
fedavg_finish(const struct fedavg *a, void *region)
{
	const double *acc = a->acc;
	for (size_t i = 0; i < a->model->count; i++) {
		const struct tensor_desc *t = &a->model->tensors[i];
		float *out = (float *)((char *)region + t->offset);
		size_t n = t->nbytes / sizeof(float);
		for (size_t k = 0; k < n; k++)
			out[k] = (float)(acc[k] / a->weight);
		acc += n;
	}
}

void
fedavg_free(struct fedavg *a)
{
	free(a->acc);
	memset(a, 0, sizeof *a);
}
