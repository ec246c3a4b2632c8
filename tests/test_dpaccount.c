/* test_dpaccount.c: the RDP accountant against an independent computation:
 * A_a of the sampled Gaussian mechanism is the a-th moment of the privacy
 * loss, E_{z ~ N(0, s^2)} [((1-q) + q exp((2z - 1) / (2 s^2)))^a], which
 * the test integrates numerically and compares with the closed-form sum;
 * q = 1 is the Gaussian mechanism (a / (2 s^2)); and epsilon behaves as it
 * must (grows with rounds and q, shrinks with noise and delta). */
#include <math.h>
#include <stdio.h>

#include "dpaccount.h"
#include "harness.h"
#include "util.h"

/* log A_a by the trapezoid rule over z in [-40 s, a + 40 s] (the
 * integrand peaks near z = a for small q), in log space. */
static double
log_moment_numeric(double q, double s, unsigned a)
{
	const int n = 400000;
	double lo = -40 * s, hi = a + 40 * s, h = (hi - lo) / n;
	double peak = -INFINITY;
	/* first pass: the largest log-integrand, to scale the sum */
	for (int i = 0; i <= n; i++) {
		double z = lo + i * h;
		double r = (1 - q) + q * exp((2 * z - 1) / (2 * s * s));
		double l = -z * z / (2 * s * s) + a * log(r);
		peak = l > peak ? l : peak;
	}
	double sum = 0;
	for (int i = 0; i <= n; i++) {
		double z = lo + i * h;
		double r = (1 - q) + q * exp((2 * z - 1) / (2 * s * s));
		double l = -z * z / (2 * s * s) + a * log(r);
		sum += (i == 0 || i == n ? 0.5 : 1.0) * exp(l - peak);
	}
	/* the N(0, s^2) density's constant */
	return peak + log(sum * h) - 0.5 * log(2 * M_PI * s * s);
}

/* The closed form equals the integral at several (q, sigma, order). */
static void
test_against_integral(void)
{
	static const struct {
		double q, s;
		unsigned a;
	} cases[] = {
	    {0.01, 1.1, 2}, {0.01, 1.1, 32}, {0.004, 1.1, 12}, {0.1, 4.0, 10},
	    {0.5, 0.8, 8},  {0.05, 2.0, 64}, {0.001, 0.7, 40}, {0.3, 1.0, 3},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		double q = cases[i].q, s = cases[i].s;
		unsigned a = cases[i].a;
		double closed = dp_rdp_round(q, s, a) * (a - 1);
		double numeric = log_moment_numeric(q, s, a);
		printf("  q %g sigma %g order %u: log A closed %.10g, "
		       "integrated %.10g\n",
		       q, s, a, closed, numeric);
		CHECK(fabs(closed - numeric) <=
		      1e-7 * fmax(1.0, fabs(numeric)));
	}
}

/* q = 1: every client every round, the Gaussian mechanism's a/(2s^2);
 * q = 0: nothing is revealed. */
static void
test_limits(void)
{
	for (unsigned a = 2; a <= 64; a *= 2) {
		CHECK_NEAR(dp_rdp_round(1, 2.0, a), a / 8.0, 1e-12);
		CHECK_NEAR(dp_rdp_round(0, 2.0, a), 0, 0);
	}
	struct dpaccount d;
	dpaccount_init(&d, 0.1, 1.0);
	CHECK_EQ_INT(dpaccount_epsilon(&d, 1e-5, NULL) == 0, 1);
	/* RDP composes by addition: 10 rounds are 10 times one */
	for (int r = 0; r < 10; r++)
		dpaccount_round(&d);
	for (unsigned i = 0; i < DP_ORDERS; i += 7)
		CHECK_NEAR(d.rdp[i], 10 * dp_rdp_round(0.1, 1.0, dp_order(i)),
		           1e-9 * d.rdp[i]);
}

/* Epsilon of rounds rounds of (q, sigma) at delta. */
static double
eps_of(double q, double sigma, unsigned rounds, double delta)
{
	struct dpaccount d;
	dpaccount_init(&d, q, sigma);
	for (unsigned r = 0; r < rounds; r++)
		dpaccount_round(&d);
	return dpaccount_epsilon(&d, delta, NULL);
}

/* Epsilon grows with rounds and sampling, shrinks with noise and a larger
 * delta; the conversion used is below the classic rdp + log(1/delta) /
 * (a - 1), and a DP-SGD-like setting lands where such settings do (a few
 * units, the optimum at a middle order). */
static void
test_epsilon(void)
{
	double base = eps_of(0.01, 1.1, 100, 1e-5);
	CHECK(base > 0);
	CHECK(eps_of(0.01, 1.1, 200, 1e-5) > base);
	CHECK(eps_of(0.02, 1.1, 100, 1e-5) > base);
	CHECK(eps_of(0.01, 2.0, 100, 1e-5) < base);
	CHECK(eps_of(0.01, 1.1, 100, 1e-3) < base);
	struct dpaccount d;
	dpaccount_init(&d, 256.0 / 60000, 1.1);
	for (unsigned r = 0; r < 14063; r++)
		dpaccount_round(&d);
	unsigned order;
	double eps = dpaccount_epsilon(&d, 1e-5, &order);
	double classic = INFINITY;
	for (unsigned i = 0; i < DP_ORDERS; i++) {
		double a = dp_order(i);
		double e = d.rdp[i] + log(1e5) / (a - 1);
		classic = e < classic ? e : classic;
	}
	printf("  q 256/60000, sigma 1.1, 14063 rounds, delta 1e-5: epsilon "
	       "%.3f at order %u (classic conversion %.3f)\n",
	       eps, order, classic);
	CHECK(eps < classic);
	CHECK(eps > 1 && eps < 5);
	CHECK(order > 4 && order < 40);
}

int
main(void)
{
	RUN(test_against_integral);
	RUN(test_limits);
	RUN(test_epsilon);
	return harness_finish();
}
