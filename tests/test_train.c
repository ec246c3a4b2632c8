/* test_train.c: optimiser steps equal PyTorch's by hand, FedProx pulls
 * toward the global model, training learns a separable in-memory dataset,
 * and bad input or divergence fails with the right error. */
#include "harness.h"
#include "model.h"
#include "optim.h"
#include "rng.h"
#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A region with one tensor "w" of two floats. */
static void
two_float_manifest(struct tensor_manifest *mf)
{
	struct ipc_error err;
	uint64_t shape[1] = {2};
	tensor_manifest_init(mf);
	CHECK(tensor_manifest_add(mf, "w", DTYPE_F32, 1, shape, &err) == 0);
}

/* Two steps on L(w) = 0.5 * |w|^2 (so g = w) from w = [1, -2]. */
static void
run_two_steps(const struct optim_config *c, float w[2], const float *global)
{
	struct tensor_manifest mf;
	two_float_manifest(&mf);
	float region[16] = {0}, grads[16] = {0};
	region[0] = w[0], region[1] = w[1];
	struct optim *o = optim_create(c, &mf);
	for (int s = 0; s < 2; s++) {
		grads[0] = region[0], grads[1] = region[1];
		optim_step(o, region, grads, global);
		if (s == 0)
			CHECK(grads[0] == w[0]); /* grads left as given */
	}
	w[0] = region[0], w[1] = region[1];
	optim_free(o);
	tensor_manifest_free(&mf);
}

static void
test_sgd_momentum_matches_pytorch(void)
{
	/* torch.optim.SGD(lr=0.1, momentum=0.9, weight_decay=0.01):
	 * step 1: g = w + 0.01 w = [1.01, -2.02]; buf = g (first step);
	 *         w = [1, -2] - 0.1 buf = [0.899, -1.798].
	 * step 2: g = 1.01 w = [0.90799, -1.81598];
	 *         buf = 0.9 [1.01, -2.02] + g = [1.81699, -3.63398];
	 *         w = [0.899, -1.798] - 0.1 buf = [0.717301, -1.434602]. */
	struct optim_config c = {.kind = OPT_SGD,
	                         .lr = 0.1f,
	                         .momentum = 0.9f,
	                         .weight_decay = 0.01f};
	float w[2] = {1.0f, -2.0f};
	run_two_steps(&c, w, NULL);
	CHECK_NEAR(w[0], 0.717301, 1e-6);
	CHECK_NEAR(w[1], -1.434602, 1e-6);

	/* Without momentum: w = 0.9^2 w0 = [0.81, -1.62]. */
	struct optim_config plain = {.kind = OPT_SGD, .lr = 0.1f};
	float p[2] = {1.0f, -2.0f};
	run_two_steps(&plain, p, NULL);
	CHECK_NEAR(p[0], 0.81, 1e-6);
	CHECK_NEAR(p[1], -1.62, 1e-6);
}

static void
test_adam_matches_pytorch(void)
{
	/* torch.optim.Adam(lr=0.1, betas=(0.9, 0.999), eps=1e-8):
	 * step 1: m = 0.1 g = [0.1, -0.2]; v = 0.001 g^2 = [0.001, 0.004];
	 *         m / (1 - 0.9) = [1, -2], v / (1 - 0.999) = [1, 4];
	 *         w -= 0.1 * [1/1, -2/2] -> [0.9, -1.9].
	 * step 2: g = [0.9, -1.9]; m = 0.9 m + 0.1 g = [0.18, -0.37];
	 *         v = 0.999 v + 0.001 g^2 = [0.001809, 0.007606];
	 *         bias corrections 1 - 0.9^2 = 0.19, 1 - 0.999^2 = 0.001999;
	 *         w0 -= 0.1 * (0.18/0.19) / sqrt(0.001809/0.001999)
	 *             = 0.1 * 0.947368 / 0.951290 -> 0.800412230;
	 *         w1 -= 0.1 * (-0.37/0.19) / sqrt(0.007606/0.001999)
	 *             = -0.1 * 1.947368 / 1.950616 -> -1.800166487. */
	struct optim_config c = {.kind = OPT_ADAM,
	                         .lr = 0.1f,
	                         .beta1 = 0.9f,
	                         .beta2 = 0.999f,
	                         .eps = 1e-8f};
	float w[2] = {1.0f, -2.0f};
	run_two_steps(&c, w, NULL);
	CHECK_NEAR(w[0], 0.800412230, 2e-6);
	CHECK_NEAR(w[1], -1.800166487, 2e-6);

	/* Weight decay enters the gradient as in torch.optim.Adam (not
	 * AdamW): with a zero loss gradient and weight_decay 0.5, g = 0.5 w =
	 * [0.5, -1] and the first Adam step moves each weight by lr against
	 * its sign: [0.9, -1.9]. (AdamW would give [0.95, -1.9]; ignoring
	 * weight decay would leave w unchanged.) */
	struct tensor_manifest mf;
	two_float_manifest(&mf);
	c.weight_decay = 0.5f;
	float region[16] = {1.0f, -2.0f}, zero[16] = {0};
	struct optim *o = optim_create(&c, &mf);
	optim_step(o, region, zero, NULL);
	CHECK_NEAR(region[0], 0.9, 1e-6);
	CHECK_NEAR(region[1], -1.9, 1e-6);
	optim_free(o);
	tensor_manifest_free(&mf);
}

static void
test_fedprox_pulls_toward_global(void)
{
	struct tensor_manifest mf;
	two_float_manifest(&mf);
	float w[16] = {3.0f, -1.0f}, g[16] = {0}, global[16] = {1.0f, 1.0f};
	/* Zero loss gradient: only the proximal term mu (w - global) acts.
	 * One SGD step: w -= 0.1 * 0.5 * (w - global) = [2.9, -0.9]. */
	struct optim_config c = {.kind = OPT_SGD, .lr = 0.1f, .prox_mu = 0.5f};
	struct optim *o = optim_create(&c, &mf);
	optim_step(o, w, g, global);
	CHECK_NEAR(w[0], 2.9, 1e-6);
	CHECK_NEAR(w[1], -0.9, 1e-6);
	for (int i = 0; i < 200; i++)
		optim_step(o, w, g, global);
	CHECK_NEAR(w[0], 1.0, 1e-3);
	CHECK_NEAR(w[1], 1.0, 1e-3);
	optim_free(o);

	/* mu = 0: the global copy is ignored. */
	struct optim_config off = {.kind = OPT_SGD, .lr = 0.1f};
	float v[16] = {3.0f, -1.0f};
	o = optim_create(&off, &mf);
	optim_step(o, v, g, global);
	CHECK(v[0] == 3.0f && v[1] == -1.0f);
	optim_free(o);
	tensor_manifest_free(&mf);
}

static void
test_optimizer_parse(void)
{
	struct ipc_error err;
	enum optimizer_kind k;
	CHECK(optimizer_parse("adam", &k, &err) == 0 && k == OPT_ADAM);
	CHECK(optimizer_parse("sgd", &k, &err) == 0 && k == OPT_SGD);
	CHECK(optimizer_parse("adamw", &k, &err) == 0 && k == OPT_ADAMW);
	CHECK(strcmp(optimizer_name(OPT_ADAMW), "adamw") == 0);
	CHECK(optimizer_parse("rmsprop", &k, &err) == -1);
	CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
	CHECK_STR_CONTAINS(err.message, "sgd, adam or adamw");
}

/* An in-memory 1x6x6 dataset of 3 classes: class c lights up rows
 * 2c..2c+1 (plus noise), so it is linearly separable. */
struct toy {
	struct dataset ds;
	uint8_t pixels[600 * 36];
	uint8_t labels[600];
};

static void
toy_build(struct toy *t)
{
	memset(&t->ds, 0, sizeof t->ds);
	t->ds.count = 600;
	t->ds.channels = 1, t->ds.height = 6, t->ds.width = 6;
	t->ds.classes = 3;
	t->ds.mean[0] = 0.5f, t->ds.std[0] = 0.5f;
	for (int p = 0; p < 256; p++)
		t->ds.norm[0][p] = ((float)p / 255.0f - 0.5f) / 0.5f;
	struct rng r;
	rng_seed(&r, 77, 0);
	for (int i = 0; i < 600; i++) {
		int c = (int)rng_below(&r, 3);
		t->labels[i] = (uint8_t)c;
		for (int j = 0; j < 36; j++) {
			int row = j / 6, on = row / 2 == c;
			t->pixels[i * 36 + j] =
			    (uint8_t)(rng_below(&r, 100) + (on ? 120 : 0));
		}
	}
	t->ds.pixels = t->pixels;
	t->ds.labels = t->labels;
}

static int progress_calls;
static void
count_progress(void *ctx, uint32_t epoch, uint64_t step, double loss)
{
	(void)ctx, (void)epoch, (void)step;
	progress_calls += isfinite(loss);
}

static struct toy toy;

static void
test_training_learns_separable_data(void)
{
	struct ipc_error err;
	toy_build(&toy);
	struct model_shape s = {1, 6, 6, 3};
	struct model *m = model_create("mlp", &s, &err);
	size_t bytes = model_manifest(m)->total_size;
	float *params = malloc(bytes), *again = malloc(bytes);
	model_init(m, params, 5);
	memcpy(again, params, bytes);

	double loss0, acc0, loss1, acc1;
	CHECK(model_evaluate(m, params, &toy.ds, NULL, 0, 64, &loss0, &acc0,
	                     &err) == 0);
	struct train_config cfg;
	train_config_defaults(&cfg);
	cfg.epochs = 5;
	cfg.seed = 9;
	struct train_stats st;
	progress_calls = 0;
	CHECK(train_local(m, params, NULL, &toy.ds, NULL, 0, &cfg, &st,
	                  count_progress, NULL, &err) == 0);
	/* 600 samples in batches of 32: 18 full and one of 24 per epoch. */
	CHECK_EQ_INT(st.steps, 5 * 19);
	CHECK_EQ_INT(progress_calls, 5 * 19);
	CHECK_EQ_INT(st.num_examples, 600);
	CHECK(st.gflops > 0.0 && st.seconds > 0.0);
	CHECK(model_evaluate(m, params, &toy.ds, NULL, 0, 64, &loss1, &acc1,
	                     &err) == 0);
	CHECK(loss1 < 0.25 * loss0);
	CHECK(acc1 > 0.97);
	CHECK(st.accuracy > 0.9);
	CHECK(acc0 < 0.6);

	/* Same seed, same run: bit-identical weights. */
	CHECK(train_local(m, again, NULL, &toy.ds, NULL, 0, &cfg, &st, NULL,
	                  NULL, &err) == 0);
	CHECK(memcmp(params, again, bytes) == 0);

	/* A client slice and a step cap. */
	uint32_t idx[50];
	for (int i = 0; i < 50; i++)
		idx[i] = (uint32_t)(i * 7);
	cfg.max_steps = 3;
	CHECK(train_local(m, params, NULL, &toy.ds, idx, 50, &cfg, &st, NULL,
	                  NULL, &err) == 0);
	CHECK_EQ_INT(st.steps, 3);
	CHECK_EQ_INT(st.num_examples, 50);

	/* epochs = 0 trains nothing but reports the sample count. */
	memcpy(again, params, bytes);
	cfg.epochs = 0;
	CHECK(train_local(m, params, NULL, &toy.ds, idx, 50, &cfg, &st, NULL,
	                  NULL, &err) == 0);
	CHECK_EQ_INT(st.num_examples, 50);
	CHECK_EQ_INT(st.steps, 0);
	CHECK(memcmp(params, again, bytes) == 0);
	free(params), free(again);
	model_free(m);
}

static void
test_bad_input_and_divergence(void)
{
	struct ipc_error err;
	toy_build(&toy);
	struct model_shape s = {1, 6, 6, 3};
	struct model *m = model_create("mlp", &s, &err);
	float *params = malloc(model_manifest(m)->total_size);
	model_init(m, params, 1);
	struct train_config cfg;
	train_config_defaults(&cfg);
	struct train_stats st;
	uint32_t idx[2] = {1, 600};

	CHECK(train_local(m, params, NULL, &toy.ds, idx, 0, &cfg, &st, NULL,
	                  NULL, &err) == -1);
	CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
	CHECK(train_local(m, params, NULL, &toy.ds, idx, 2, &cfg, &st, NULL,
	                  NULL, &err) == -1);
	CHECK_EQ_INT(err.code, IPC_E_BOUNDS);
	CHECK_STR_CONTAINS(err.message, "600");
	cfg.batch_size = 0;
	CHECK(train_local(m, params, NULL, &toy.ds, NULL, 0, &cfg, &st, NULL,
	                  NULL, &err) == -1);
	CHECK_STR_CONTAINS(err.message, "batch_size");
	cfg.batch_size = 32;

	struct model_shape other = {1, 28, 28, 10};
	struct model *big = model_create("mlp", &other, &err);
	CHECK(train_local(big, params, NULL, &toy.ds, NULL, 0, &cfg, &st, NULL,
	                  NULL, &err) == -1);
	CHECK_EQ_INT(err.code, IPC_E_MISMATCH);
	model_free(big);

	/* A huge learning rate blows the weights up within a few steps. */
	cfg.lr = 1e12f;
	cfg.epochs = 3;
	CHECK(train_local(m, params, NULL, &toy.ds, NULL, 0, &cfg, &st, NULL,
	                  NULL, &err) == -1);
	CHECK_EQ_INT(err.code, IPC_E_NONFINITE);
	CHECK_STR_CONTAINS(err.message, "step");
	CHECK_STR_CONTAINS(err.message, "epoch");
	free(params);
	model_free(m);
}

int
main(void)
{
	RUN(test_sgd_momentum_matches_pytorch);
	RUN(test_adam_matches_pytorch);
	RUN(test_fedprox_pulls_toward_global);
	RUN(test_optimizer_parse);
	RUN(test_training_learns_separable_data);
	RUN(test_bad_input_and_divergence);
	return harness_finish();
}
