/* strategy-krum.c: Krum and Multi-Krum (Blanchard et al. 2017). Each of the
 * n updates is scored by the sum of its squared distances to its
 * n - krum_f - 2 nearest other updates; the krum_m lowest scores (ties: the
 * earlier arrival) are averaged, weighted as strategy.weighting says
 * (krum_m 1 = Krum: the chosen update itself). Needs every update of the
 * round: they stay mapped until the round ends, plus n x n distances. */
#include "strategy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console.h"

/* Squared Euclidean distance between kept updates a and b. */
static double
distance2(const struct strategy *s, unsigned a, unsigned b)
{
	double sum = 0;
	for (size_t i = 0; i < s->nspans; i++) {
		const float *x =
		    (const float *)s->kept[a].addr + s->spans[i].at;
		const float *y =
		    (const float *)s->kept[b].addr + s->spans[i].at;
		for (size_t k = 0; k < s->spans[i].n; k++) {
			double d = (double)x[k] - (double)y[k];
			sum += d * d;
		}
	}
	return sum;
}

/* Ascending order for doubles. */
static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Score every update, keep the krum_m best and average them. */
static int
krum_finish(struct strategy *s, const void *global, void *out,
            struct ipc_error *err)
{
	(void)global;
	unsigned n = s->nkept;
	long long f = s->cfg->strategy.krum_f;
	long long m = s->cfg->strategy.krum_m;
	if ((long long)n < 2 * f + 3 || m > (long long)n - f)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "krum: %u updates arrived, too few for "
		                     "strategy.krum_f %lld and krum_m %lld "
		                     "(needs 2 f + 3 and f + m)",
		                     n, f, m);
	double *d = xcalloc((size_t)n * n, sizeof *d);
	for (unsigned a = 0; a < n; a++)
		for (unsigned b = a + 1; b < n; b++)
			d[a * n + b] = d[b * n + a] = distance2(s, a, b);
	double *score = xcalloc(n, sizeof *score);
	double *row = xcalloc(n, sizeof *row);
	unsigned near = n - (unsigned)f - 2;
	for (unsigned a = 0; a < n; a++) {
		unsigned r = 0;
		for (unsigned b = 0; b < n; b++)
			if (b != a)
				row[r++] = d[a * n + b];
		qsort(row, r, sizeof *row, cmp_double);
		for (unsigned k = 0; k < near; k++)
			score[a] += row[k];
	}
	struct fedavg *acc = &s->acc;
	fedavg_reset(acc);
	char chosen[256] = "";
	for (long long pick = 0; pick < m; pick++) {
		unsigned best = n;
		for (unsigned a = 0; a < n; a++)
			if (score[a] >= 0 &&
			    (best == n || score[a] < score[best]))
				best = a;
		score[best] = -1;
		fedavg_add(acc, s->kept[best].addr, s->kept_weight[best]);
		size_t len = strlen(chosen);
		snprintf(chosen + len, sizeof chosen - len, "%s%u",
		         len ? "," : "", best);
	}
	console_log("krum: averaged update(s) %s of %u (arrival order)", chosen,
	            n);
	fedavg_finish(acc, out);
	free(d);
	free(score);
	free(row);
	return 0;
}

const struct strategy_ops strategy_krum = {
    .name = "krum",
    .kind = STRATEGY_ALL,
    .fold = strategy_keep_update,
    .finish = krum_finish,
};
