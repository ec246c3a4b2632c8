/* test_strategy.c: every aggregation strategy through the strategy API on
 * tiny hand-computed models: updates are real shm segments, folded and
 * unlinked the way the round engine does it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "harness.h"
#include "safetensors.h"
#include "shm.h"
#include "strategy.h"

/* Model: a.weight [3] at offset 0 and a.bias [1] at offset 64. */
#define NUMEL 4

static struct tensor_manifest model;
static char jobkey[64];
static unsigned next_update;

/* The test model's layout. */
static void
make_model(void)
{
	struct ipc_error err;
	uint64_t w[1] = {3}, b[1] = {1};
	tensor_manifest_init(&model);
	if (tensor_manifest_add(&model, "a.weight", DTYPE_F32, 1, w, &err) <
	        0 ||
	    tensor_manifest_add(&model, "a.bias", DTYPE_F32, 1, b, &err) < 0)
		abort();
	snprintf(jobkey, sizeof jobkey, "test-strategy-%ld", (long)getpid());
}

/* Write 4 flat values into a region laid out as the model. */
static void
put(void *region, const float v[NUMEL])
{
	float *f = region;
	memcpy(f, v, 3 * sizeof(float));
	f[model.tensors[1].offset / sizeof(float)] = v[3];
}

/* Read the 4 flat values of a region. */
static void
get(const void *region, float v[NUMEL])
{
	const float *f = region;
	memcpy(v, f, 3 * sizeof(float));
	v[3] = f[model.tensors[1].offset / sizeof(float)];
}

/* A config with the given strategy name and --set overrides. */
static void
make_config(struct config *c, const char *name, const char *const *sets)
{
	struct ipc_error err;
	config_defaults(c);
	char *a = xasprintf("strategy.name=%s", name);
	CHECK_EQ_INT(config_set(c, a, &err), 0);
	free(a);
	for (; sets && *sets; sets++)
		CHECK_EQ_INT(config_set(c, *sets, &err), 0);
}

/* Start a strategy for the test model (checkpoints in dir, or none). */
static void
start(struct strategy *s, const struct config *c, const char *dir)
{
	struct ipc_error err;
	struct strategy_env env = {c, &model, jobkey, dir};
	if (strategy_init(s, &env, &err) < 0)
		harness_fail(__FILE__, __LINE__, "init: %s", err.message);
}

/* Fold one update of the given values like the round engine: a segment
 * written by "the worker", sealed against writes, mapped read-only and
 * folded; the strategies that keep updates take it. */
static void
fold(struct strategy *s, const float v[NUMEL], double weight)
{
	struct ipc_error err;
	struct params_ref p;
	params_ref_init(&p);
	p.where = PARAMS_FD;
	p.fd = 1;
	p.size = model.total_size;
	tensor_manifest_copy(&p.manifest, &model);
	struct shm_segment seg;
	char label[96];
	snprintf(label, sizeof label, "cohort.%.63s.u%u", jobkey,
	         next_update++);
	CHECK_EQ_INT(shm_segment_create(&seg, label, model.total_size, &err),
	             0);
	put(seg.addr, v);
	shm_segment_unmap(&seg);
	CHECK_EQ_INT(shm_segment_seal_write(&seg, &err), 0);
	int fd = seg.fd;
	CHECK_EQ_INT(
	    shm_segment_map(&seg, label, fd, model.total_size, SHM_READ, &err),
	    0);
	if (strategy_fold(s, &p, &seg, weight, &err) < 0)
		harness_fail(__FILE__, __LINE__, "fold: %s", err.message);
	shm_segment_close(&seg);
	params_ref_free(&p);
}

static int fds_at_start;

/* Configure a round of n sampled clients 0..n-1 from global. */
static void
begin(struct strategy *s, unsigned round, unsigned n, const void *global)
{
	uint32_t ids[8], order[8];
	for (unsigned i = 0; i < n; i++)
		ids[i] = i;
	CHECK_EQ_INT(
	    strategy_configure(s, round, 0, ids, n, ids, n, global, order), n);
}

/* Finish a round from global into out and compare with want. */
static void
finish_expect(struct strategy *s, void *global, const float want[NUMEL],
              double tol)
{
	struct ipc_error err;
	void *out = xcalloc(1, model.total_size);
	if (strategy_finish(s, global, out, &err) < 0)
		harness_fail(__FILE__, __LINE__, "finish: %s", err.message);
	float got[NUMEL];
	get(out, got);
	for (int k = 0; k < NUMEL; k++)
		CHECK_NEAR(got[k], want[k], tol);
	memcpy(global, out, model.total_size);
	free(out);
}

/* No segment of this test is still open: every update the strategy kept
 * was closed when the round finished. */
static void
check_no_segments(void)
{
	CHECK_EQ_INT(harness_open_fds(), fds_at_start);
}

static void
test_fedavg_weightings(void)
{
	const float u1[NUMEL] = {1, 2, 3, 4}, u2[NUMEL] = {3, 4, 5, 6};
	const char *uniform[] = {"strategy.weighting=uniform", NULL};
	const char *steps[] = {"strategy.weighting=steps", NULL};
	struct config c;
	struct strategy s;
	void *g = xcalloc(1, model.total_size);

	make_config(&c, "fedavg", NULL);
	start(&s, &c, NULL);
	begin(&s, 1, 2, g);
	struct msg_result r = {0};
	r.num_examples = 100;
	struct ipc_error err;
	CHECK_NEAR(strategy_weight(&s, &r, &err), 100, 0);
	r.num_examples = 0;
	CHECK(strategy_weight(&s, &r, &err) < 0);
	fold(&s, u1, 100);
	fold(&s, u2, 300);
	finish_expect(&s, g, (const float[]){2.5f, 3.5f, 4.5f, 5.5f}, 0);
	strategy_free(&s);
	config_free(&c);

	make_config(&c, "fedavg", uniform);
	start(&s, &c, NULL);
	begin(&s, 1, 2, g);
	CHECK_NEAR(strategy_weight(&s, &r, &err), 1, 0);
	fold(&s, u1, 1);
	fold(&s, u2, 1);
	finish_expect(&s, g, (const float[]){2, 3, 4, 5}, 0);
	strategy_free(&s);
	config_free(&c);

	make_config(&c, "fedavg", steps);
	start(&s, &c, NULL);
	begin(&s, 1, 2, g);
	CHECK(strategy_weight(&s, &r, &err) < 0);
	CHECK_STR_CONTAINS(err.message, "steps");
	kv_set_num(&r.metrics, "steps", 30);
	CHECK_NEAR(strategy_weight(&s, &r, &err), 30, 0);
	kv_free(&r.metrics);
	fold(&s, u1, 10);
	fold(&s, u2, 30);
	finish_expect(&s, g, (const float[]){2.5f, 3.5f, 4.5f, 5.5f}, 0);
	strategy_free(&s);
	config_free(&c);
	free(g);
	check_no_segments();
}

/* Two rounds of a server-optimiser strategy: round 1 averages 1 and 3
 * (weights 100, 300) = 2.5 from 0, round 2 averages 0.5 and 1.5 = 1. */
static void
two_rounds(struct strategy *s, void *g, float want1, float want2)
{
	const float a[NUMEL] = {1, 1, 1, 1}, b[NUMEL] = {3, 3, 3, 3};
	const float c[NUMEL] = {0.5f, 0.5f, 0.5f, 0.5f},
	            d[NUMEL] = {1.5f, 1.5f, 1.5f, 1.5f};
	begin(s, 1, 2, g);
	fold(s, a, 100);
	fold(s, b, 300);
	finish_expect(s, g, (const float[]){want1, want1, want1, want1}, 0);
	begin(s, 2, 2, g);
	fold(s, c, 1);
	fold(s, d, 1);
	finish_expect(s, g, (const float[]){want2, want2, want2, want2}, 0);
}

static void
test_fedavgm_two_rounds(void)
{
	struct config c;
	struct strategy s;
	void *g = xcalloc(1, model.total_size);
	make_config(&c, "fedavgm", NULL);
	start(&s, &c, NULL);
	/* v = 2.5, x = 2.5; then delta = -1.5, v = 0.9 * 2.5 - 1.5 = 0.75,
	 * x = 3.25. */
	two_rounds(&s, g, 2.5f, 3.25f);
	strategy_free(&s);
	config_free(&c);
	free(g);
}

/* The m and v a FedOpt strategy checkpointed after round 2. */
static void
check_moments(const char *dir, double m, double v)
{
	struct tensor_manifest fm;
	void *region = NULL;
	struct ipc_error err;
	char *path = xasprintf("%s/strategy-0002.safetensors", dir);
	tensor_manifest_init(&fm);
	CHECK_EQ_INT(safetensors_read(path, &fm, &region, NULL, &err), 0);
	const struct tensor_desc *tm = tensor_manifest_find(&fm, "m");
	const struct tensor_desc *tv = tensor_manifest_find(&fm, "v");
	CHECK(tm != NULL && tv != NULL);
	if (tm != NULL && tv != NULL)
		for (int k = 0; k < NUMEL; k++) {
			CHECK_NEAR(((double *)((char *)region + tm->offset))[k],
			           m, 1e-15);
			CHECK_NEAR(((double *)((char *)region + tv->offset))[k],
			           v, 1e-15);
		}
	free(region);
	tensor_manifest_free(&fm);
	free(path);
}

/* Run a FedOpt rule for two rounds, check the model and the moments, and
 * that a restart from the round-1 checkpoint reaches the same model. */
static void
fedopt_case(const char *name, float want1, float want2, double m, double v)
{
	struct config c;
	struct strategy s;
	struct ipc_error err;
	char *dir = xasprintf("%s/%s", harness_tmpdir(), name);
	CHECK_EQ_INT(mkdir(dir, 0700), 0);
	void *g = xcalloc(1, model.total_size);
	make_config(&c, name, NULL);
	start(&s, &c, dir);
	two_rounds(&s, g, want1, want2);
	json_t *st = strategy_save(&s, 2, &err);
	CHECK(st != NULL);
	check_moments(dir, m, v);
	strategy_free(&s);

	/* Resume: load the round-2 state into a fresh strategy; its moments
	 * must equal the saved ones. */
	start(&s, &c, dir);
	CHECK_EQ_INT(strategy_load(&s, st, &err), 0);
	json_t *again = strategy_save(&s, 3, &err);
	char *p2 = xasprintf("%s/strategy-0002.safetensors", dir);
	char *p3 = xasprintf("%s/strategy-0003.safetensors", dir);
	struct tensor_manifest m2, m3;
	void *r2 = NULL, *r3 = NULL;
	tensor_manifest_init(&m2);
	tensor_manifest_init(&m3);
	CHECK_EQ_INT(safetensors_read(p2, &m2, &r2, NULL, &err), 0);
	CHECK_EQ_INT(safetensors_read(p3, &m3, &r3, NULL, &err), 0);
	CHECK(m2.total_size == m3.total_size &&
	      memcmp(r2, r3, m2.total_size) == 0);
	free(r2);
	free(r3);
	tensor_manifest_free(&m2);
	tensor_manifest_free(&m3);
	free(p2);
	free(p3);
	json_decref(again);
	json_decref(st);
	strategy_free(&s);
	config_free(&c);
	free(g);
	free(dir);
}

static void
test_fedopt_two_rounds(void)
{
	/* By hand (float64, x rounded to float32 after each round):
	 * beta1 0.9, beta2 0.99, tau 1e-3, m0 = 0, v0 = 1e-6; round 1
	 * delta = 2.5, round 2 delta = 1 - x1. */
	fedopt_case("fedadam", 0.09960080683231354f, 0.21824055910110474f,
	            0.31503991931676856, 0.069983167170570279);
	fedopt_case("fedyogi", 0.009960079565644264f, 0.021965039893984795f,
	            0.3240039920434355, 0.072302790440536724);
	fedopt_case("fedadagrad", 0.009996000677347183f, 0.022041134536266327f,
	            0.3240003999322652, 7.2301089186748477);
}

static void
test_median(void)
{
	struct config c;
	struct strategy s;
	void *g = xcalloc(1, model.total_size);
	make_config(&c, "median", NULL);
	start(&s, &c, NULL);
	begin(&s, 1, 3, g);
	fold(&s, (const float[]){1, 10, -1, 7}, 1);
	fold(&s, (const float[]){5, 20, -3, 7}, 100);
	fold(&s, (const float[]){3, 30, -2, 8}, 1);
	/* The strategy holds the three (sealed) updates for the round... */
	CHECK_EQ_INT(harness_open_fds(), fds_at_start + 3);
	finish_expect(&s, g, (const float[]){3, 20, -2, 7}, 0);
	/* ...and lets them go when it finishes. */
	check_no_segments();
	begin(&s, 2, 4, g);
	fold(&s, (const float[]){1, 1, 0, 0}, 1);
	fold(&s, (const float[]){2, 2, 0, 1}, 1);
	fold(&s, (const float[]){10, 3, 0, 2}, 1);
	fold(&s, (const float[]){4, 4, 0, 3}, 1);
	finish_expect(&s, g, (const float[]){3, 2.5f, 0, 1.5f}, 0);
	strategy_free(&s);
	config_free(&c);
	free(g);
}

static void
test_trimmed(void)
{
	struct config c;
	struct strategy s;
	void *g = xcalloc(1, model.total_size);
	make_config(&c, "trimmed", NULL);
	start(&s, &c, NULL);
	begin(&s, 1, 5, g);
	/* beta 0.2 of 5: drop one at each end per coordinate. */
	fold(&s, (const float[]){1, 5, 0, 1}, 1);
	fold(&s, (const float[]){2, 4, 0, 1}, 1);
	fold(&s, (const float[]){3, 3, 0, 1}, 1);
	fold(&s, (const float[]){4, 2, 0, 2}, 1);
	fold(&s, (const float[]){100, -50, 9, 1}, 1);
	finish_expect(&s, g, (const float[]){3, 3, 0, 1}, 0);
	strategy_free(&s);
	config_free(&c);
	free(g);
}

/* Five updates, one of them an outlier: Krum picks the most central. */
static void
krum_round(struct strategy *s, void *g, const float want[NUMEL])
{
	const float v[5] = {1.0f, 1.1f, 0.9f, 1.05f, 100.0f};
	begin(s, 1, 5, g);
	for (int i = 0; i < 5; i++)
		fold(s, (const float[]){v[i], v[i], v[i], v[i]}, 1);
	finish_expect(s, g, want, 0);
}

static void
test_krum(void)
{
	struct config c;
	struct strategy s;
	void *g = xcalloc(1, model.total_size);
	const char *f1[] = {"federation.clients=5", "federation.fit_clients=5",
	                    "strategy.krum_f=1", NULL};
	make_config(&c, "krum", f1);
	struct ipc_error err;
	CHECK_EQ_INT(config_check(&c, &err), 0);
	start(&s, &c, NULL);
	/* Scores (sum of the 2 nearest squared distances / 4): 1.0 0.0125,
	 * 1.1 0.0125, 0.9 0.0325, 1.05 0.005, 100 huge. */
	krum_round(&s, g, (const float[]){1.05f, 1.05f, 1.05f, 1.05f});
	strategy_free(&s);
	config_free(&c);

	const char *multi[] = {"federation.clients=5",
	                       "federation.fit_clients=5", "strategy.krum_f=1",
	                       "strategy.krum_m=2", NULL};
	make_config(&c, "krum", multi);
	start(&s, &c, NULL);
	float two = (float)(((double)1.05f + 1.0) / 2);
	krum_round(&s, g, (const float[]){two, two, two, two});
	strategy_free(&s);
	config_free(&c);

	const char *bad[] = {"federation.clients=4", "federation.fit_clients=4",
	                     "strategy.krum_f=1", NULL};
	make_config(&c, "krum", bad);
	CHECK_EQ_INT(config_check(&c, &err), -1);
	CHECK_STR_CONTAINS(err.message, "strategy.krum_f");
	config_free(&c);
	free(g);
}

/* Relay orders of rounds 1..rounds over clients 0..n-1, flattened. */
static void
cyclic_orders(const char *order, unsigned n, unsigned rounds, uint32_t *out)
{
	struct config c;
	struct strategy s;
	char *set = xasprintf("strategy.cyclic_order=%s", order);
	const char *sets[] = {set, "federation.clients=8", NULL};
	make_config(&c, "cyclic", sets);
	start(&s, &c, NULL);
	void *g = xcalloc(1, model.total_size);
	uint32_t ids[8];
	for (unsigned i = 0; i < n; i++)
		ids[i] = i;
	for (unsigned r = 1; r <= rounds; r++)
		CHECK_EQ_INT(strategy_configure(&s, r, 0, ids, n, ids, n, g,
		                                out + (r - 1) * n),
		             n);
	strategy_free(&s);
	config_free(&c);
	free(g);
	free(set);
}

static void
test_cyclic_orders(void)
{
	uint32_t o[3 * 4];
	cyclic_orders("fixed", 4, 3, o);
	for (unsigned i = 0; i < 12; i++)
		CHECK_EQ_INT(o[i], i % 4);

	/* Seed 1: the orders are a function of (seed, round) only. */
	uint32_t a[3 * 4], b[3 * 4];
	cyclic_orders("random", 4, 3, a);
	cyclic_orders("random", 4, 3, b);
	CHECK(memcmp(a, b, sizeof a) == 0);
	static const uint32_t want[12] = {0, 3, 2, 1, 3, 2, 0, 1, 1, 0, 3, 2};
	for (unsigned i = 0; i < 12; i++)
		CHECK_EQ_INT(a[i], want[i]);
	for (unsigned r = 0; r < 3; r++) {
		unsigned seen = 0;
		for (unsigned i = 0; i < 4; i++)
			seen |= 1u << a[r * 4 + i];
		CHECK_EQ_INT(seen, 0xf);
	}

	/* random_no_repeat: never starts with the previous round's last. */
	enum { R = 300, N = 3 };
	uint32_t *nr = xcalloc(R * N, sizeof *nr);
	cyclic_orders("random_no_repeat", N, R, nr);
	unsigned repeats = 0, plain_repeats = 0;
	for (unsigned r = 1; r < R; r++)
		repeats += nr[r * N] == nr[r * N - 1];
	CHECK_EQ_INT(repeats, 0);
	/* ... which plain random orders do about 1 time in 3. */
	cyclic_orders("random", N, R, nr);
	for (unsigned r = 1; r < R; r++)
		plain_repeats += nr[r * N] == nr[r * N - 1];
	CHECK(plain_repeats > R / 6);
	free(nr);
}

static void
test_cyclic_relay(void)
{
	struct config c;
	struct strategy s;
	const char *sets[] = {"federation.clients=4",
	                      "strategy.cyclic_clients=2,0,3", NULL};
	make_config(&c, "cyclic", sets);
	start(&s, &c, NULL);
	void *g = xcalloc(1, model.total_size);
	put(g, (const float[]){1, 1, 1, 1});
	uint32_t avail[3] = {0, 2, 3}, order[4];
	/* Client 3 is not available: the listed order without it. */
	CHECK_EQ_INT(strategy_configure(&s, 1, 0, avail, 1, avail, 2, g, order),
	             2);
	CHECK_EQ_INT(order[0], 2);
	CHECK_EQ_INT(order[1], 0);
	/* The relay model starts as the global model, then is each result. */
	struct shm_segment rm;
	struct ipc_error err;
	CHECK_EQ_INT(shm_segment_from_fd(&rm, dup(strategy_relay_fd(&s)),
	                                 "relay",
	                                 SHM_SEALED_SIZE | SHM_SEALED_READONLY,
	                                 SHM_READ, model.total_size, &err),
	             0);
	float v[NUMEL];
	get(rm.addr, v);
	CHECK_NEAR(v[3], 1, 0);
	fold(&s, (const float[]){5, 6, 7, 8}, 10);
	get(rm.addr, v);
	CHECK_NEAR(v[0], 5, 0);
	CHECK_EQ_INT(strategy_relay_hop(&s, 2, 1), STRATEGY_HOP_NEXT);
	CHECK_EQ_INT(strategy_relay_hop(&s, 0, 0), STRATEGY_HOP_NEXT);
	unsigned ok, failed, retried;
	CHECK_EQ_INT(strategy_relay_position(&s, &ok, &failed, &retried), 2);
	CHECK_EQ_INT(ok, 1);
	CHECK_EQ_INT(failed, 1);
	/* The failed hop is skipped: the round's model is the last good one. */
	finish_expect(&s, g, (const float[]){5, 6, 7, 8}, 0);
	shm_segment_close(&rm);
	strategy_free(&s);
	config_free(&c);

	const char *retry[] = {"strategy.cyclic_on_failure=retry",
	                       "strategy.cyclic_retries=2", NULL};
	make_config(&c, "cyclic", retry);
	start(&s, &c, NULL);
	begin(&s, 1, 2, g);
	CHECK_EQ_INT(strategy_relay_hop(&s, 0, 0), STRATEGY_HOP_RETRY);
	CHECK_EQ_INT(strategy_relay_hop(&s, 0, 0), STRATEGY_HOP_RETRY);
	CHECK_EQ_INT(strategy_relay_hop(&s, 0, 0), STRATEGY_HOP_NEXT);
	/* One failed hop, its two retries counted apart. */
	CHECK_EQ_INT(strategy_relay_position(&s, &ok, &failed, &retried), 1);
	CHECK_EQ_INT(ok, 0);
	CHECK_EQ_INT(failed, 1);
	CHECK_EQ_INT(retried, 2);
	strategy_free(&s);
	config_free(&c);

	const char *abort_[] = {"strategy.cyclic_on_failure=abort", NULL};
	make_config(&c, "cyclic", abort_);
	start(&s, &c, NULL);
	begin(&s, 1, 2, g);
	CHECK_EQ_INT(strategy_relay_hop(&s, 0, 0), STRATEGY_HOP_ABORT);
	strategy_free(&s);
	config_free(&c);
	free(g);
	check_no_segments();
}

static void
test_config_checks(void)
{
	struct config c;
	struct ipc_error err;
	make_config(&c, "fedprox", NULL);
	CHECK_EQ_INT(config_check(&c, &err), -1);
	CHECK_STR_CONTAINS(err.message, "train.mu");
	config_free(&c);
	const char *cl[] = {"strategy.cyclic_clients=0,7", NULL};
	make_config(&c, "cyclic", cl);
	CHECK_EQ_INT(config_check(&c, &err), -1);
	CHECK_STR_CONTAINS(err.message, "strategy.cyclic_clients");
	config_free(&c);
}

static void
test_shm_room(void)
{
	/* A model of 4 GiB x 1000 clients cannot fit in memory. */
	struct tensor_manifest big;
	struct ipc_error err;
	uint64_t shape[1] = {1ull << 30};
	tensor_manifest_init(&big);
	CHECK_EQ_INT(tensor_manifest_add(&big, "w", DTYPE_F32, 1, shape, &err),
	             0);
	struct config c;
	const char *sets[] = {"federation.clients=1000",
	                      "federation.fit_clients=1000", NULL};
	make_config(&c, "median", sets);
	struct strategy s;
	struct strategy_env env = {&c, &big, jobkey, NULL};
	CHECK_EQ_INT(strategy_init(&s, &env, &err), -1);
	CHECK_STR_CONTAINS(err.message, "shared memory");
	CHECK_STR_CONTAINS(err.message, "memory is available");
	CHECK_STR_CONTAINS(err.message, "federation.fit_clients");
	strategy_free(&s);
	config_free(&c);
	tensor_manifest_free(&big);
}

/* The configuration schema offers exactly the registry's strategies. */
static void
test_registry_is_the_choice_list(void)
{
	char joined[512] = "";
	const char *name;
	for (size_t i = 0; (name = strategy_registry_name(i)) != NULL; i++) {
		if (i > 0)
			strcat(joined, "|");
		strcat(joined, name);
	}
	CHECK(strcmp(joined, STRATEGY_CHOICES) == 0);
}

int
main(void)
{
	make_model();
	fds_at_start = harness_open_fds();
	RUN(test_registry_is_the_choice_list);
	RUN(test_fedavg_weightings);
	RUN(test_fedavgm_two_rounds);
	RUN(test_fedopt_two_rounds);
	RUN(test_median);
	RUN(test_trimmed);
	RUN(test_krum);
	RUN(test_cyclic_orders);
	RUN(test_cyclic_relay);
	RUN(test_config_checks);
	RUN(test_shm_room);
	check_no_segments();
	tensor_manifest_free(&model);
	return harness_finish();
}
