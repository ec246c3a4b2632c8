/* fedavg.c: the streaming weighted average of client updates. */
#include "fedavg.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "wsum.h"

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
	}
	a->numel = wsum_numel(m);
	a->model = m;
	/* Huge pages, brought in whole by the first fold: until then the
	 * capacity check sees the accumulator as free memory. */
	a->acc = big_map(a->numel * sizeof(double));
	return 0;
}

void
fedavg_reset(struct fedavg *a)
{
	/* No zeroing: the round's first fold assigns (a pass less over a
	 * float64 accumulator twice the model's size). */
	a->weight = 0;
	a->folded = 0;
}

void
fedavg_add(struct fedavg *a, const void *region, double weight)
{
	fedavg_add_each(a, region, weight, NULL, NULL);
}

void
fedavg_add_each(struct fedavg *a, const void *region, double weight,
                void (*tensor)(void *arg, size_t begin, size_t end), void *arg)
{
	double *acc = a->acc;
	int first = a->folded == 0;
	/* The job's first fold: every page in one call, not a fault each. */
	if (!a->resident)
		big_populate(acc, a->numel * sizeof *acc);
	a->resident = 1;
	for (size_t i = 0; i < a->model->count; i++) {
		const struct tensor_desc *t = &a->model->tensors[i];
		const float *u =
		    (const float *)((const char *)region + t->offset);
		size_t n = t->nbytes / sizeof(float);
		if (tensor != NULL)
			tensor(arg, t->offset, t->offset + t->nbytes);
		wsum_span(acc, u, n, weight, first);
		acc += n;
	}
	a->weight += weight;
	a->folded++;
}

void
fedavg_add_sum(struct fedavg *a, const double *sum, double weight,
               unsigned count)
{
	if (!a->resident)
		big_populate(a->acc, a->numel * sizeof *a->acc);
	a->resident = 1;
	if (a->folded == 0)
		memcpy(a->acc, sum, a->numel * sizeof *a->acc);
	else
		for (size_t k = 0; k < a->numel; k++)
			a->acc[k] += sum[k];
	a->weight += weight;
	a->folded += count;
}

double
fedavg_finish(const struct fedavg *a, void *region)
{
	return fedavg_finish_each(a, region, NULL, NULL);
}

double
fedavg_finish_each(const struct fedavg *a, void *region,
                   void (*tensor)(void *arg, size_t begin, size_t end),
                   void *arg)
{
	const double *acc = a->acc;
	float peak = 0;
	int bad = 0;
	for (size_t i = 0; i < a->model->count; i++) {
		const struct tensor_desc *t = &a->model->tensors[i];
		float *out = (float *)((char *)region + t->offset);
		size_t n = t->nbytes / sizeof(float);
		if (tensor != NULL)
			tensor(arg, t->offset, t->offset + t->nbytes);
		for (size_t k = 0; k < n; k++) {
			float f = (float)(acc[k] / a->weight);
			float m = fabsf(f);
			out[k] = f;
			bad |= !(m <= FLT_MAX); /* NaN or Inf */
			peak = m > peak ? m : peak;
		}
		acc += n;
	}
	return bad ? INFINITY : peak;
}

void
fedavg_free(struct fedavg *a)
{
	if (a->acc != NULL)
		big_free(a->acc, a->numel * sizeof(double));
	memset(a, 0, sizeof *a);
}
