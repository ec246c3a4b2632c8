/* dpaccount.c: RDP accounting of the sampled Gaussian mechanism (the math
 * is in dpaccount.h). Every sum is taken in log space: the terms of A_a
 * span hundreds of orders of magnitude at large orders. */
#include "dpaccount.h"

#include <math.h>
#include <stddef.h>

unsigned
dp_order(unsigned i)
{
	/* 2..64 (63 orders), then 80, 96, 128, 192, 256, 384, 512, 768,
	 * 1024 */
	static const unsigned wide[] = {80,  96,  128, 192, 256,
	                                384, 512, 768, 1024};
	return i < 63 ? i + 2 : wide[i - 63];
}

/* log(exp(a) + exp(b)) without overflow. */
static double
log_add(double a, double b)
{
	if (a == -INFINITY)
		return b;
	if (b == -INFINITY)
		return a;
	double hi = a > b ? a : b, lo = a > b ? b : a;
	return hi + log1p(exp(lo - hi));
}

double
dp_rdp_round(double q, double sigma, unsigned a)
{
	if (q <= 0)
		return 0;
	if (!(sigma > 0))
		return INFINITY; /* no noise: nothing is private */
	/* q = 1 is the Gaussian mechanism itself: a / (2 sigma^2) */
	if (q >= 1)
		return a / (2 * sigma * sigma);
	double log_a = -INFINITY;
	double lq = log(q), l1q = log1p(-q);
	for (unsigned k = 0; k <= a; k++) {
		double binom = lgamma(a + 1.0) - lgamma(k + 1.0) -
		               lgamma((double)(a - k) + 1.0);
		double term = binom + (double)(a - k) * l1q + k * lq +
		              ((double)k * k - k) / (2 * sigma * sigma);
		log_a = log_add(log_a, term);
	}
	return log_a / (a - 1);
}

void
dpaccount_init(struct dpaccount *d, double q, double sigma)
{
	d->q = q;
	d->sigma = sigma;
	d->rounds = 0;
	for (unsigned i = 0; i < DP_ORDERS; i++)
		d->rdp[i] = 0;
}

void
dpaccount_round(struct dpaccount *d)
{
	for (unsigned i = 0; i < DP_ORDERS; i++)
		d->rdp[i] += dp_rdp_round(d->q, d->sigma, dp_order(i));
	d->rounds++;
}

double
dpaccount_epsilon(const struct dpaccount *d, double delta, unsigned *order)
{
	double best = INFINITY;
	unsigned best_order = 0;
	for (unsigned i = 0; d->rounds > 0 && i < DP_ORDERS; i++) {
		double a = dp_order(i);
		double eps = d->rdp[i] + log((a - 1) / a) -
		             (log(delta) + log(a)) / (a - 1);
		if (eps < best) {
			best = eps;
			best_order = dp_order(i);
		}
	}
	if (order != NULL)
		*order = best_order;
	if (d->rounds == 0)
		return 0;
	return best > 0 ? best : 0;
}
