/* test_gpu_train.c: training on the GPU backend follows the CPU engine: the
 * same steps of mlp and cnn (same sample order and dropout masks) give the
 * same parameters within float tolerance, a 1-epoch mlp lands in the same
 * accuracy band, evaluation agrees, a pooled backend repeats a task bit for
 * bit without growing its memory, and errors are the CPU's. Skipped
 * without a usable GPU. */
#include "backend.h"
#include "cuda/plugin.h"
#include "harness.h"
#include "model.h"
#include "rng.h"
#include "train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define SIDE 16
#define CLASSES 4
#define TRAIN_N 1200
#define TEST_N 400

/* An in-memory 1x16x16 dataset: class c brightens rows 4c..4c+3 over noise,
 * learnable by both models in an epoch. */
struct toy {
	struct dataset ds;
	uint8_t pixels[TRAIN_N * SIDE * SIDE];
	uint8_t labels[TRAIN_N];
};
static struct toy train_set, test_set;

static void
toy_build(struct toy *t, unsigned n, uint64_t seed)
{
	memset(&t->ds, 0, sizeof t->ds);
	t->ds.count = n;
	t->ds.channels = 1, t->ds.height = SIDE, t->ds.width = SIDE;
	t->ds.classes = CLASSES;
	t->ds.mean[0] = 0.4f, t->ds.std[0] = 0.3f;
	for (int p = 0; p < 256; p++)
		t->ds.norm[0][p] = ((float)p / 255.0f - 0.4f) / 0.3f;
	struct rng r;
	rng_seed(&r, seed, 0);
	for (unsigned i = 0; i < n; i++) {
		int c = (int)rng_below(&r, CLASSES);
		t->labels[i] = (uint8_t)c;
		for (int j = 0; j < SIDE * SIDE; j++) {
			int lit = j / SIDE / 4 == c;
			t->pixels[i * SIDE * SIDE + j] =
			    (uint8_t)(rng_below(&r, 140) + (lit ? 100 : 0));
		}
	}
	t->ds.pixels = t->pixels;
	t->ds.labels = t->labels;
}

static struct backend *gpu;

/* The GPU backend on device 0, or skip saying why. */
static void
need_gpu(void)
{
	static char reason[700];
	struct ipc_error err;
	if (gpu != NULL)
		return;
	if (reason[0] != '\0')
		harness_skip(reason);
	if (getenv("COHORT_CUDA_PLUGIN") == NULL)
		setenv("COHORT_CUDA_PLUGIN",
		       harness_build_path("worker/libcohort-cuda.so"), 1);
	if (backend_open("cuda:0", &gpu, &err) != 0) {
		gpu = NULL;
		snprintf(reason, sizeof reason, "no CUDA device: %s",
		         err.message);
		harness_skip(reason);
	}
	toy_build(&train_set, TRAIN_N, 1);
	toy_build(&test_set, TEST_N, 2);
}

/* max |a - b| over max |b|. */
static double
rel_err(const float *a, const float *b, size_t n)
{
	double d = 0.0, s = 0.0;
	for (size_t i = 0; i < n; i++) {
		double e = fabs((double)a[i] - (double)b[i]);
		if (!(e <= d))
			d = e;
		if (fabs((double)b[i]) > s)
			s = fabs((double)b[i]);
	}
	return d / (s > 0.0 ? s : 1.0);
}

/* How many |a - b| exceed tol * max |b|. */
static size_t
count_far(const float *a, const float *b, size_t n, double tol)
{
	double s = 0.0;
	size_t far = 0;
	for (size_t i = 0; i < n; i++)
		if (fabs((double)b[i]) > s)
			s = fabs((double)b[i]);
	for (size_t i = 0; i < n; i++)
		far += !(fabs((double)a[i] - (double)b[i]) <= tol * s);
	return far;
}

/* Train a copy of one initial model on the CPU and on the GPU with cfg over
 * a client slice (every 12th sample: 100 samples, batches of 32, so every
 * epoch ends on a partial batch and reshuffles), and compare. */
static void
compare_training(const char *model, const struct train_config *cfg,
                 int with_global, double tol)
{
	struct ipc_error err;
	struct model_shape shape = {1, SIDE, SIDE, CLASSES};
	struct model *m = model_create(model, &shape, &err);
	size_t bytes = model_manifest(m)->total_size, n = bytes / 4;
	float *cpu = malloc(bytes), *dev = malloc(bytes),
	      *global = malloc(bytes), *init = malloc(bytes);
	model_init(m, init, 5);
	memcpy(cpu, init, bytes);
	memcpy(dev, init, bytes);
	for (size_t i = 0; i < n; i++)
		global[i] = cpu[i] * 0.5f;
	uint32_t idx[TRAIN_N / 12];
	for (size_t i = 0; i < ARRAY_LEN(idx); i++)
		idx[i] = (uint32_t)(i * 12);
	struct train_stats sc, sg;
	CHECK(train_local(m, cpu, with_global ? global : NULL, &train_set.ds,
	                  idx, ARRAY_LEN(idx), cfg, &sc, NULL, NULL,
	                  &err) == 0);
	CHECK(gpu->train(gpu, m, dev, with_global ? global : NULL,
	                 &train_set.ds, idx, ARRAY_LEN(idx), cfg, &sg, NULL,
	                 NULL, &err) == 0);
	/* Adam moves a weight by about lr whatever the size of its gradient,
	 * so a gradient within rounding of 0 may step either way on either
	 * device: with Adam a few such weights may differ, the rest may not. */
	size_t far = count_far(dev, cpu, n, tol);
	size_t allowed = cfg->optimizer == OPT_ADAM ? 2 + n / 10000 : 0;
	if (far > allowed)
		harness_fail(__FILE__, __LINE__,
		             "%s: %zu of %zu parameters differ by more than "
		             "%.g of the largest (max relative error %.3g)",
		             model, far, n, tol, rel_err(dev, cpu, n));
	CHECK_EQ_INT(sg.steps, sc.steps);
	CHECK_EQ_INT(sg.num_examples, sc.num_examples);
	CHECK_NEAR(sg.loss, sc.loss, 1e-4 * (fabs(sc.loss) + 1.0));
	CHECK_NEAR(sg.accuracy, sc.accuracy, 0.02);
	/* training moved the model far beyond the tolerance, so the
	 * comparison is not one of two untouched copies */
	CHECK(rel_err(cpu, init, n) > 100 * tol);
	free(cpu), free(dev), free(global), free(init);
	model_free(m);
}

static void
test_mlp_steps_match_cpu(void)
{
	need_gpu();
	struct train_config cfg;
	train_config_defaults(&cfg);
	cfg.epochs = 3;
	cfg.seed = 17;
	cfg.weight_decay = 1e-3f;
	compare_training("mlp", &cfg, 0, 1e-4);
	cfg.optimizer = OPT_ADAM;
	cfg.lr = 1e-3f;
	cfg.prox_mu = 0.01f;
	compare_training("mlp", &cfg, 1, 1e-4);
}

static void
test_cnn_steps_match_cpu(void)
{
	need_gpu();
	struct train_config cfg;
	train_config_defaults(&cfg);
	cfg.epochs = 3;
	cfg.seed = 23;
	compare_training("cnn", &cfg, 0, 1e-4);
	cfg.max_steps = 5; /* the step cap cuts an epoch short */
	cfg.optimizer = OPT_ADAM;
	cfg.lr = 1e-3f;
	compare_training("cnn", &cfg, 0, 1e-4);
}

static void
test_one_epoch_mlp_accuracy_band(void)
{
	need_gpu();
	struct ipc_error err;
	struct model_shape shape = {1, SIDE, SIDE, CLASSES};
	struct model *m = model_create("mlp", &shape, &err);
	size_t bytes = model_manifest(m)->total_size;
	float *cpu = malloc(bytes), *dev = malloc(bytes);
	model_init(m, cpu, 9);
	memcpy(dev, cpu, bytes);
	struct train_config cfg;
	train_config_defaults(&cfg);
	struct train_stats sc, sg;
	CHECK(train_local(m, cpu, NULL, &train_set.ds, NULL, 0, &cfg, &sc, NULL,
	                  NULL, &err) == 0);
	CHECK(gpu->train(gpu, m, dev, NULL, &train_set.ds, NULL, 0, &cfg, &sg,
	                 NULL, NULL, &err) == 0);
	double lc, ac, lg, ag, lx, ax;
	CHECK(model_evaluate(m, cpu, &test_set.ds, NULL, 0, 128, &lc, &ac,
	                     &err) == 0);
	CHECK(gpu->evaluate(gpu, m, dev, &test_set.ds, NULL, 0, 128, &lg, &ag,
	                    &err) == 0);
	CHECK(ac > 0.9 && ag > 0.9);
	CHECK_NEAR(ag, ac, 0.02);
	CHECK_NEAR(sg.accuracy, sc.accuracy, 0.02);
	/* the GPU evaluates the CPU's model as the CPU does */
	CHECK(gpu->evaluate(gpu, m, cpu, &test_set.ds, NULL, 0, 128, &lx, &ax,
	                    &err) == 0);
	CHECK_NEAR(lx, lc, 1e-5 * (fabs(lc) + 1.0));
	CHECK_NEAR(ax, ac, 1.5 / TEST_N);
	free(cpu), free(dev);
	model_free(m);
}

static void
test_pool_mode_repeats_tasks_without_growing(void)
{
	need_gpu();
	struct ipc_error err;
	const struct cuda_plugin *p = backend_cuda_plugin(&err);
	struct cuda_ctx *probe = p->ctx_open(0, &err);
	CHECK(probe != NULL);
	if (probe == NULL)
		return;
	struct model_shape shape = {1, SIDE, SIDE, CLASSES};
	struct model *m = model_create("cnn", &shape, &err);
	size_t bytes = model_manifest(m)->total_size;
	float *init = malloc(bytes), *first = malloc(bytes),
	      *again = malloc(bytes);
	model_init(m, init, 3);
	struct train_config cfg;
	train_config_defaults(&cfg);
	struct train_stats st;
	size_t free0 = 0, free1 = 0, total = 0;
	for (int task = 0; task < 4; task++) {
		float *out = task == 0 ? first : again;
		memcpy(out, init, bytes);
		CHECK(gpu->train(gpu, m, out, NULL, &train_set.ds, NULL, 0,
		                 &cfg, &st, NULL, NULL, &err) == 0);
		if (task > 0)
			CHECK(memcmp(again, first, bytes) == 0);
		CHECK(p->mem_info(probe, task == 0 ? &free0 : &free1, &total,
		                  &err) == 0);
	}
	/* tasks free their buffers: free memory does not shrink with them */
	CHECK(free1 + ((size_t)8 << 20) >= free0);
	p->ctx_close(probe);
	free(init), free(first), free(again);
	model_free(m);
}

static void
test_errors_match_cpu(void)
{
	need_gpu();
	struct ipc_error err;
	struct model_shape shape = {1, SIDE, SIDE, CLASSES};
	struct model *m = model_create("mlp", &shape, &err);
	float *params = malloc(model_manifest(m)->total_size);
	model_init(m, params, 1);
	struct train_config cfg;
	train_config_defaults(&cfg);
	struct train_stats st;
	uint32_t bad[2] = {0, TRAIN_N};
	CHECK(gpu->train(gpu, m, params, NULL, &train_set.ds, bad, 2, &cfg, &st,
	                 NULL, NULL, &err) == -1);
	CHECK_EQ_INT(err.code, IPC_E_BOUNDS);
	double loss, acc;
	CHECK(gpu->evaluate(gpu, m, params, &train_set.ds, NULL, 0, 0, &loss,
	                    &acc, &err) == -1);
	CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
	cfg.lr = 1e12f;
	cfg.epochs = 3;
	CHECK(gpu->train(gpu, m, params, NULL, &train_set.ds, NULL, 0, &cfg,
	                 &st, NULL, NULL, &err) == -1);
	CHECK_EQ_INT(err.code, IPC_E_NONFINITE);
	CHECK_STR_CONTAINS(err.message, "epoch");
	/* the backend serves the next task after a failed one */
	model_init(m, params, 1);
	cfg.lr = 0.01f;
	cfg.epochs = 1;
	CHECK(gpu->train(gpu, m, params, NULL, &train_set.ds, NULL, 0, &cfg,
	                 &st, NULL, NULL, &err) == 0);
	free(params);
	model_free(m);
}

int
main(void)
{
	RUN(test_mlp_steps_match_cpu);
	RUN(test_cnn_steps_match_cpu);
	RUN(test_one_epoch_mlp_accuracy_band);
	RUN(test_pool_mode_repeats_tasks_without_growing);
	RUN(test_errors_match_cpu);
	backend_close(gpu);
	return harness_finish();
}
