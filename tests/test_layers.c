/* test_layers.c: every layer's backward matches central finite differences
 * of its forward; dropout masks are deterministic and scaled; maxpool routes
 * to the maximum; softmax cross-entropy matches a hand computation. */
#include "harness.h"
#include "layers.h"
#include "rng.h"

#include <math.h>
#include <stdlib.h>

/* A layer under test: forward(ctx) recomputes the output from the current
 * inputs/parameters and returns the scalar loss sum_i r_i * y_i in double. */
typedef double (*loss_fn)(void *ctx);

static void
fill_uniform(float *v, size_t n, uint64_t seed, float lo, float hi)
{
	struct rng r;
	rng_seed(&r, seed, 0);
	for (size_t i = 0; i < n; i++)
		v[i] = lo + (hi - lo) * (float)rng_uniform(&r);
}

/* Values of magnitude in [0.1, 1] with random sign: away from relu's kink. */
static void
fill_away_from_zero(float *v, size_t n, uint64_t seed)
{
	fill_uniform(v, n, seed, 0.1f, 1.0f);
	struct rng r;
	rng_seed(&r, seed, 1);
	for (size_t i = 0; i < n; i++)
		if (rng_uniform(&r) < 0.5)
			v[i] = -v[i];
}

static double
weighted_sum(const float *y, const float *r, size_t n)
{
	double s = 0.0;
	for (size_t i = 0; i < n; i++)
		s += (double)y[i] * r[i];
	return s;
}

/* Compare analytic[i] with (L(v+h) - L(v-h)) / 2h for every element of v. */
static void
check_grad(const char *what, const float *analytic, float *v, size_t n,
           loss_fn f, void *ctx, float h, double tol)
{
	int bad = 0;
	for (size_t i = 0; i < n; i++) {
		float old = v[i];
		v[i] = old + h;
		float up = v[i];
		double lp = f(ctx);
		v[i] = old - h;
		float down = v[i];
		double lm = f(ctx);
		v[i] = old;
		double num = (lp - lm) / ((double)up - (double)down);
		double scale = fmax(1.0, fabs(num));
		if (fabs(num - analytic[i]) > tol * scale && bad++ < 3)
			harness_fail(__FILE__, __LINE__,
			             "%s[%zu]: analytic %.6g vs numeric %.6g",
			             what, i, (double)analytic[i], num);
	}
}

struct linear_case {
	int B, in, out;
	float *x, *w, *b, *y, *r;
};

static double
linear_loss(void *ctx)
{
	struct linear_case *c = ctx;
	linear_forward(c->y, c->x, c->w, c->b, c->B, c->in, c->out);
	return weighted_sum(c->y, c->r, (size_t)c->B * c->out);
}

static void
test_linear_gradients(void)
{
	struct linear_case c = {.B = 3, .in = 7, .out = 5};
	size_t nx = (size_t)c.B * c.in, nw = (size_t)c.out * c.in,
	       ny = (size_t)c.B * c.out;
	float x[21], w[35], b[5], y[15], r[15], dx[21], dw[35], db[5];
	c.x = x, c.w = w, c.b = b, c.y = y, c.r = r;
	fill_uniform(x, nx, 1, -1, 1);
	fill_uniform(w, nw, 2, -1, 1);
	fill_uniform(b, 5, 3, -1, 1);
	fill_uniform(r, ny, 4, -1, 1);

	/* y = x W^T + b checked directly for one element. */
	linear_loss(&c);
	double y12 = b[2];
	for (int k = 0; k < c.in; k++)
		y12 += (double)x[1 * c.in + k] * w[2 * c.in + k];
	CHECK_NEAR(y[1 * c.out + 2], y12, 1e-5);

	/* Parameter gradients accumulate onto what is already there. */
	for (size_t i = 0; i < nw; i++)
		dw[i] = 1.0f;
	for (int i = 0; i < 5; i++)
		db[i] = 1.0f;
	linear_backward(dx, dw, db, r, x, w, c.B, c.in, c.out);
	for (size_t i = 0; i < nw; i++)
		dw[i] -= 1.0f;
	for (int i = 0; i < 5; i++)
		db[i] -= 1.0f;
	check_grad("linear dx", dx, x, nx, linear_loss, &c, 1e-2f, 1e-3);
	check_grad("linear dw", dw, w, nw, linear_loss, &c, 1e-2f, 1e-3);
	check_grad("linear db", db, b, 5, linear_loss, &c, 1e-2f, 1e-3);

	/* dx == NULL skips the input gradient and leaves dW unchanged. */
	float dw2[35] = {0}, db2[5] = {0};
	linear_backward(NULL, dw2, db2, r, x, w, c.B, c.in, c.out);
	for (size_t i = 0; i < nw; i++)
		CHECK_NEAR(dw2[i], dw[i], 1e-5);
}

struct conv_case {
	int B, C, H, W, OC, K;
	float *x, *w, *b, *y, *col, *r;
};

static double
conv_loss(void *ctx)
{
	struct conv_case *c = ctx;
	conv2d_forward(c->y, c->col, c->x, c->w, c->b, c->B, c->C, c->H, c->W,
	               c->OC, c->K);
	int OH = c->H - c->K + 1, OW = c->W - c->K + 1;
	return weighted_sum(c->y, c->r, (size_t)c->B * c->OC * OH * OW);
}

static void
test_conv2d_gradients(void)
{
	struct conv_case c = {.B = 2, .C = 2, .H = 6, .W = 5, .OC = 3, .K = 3};
	int OH = 4, OW = 3, CKK = c.C * c.K * c.K;
	size_t nx = (size_t)c.B * c.C * c.H * c.W, nw = (size_t)c.OC * CKK,
	       ny = (size_t)c.B * c.OC * OH * OW;
	float *x = malloc(nx * 4), *dx = malloc(nx * 4), *w = malloc(nw * 4);
	float *dw = calloc(nw, 4), b[3], db[3] = {0}, *y = malloc(ny * 4);
	float *r = malloc(ny * 4),
	      *col = malloc((size_t)c.B * CKK * OH * OW * 4);
	float *dcol = malloc((size_t)CKK * OH * OW * 4);
	c.x = x, c.w = w, c.b = b, c.y = y, c.col = col, c.r = r;
	fill_uniform(x, nx, 5, -1, 1);
	fill_uniform(w, nw, 6, -1, 1);
	fill_uniform(b, 3, 7, -1, 1);
	fill_uniform(r, ny, 8, -1, 1);

	/* One output against the convolution sum written out. */
	conv_loss(&c);
	int bi = 1, o = 2, i = 3, j = 1;
	double ref = b[o];
	for (int ch = 0; ch < c.C; ch++)
		for (int ki = 0; ki < c.K; ki++)
			for (int kj = 0; kj < c.K; kj++)
				ref +=
				    (double)x[((bi * c.C + ch) * c.H + i + ki) *
				                  c.W +
				              j + kj] *
				    w[((o * c.C + ch) * c.K + ki) * c.K + kj];
	CHECK_NEAR(y[((bi * c.OC + o) * OH + i) * OW + j], ref, 1e-5);

	conv2d_backward(dx, dcol, dw, db, r, col, w, c.B, c.C, c.H, c.W, c.OC,
	                c.K);
	check_grad("conv dx", dx, x, nx, conv_loss, &c, 1e-2f, 1e-3);
	check_grad("conv dw", dw, w, nw, conv_loss, &c, 1e-2f, 1e-3);
	check_grad("conv db", db, b, 3, conv_loss, &c, 1e-2f, 1e-3);
	free(x), free(dx), free(w), free(dw), free(y), free(r), free(col);
	free(dcol);
}

struct pool_case {
	int P, H, W;
	float *x, *y, *r;
	int32_t *arg;
};

static double
pool_loss(void *ctx)
{
	struct pool_case *c = ctx;
	maxpool_forward(c->y, c->arg, c->x, c->P, c->H, c->W);
	return weighted_sum(c->y, c->r, (size_t)c->P * (c->H / 2) * (c->W / 2));
}

static void
test_maxpool_gradients_and_routing(void)
{
	/* Odd height: the last row is dropped, as nn.MaxPool2d does. */
	struct pool_case c = {.P = 2, .H = 5, .W = 4};
	float x[40], y[8], r[8], dx[40];
	int32_t arg[8];
	c.x = x, c.y = y, c.r = r, c.arg = arg;
	/* Distinct values 0.1 apart: perturbing by h never changes a max. */
	for (int i = 0; i < 40; i++)
		x[i] = 0.1f * (float)((i * 17) % 40);
	fill_uniform(r, 8, 9, -1, 1);
	pool_loss(&c);
	maxpool_backward(dx, r, arg, c.P, c.H, c.W);
	check_grad("maxpool dx", dx, x, 40, pool_loss, &c, 1e-3f, 1e-3);

	/* Hand case: one plane, the max of each window gets dy, others 0. */
	float xs[16] = {1, 5, 0, 0, 2, 3, 0, 9, 7, 0, 1, 1, 0, 0, 1, 4};
	float ys[4], dys[4] = {10, 20, 30, 40}, dxs[16];
	int32_t as[4];
	maxpool_forward(ys, as, xs, 1, 4, 4);
	CHECK_NEAR(ys[0], 5, 0);
	CHECK_NEAR(ys[1], 9, 0);
	CHECK_NEAR(ys[2], 7, 0);
	CHECK_NEAR(ys[3], 4, 0);
	maxpool_backward(dxs, dys, as, 1, 4, 4);
	float want[16] = {0, 10, 0, 0, 0, 0, 0, 20, 30, 0, 0, 0, 0, 0, 0, 40};
	for (int i = 0; i < 16; i++)
		CHECK_NEAR(dxs[i], want[i], 0);
}

struct relu_case {
	size_t n;
	float *x, *y, *r;
};

static double
relu_loss(void *ctx)
{
	struct relu_case *c = ctx;
	relu_forward(c->y, c->x, c->n);
	return weighted_sum(c->y, c->r, c->n);
}

static void
test_relu_gradients(void)
{
	float x[64], y[64], r[64], dx[64];
	struct relu_case c = {.n = 64, .x = x, .y = y, .r = r};
	fill_away_from_zero(x, 64, 10);
	fill_uniform(r, 64, 11, -1, 1);
	relu_loss(&c);
	relu_backward(dx, r, y, 64);
	check_grad("relu dx", dx, x, 64, relu_loss, &c, 1e-3f, 1e-3);
	for (int i = 0; i < 64; i++)
		CHECK(y[i] == (x[i] > 0 ? x[i] : 0.0f));
}

struct ce_case {
	int B, V;
	float *z;
	int32_t *labels;
};

static double
ce_loss(void *ctx)
{
	struct ce_case *c = ctx;
	uint32_t correct = 0;
	return softmax_crossentropy(NULL, &correct, c->z, c->labels, c->B,
	                            c->V);
}

static void
test_softmax_crossentropy(void)
{
	/* Row 0: z = [1, 2, 3], label 2. softmax = [e^1, e^2, e^3] / S with
	 * S = e^1 + e^2 + e^3 = 30.19287485, i.e. [0.09003057, 0.24472847,
	 * 0.66524096]; loss = log S - 3 = 0.40760596; argmax 2 = label.
	 * Row 1: z = [0, 0, 0], label 1: softmax = 1/3 each, loss = log 3 =
	 * 1.09861229; argmax is the first maximum, 0 != 1.
	 * Mean loss = (0.40760596 + 1.09861229) / 2 = 0.75310913.
	 * dlogits = (softmax - onehot) / 2. */
	float z[6] = {1, 2, 3, 0, 0, 0}, dz[6];
	int32_t labels[2] = {2, 1};
	uint32_t correct = 0;
	double loss = softmax_crossentropy(dz, &correct, z, labels, 2, 3);
	CHECK_NEAR(loss, 0.75310913, 1e-7);
	CHECK_EQ_INT(correct, 1);
	float want[6] = {0.09003057f / 2,       0.24472847f / 2,
	                 (0.66524096f - 1) / 2, 1.0f / 6,
	                 (1.0f / 3 - 1) / 2,    1.0f / 6};
	for (int i = 0; i < 6; i++)
		CHECK_NEAR(dz[i], want[i], 1e-7);

	/* Huge logits stay finite: a naive exp would overflow. */
	float big[4] = {1000, 0, 0, 1000};
	int32_t bl[2] = {0, 0};
	correct = 0;
	loss = softmax_crossentropy(dz, &correct, big, bl, 2, 2);
	CHECK_NEAR(loss, 500.0, 1e-3);
	CHECK(isfinite(dz[0]) && isfinite(dz[3]));
	CHECK_EQ_INT(correct, 1);

	/* dlogits is the gradient of the mean loss. */
	float zr[12];
	int32_t lr[3] = {3, 0, 2};
	fill_uniform(zr, 12, 12, -2, 2);
	struct ce_case c = {.B = 3, .V = 4, .z = zr, .labels = lr};
	float dzr[12];
	correct = 0;
	softmax_crossentropy(dzr, &correct, zr, lr, 3, 4);
	check_grad("softmax-ce dlogits", dzr, zr, 12, ce_loss, &c, 1e-3f, 1e-3);
}

static void
test_dropout_mask(void)
{
	enum { N = 100000 };
	float *x = malloc(N * 4), *y = malloc(N * 4), *y2 = malloc(N * 4);
	float *dx = malloc(N * 4);
	for (int i = 0; i < N; i++)
		x[i] = 1.0f + (float)(i % 7);
	float p = 0.2f;
	uint64_t key = dropout_key(42, 3);
	CHECK(key == dropout_key(42, 3));
	CHECK(key != dropout_key(42, 4));
	CHECK(key != dropout_key(43, 3));

	dropout_forward(y, x, N, p, key);
	int kept = 0;
	for (int i = 0; i < N; i++) {
		if (y[i] != 0.0f) {
			kept++;
			CHECK_NEAR(y[i], x[i] / (1.0f - p), 1e-5);
		}
	}
	/* Keep rate 0.8: the binomial standard deviation is 126 samples. */
	CHECK(abs(kept - 80000) < 800);

	/* Same key, same mask; the mask of element i does not depend on n. */
	dropout_forward(y2, x, N, p, key);
	CHECK(memcmp(y, y2, N * sizeof(float)) == 0);
	dropout_forward(y2, x, 1000, p, key);
	CHECK(memcmp(y, y2, 1000 * sizeof(float)) == 0);
	/* Another step's key gives another mask. */
	dropout_forward(y2, x, N, p, dropout_key(42, 4));
	CHECK(memcmp(y, y2, N * sizeof(float)) != 0);

	/* Backward multiplies by the same mask and scale. */
	dropout_backward(dx, x, N, p, key);
	CHECK(memcmp(dx, y, N * sizeof(float)) == 0);

	/* p = 0 is the identity. */
	dropout_forward(y2, x, N, 0.0f, key);
	CHECK(memcmp(x, y2, N * sizeof(float)) == 0);
	free(x), free(y), free(y2), free(dx);
}

int
main(void)
{
	RUN(test_linear_gradients);
	RUN(test_conv2d_gradients);
	RUN(test_maxpool_gradients_and_routing);
	RUN(test_relu_gradients);
	RUN(test_softmax_crossentropy);
	RUN(test_dropout_mask);
	return harness_finish();
}
