/* strategy-median.c: FedMedian, the coordinate-wise median of the round's
 * updates (unweighted; the mean of the two middle values for an even
 * count). Needs every update of the round: they stay mapped read-only until
 * the round ends, plus a scratch of fit_clients floats. */
#include "strategy.h"

#include <stdlib.h>

/* Keep the update (strategy.c keeps its mapping). */
static int
median_fold(struct strategy *s, const void *update, double weight,
            struct ipc_error *err)
{
	(void)s;
	(void)update;
	(void)weight;
	(void)err;
	return 0;
}

/* Ascending order for floats. */
static int
cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return (x > y) - (x < y);
}

/* Each coordinate of the new model is the median of the updates'. */
static int
median_finish(struct strategy *s, const void *global, void *out,
              struct ipc_error *err)
{
	(void)global;
	(void)err;
	unsigned n = s->nkept;
	float *col = xcalloc(n, sizeof *col);
	for (size_t i = 0; i < s->nspans; i++) {
		float *o = (float *)out + s->spans[i].at;
		for (size_t k = 0; k < s->spans[i].n; k++) {
			for (unsigned c = 0; c < n; c++)
				col[c] = ((const float *)s->kept[c].addr +
				          s->spans[i].at)[k];
			qsort(col, n, sizeof *col, cmp_float);
			o[k] = n % 2 ? col[n / 2]
			             : (float)(((double)col[n / 2 - 1] +
			                        (double)col[n / 2]) /
			                       2);
		}
	}
	free(col);
	return 0;
}

const struct strategy_ops strategy_median = {
    .name = "median",
    .kind = STRATEGY_ALL,
    .fold = median_fold,
    .finish = median_finish,
};
