/* test_dp.c: central DP's clipping, fixed denominator and noise
 * (orchestrator/strategies/dp.c) on small models with known answers: an
 * update's change is cut to clip_norm, the mean divides by fit_clients
 * whatever came back, the noise has standard deviation
 * noise_multiplier x clip_norm / fit_clients per element of the mean and
 * differs between two releases; and the configurations it refuses. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dp.h"
#include "fedavg.h"
#include "harness.h"
#include "util.h"

/* A one-tensor F32 model of n elements. */
static void
model_of(struct tensor_manifest *m, uint64_t n)
{
	struct ipc_error err;
	tensor_manifest_init(m);
	uint64_t shape[1] = {n};
	CHECK_EQ_INT(tensor_manifest_add(m, "w", DTYPE_F32, 1, shape, &err), 0);
}

/* A config with DP on: clip, noise, fit of clients. */
static void
config_of(struct config *c, const char *clip, const char *noise,
          const char *fit)
{
	struct ipc_error err;
	config_defaults(c);
	char buf[64];
	const char *sets[] = {"privacy.dp=central",
	                      "strategy.weighting=uniform",
	                      "federation.clients=10"};
	for (size_t i = 0; i < ARRAY_LEN(sets); i++)
		CHECK_EQ_INT(config_set(c, sets[i], &err), 0);
	snprintf(buf, sizeof buf, "privacy.clip_norm=%s", clip);
	CHECK_EQ_INT(config_set(c, buf, &err), 0);
	snprintf(buf, sizeof buf, "privacy.noise_multiplier=%s", noise);
	CHECK_EQ_INT(config_set(c, buf, &err), 0);
	snprintf(buf, sizeof buf, "federation.fit_clients=%s", fit);
	CHECK_EQ_INT(config_set(c, buf, &err), 0);
	snprintf(buf, sizeof buf, "federation.min_fit=1");
	CHECK_EQ_INT(config_set(c, buf, &err), 0);
}

/* Clipping and the fixed denominator: g = (1, 1, 1, 1); u1 changes it by
 * (3, 4, 0, 0) (norm 5, cut to 1: (0.6, 0.8, 0, 0)), u2 by (0, 0, 0.5, 0)
 * (kept); fit_clients 3, so the mean is g + (0.6, 0.8, 0.5, 0) / 3. */
static void
test_clip_and_denominator(void)
{
	struct tensor_manifest m;
	model_of(&m, 4);
	struct config c;
	config_of(&c, "1", "0", "3");
	struct dp *d = dp_new(&c);
	CHECK(d != NULL);
	struct fedavg acc;
	struct ipc_error err;
	CHECK_EQ_INT(fedavg_init(&acc, &m, &err), 0);
	float g[4] = {1, 1, 1, 1}, u1[4] = {4, 5, 1, 1}, u2[4] = {1, 1, 1.5, 1};
	fedavg_reset(&acc);
	dp_configure(d, g);
	dp_fold(d, &acc, &m, u1);
	dp_fold(d, &acc, &m, u2);
	CHECK_EQ_INT(d->clipped, 1);
	CHECK_NEAR(d->norm_max, 5.0, 1e-12);
	CHECK_EQ_INT(dp_release(d, &acc, &m, &err), 0);
	float out[4];
	fedavg_finish(&acc, out);
	const double want[4] = {1 + 0.6 / 3, 1 + 0.8 / 3, 1 + 0.5 / 3, 1};
	for (int k = 0; k < 4; k++)
		CHECK_NEAR(out[k], want[k], 1e-6);
	/* no noise: no privacy, epsilon infinite however many rounds */
	dp_account(d);
	CHECK(isinf(dp_epsilon(d)));
	dp_free(d);
	fedavg_free(&acc);
	config_free(&c);
	tensor_manifest_free(&m);
}

/* The noise: 200,000 elements, every update equal to g: the mean is g
 * plus noise of sd noise x clip / fit per element (0.5 x 2 / 4 = 0.25),
 * centred, and another release draws other noise. */
static void
test_noise(void)
{
	enum { N = 200000 };
	struct tensor_manifest m;
	model_of(&m, N);
	struct config c;
	config_of(&c, "2", "0.5", "4");
	struct dp *d = dp_new(&c);
	struct fedavg acc;
	struct ipc_error err;
	CHECK_EQ_INT(fedavg_init(&acc, &m, &err), 0);
	float *g = xcalloc(N, sizeof *g), *a = xcalloc(N, sizeof *a),
	      *b = xcalloc(N, sizeof *b);
	float *outs[2] = {a, b};
	for (int r = 0; r < 2; r++) {
		fedavg_reset(&acc);
		dp_configure(d, g);
		for (int i = 0; i < 4; i++)
			dp_fold(d, &acc, &m, g);
		CHECK_EQ_INT(dp_release(d, &acc, &m, &err), 0);
		fedavg_finish(&acc, outs[r]);
		dp_account(d);
	}
	double sum = 0, sq = 0, same = 0;
	for (int k = 0; k < N; k++) {
		sum += a[k];
		sq += (double)a[k] * a[k];
		same += a[k] == b[k];
	}
	double mean = sum / N, sd = sqrt(sq / N - mean * mean);
	printf("  noise: mean %.5f, sd %.5f (want 0.25), equal in two "
	       "releases %.0f of %d\n",
	       mean, sd, same, N);
	CHECK(fabs(mean) < 5 * 0.25 / sqrt(N));
	CHECK(fabs(sd - 0.25) < 0.01 * 0.25);
	CHECK(same < 10);
	/* q = 4 / 10, sigma 0.5, two rounds: epsilon as the accountant's */
	struct dpaccount ref;
	dpaccount_init(&ref, 0.4, 0.5);
	dpaccount_round(&ref);
	dpaccount_round(&ref);
	CHECK_NEAR(dp_epsilon(d), dpaccount_epsilon(&ref, 1e-5, NULL), 1e-12);
	free(g);
	free(a);
	free(b);
	dp_free(d);
	fedavg_free(&acc);
	config_free(&c);
	tensor_manifest_free(&m);
}

/* Fold updates of change norms 0.5, 1, 2 and 3 (along the first element)
 * into a released round of d. */
static void
adaptive_round(struct dp *d, struct fedavg *acc,
               const struct tensor_manifest *m)
{
	static const float g[2] = {0, 0};
	static const float u[4][2] = {{0.5f, 0}, {1, 0}, {2, 0}, {3, 0}};
	struct ipc_error err;
	fedavg_reset(acc);
	dp_configure(d, g);
	for (int i = 0; i < 4; i++)
		dp_fold(d, acc, m, u[i]);
	CHECK_EQ_INT(dp_release(d, acc, m, &err), 0);
}

/* Adaptive clipping (no noise, so the count is exact): C 0.8 leaves one
 * of four updates unclipped, a share of 0.25 under the target 0.5, so C
 * grows by exp(0.2 x 0.25); over rounds it settles between the second and
 * third norms (the median); the update's noise multiplier gives the count
 * its share: (1 - 1/4)^-1/2 for s = 1, count sd 1. */
static void
test_adaptive(void)
{
	struct tensor_manifest m;
	model_of(&m, 2);
	struct config c;
	config_of(&c, "0.8", "0", "4");
	struct ipc_error err;
	CHECK_EQ_INT(config_set(&c, "privacy.adaptive_clip=true", &err), 0);
	struct dp *d = dp_new(&c);
	struct fedavg acc;
	CHECK_EQ_INT(fedavg_init(&acc, &m, &err), 0);
	adaptive_round(d, &acc, &m);
	struct dp_round_info info;
	dp_info(d, &info);
	CHECK_NEAR(info.clip, 0.8, 1e-12);
	CHECK_EQ_INT(info.clipped, 3);
	CHECK_NEAR(d->clip, 0.8 * exp(0.2 * 0.25), 1e-12);
	for (int r = 0; r < 200; r++)
		adaptive_round(d, &acc, &m);
	printf("  adaptive clip after 201 rounds: %.4f\n", d->clip);
	CHECK(d->clip > 1 * 0.8 && d->clip < 2 * 1.25);
	dp_free(d);
	config_free(&c);

	config_of(&c, "1", "1", "10");
	CHECK_EQ_INT(config_set(&c, "privacy.adaptive_clip=true", &err), 0);
	CHECK_EQ_INT(config_set(&c, "privacy.clip_count_stddev=1", &err), 0);
	CHECK_EQ_INT(config_check(&c, &err), 0);
	d = dp_new(&c);
	CHECK_NEAR(d->sigma_update, 1 / sqrt(0.75), 1e-12);
	dp_free(d);
	config_free(&c);
	/* a count noise too small to leave the update any: refused */
	config_of(&c, "1", "1", "10");
	CHECK_EQ_INT(config_set(&c, "privacy.adaptive_clip=true", &err), 0);
	CHECK_EQ_INT(config_check(&c, &err), -1);
	CHECK_STR_CONTAINS(err.message, "privacy.clip_count_stddev");
	config_free(&c);
	fedavg_free(&acc);
	tensor_manifest_free(&m);
}

/* A checkpoint keeps the RDP spent: a resume with another noise
 * multiplier reports what the first rounds really spent, then adds its
 * own; rounds without noise stay infinite. */
static void
test_save_load(void)
{
	struct config c;
	config_of(&c, "1", "1.0", "4");
	struct dp *d = dp_new(&c);
	for (int r = 0; r < 3; r++)
		dp_account(d);
	json_t *saved = dp_save(d);
	double spent = dp_epsilon(d);
	dp_free(d);
	config_free(&c);

	config_of(&c, "1", "2.0", "4");
	d = dp_new(&c);
	struct ipc_error err;
	CHECK_EQ_INT(dp_load(d, saved, &err), 0);
	CHECK_NEAR(dp_epsilon(d), spent, 1e-12);
	dp_account(d);
	struct dpaccount ref;
	dpaccount_init(&ref, 0.4, 1.0);
	for (int r = 0; r < 3; r++)
		dpaccount_round(&ref);
	ref.sigma = 2.0;
	dpaccount_round(&ref);
	CHECK_NEAR(dp_epsilon(d), dpaccount_epsilon(&ref, 1e-5, NULL), 1e-12);
	json_object_set_new(saved, "rdp", json_array());
	CHECK_EQ_INT(dp_load(d, saved, &err), -1);
	CHECK_STR_CONTAINS(err.message, "strategy.dp");
	json_decref(saved);
	dp_free(d);
	config_free(&c);

	config_of(&c, "1", "0", "4");
	d = dp_new(&c);
	dp_account(d);
	saved = dp_save(d);
	dp_free(d);
	config_free(&c);
	config_of(&c, "1", "1.0", "4");
	d = dp_new(&c);
	CHECK_EQ_INT(dp_load(d, saved, &err), 0);
	dp_account(d);
	CHECK(isinf(dp_epsilon(d)));
	json_decref(saved);
	dp_free(d);
	config_free(&c);
}

/* What privacy.dp central refuses, each naming the fix. */
static void
test_refusals(void)
{
	static const struct {
		const char *set, *want;
	} cases[] = {
	    {"strategy.name=median", "strategy median does not average"},
	    {"strategy.weighting=examples", "--set strategy.weighting=uniform"},
	    {"launcher.partial_sums=on", "launcher.partial_sums to auto"},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct config c;
		config_of(&c, "1", "1", "3");
		struct ipc_error err;
		CHECK_EQ_INT(config_set(&c, cases[i].set, &err), 0);
		CHECK_EQ_INT(config_check(&c, &err), -1);
		CHECK_STR_CONTAINS(err.message, cases[i].want);
		config_free(&c);
	}
	struct config c;
	config_of(&c, "1", "1", "3");
	struct ipc_error err;
	CHECK_EQ_INT(config_check(&c, &err), 0);
	config_free(&c);
	config_defaults(&c);
	CHECK(dp_new(&c) == NULL); /* off by default */
	config_free(&c);
}

int
main(void)
{
	RUN(test_clip_and_denominator);
	RUN(test_noise);
	RUN(test_adaptive);
	RUN(test_save_load);
	RUN(test_refusals);
	return harness_finish();
}
