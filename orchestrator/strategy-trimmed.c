/* strategy-trimmed.c: FedTrimmedAvg: per coordinate, drop the
 * floor(trim_beta * n) smallest and largest of the n updates' values and
 * average the rest (unweighted). Needs every update of the round: they stay
 * mapped read-only until the round ends, plus a scratch of fit_clients
 * floats. */
#include "strategy.h"

#include <stdlib.h>

/* Keep the update (strategy.c keeps its mapping). */
static int
trimmed_fold(struct strategy *s, const void *update, double weight,
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

/* Each coordinate of the new model is the trimmed mean of the updates'. */
static int
trimmed_finish(struct strategy *s, const void *global, void *out,
               struct ipc_error *err)
{
	(void)global;
	unsigned n = s->nkept;
	unsigned cut = (unsigned)(s->cfg->strategy.trim_beta * n);
	if (2 * cut >= n)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "strategy.trim_beta %g drops all %u "
		                     "updates of the round; lower it",
		                     s->cfg->strategy.trim_beta, n);
	float *col = xcalloc(n, sizeof *col);
	for (size_t i = 0; i < s->nspans; i++) {
		float *o = (float *)out + s->spans[i].at;
		for (size_t k = 0; k < s->spans[i].n; k++) {
			for (unsigned c = 0; c < n; c++)
				col[c] = ((const float *)s->kept[c].addr +
				          s->spans[i].at)[k];
			qsort(col, n, sizeof *col, cmp_float);
			double sum = 0;
			for (unsigned c = cut; c < n - cut; c++)
				sum += (double)col[c];
			o[k] = (float)(sum / (n - 2 * cut));
		}
	}
	free(col);
	return 0;
}

const struct strategy_ops strategy_trimmed = {
    .name = "trimmed",
    .kind = STRATEGY_ALL,
    .fold = trimmed_fold,
    .finish = trimmed_finish,
};
