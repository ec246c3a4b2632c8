/* strategy-trimmed.c: FedTrimmedAvg: per coordinate, drop the
 * floor(trim_beta * n) smallest and largest of the n updates' values and
 * average the rest (unweighted). Needs every update of the round: they stay
 * mapped read-only until the round ends, plus a scratch of fit_clients
 * floats. */
#include "strategy.h"

/* The mean of n sorted values without the *cut smallest and largest. */
static float
trimmed_mean_of(const float *col, unsigned n, const void *ctx)
{
	unsigned cut = *(const unsigned *)ctx;
	double sum = 0;
	for (unsigned c = cut; c < n - cut; c++)
		sum += (double)col[c];
	return (float)(sum / (n - 2 * cut));
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
	strategy_reduce_sorted(s, out, trimmed_mean_of, &cut);
	return 0;
}

const struct strategy_ops strategy_trimmed = {
    .name = "trimmed",
    .kind = STRATEGY_ALL,
    .fold = strategy_keep_update,
    .finish = trimmed_finish,
};
