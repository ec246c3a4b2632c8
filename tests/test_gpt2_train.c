/* test_gpt2_train.c: a GPT-2's fit over a token stream
 * (worker/engine/gpt2-train.c): the learning-rate schedule; one step of
 * gpt2_train is exactly forward, backward, clipping and AdamW by hand;
 * gradient accumulation gives the step one big batch would (a short last
 * window weighed by its tokens); evaluation does not depend on the batch
 * and ignores padding; a tiny model's loss falls over a few hundred steps
 * on a small text; the seed fixes the result; bad tokens and settings are
 * refused; Hugging Face's init has its standard deviations. */
#include "gpt2-train.h"
#include "gpt2.h"
#include "harness.h"
#include "rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const struct gpt2_config tiny = {.max_seq_len = 16,
                                        .vocab_size = 48,
                                        .num_layers = 2,
                                        .num_heads = 2,
                                        .channels = 16};

/* A seeded initial model of tiny. */
static float *
initial(uint64_t seed)
{
	struct tensor_manifest m;
	struct ipc_error err;
	CHECK_EQ_INT(gpt2_manifest(&tiny, &m, &err), 0);
	float *p = aligned_alloc(64, m.total_size);
	gpt2_init(&tiny, p, seed);
	tensor_manifest_free(&m);
	return p;
}

static size_t
param_floats(void)
{
	struct tensor_manifest m;
	struct ipc_error err;
	CHECK_EQ_INT(gpt2_manifest(&tiny, &m, &err), 0);
	size_t n = m.total_size / sizeof(float);
	tensor_manifest_free(&m);
	return n;
}

/* A stream of n tokens with structure to learn: a repeated phrase. */
static uint32_t *
phrase_stream(size_t n)
{
	static const char text[] = "the quick brown fox jumps over a lazy dog ";
	uint32_t *t = malloc(n * sizeof *t);
	for (size_t i = 0; i < n; i++)
		t[i] =
		    (uint32_t)(text[i % (sizeof text - 1)] % tiny.vocab_size);
	return t;
}

static struct gpt2_train_config
adamw_config(void)
{
	return (struct gpt2_train_config){.epochs = 1,
	                                  .batch_size = 4,
	                                  .grad_accum = 1,
	                                  .seq_len = 8,
	                                  .optimizer = OPT_ADAMW,
	                                  .lr = 1e-2f,
	                                  .beta1 = 0.9f,
	                                  .beta2 = 0.999f,
	                                  .eps = 1e-8f,
	                                  .weight_decay = 0.1f,
	                                  .max_grad_norm = 1.0f,
	                                  .seed = 5};
}

static double
max_abs_diff(const float *a, const float *b, size_t n)
{
	double d = 0;
	for (size_t i = 0; i < n; i++)
		if (fabs((double)a[i] - b[i]) > d)
			d = fabs((double)a[i] - b[i]);
	return d;
}

static void
test_schedule(void)
{
	struct gpt2_train_config c = {.lr = 1.0f, .min_lr = 0.1f};
	c.warmup_steps = 4;
	CHECK_NEAR(gpt2_train_lr(&c, 0, 20), 0.25, 1e-6);
	CHECK_NEAR(gpt2_train_lr(&c, 3, 20), 1.0, 1e-6);
	CHECK_NEAR(gpt2_train_lr(&c, 10, 20), 1.0, 1e-6);
	c.cosine = 1;
	CHECK_NEAR(gpt2_train_lr(&c, 4, 20), 1.0, 1e-6);
	CHECK_NEAR(gpt2_train_lr(&c, 12, 20), 0.55, 1e-6);
	CHECK_NEAR(gpt2_train_lr(&c, 20, 20), 0.1, 1e-6);
	CHECK_NEAR(gpt2_train_lr(&c, 99, 20), 0.1, 1e-6);
	c.warmup_steps = 0;
	CHECK_NEAR(gpt2_train_lr(&c, 0, 10), 1.0, 1e-6);
}

/* One step of gpt2_train over one batch of windows is the forward and
 * backward of that batch, the clip, and one AdamW step at the warmup's
 * first rate, done by hand. */
static void
test_one_step_by_hand(void)
{
	enum { NTOK = 33 }; /* 4 windows of 8, all the same: any order */
	uint32_t *s = malloc(NTOK * sizeof *s);
	for (int i = 0; i < NTOK; i++)
		s[i] = (uint32_t)((i * 5 + 3) % 8);
	size_t n = param_floats();
	float *a = initial(1), *b = initial(1);
	struct gpt2_train_config c = adamw_config();
	c.warmup_steps = 2;
	struct train_stats st;
	struct ipc_error err;
	CHECK_EQ_INT(
	    gpt2_train(&tiny, a, NULL, s, NTOK, &c, &st, NULL, NULL, &err), 0);
	CHECK_EQ_INT((int)st.steps, 1);

	/* By hand: one batch of the four (identical) windows. */
	struct gpt2 *g = gpt2_create(&tiny, 4, 8, &err);
	int32_t x[32], y[32];
	for (int w = 0; w < 4; w++)
		for (int t = 0; t < 8; t++) {
			x[w * 8 + t] = (int32_t)s[w * 8 + t];
			y[w * 8 + t] = (int32_t)s[w * 8 + t + 1];
		}
	double loss = gpt2_forward(g, b, x, y);
	float *grads = calloc(n, sizeof(float));
	gpt2_backward(g, b, grads);
	optim_clip_grad_norm(grads, n, 1.0);
	float *m = calloc(n, sizeof(float)), *v = calloc(n, sizeof(float));
	struct optim_config oc = {.kind = OPT_ADAMW,
	                          .lr = 0.5e-2f,
	                          .weight_decay = 0.1f,
	                          .beta1 = 0.9f,
	                          .beta2 = 0.999f,
	                          .eps = 1e-8f};
	optim_adamw_update(&oc, b, grads, m, v, n, 1);
	CHECK(max_abs_diff(a, b, n) < 1e-6);
	CHECK_NEAR(st.loss, loss, 1e-5);
	gpt2_free(g);
	free(grads);
	free(m);
	free(v);
	free(a);
	free(b);
	free(s);
}

/* batch 4 x accumulation 1, 2 x 2 and 1 x 4 take the same step over the
 * same windows, the last one short (3 of 8 tokens), so each micro-batch
 * must be weighed by its tokens, not counted as one of grad_accum. */
static void
test_accumulation(void)
{
	enum { NTOK = 28 }; /* windows of 8, 8, 8, 3 tokens */
	uint32_t *s = phrase_stream(NTOK);
	size_t n = param_floats();
	struct gpt2_train_config c = adamw_config();
	c.max_grad_norm = 0; /* compare the raw gradients' step */
	c.optimizer = OPT_SGD;
	c.lr = 0.5f;
	c.weight_decay = 0;
	float *ref = NULL;
	uint32_t shapes[3][2] = {{4, 1}, {2, 2}, {1, 4}};
	for (int k = 0; k < 3; k++) {
		c.batch_size = shapes[k][0];
		c.grad_accum = shapes[k][1];
		float *p = initial(2);
		struct train_stats st;
		struct ipc_error err;
		CHECK_EQ_INT(gpt2_train(&tiny, p, NULL, s, NTOK, &c, &st, NULL,
		                        NULL, &err),
		             0);
		CHECK_EQ_INT((int)st.steps, 1);
		if (ref == NULL) {
			ref = p;
			continue;
		}
		CHECK(max_abs_diff(ref, p, n) < 2e-6);
		free(p);
	}
	/* The step moved the model (the comparison above is not of three
	 * untouched models). */
	float *init = initial(2);
	CHECK(max_abs_diff(ref, init, n) > 1e-3);
	free(init);
	free(ref);
	free(s);
}

/* Evaluation: one number whatever the batch (padding rows ignored), equal
 * to the token-weighted mean of each window's loss. */
static void
test_evaluate(void)
{
	enum { NTOK = 45 }; /* windows of 8 x 5 and 4 */
	uint32_t *s = phrase_stream(NTOK);
	float *p = initial(3);
	struct ipc_error err;
	double l1, a1, l3, a3;
	uint64_t n1, n3;
	CHECK_EQ_INT(
	    gpt2_evaluate(&tiny, p, s, NTOK, 8, 1, &l1, &a1, &n1, &err), 0);
	CHECK_EQ_INT(
	    gpt2_evaluate(&tiny, p, s, NTOK, 8, 3, &l3, &a3, &n3, &err), 0);
	CHECK_EQ_INT((int)n1, NTOK - 1);
	CHECK_EQ_INT((int)n3, NTOK - 1);
	CHECK_NEAR(l1, l3, 1e-6);
	CHECK_NEAR(a1, a3, 1e-12);
	/* By hand, window by window. */
	struct gpt2 *g = gpt2_create(&tiny, 1, 8, &err);
	double sum = 0;
	for (int w = 0; w * 8 < NTOK - 1; w++) {
		int32_t x[8], y[8];
		int k = 0;
		for (int t = 0; t < 8; t++) {
			int i = w * 8 + t;
			x[t] = i + 1 < NTOK ? (int32_t)s[i] : 0;
			y[t] = i + 1 < NTOK ? (int32_t)s[i + 1] : -1;
			k += y[t] >= 0;
		}
		sum += gpt2_forward(g, p, x, y) * k;
	}
	CHECK_NEAR(l1, sum / (NTOK - 1), 1e-6);
	/* A fresh model is near uniform over 48 words. */
	CHECK(fabs(l1 - log(48.0)) < 0.5);
	gpt2_free(g);
	free(p);
	free(s);
}

/* A tiny model learns the phrase: 250 steps take its loss from
 * about ln(48) to well under half of it. */
static void
test_loss_falls(void)
{
	enum { NTOK = 4000 };
	uint32_t *s = phrase_stream(NTOK);
	float *p = initial(4);
	struct gpt2_train_config c = adamw_config();
	c.epochs = 1;
	c.seq_len = 16;
	c.batch_size = 1;
	c.lr = 3e-3f;
	c.warmup_steps = 20;
	c.cosine = 1;
	c.min_lr = 3e-4f;
	c.weight_decay = 0.0f;
	struct ipc_error err;
	double before, after, acc;
	uint64_t n;
	uint32_t *held = phrase_stream(200);
	CHECK_EQ_INT(
	    gpt2_evaluate(&tiny, p, held, 200, 16, 4, &before, &acc, &n, &err),
	    0);
	struct train_stats st;
	CHECK_EQ_INT(
	    gpt2_train(&tiny, p, NULL, s, NTOK, &c, &st, NULL, NULL, &err), 0);
	CHECK(st.steps >= 240);
	CHECK_EQ_INT(
	    gpt2_evaluate(&tiny, p, held, 200, 16, 4, &after, &acc, &n, &err),
	    0);
	printf("  loss on the phrase %.3f -> %.3f (next-token accuracy %.2f) "
	       "after %llu steps\n",
	       before, after, acc, (unsigned long long)st.steps);
	CHECK(after < 0.5 * before);
	CHECK(acc > 0.5);
	free(held);
	free(p);
	free(s);
}

/* The seed fixes the window order: same seed, same model; another seed,
 * another one. */
static void
test_seeded(void)
{
	enum { NTOK = 200 };
	uint32_t *s = phrase_stream(NTOK);
	size_t n = param_floats();
	struct gpt2_train_config c = adamw_config();
	c.batch_size = 2;
	float *p[3];
	uint64_t seeds[3] = {7, 7, 8};
	for (int k = 0; k < 3; k++) {
		p[k] = initial(5);
		c.seed = seeds[k];
		struct train_stats st;
		struct ipc_error err;
		CHECK_EQ_INT(gpt2_train(&tiny, p[k], NULL, s, NTOK, &c, &st,
		                        NULL, NULL, &err),
		             0);
	}
	CHECK(memcmp(p[0], p[1], n * sizeof(float)) == 0);
	CHECK(max_abs_diff(p[0], p[2], n) > 1e-6);
	for (int k = 0; k < 3; k++)
		free(p[k]);
	free(s);
}

static void
test_refusals(void)
{
	uint32_t s[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 48};
	float *p = initial(6);
	struct gpt2_train_config c = adamw_config();
	struct train_stats st;
	struct ipc_error err;
	CHECK_EQ_INT(
	    gpt2_train(&tiny, p, NULL, s, 10, &c, &st, NULL, NULL, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_BOUNDS);
	CHECK_STR_CONTAINS(err.message, "token 48 at position 9");
	CHECK_EQ_INT(
	    gpt2_train(&tiny, p, NULL, s, 1, &c, &st, NULL, NULL, &err), -1);
	CHECK_STR_CONTAINS(err.message, "at least 2");
	c.seq_len = 17;
	CHECK_EQ_INT(
	    gpt2_train(&tiny, p, NULL, s, 9, &c, &st, NULL, NULL, &err), -1);
	CHECK_STR_CONTAINS(err.message, "seq_len");
	free(p);
}

/* Hugging Face's init: N(0, 0.02), c_proj weights N(0, 0.02/sqrt(2L)),
 * layer-norm weights 1, biases 0. */
static void
test_init(void)
{
	struct gpt2_config big = tiny;
	big.channels = 64;
	big.num_layers = 8;
	big.vocab_size = 500;
	struct tensor_manifest m;
	struct ipc_error err;
	CHECK_EQ_INT(gpt2_manifest(&big, &m, &err), 0);
	float *p = aligned_alloc(64, m.total_size);
	gpt2_init(&big, p, 9);
	for (size_t i = 0; i < m.count; i++) {
		const struct tensor_desc *t = &m.tensors[i];
		const float *v = p + t->offset / sizeof(float);
		size_t n = t->nbytes / sizeof(float);
		double sq = 0, mean = 0;
		for (size_t k = 0; k < n; k++) {
			sq += (double)v[k] * v[k];
			mean += v[k];
		}
		double sd = sqrt(sq / n);
		mean /= n;
		if (strstr(t->name, ".bias")) {
			CHECK(sq == 0);
		} else if (strstr(t->name, "ln_")) {
			CHECK_NEAR(mean, 1.0, 0);
			CHECK_NEAR(sd, 1.0, 1e-6);
		} else if (strstr(t->name, "c_proj.weight")) {
			CHECK_NEAR(sd, 0.005, 0.0005);
		} else {
			CHECK_NEAR(sd, 0.02, 0.002);
		}
	}
	free(p);
	tensor_manifest_free(&m);
}

int
main(void)
{
	RUN(test_schedule);
	RUN(test_one_step_by_hand);
	RUN(test_accumulation);
	RUN(test_evaluate);
	RUN(test_loss_falls);
	RUN(test_seeded);
	RUN(test_refusals);
	RUN(test_init);
	return harness_finish();
}
