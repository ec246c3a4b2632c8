/* fedavg.h: streaming federated averaging. Each update is folded into a
 * float64 accumulator as it arrives (acc += w * update), so server memory is
 * one model's worth whatever the number of clients; the new global model is
 * acc / sum(w) rounded to float32. */
#ifndef COHORT_FEDAVG_H
#define COHORT_FEDAVG_H

#include <stddef.h>

#include "error.h"
#include "tensor.h"

struct fedavg {
	const struct tensor_manifest *model; /* the global model's layout */
	double *acc; /* one double per float32 element */
	size_t numel;
	double weight; /* sum of folded weights */
	unsigned folded;
	int resident; /* acc's pages are in place (its first fold) */
};

/* Prepare an accumulator for models laid out as m (every tensor F32). */
int fedavg_init(struct fedavg *a, const struct tensor_manifest *m,
                struct ipc_error *err);
/* Start a new round: no update folded (acc is undefined until the first). */
void fedavg_reset(struct fedavg *a);
/* Add weight * region (a checked update laid out as the model). */
void fedavg_add(struct fedavg *a, const void *region, double weight);
/* fedavg_add, calling tensor(arg, begin, end) with each tensor's byte range
 * in region just before it is read (so a reader can fault in windows of a
 * lazy mapping and drop the ones it has read). */
void fedavg_add_each(struct fedavg *a, const void *region, double weight,
                     void (*tensor)(void *arg, size_t begin, size_t end),
                     void *arg);
/* Add a sum of count updates whose weights add up to weight (a partial
 * sum, laid out as acc: wsum.h). */
void fedavg_add_sum(struct fedavg *a, const double *sum, double weight,
                    unsigned count);
/* Write acc / weight as float32 into region (laid out as the model);
 * returns the largest magnitude written, INFINITY when a value is not
 * finite (the caller's check of the aggregate, made in the same pass). */
double fedavg_finish(const struct fedavg *a, void *region);
/* fedavg_finish, calling tensor(arg, begin, end) with each tensor's byte
 * range in region just before it is written (windows of a large mapping,
 * as fedavg_add_each). */
double fedavg_finish_each(const struct fedavg *a, void *region,
                          void (*tensor)(void *arg, size_t begin, size_t end),
                          void *arg);
void fedavg_free(struct fedavg *a);

#endif
