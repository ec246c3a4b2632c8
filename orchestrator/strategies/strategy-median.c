/* strategy-median.c: FedMedian, the coordinate-wise median of the round's
 * updates (unweighted; the mean of the two middle values for an even
 * count). Needs every update of the round: they stay mapped read-only until
 * the round ends, plus a scratch of fit_clients floats. */
#include "strategy.h"

/* The median of n sorted values (the mean of the middle two for even n). */
static float
median_of(const float *col, unsigned n, const void *ctx)
{
	(void)ctx;
	return n % 2
	           ? col[n / 2]
	           : (float)(((double)col[n / 2 - 1] + (double)col[n / 2]) / 2);
}

/* Each coordinate of the new model is the median of the updates'. */
static int
median_finish(struct strategy *s, const void *global, void *out,
              struct ipc_error *err)
{
	(void)global;
	(void)err;
	strategy_reduce_sorted(s, out, median_of, NULL);
	return 0;
}

const struct strategy_ops strategy_median = {
    .name = "median",
    .kind = STRATEGY_ALL,
    .fold = strategy_keep_update,
    .finish = median_finish,
};
