/* test_gpu_layers.c: every GPU layer of libcohort-cuda.so gives what the CPU
 * layer of the same name gives on the same inputs: forward and backward,
 * within a relative error of 1e-4 (float sums in another order), and
 * exactly where no arithmetic is reordered (im2col, max pooling and its
 * argmax ties, ReLU, dropout masks). Skipped without a usable GPU. */
#include "backend.h"
#include "cuda/plugin.h"
#include "harness.h"
#include "layers.h"
#include "optim.h"
#include "rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static const struct cuda_plugin *P;
static const struct cuda_layer_api *L;
static struct cuda_ctx *ctx;

/* The plugin and a context on device 0, or skip saying why. */
static void
need_gpu(void)
{
	static char reason[700];
	struct ipc_error err;
	if (ctx != NULL)
		return;
	if (reason[0] != '\0')
		harness_skip(reason);
	if (getenv("COHORT_CUDA_PLUGIN") == NULL)
		setenv("COHORT_CUDA_PLUGIN",
		       harness_build_path("worker/libcohort-cuda.so"), 1);
	P = backend_cuda_plugin(&err);
	if (P != NULL)
		ctx = P->ctx_open(0, &err);
	if (ctx == NULL) {
		snprintf(reason, sizeof reason, "no CUDA device: %s",
		         err.message);
		harness_skip(reason);
	}
	L = P->layers;
}

/* A device copy of n host floats. */
static void *
dev(const void *h, size_t bytes)
{
	void *d = P->alloc(ctx, bytes > 0 ? bytes : 4);
	if (d != NULL)
		P->upload(ctx, d, h, bytes);
	return d;
}

/* The device's bytes in a fresh host buffer (the caller frees). */
static void *
host(const void *d, size_t bytes)
{
	void *h = calloc(1, bytes > 0 ? bytes : 4);
	P->download(ctx, h, d, bytes);
	return h;
}

/* No CUDA/cuBLAS error is pending. */
#define CHECK_GPU_OK()                                                         \
	do {                                                                   \
		struct ipc_error e_;                                           \
		if (P->check(ctx, &e_) != 0)                                   \
			harness_fail(__FILE__, __LINE__, "%s", e_.message);    \
	} while (0)

/* max |a - b| over max |b|: the error relative to the tensor's scale. */
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

#define CHECK_CLOSE(what, gpu, cpu, n)                                         \
	do {                                                                   \
		double r_ = rel_err((gpu), (cpu), (n));                        \
		if (!(r_ < 1e-4))                                              \
			harness_fail(__FILE__, __LINE__,                       \
			             "%s: relative error %.3g", what, r_);     \
	} while (0)

/* n floats uniform in [-scale, scale] from seed. */
static float *
random_floats(size_t n, uint64_t seed, float scale)
{
	float *x = malloc((n > 0 ? n : 1) * sizeof *x);
	struct rng r;
	rng_seed(&r, seed, 0);
	for (size_t i = 0; i < n; i++)
		x[i] = (float)((2.0 * rng_uniform(&r) - 1.0) * scale);
	return x;
}

/* A copy of n floats. */
static float *
copy_floats(const float *x, size_t n)
{
	float *c = malloc(n * sizeof *c);
	memcpy(c, x, n * sizeof *c);
	return c;
}

static void
test_linear(void)
{
	need_gpu();
	const int shapes[][3] = {{37, 83, 29}, {32, 784, 128}, {1, 5, 3}};
	for (size_t s = 0; s < ARRAY_LEN(shapes); s++) {
		int B = shapes[s][0], in = shapes[s][1], out = shapes[s][2];
		size_t nx = (size_t)B * in, nw = (size_t)out * in,
		       ny = (size_t)B * out;
		float *x = random_floats(nx, 1, 1.0f),
		      *w = random_floats(nw, 2, 0.1f),
		      *b = random_floats(out, 3, 0.1f),
		      *dy = random_floats(ny, 4, 1.0f),
		      *dw0 = random_floats(nw, 5, 0.5f),
		      *db0 = random_floats(out, 6, 0.5f);
		float *y = malloc(ny * 4), *dx = malloc(nx * 4),
		      *dw = copy_floats(dw0, nw), *db = copy_floats(db0, out);
		linear_forward(y, x, w, b, B, in, out);
		linear_backward(dx, dw, db, dy, x, w, B, in, out);

		float *gx = dev(x, nx * 4), *gw = dev(w, nw * 4),
		      *gb = dev(b, out * 4), *gdy = dev(dy, ny * 4),
		      *gdw = dev(dw0, nw * 4), *gdb = dev(db0, out * 4);
		float *gy = P->alloc(ctx, ny * 4), *gdx = P->alloc(ctx, nx * 4);
		L->linear_forward(ctx, gy, gx, gw, gb, B, in, out);
		L->linear_backward(ctx, gdx, gdw, gdb, gdy, gx, gw, B, in, out);
		CHECK_GPU_OK();
		float *hy = host(gy, ny * 4), *hdx = host(gdx, nx * 4),
		      *hdw = host(gdw, nw * 4), *hdb = host(gdb, out * 4);
		CHECK_CLOSE("linear_forward y", hy, y, ny);
		CHECK_CLOSE("linear_backward dx", hdx, dx, nx);
		CHECK_CLOSE("linear_backward dw (accumulated)", hdw, dw, nw);
		CHECK_CLOSE("linear_backward db (accumulated)", hdb, db, out);

		/* the first layer: no dx, gradients accumulate again */
		linear_backward(NULL, dw, db, dy, x, w, B, in, out);
		L->linear_backward(ctx, NULL, gdw, gdb, gdy, gx, gw, B, in,
		                   out);
		CHECK_GPU_OK();
		free(hdw), free(hdb);
		hdw = host(gdw, nw * 4), hdb = host(gdb, out * 4);
		CHECK_CLOSE("linear_backward dw (no dx)", hdw, dw, nw);
		CHECK_CLOSE("linear_backward db (no dx)", hdb, db, out);

		void *gpu[] = {gx, gw, gb, gdy, gdw, gdb, gy, gdx};
		for (size_t i = 0; i < ARRAY_LEN(gpu); i++)
			P->free(ctx, gpu[i]);
		float *cpu[] = {x,  w,  b,  dy, dw0, db0, y,
		                dx, dw, db, hy, hdx, hdw, hdb};
		for (size_t i = 0; i < ARRAY_LEN(cpu); i++)
			free(cpu[i]);
	}
	CHECK_GPU_OK();
}

static void
test_conv2d(void)
{
	need_gpu();
	/* B, C, H, W, OC, K: odd sizes, then the cnn's two layers */
	const int shapes[][6] = {{3, 2, 12, 10, 4, 5},
	                         {32, 1, 28, 28, 6, 5},
	                         {32, 6, 12, 12, 16, 5},
	                         {2, 3, 7, 9, 5, 3}};
	for (size_t s = 0; s < ARRAY_LEN(shapes); s++) {
		int B = shapes[s][0], C = shapes[s][1], H = shapes[s][2],
		    W = shapes[s][3], OC = shapes[s][4], K = shapes[s][5];
		int OH = H - K + 1, OW = W - K + 1, CKK = C * K * K,
		    Pp = OH * OW;
		size_t nx = (size_t)B * C * H * W, nw = (size_t)OC * CKK,
		       ny = (size_t)B * OC * Pp, ncol = (size_t)B * CKK * Pp;
		float *x = random_floats(nx, 10, 1.0f),
		      *w = random_floats(nw, 11, 0.2f),
		      *b = random_floats(OC, 12, 0.2f),
		      *dy = random_floats(ny, 13, 1.0f),
		      *dw0 = random_floats(nw, 14, 0.5f),
		      *db0 = random_floats(OC, 15, 0.5f);
		float *y = malloc(ny * 4), *col = malloc(ncol * 4),
		      *dx = malloc(nx * 4),
		      *dcol = malloc((size_t)CKK * Pp * 4),
		      *dw = copy_floats(dw0, nw), *db = copy_floats(db0, OC);
		conv2d_forward(y, col, x, w, b, B, C, H, W, OC, K);
		conv2d_backward(dx, dcol, dw, db, dy, col, w, B, C, H, W, OC,
		                K);

		float *gx = dev(x, nx * 4), *gw = dev(w, nw * 4),
		      *gb = dev(b, OC * 4), *gdy = dev(dy, ny * 4),
		      *gdw = dev(dw0, nw * 4), *gdb = dev(db0, OC * 4);
		float *gy = P->alloc(ctx, ny * 4),
		      *gcol = P->alloc(ctx, ncol * 4),
		      *gdx = P->alloc(ctx, nx * 4),
		      *gdcol = P->alloc(ctx, ncol * 4),
		      *gdwb = P->alloc(ctx, (size_t)B * nw * 4);
		L->conv2d_forward(ctx, gy, gcol, gx, gw, gb, B, C, H, W, OC, K);
		L->conv2d_backward(ctx, gdx, gdcol, gdwb, gdw, gdb, gdy, gcol,
		                   gw, B, C, H, W, OC, K);
		CHECK_GPU_OK();
		float *hy = host(gy, ny * 4), *hcol = host(gcol, ncol * 4),
		      *hdx = host(gdx, nx * 4), *hdw = host(gdw, nw * 4),
		      *hdb = host(gdb, OC * 4);
		CHECK(memcmp(hcol, col, ncol * 4) == 0); /* im2col copies */
		CHECK_CLOSE("conv2d_forward y", hy, y, ny);
		CHECK_CLOSE("conv2d_backward dx", hdx, dx, nx);
		CHECK_CLOSE("conv2d_backward dw (accumulated)", hdw, dw, nw);
		CHECK_CLOSE("conv2d_backward db (accumulated)", hdb, db, OC);

		/* the first layer: no dx, no dcol */
		conv2d_backward(NULL, NULL, dw, db, dy, col, w, B, C, H, W, OC,
		                K);
		L->conv2d_backward(ctx, NULL, NULL, gdwb, gdw, gdb, gdy, gcol,
		                   gw, B, C, H, W, OC, K);
		CHECK_GPU_OK();
		free(hdw), free(hdb);
		hdw = host(gdw, nw * 4), hdb = host(gdb, OC * 4);
		CHECK_CLOSE("conv2d_backward dw (no dx)", hdw, dw, nw);
		CHECK_CLOSE("conv2d_backward db (no dx)", hdb, db, OC);

		void *gpu[] = {gx, gw,   gb,  gdy,   gdw, gdb,
		               gy, gcol, gdx, gdcol, gdwb};
		for (size_t i = 0; i < ARRAY_LEN(gpu); i++)
			P->free(ctx, gpu[i]);
		float *cpu[] = {x,    w,  b,  dy, dw0,  db0, y,   col, dx,
		                dcol, dw, db, hy, hcol, hdx, hdw, hdb};
		for (size_t i = 0; i < ARRAY_LEN(cpu); i++)
			free(cpu[i]);
	}
	CHECK_GPU_OK();
}

static void
test_maxpool(void)
{
	need_gpu();
	/* planes, H, W: odd edges dropped; few distinct values make ties */
	const int shapes[][3] = {{5, 7, 6}, {192, 24, 24}, {3, 9, 11}};
	for (size_t s = 0; s < ARRAY_LEN(shapes); s++) {
		int Pn = shapes[s][0], H = shapes[s][1], W = shapes[s][2];
		size_t nx = (size_t)Pn * H * W,
		       ny = (size_t)Pn * (H / 2) * (W / 2);
		float *x = malloc(nx * 4);
		struct rng r;
		rng_seed(&r, 20 + s, 0);
		for (size_t i = 0; i < nx; i++)
			x[i] = (float)rng_below(&r, 4) - 1.0f;
		float *dy = random_floats(ny, 21, 1.0f);
		float *y = malloc(ny * 4), *dx = malloc(nx * 4);
		int32_t *arg = malloc(ny * 4);
		maxpool_forward(y, arg, x, Pn, H, W);
		maxpool_backward(dx, dy, arg, Pn, H, W);

		float *gx = dev(x, nx * 4), *gdy = dev(dy, ny * 4),
		      *gy = P->alloc(ctx, ny * 4), *gdx = P->alloc(ctx, nx * 4);
		int32_t *garg = P->alloc(ctx, ny * 4);
		L->maxpool_forward(ctx, gy, garg, gx, Pn, H, W);
		L->maxpool_backward(ctx, gdx, gdy, garg, Pn, H, W);
		CHECK_GPU_OK();
		float *hy = host(gy, ny * 4), *hdx = host(gdx, nx * 4);
		int32_t *harg = host(garg, ny * 4);
		CHECK(memcmp(harg, arg, ny * 4) == 0); /* first maximum */
		CHECK(memcmp(hy, y, ny * 4) == 0);
		CHECK(memcmp(hdx, dx, nx * 4) == 0);
		void *gpu[] = {gx, gdy, gy, gdx, garg};
		for (size_t i = 0; i < ARRAY_LEN(gpu); i++)
			P->free(ctx, gpu[i]);
		void *cpu[] = {x, dy, y, dx, arg, hy, hdx, harg};
		for (size_t i = 0; i < ARRAY_LEN(cpu); i++)
			free(cpu[i]);
	}
}

static void
test_relu(void)
{
	need_gpu();
	size_t n = 10007;
	float *x = random_floats(n, 30, 1.0f), *dy = random_floats(n, 31, 1.0f);
	for (size_t i = 0; i < n; i += 7)
		x[i] = 0.0f; /* the boundary: no gradient at 0 */
	float *y = malloc(n * 4), *dx = malloc(n * 4);
	relu_forward(y, x, n);
	relu_backward(dx, dy, y, n);
	float *gx = dev(x, n * 4), *gdy = dev(dy, n * 4),
	      *gy = P->alloc(ctx, n * 4), *gdx = P->alloc(ctx, n * 4);
	L->relu_forward(ctx, gy, gx, n);
	L->relu_backward(ctx, gdx, gdy, gy, n);
	CHECK_GPU_OK();
	float *hy = host(gy, n * 4), *hdx = host(gdx, n * 4);
	CHECK(memcmp(hy, y, n * 4) == 0);
	CHECK(memcmp(hdx, dx, n * 4) == 0);
	void *gpu[] = {gx, gdy, gy, gdx};
	for (size_t i = 0; i < ARRAY_LEN(gpu); i++)
		P->free(ctx, gpu[i]);
	void *cpu[] = {x, dy, y, dx, hy, hdx};
	for (size_t i = 0; i < ARRAY_LEN(cpu); i++)
		free(cpu[i]);
}

static void
test_dropout_masks_match_bit_for_bit(void)
{
	need_gpu();
	size_t n = 32 * 128 * 7 + 13;
	float *x = random_floats(n, 40, 1.0f), *dy = random_floats(n, 41, 1.0f);
	float *y = malloc(n * 4), *dx = malloc(n * 4);
	float *gx = dev(x, n * 4), *gdy = dev(dy, n * 4),
	      *gy = P->alloc(ctx, n * 4), *gdx = P->alloc(ctx, n * 4);
	const float ps[] = {0.2f, 0.5f, 0.0f};
	for (size_t k = 0; k < ARRAY_LEN(ps); k++) {
		uint64_t key = dropout_key(42, 7 + k);
		dropout_forward(y, x, n, ps[k], key);
		dropout_backward(dx, dy, n, ps[k], key);
		L->dropout_forward(ctx, gy, gx, n, ps[k], key);
		L->dropout_backward(ctx, gdx, gdy, n, ps[k], key);
		CHECK_GPU_OK();
		float *hy = host(gy, n * 4), *hdx = host(gdx, n * 4);
		CHECK(memcmp(hy, y, n * 4) == 0);
		CHECK(memcmp(hdx, dx, n * 4) == 0);
		size_t zeros = 0;
		for (size_t i = 0; i < n; i++)
			zeros += hy[i] == 0.0f;
		CHECK_NEAR((double)zeros / n, ps[k], 0.01);
		free(hy), free(hdx);
	}
	void *gpu[] = {gx, gdy, gy, gdx};
	for (size_t i = 0; i < ARRAY_LEN(gpu); i++)
		P->free(ctx, gpu[i]);
	void *cpu[] = {x, dy, y, dx};
	for (size_t i = 0; i < ARRAY_LEN(cpu); i++)
		free(cpu[i]);
}

static void
test_softmax_crossentropy(void)
{
	need_gpu();
	const int shapes[][2] = {{19, 10}, {5, 77}, {256, 10}, {3, 1}};
	for (size_t s = 0; s < ARRAY_LEN(shapes); s++) {
		int B = shapes[s][0], V = shapes[s][1];
		size_t nz = (size_t)B * V;
		float *z = random_floats(nz, 50 + s, 5.0f);
		int32_t *lab = malloc(B * 4);
		struct rng r;
		rng_seed(&r, 60 + s, 0);
		for (int i = 0; i < B; i++)
			lab[i] = (int32_t)rng_below(&r, (uint64_t)V);
		if (V > 8) {
			/* ties: the first maximum is the prediction */
			for (int v = 0; v < V; v++)
				z[v] = 1.5f;
			lab[0] = 0;
			z[V + 3] = z[V + 7] = 9.0f;
			lab[1] = 3;
		}
		float *dz = malloc(nz * 4);
		uint32_t correct = 0;
		double loss = softmax_crossentropy(dz, &correct, z, lab, B, V);

		float *gz = dev(z, nz * 4), *gdz = P->alloc(ctx, nz * 4);
		int32_t *glab = dev(lab, B * 4),
		        *gcor = P->alloc(ctx, (size_t)B * 4);
		double *gloss = P->alloc(ctx, (size_t)B * 8);
		L->softmax_crossentropy(ctx, gdz, gloss, gcor, gz, glab, B, V);
		CHECK_GPU_OK();
		float *hdz = host(gdz, nz * 4);
		double *hloss = host(gloss, (size_t)B * 8);
		int32_t *hcor = host(gcor, (size_t)B * 4);
		double sum = 0.0;
		uint32_t gcorrect = 0;
		for (int i = 0; i < B; i++) {
			uint32_t one = 0;
			double li = softmax_crossentropy(
			    NULL, &one, z + (size_t)i * V, lab + i, 1, V);
			CHECK_NEAR(hloss[i], li, 1e-9 * (fabs(li) + 1.0));
			CHECK_EQ_INT(hcor[i], one);
			sum += hloss[i];
			gcorrect += (uint32_t)hcor[i];
		}
		CHECK_NEAR(sum / B, loss, 1e-9 * (fabs(loss) + 1.0));
		CHECK_EQ_INT(gcorrect, correct);
		CHECK_CLOSE("softmax_crossentropy dlogits", hdz, dz, nz);
		if (V > 8)
			CHECK(hcor[0] == 1 && hcor[1] == 1);

		/* evaluation: no dlogits, same losses */
		L->softmax_crossentropy(ctx, NULL, gloss, gcor, gz, glab, B, V);
		CHECK_GPU_OK();
		double *again = host(gloss, (size_t)B * 8);
		CHECK(memcmp(again, hloss, (size_t)B * 8) == 0);
		void *gpu[] = {gz, gdz, glab, gcor, gloss};
		for (size_t i = 0; i < ARRAY_LEN(gpu); i++)
			P->free(ctx, gpu[i]);
		void *cpu[] = {z, lab, dz, hdz, hloss, hcor, again};
		for (size_t i = 0; i < ARRAY_LEN(cpu); i++)
			free(cpu[i]);
	}
}

/* Four steps of one optimiser config on the CPU and on the GPU, over a
 * region of three tensors with padding between them (left untouched). */
static void
compare_optimizer(const struct optim_config *c, const char *what)
{
	struct ipc_error err;
	struct tensor_manifest mf;
	uint64_t s1[1] = {7}, s2[2] = {3, 5}, s3[1] = {33};
	tensor_manifest_init(&mf);
	CHECK(tensor_manifest_add(&mf, "a", DTYPE_F32, 1, s1, &err) == 0);
	CHECK(tensor_manifest_add(&mf, "b", DTYPE_F32, 2, s2, &err) == 0);
	CHECK(tensor_manifest_add(&mf, "c", DTYPE_F32, 1, s3, &err) == 0);
	size_t n = mf.total_size / 4;
	float *w = random_floats(n, 70, 1.0f), *gl = random_floats(n, 71, 1.0f);
	struct cuda_region reg = {0};
	reg.count = (int)mf.count;
	size_t end = 0;
	for (size_t i = 0; i < mf.count; i++) {
		reg.offset[i] = (uint32_t)(mf.tensors[i].offset / 4);
		reg.length[i] = (uint32_t)(mf.tensors[i].nbytes / 4);
		for (size_t j = end; j < reg.offset[i]; j++)
			w[j] = 7.0f, gl[j] = 100.0f; /* padding */
		end = reg.offset[i] + reg.length[i];
	}
	for (size_t j = end; j < n; j++)
		w[j] = 7.0f, gl[j] = 100.0f;
	struct cuda_optim_desc d = {c->kind == OPT_ADAM,
	                            c->lr,
	                            c->momentum,
	                            c->weight_decay,
	                            c->beta1,
	                            c->beta2,
	                            c->eps,
	                            c->prox_mu};
	float *gw = dev(w, n * 4), *ggl = dev(gl, n * 4),
	      *gg = P->alloc(ctx, n * 4);
	struct optim *o = optim_create(c, &mf);
	struct cuda_optim *go = L->optim_create(ctx, &d, &reg, n);
	CHECK(go != NULL);
	for (int step = 0; step < 4; step++) {
		float *g = random_floats(n, 80 + step, 1.0f);
		P->upload(ctx, gg, g, n * 4);
		optim_step(o, w, g, gl);
		L->optim_step(ctx, go, gw, gg, ggl);
		free(g);
	}
	CHECK_GPU_OK();
	float *hw = host(gw, n * 4);
	double r = rel_err(hw, w, n);
	if (!(r < 1e-4))
		harness_fail(__FILE__, __LINE__, "%s: relative error %.3g",
		             what, r);
	for (size_t j = 0; j < n; j++)
		if (w[j] == 7.0f)
			CHECK(hw[j] == 7.0f);
	L->optim_free(ctx, go);
	optim_free(o);
	void *gpu[] = {gw, ggl, gg};
	for (size_t i = 0; i < ARRAY_LEN(gpu); i++)
		P->free(ctx, gpu[i]);
	free(w), free(gl), free(hw);
	tensor_manifest_free(&mf);
	CHECK_GPU_OK();
}

static void
test_optimizers(void)
{
	need_gpu();
	struct optim_config sgd = {.kind = OPT_SGD, .lr = 0.1f};
	compare_optimizer(&sgd, "sgd");
	struct optim_config mom = {.kind = OPT_SGD,
	                           .lr = 0.05f,
	                           .momentum = 0.9f,
	                           .weight_decay = 0.01f,
	                           .prox_mu = 0.1f};
	compare_optimizer(&mom, "sgd momentum + weight decay + fedprox");
	struct optim_config adam = {.kind = OPT_ADAM,
	                            .lr = 0.01f,
	                            .beta1 = 0.9f,
	                            .beta2 = 0.999f,
	                            .eps = 1e-8f};
	compare_optimizer(&adam, "adam");
	adam.weight_decay = 0.01f;
	adam.prox_mu = 0.05f;
	compare_optimizer(&adam, "adam + weight decay + fedprox");
}

static void
test_errors_are_reported_not_fatal(void)
{
	need_gpu();
	struct ipc_error err;
	/* more memory than any GPU has: NULL and a named error, no abort */
	void *p = P->alloc(ctx, (size_t)1 << 50);
	CHECK(p == NULL);
	CHECK(P->check(ctx, &err) == -1);
	CHECK_EQ_INT(err.code, IPC_E_IO);
	CHECK_STR_CONTAINS(err.message, "cudaMalloc");
	CHECK_STR_CONTAINS(err.message, "worker/engine/cuda/context.cu:");
	CHECK_STR_CONTAINS(err.message, "cudaErrorMemoryAllocation");
	/* the error is handed out once; the context works on */
	CHECK(P->check(ctx, &err) == 0);
	float one = 1.0f, *d = dev(&one, 4), back = 0.0f;
	P->download(ctx, &back, d, 4);
	P->free(ctx, d);
	CHECK(P->check(ctx, &err) == 0 && back == 1.0f);
}

int
main(void)
{
	RUN(test_linear);
	RUN(test_conv2d);
	RUN(test_maxpool);
	RUN(test_relu);
	RUN(test_dropout_masks_match_bit_for_bit);
	RUN(test_softmax_crossentropy);
	RUN(test_optimizers);
	RUN(test_errors_are_reported_not_fatal);
	if (ctx != NULL)
		P->ctx_close(ctx);
	return harness_finish();
}
