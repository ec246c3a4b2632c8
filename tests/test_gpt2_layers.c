/* test_gpt2_layers.c: every GPT-2 layer's backward matches central finite
 * differences of its forward (scalar loss L = sum(out * r), r random),
 * parameter gradients accumulate, forwards match values worked out by hand;
 * the AdamW step and global-norm clipping follow torch's formulas. */
#include "gpt2-layers.h"
#include "harness.h"
#include "optim.h"
#include "rng.h"

#include <math.h>
#include <stdlib.h>

/* A layer under test: recompute the output from the current inputs and
 * parameters and return L = sum_i r_i * out_i in double. */
typedef double (*loss_fn)(void *ctx);

static void
fill_uniform(float *v, size_t n, uint64_t seed, float lo, float hi)
{
	struct rng r;
	rng_seed(&r, seed, 0);
	for (size_t i = 0; i < n; i++)
		v[i] = lo + (hi - lo) * (float)rng_uniform(&r);
}

static double
weighted_sum(const float *y, const float *r, size_t n)
{
	double s = 0.0;
	for (size_t i = 0; i < n; i++)
		s += (double)y[i] * r[i];
	return s;
}

/* Compare analytic with the central differences (L(v+h) - L(v-h)) / 2h of
 * every element of v: max_i |analytic_i - numeric_i| / max_i |numeric_i|
 * must stay under tol. */
static void
check_grad(const char *what, const float *analytic, float *v, size_t n,
           loss_fn f, void *ctx, float h, double tol)
{
	double max_err = 0.0, max_ref = 0.0;
	size_t worst = 0;
	double worst_num = 0.0;
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
		if (fabs(num) > max_ref)
			max_ref = fabs(num);
		if (fabs(num - analytic[i]) > max_err) {
			max_err = fabs(num - analytic[i]);
			worst = i;
			worst_num = num;
		}
	}
	f(ctx);
	double rel = max_err / fmax(max_ref, 1e-6);
	printf("  %-22s relative error %.2e\n", what, rel);
	if (!(rel < tol))
		harness_fail(__FILE__, __LINE__,
		             "%s: relative error %.3g (worst [%zu]: analytic "
		             "%.6g vs numeric %.6g)",
		             what, rel, worst, (double)analytic[worst],
		             worst_num);
}

/* Fill n gradients with 0.5 before a backward; afterwards unbias() takes
 * it off again, so only the accumulated (+=) part is compared. */
static void
prebias(float *g, size_t n)
{
	for (size_t i = 0; i < n; i++)
		g[i] = 0.5f;
}

static void
unbias(float *g, size_t n)
{
	for (size_t i = 0; i < n; i++)
		g[i] -= 0.5f;
}

struct encoder_case {
	int B, T, C;
	int32_t *tokens;
	float *wte, *wpe, *out, *r;
};

static double
encoder_loss(void *ctx)
{
	struct encoder_case *c = ctx;
	encoder_forward(c->out, c->tokens, c->wte, c->wpe, c->B, c->T, c->C);
	return weighted_sum(c->out, c->r, (size_t)c->B * c->T * c->C);
}

static void
test_encoder(void)
{
	/* V = 5, maxT = 4 > T: token 1 appears three times, wpe row 3 never. */
	enum { B = 2, T = 3, C = 4, V = 5, MAXT = 4, N = B * T };
	int32_t tokens[N] = {1, 3, 1, 4, 1, 0};
	float wte[V * C], wpe[MAXT * C], out[N * C], r[N * C];
	float dwte[V * C], dwpe[MAXT * C];
	struct encoder_case c = {B, T, C, tokens, wte, wpe, out, r};
	fill_uniform(wte, V * C, 1, -1, 1);
	fill_uniform(wpe, MAXT * C, 2, -1, 1);
	fill_uniform(r, N * C, 3, -1, 1);
	encoder_loss(&c);
	/* out[b=1, t=2] = wte[0] + wpe[2] */
	for (int k = 0; k < C; k++)
		CHECK(out[5 * C + k] == wte[0 * C + k] + wpe[2 * C + k]);
	prebias(dwte, V * C);
	prebias(dwpe, MAXT * C);
	encoder_backward(dwte, dwpe, r, tokens, B, T, C);
	unbias(dwte, V * C);
	unbias(dwpe, MAXT * C);
	check_grad("encoder dwte", dwte, wte, V * C, encoder_loss, &c, 1e-2f,
	           1e-3);
	check_grad("encoder dwpe", dwpe, wpe, MAXT * C, encoder_loss, &c, 1e-2f,
	           1e-3);
	/* Token 2 is never seen and position 3 never reached. */
	for (int k = 0; k < C; k++)
		CHECK(dwte[2 * C + k] == 0.0f && dwpe[3 * C + k] == 0.0f);
}

struct layernorm_case {
	int N, C;
	float *x, *w, *b, *out, *mean, *rstd, *r;
};

static double
layernorm_loss(void *ctx)
{
	struct layernorm_case *c = ctx;
	layernorm_forward(c->out, c->mean, c->rstd, c->x, c->w, c->b, c->N,
	                  c->C);
	return weighted_sum(c->out, c->r, (size_t)c->N * c->C);
}

static void
test_layernorm(void)
{
	enum { N = 3, C = 8 };
	float x[N * C], w[C], b[C], out[N * C], mean[N], rstd[N], r[N * C];
	float dx[N * C], dw[C], db[C], dw2[C] = {0}, db2[C] = {0};
	struct layernorm_case c = {N, C, x, w, b, out, mean, rstd, r};
	fill_uniform(x, N * C, 4, -1, 2);
	fill_uniform(w, C, 5, 0.5f, 1.5f);
	fill_uniform(b, C, 6, -0.5f, 0.5f);
	fill_uniform(r, N * C, 7, -1, 1);
	layernorm_loss(&c);
	/* Row 1, channel 5, written out in double. */
	double mu = 0, var = 0;
	for (int k = 0; k < C; k++)
		mu += x[C + k];
	mu /= C;
	for (int k = 0; k < C; k++)
		var += (x[C + k] - mu) * (x[C + k] - mu);
	var /= C;
	double want = (x[C + 5] - mu) / sqrt(var + 1e-5) * w[5] + b[5];
	CHECK_NEAR(out[C + 5], want, 1e-5);
	CHECK_NEAR(mean[1], mu, 1e-6);
	CHECK_NEAR(rstd[1], 1.0 / sqrt(var + 1e-5), 1e-5);

	prebias(dw, C);
	prebias(db, C);
	layernorm_backward(dx, dw, db, r, x, w, mean, rstd, N, C);
	unbias(dw, C);
	unbias(db, C);
	check_grad("layernorm dx", dx, x, N * C, layernorm_loss, &c, 1e-3f,
	           2e-3);
	check_grad("layernorm dw", dw, w, C, layernorm_loss, &c, 1e-3f, 2e-3);
	check_grad("layernorm db", db, b, C, layernorm_loss, &c, 1e-3f, 2e-3);
	/* dx == NULL gives the same parameter gradients. */
	layernorm_backward(NULL, dw2, db2, r, x, w, mean, rstd, N, C);
	for (int k = 0; k < C; k++)
		CHECK(fabsf(dw2[k] - dw[k]) < 1e-5f &&
		      fabsf(db2[k] - db[k]) < 1e-5f);
}

struct matmul_case {
	int N, IC, OC;
	float *x, *w, *b, *out, *r;
};

static double
matmul_loss(void *ctx)
{
	struct matmul_case *c = ctx;
	matmul_forward(c->out, c->x, c->w, c->b, c->N, c->IC, c->OC);
	return weighted_sum(c->out, c->r, (size_t)c->N * c->OC);
}

static void
test_matmul(void)
{
	enum { N = 3, IC = 5, OC = 4 };
	float x[N * IC], w[IC * OC], b[OC], out[N * OC], r[N * OC];
	float dx[N * IC], dw[IC * OC], db[OC];
	struct matmul_case c = {N, IC, OC, x, w, b, out, r};
	fill_uniform(x, N * IC, 8, -1, 1);
	fill_uniform(w, IC * OC, 9, -1, 1);
	fill_uniform(b, OC, 10, -1, 1);
	fill_uniform(r, N * OC, 11, -1, 1);
	matmul_loss(&c);
	/* out[2, 1] = b[1] + sum_i x[2, i] W[i, 1]: W is [in, out]. */
	double want = b[1];
	for (int i = 0; i < IC; i++)
		want += (double)x[2 * IC + i] * w[i * OC + 1];
	CHECK_NEAR(out[2 * OC + 1], want, 1e-5);
	prebias(dw, IC * OC);
	prebias(db, OC);
	matmul_backward(dx, dw, db, r, x, w, N, IC, OC);
	unbias(dw, IC * OC);
	unbias(db, OC);
	check_grad("matmul dx", dx, x, N * IC, matmul_loss, &c, 1e-2f, 1e-3);
	check_grad("matmul dw", dw, w, IC * OC, matmul_loss, &c, 1e-2f, 1e-3);
	check_grad("matmul db", db, b, OC, matmul_loss, &c, 1e-2f, 1e-3);
}

struct attention_case {
	int B, T, C, NH;
	float *qkv, *out, *att, *r;
};

static double
attention_loss(void *ctx)
{
	struct attention_case *c = ctx;
	attention_forward(c->out, c->att, c->qkv, c->B, c->T, c->C, c->NH);
	return weighted_sum(c->out, c->r, (size_t)c->B * c->T * c->C);
}

static void
test_attention(void)
{
	enum { B = 2, T = 4, C = 6, NH = 2, HS = C / NH };
	float qkv[B * T * 3 * C], out[B * T * C], att[B * NH * T * T];
	float r[B * T * C], dqkv[B * T * 3 * C], dscores[T * T];
	struct attention_case c = {B, T, C, NH, qkv, out, att, r};
	fill_uniform(qkv, B * T * 3 * C, 12, -1.5f, 1.5f);
	fill_uniform(r, B * T * C, 13, -1, 1);
	attention_loss(&c);
	/* Rows of P sum to 1 and are zero above the diagonal. */
	for (int row = 0; row < B * NH * T; row++) {
		int t = row % T;
		double sum = 0;
		for (int s = 0; s < T; s++) {
			sum += att[row * T + s];
			if (s > t)
				CHECK(att[row * T + s] == 0.0f);
		}
		CHECK_NEAR(sum, 1.0, 1e-6);
	}
	/* Position 0 sees only itself: its output is its own v. */
	for (int k = 0; k < C; k++)
		CHECK_NEAR(out[k], qkv[2 * C + k], 1e-6);
	/* b = 1, head 1, t = 1: softmax over s = 0, 1 of q1.k_s / sqrt(hs). */
	const float *q = qkv + (size_t)(T + 1) * 3 * C + HS;
	double sc[2], m = 0;
	for (int s = 0; s < 2; s++) {
		const float *k = qkv + (size_t)(T + s) * 3 * C + C + HS;
		sc[s] = 0;
		for (int i = 0; i < HS; i++)
			sc[s] += (double)q[i] * k[i];
		sc[s] /= sqrt((double)HS);
	}
	m = fmax(sc[0], sc[1]);
	double p0 = exp(sc[0] - m) / (exp(sc[0] - m) + exp(sc[1] - m));
	CHECK_NEAR(att[((1 * NH + 1) * T + 1) * T + 0], p0, 1e-6);
	double y = 0;
	for (int s = 0; s < 2; s++)
		y += (s == 0 ? p0 : 1 - p0) *
		     qkv[(size_t)(T + s) * 3 * C + 2 * C + HS + 2];
	CHECK_NEAR(out[(size_t)(T + 1) * C + HS + 2], y, 1e-5);

	attention_backward(dqkv, dscores, r, qkv, att, B, T, C, NH);
	check_grad("attention dqkv", dqkv, qkv, B * T * 3 * C, attention_loss,
	           &c, 1e-3f, 2e-3);
}

struct gelu_case {
	size_t n;
	float *x, *out, *r;
};

static double
gelu_loss(void *ctx)
{
	struct gelu_case *c = ctx;
	gelu_forward(c->out, c->x, c->n);
	return weighted_sum(c->out, c->r, c->n);
}

static void
test_gelu(void)
{
	/* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) at 1, -0.5 and 2.5
	 * (computed with Python's math module): 0.841191991, -0.15428599,
	 * 2.48491573. */
	float xs[3] = {1.0f, -0.5f, 2.5f}, ys[3];
	gelu_forward(ys, xs, 3);
	CHECK_NEAR(ys[0], 0.841191991, 1e-6);
	CHECK_NEAR(ys[1], -0.15428599, 1e-6);
	CHECK_NEAR(ys[2], 2.48491573, 1e-6);

	enum { N = 64 };
	float x[N], out[N], r[N], dx[N];
	struct gelu_case c = {N, x, out, r};
	fill_uniform(x, N, 14, -3, 3);
	fill_uniform(r, N, 15, -1, 1);
	gelu_loss(&c);
	gelu_backward(dx, r, x, N);
	check_grad("gelu dx", dx, x, N, gelu_loss, &c, 1e-3f, 2e-3);
}

struct residual_case {
	size_t n;
	float *a, *b, *out, *r;
};

static double
residual_loss(void *ctx)
{
	struct residual_case *c = ctx;
	residual_forward(c->out, c->a, c->b, c->n);
	return weighted_sum(c->out, c->r, c->n);
}

static void
test_residual(void)
{
	enum { N = 12 };
	float a[N], b[N], out[N], r[N], da[N], db[N], db2[N];
	struct residual_case c = {N, a, b, out, r};
	fill_uniform(a, N, 16, -1, 1);
	fill_uniform(b, N, 17, -1, 1);
	fill_uniform(r, N, 18, -1, 1);
	residual_loss(&c);
	for (int i = 0; i < N; i++)
		CHECK(out[i] == a[i] + b[i]);
	residual_backward(da, db, r, N);
	check_grad("residual da", da, a, N, residual_loss, &c, 1e-2f, 1e-3);
	check_grad("residual db", db, b, N, residual_loss, &c, 1e-2f, 1e-3);
	residual_backward(NULL, db2, r, N);
	CHECK(memcmp(db, db2, sizeof db) == 0);
}

struct lmhead_case {
	int N, C, V;
	float *x, *wte, *logits, *r;
};

static double
lmhead_loss(void *ctx)
{
	struct lmhead_case *c = ctx;
	lmhead_forward(c->logits, c->x, c->wte, c->N, c->C, c->V);
	return weighted_sum(c->logits, c->r, (size_t)c->N * c->V);
}

static void
test_lmhead(void)
{
	enum { N = 3, C = 4, V = 6 };
	float x[N * C], wte[V * C], logits[N * V], r[N * V];
	float dx[N * C], dwte[V * C];
	struct lmhead_case c = {N, C, V, x, wte, logits, r};
	fill_uniform(x, N * C, 19, -1, 1);
	fill_uniform(wte, V * C, 20, -1, 1);
	fill_uniform(r, N * V, 21, -1, 1);
	lmhead_loss(&c);
	/* logits[1, 4] = x[1] . wte[4] */
	double want = 0;
	for (int k = 0; k < C; k++)
		want += (double)x[C + k] * wte[4 * C + k];
	CHECK_NEAR(logits[V + 4], want, 1e-5);
	prebias(dwte, V * C);
	lmhead_backward(dx, dwte, r, x, wte, N, C, V);
	unbias(dwte, V * C);
	check_grad("lmhead dx", dx, x, N * C, lmhead_loss, &c, 1e-2f, 1e-3);
	check_grad("lmhead dwte", dwte, wte, V * C, lmhead_loss, &c, 1e-2f,
	           1e-3);
}

struct ce_case {
	int N, V;
	float *z;
	int32_t *targets;
};

static double
ce_loss(void *ctx)
{
	struct ce_case *c = ctx;
	return lm_crossentropy(NULL, c->z, c->targets, c->N, c->V);
}

static void
test_lm_crossentropy(void)
{
	/* Row 0: z = [1, 2, 3], target 2: log(e^1 + e^2 + e^3) - 3 =
	 * 0.40760596, softmax [0.09003057, 0.24472847, 0.66524096]. Row 1 is
	 * ignored (-1). Row 2: z = [0, 0, 0], target 1: log 3 = 1.09861229.
	 * The mean is over the 2 counted rows: 0.75310913; dlogits are
	 * (softmax - onehot) / 2 on rows 0 and 2, zero on row 1. */
	float z[9] = {1, 2, 3, 5, -5, 7, 0, 0, 0}, dz[9];
	int32_t t[3] = {2, -1, 1};
	CHECK_NEAR(lm_crossentropy(dz, z, t, 3, 3), 0.75310913, 1e-7);
	float want[9] = {0.09003057f / 2,
	                 0.24472847f / 2,
	                 (0.66524096f - 1) / 2,
	                 0,
	                 0,
	                 0,
	                 1.0f / 6,
	                 (1.0f / 3 - 1) / 2,
	                 1.0f / 6};
	for (int i = 0; i < 9; i++)
		CHECK_NEAR(dz[i], want[i], 1e-7);
	/* In place gives the same, and the loss is read before the write. */
	CHECK_NEAR(lm_crossentropy(z, z, t, 3, 3), 0.75310913, 1e-7);
	CHECK(memcmp(z, dz, sizeof z) == 0);
	/* Every row ignored: loss 0, no gradient (not 0/0). */
	int32_t none[3] = {-1, -1, -1};
	float z2[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
	CHECK(lm_crossentropy(z2, z2, none, 3, 3) == 0.0);
	for (int i = 0; i < 9; i++)
		CHECK(z2[i] == 0.0f);

	/* dlogits is the gradient of the mean over counted rows. */
	enum { N = 4, V = 5 };
	float zr[N * V], dzr[N * V];
	int32_t tr[N] = {3, -1, 0, 4};
	fill_uniform(zr, N * V, 22, -2, 2);
	struct ce_case c = {N, V, zr, tr};
	lm_crossentropy(dzr, zr, tr, N, V);
	check_grad("crossentropy dlogits", dzr, zr, N * V, ce_loss, &c, 1e-3f,
	           2e-3);
}

static void
test_adamw_step(void)
{
	/* lr 0.1, weight decay 0.01, betas (0.9, 0.999), eps 1e-8; element 0
	 * gets g = 0.5 then -0.25, element 1 g = 0 throughout.
	 * Step 1: w = 1 * (1 - 0.001) = 0.999; m = 0.05, v = 0.00025;
	 * m / 0.1 = 0.5, v / 0.001 = 0.25: w -= 0.1 * 0.5 / (0.5 + 1e-8)
	 * -> 0.899000002.
	 * Step 2: w *= 0.999; m = 0.9 * 0.05 - 0.1 * 0.25 = 0.02,
	 * v = 0.999 * 0.00025 + 0.001 * 0.0625 = 0.00031225; the update is
	 * 0.1 / 0.19 * 0.02 / (sqrt(0.00031225) / sqrt(0.001999) + 1e-8)
	 * = 0.0266337033 -> w = 0.871467299 (all worked in Python).
	 * Element 1 only decays: 2 * 0.999^2. */
	struct optim_config c = {.lr = 0.1f,
	                         .weight_decay = 0.01f,
	                         .beta1 = 0.9f,
	                         .beta2 = 0.999f,
	                         .eps = 1e-8f};
	float w[2] = {1.0f, 2.0f}, m[2] = {0}, v[2] = {0};
	float g1[2] = {0.5f, 0.0f}, g2[2] = {-0.25f, 0.0f};
	optim_adamw_update(&c, w, g1, m, v, 2, 1);
	CHECK_NEAR(w[0], 0.899000002, 1e-6);
	CHECK_NEAR(m[0], 0.05, 1e-7);
	CHECK_NEAR(v[0], 0.00025, 1e-8); /* 1 - 0.999f is 0.00099999 */
	optim_adamw_update(&c, w, g2, m, v, 2, 2);
	CHECK_NEAR(w[0], 0.871467299, 1e-6);
	CHECK_NEAR(w[1], 2.0 * 0.999 * 0.999, 1e-6);
}

static void
test_clip_grad_norm(void)
{
	/* |(3, 4, 0)| = 5; clipped to 1 by the factor 1 / (5 + 1e-6). */
	float g[3] = {3, 4, 0};
	CHECK_NEAR(optim_clip_grad_norm(g, 3, 1.0), 5.0, 1e-9);
	CHECK_NEAR(g[0], 0.6, 1e-6);
	CHECK_NEAR(g[1], 0.8, 1e-6);
	CHECK(g[2] == 0.0f);
	/* Under the limit: unchanged. */
	float h[2] = {0.3f, -0.4f};
	CHECK_NEAR(optim_clip_grad_norm(h, 2, 1.0), 0.5, 1e-7);
	CHECK(h[0] == 0.3f && h[1] == -0.4f);
}

int
main(void)
{
	RUN(test_encoder);
	RUN(test_layernorm);
	RUN(test_matmul);
	RUN(test_attention);
	RUN(test_gelu);
	RUN(test_residual);
	RUN(test_lmhead);
	RUN(test_lm_crossentropy);
	RUN(test_adamw_step);
	RUN(test_clip_grad_norm);
	return harness_finish();
}
