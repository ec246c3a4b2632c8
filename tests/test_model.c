/* test_model.c: the built-in models match their PyTorch state_dicts, init
 * like PyTorch deterministically from the seed, count FLOPs right, and their
 * composed backward pass is the gradient of their forward pass. */
#include "harness.h"
#include "layers.h"
#include "model.h"
#include "rng.h"

#include <math.h>
#include <stdlib.h>

struct expect {
	const char *name;
	int rank;
	uint64_t shape[4];
};

/* The model's manifest lists exactly the expected tensors, in order. */
static void
check_manifest(const char *name, struct model_shape shape,
               const struct expect *want, size_t count)
{
	struct ipc_error err;
	struct model *m = model_create(name, &shape, &err);
	CHECK(m != NULL);
	if (m == NULL)
		return;
	const struct tensor_manifest *mf = model_manifest(m);
	CHECK_EQ_INT(mf->count, count);
	for (size_t i = 0; i < count && i < mf->count; i++) {
		const struct tensor_desc *t = &mf->tensors[i];
		CHECK_STR_CONTAINS(t->name, want[i].name);
		CHECK_EQ_INT(strlen(t->name), strlen(want[i].name));
		CHECK_EQ_INT(t->dtype, DTYPE_F32);
		CHECK_EQ_INT(t->rank, want[i].rank);
		for (int d = 0; d < want[i].rank; d++)
			CHECK_EQ_INT(t->shape[d], want[i].shape[d]);
		CHECK_EQ_INT(t->offset % 64, 0);
	}
	CHECK(tensor_manifest_validate(mf, mf->total_size, &err) == 0);
	model_free(m);
}

static void
test_mlp_manifest(void)
{
	struct expect mnist[] = {{"fc1.weight", 2, {128, 784}},
	                         {"fc1.bias", 1, {128}},
	                         {"fc2.weight", 2, {10, 128}},
	                         {"fc2.bias", 1, {10}}};
	check_manifest("mlp", (struct model_shape){1, 28, 28, 10}, mnist, 4);
	struct expect cifar[] = {{"fc1.weight", 2, {128, 3072}},
	                         {"fc1.bias", 1, {128}},
	                         {"fc2.weight", 2, {10, 128}},
	                         {"fc2.bias", 1, {10}}};
	check_manifest("mlp", (struct model_shape){3, 32, 32, 10}, cifar, 4);
}

static void
test_cnn_manifest(void)
{
	struct expect mnist[] = {
	    {"conv1.weight", 4, {6, 1, 5, 5}},  {"conv1.bias", 1, {6}},
	    {"conv2.weight", 4, {16, 6, 5, 5}}, {"conv2.bias", 1, {16}},
	    {"fc1.weight", 2, {120, 256}},      {"fc1.bias", 1, {120}},
	    {"fc2.weight", 2, {84, 120}},       {"fc2.bias", 1, {84}},
	    {"fc3.weight", 2, {10, 84}},        {"fc3.bias", 1, {10}}};
	check_manifest("cnn", (struct model_shape){1, 28, 28, 10}, mnist, 10);
	struct expect cifar[] = {
	    {"conv1.weight", 4, {6, 3, 5, 5}},  {"conv1.bias", 1, {6}},
	    {"conv2.weight", 4, {16, 6, 5, 5}}, {"conv2.bias", 1, {16}},
	    {"fc1.weight", 2, {120, 400}},      {"fc1.bias", 1, {120}},
	    {"fc2.weight", 2, {84, 120}},       {"fc2.bias", 1, {84}},
	    {"fc3.weight", 2, {10, 84}},        {"fc3.bias", 1, {10}}};
	check_manifest("cnn", (struct model_shape){3, 32, 32, 10}, cifar, 10);
}

static void
test_bad_names_and_shapes(void)
{
	struct ipc_error err;
	struct model_shape s = {1, 28, 28, 10};
	CHECK(model_create("resnet", &s, &err) == NULL);
	CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
	CHECK_STR_CONTAINS(err.message, "resnet");
	CHECK_STR_CONTAINS(err.message, "mlp or cnn");
	struct model_shape tiny = {1, 12, 12, 10};
	CHECK(model_create("cnn", &tiny, &err) == NULL);
	CHECK_EQ_INT(err.code, IPC_E_SHAPE);
	CHECK_STR_CONTAINS(err.message, "12x12");
	struct model_shape zero = {1, 28, 28, 0};
	CHECK(model_create("mlp", &zero, &err) == NULL);
	CHECK_EQ_INT(err.code, IPC_E_SHAPE);
	CHECK_STR_CONTAINS(err.message, "classes");
}

static void
test_init_deterministic_and_bounded(void)
{
	struct ipc_error err;
	struct model_shape s = {3, 32, 32, 10};
	struct model *m = model_create("cnn", &s, &err);
	const struct tensor_manifest *mf = model_manifest(m);
	size_t nf = mf->total_size / sizeof(float);
	float *a = malloc(mf->total_size), *b = malloc(mf->total_size);
	float *c = malloc(mf->total_size);
	memset(a, 0xff, mf->total_size); /* NaN everywhere, padding too */
	model_init(m, a, 7);
	model_init(m, b, 7);
	model_init(m, c, 8);
	CHECK(memcmp(a, b, mf->total_size) == 0);
	size_t same = 0;
	for (size_t i = 0; i < nf; i++)
		same += a[i] == c[i] && a[i] != 0.0f;
	CHECK(same < nf / 1000);

	/* fan_in: conv1 3*5*5 = 75, conv2 6*5*5 = 150, fc1 400, fc2 120,
	 * fc3 84; weight and bias share the bound 1/sqrt(fan_in). */
	const double fan_in[10] = {75,  75,  150, 150, 400,
	                           400, 120, 120, 84,  84};
	size_t covered = 0;
	for (size_t t = 0; t < mf->count; t++) {
		const struct tensor_desc *d = &mf->tensors[t];
		const float *p = a + d->offset / 4;
		size_t n = d->nbytes / 4;
		double bound = 1.0 / sqrt(fan_in[t]), maxabs = 0.0, mean = 0.0;
		for (size_t i = 0; i < n; i++) {
			maxabs = fmax(maxabs, fabs(p[i]));
			mean += p[i];
		}
		mean /= (double)n;
		CHECK(maxabs <= bound);
		/* Uniform over the whole range, not a narrower one. */
		if (n >= 1000) {
			CHECK(maxabs > 0.99 * bound);
			CHECK(fabs(mean) < 0.05 * bound);
		}
		covered += n;
	}
	/* Padding between tensors is zeroed, not left as it was. */
	size_t zeros = 0;
	for (size_t i = 0; i < nf; i++)
		zeros += a[i] == 0.0f;
	CHECK_EQ_INT(zeros, nf - covered);
	free(a), free(b), free(c);
	model_free(m);
}

static void
test_mlp_flops_hand_count(void)
{
	/* fc1 784x128: forward 2*784*128 and dW 2*784*128 (no dx: first
	 * layer) = 401408; fc2 128x10: forward, dW and dx 3*2*128*10 = 7680. */
	struct ipc_error err;
	struct model_shape s = {1, 28, 28, 10};
	struct model *m = model_create("mlp", &s, &err);
	CHECK_EQ_INT(model_flops_per_sample(m), 409088);
	model_free(m);
	/* cnn 1x28x28: conv1 2*6*25*24*24*2 = 345600, conv2
	 * 2*16*150*8*8*3 = 921600, fc1 2*256*120*3 = 184320, fc2
	 * 2*120*84*3 = 60480, fc3 2*84*10*3 = 5040. */
	m = model_create("cnn", &s, &err);
	CHECK_EQ_INT(model_flops_per_sample(m),
	             345600 + 921600 + 184320 + 60480 + 5040);
	model_free(m);
}

struct step_case {
	struct model *m;
	struct model_workspace *ws;
	float *params, *scratch;
	const float *x;
	const int32_t *y;
	uint32_t n;
	size_t in;
};

/* The training-mode loss at the current params (same dropout key). */
static double
step_loss(struct step_case *c)
{
	uint32_t correct = 0;
	memcpy(model_workspace_input(c->ws), c->x, c->n * c->in * 4);
	return model_step(c->m, c->ws, c->params, c->scratch, c->y, c->n, 99,
	                  &correct);
}

/* model_step's gradient equals finite differences of its loss for a
 * sample of parameters of every tensor. */
static void
check_model_gradient(const char *name, struct model_shape s)
{
	struct ipc_error err;
	struct model *m = model_create(name, &s, &err);
	const struct tensor_manifest *mf = model_manifest(m);
	size_t nf = mf->total_size / 4,
	       in = (size_t)s.channels * s.height * s.width;
	enum { N = 3 };
	float *params = malloc(nf * 4), *grads = calloc(nf, 4);
	float *scratch = calloc(nf, 4), *x = malloc(N * in * 4);
	int32_t y[N] = {1, 0, 2};
	model_init(m, params, 3);
	struct rng r;
	rng_seed(&r, 4, 0);
	for (size_t i = 0; i < N * in; i++)
		x[i] = (float)rng_normal(&r);
	struct step_case c = {
	    m, model_workspace_create(m, N), params, scratch, x, y, N, in};
	uint32_t correct = 0;
	memcpy(model_workspace_input(c.ws), x, N * in * 4);
	model_step(m, c.ws, params, grads, y, N, 99, &correct);
	CHECK(correct <= N);
	int bad = 0;
	for (size_t t = 0; t < mf->count; t++) {
		size_t off = mf->tensors[t].offset / 4,
		       n = mf->tensors[t].nbytes / 4;
		for (size_t k = 0; k < 6; k++) {
			size_t i = off + rng_below(&r, n);
			float old = params[i], h = 1e-2f;
			params[i] = old + h;
			double lp = step_loss(&c);
			params[i] = old - h;
			double lm = step_loss(&c);
			params[i] = old;
			double num = (lp - lm) / (2.0 * h);
			if (fabs(num - grads[i]) > 2e-3 + 2e-2 * fabs(num) &&
			    bad++ < 5)
				harness_fail(__FILE__, __LINE__,
				             "%s %s[%zu]: %.6g vs numeric %.6g",
				             name, mf->tensors[t].name, i - off,
				             (double)grads[i], num);
		}
	}
	/* Without gradients the step is evaluation: dropout off, so two
	 * calls agree and nothing is written to grads. */
	float *g0 = malloc(nf * 4);
	memcpy(g0, grads, nf * 4);
	correct = 0;
	memcpy(model_workspace_input(c.ws), x, N * in * 4);
	double e1 = model_step(m, c.ws, params, NULL, y, N, 1, &correct);
	double e2 = model_step(m, c.ws, params, NULL, y, N, 2, &correct);
	CHECK(e1 == e2);
	CHECK(memcmp(g0, grads, nf * 4) == 0);
	free(g0);
	model_workspace_free(c.ws);
	free(params), free(grads), free(scratch), free(x);
	model_free(m);
}

static void
test_model_gradients(void)
{
	check_model_gradient("mlp", (struct model_shape){1, 6, 5, 3});
	check_model_gradient("cnn", (struct model_shape){2, 16, 18, 3});
}

int
main(void)
{
	RUN(test_mlp_manifest);
	RUN(test_cnn_manifest);
	RUN(test_bad_names_and_shapes);
	RUN(test_init_deterministic_and_bounded);
	RUN(test_mlp_flops_hand_count);
	RUN(test_model_gradients);
	return harness_finish();
}
