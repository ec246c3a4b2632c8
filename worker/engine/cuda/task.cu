// task.cu: one task on the GPU: the client's samples, parameters and
// optimiser state on the device, and the mlp / cnn step of
// worker/engine/model.c composed from the layers of layers.cu over one
// device workspace.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.cuh"

struct cuda_task {
	struct cuda_ctx *c;
	struct cuda_model_desc m;
	uint32_t max_batch;
	size_t n;
	float dropout;
	/* layer sizes, read back from the manifest's tensor lengths */
	int in, hidden, V;
	int K, C1, C2, F1, F2, h1, w1, h2, w2, flat;
	/* device: samples, order, parameters */
	uint8_t *pixels;
	int32_t *labels;
	float *norm;
	uint32_t *order;
	float *params, *grads, *global;
	struct cuda_optim *opt;
	/* device: the workspace slab and its slices (as model.c's) */
	float *slab;
	float *x;
	int32_t *y;
	float *h1a, *a1, *d1, *g_d1, *g_a1, *g_h1;
	float *col1, *c1, *r1, *p1, *col2, *c2, *r2, *p2, *f1, *r3, *f2, *r4;
	float *g_p2, *g_r2, *g_c2, *g_p1, *g_r1, *g_c1, *g_r3, *g_f1, *g_r4,
	    *g_f2, *dcol2, *dwb;
	int32_t *arg1, *arg2;
	float *logits, *g_logits;
	double *row_loss;
	int32_t *row_correct;
	/* host copies of the per-row results */
	double *host_loss;
	int32_t *host_correct;
};

// Carve count 4-byte elements (rounded up to 64 bytes) from the cursor.
static float *
carve(float **cursor, size_t count)
{
	float *p = *cursor;
	*cursor += (count + 15) & ~(size_t)15;
	return p;
}

// Lay the workspace out from base (a NULL base counts its size in floats).
static size_t
workspace_layout(struct cuda_task *t, float *base)
{
	size_t B = t->max_batch, V = (size_t)t->V;
	float *cur = base;
	t->x = carve(&cur, B * t->in);
	t->y = (int32_t *)carve(&cur, B);
	if (t->m.kind == CUDA_MODEL_MLP) {
		size_t nh = B * t->hidden;
		t->h1a = carve(&cur, nh);
		t->a1 = carve(&cur, nh);
		t->d1 = carve(&cur, nh);
		t->g_d1 = carve(&cur, nh);
		t->g_a1 = carve(&cur, nh);
		t->g_h1 = carve(&cur, nh);
	} else {
		size_t C = (size_t)t->m.channels, kk = (size_t)t->K * t->K;
		size_t n1 = (size_t)t->C1 * t->h1 * t->w1;
		size_t q1 = (size_t)t->C1 * (t->h1 / 2) * (t->w1 / 2);
		size_t n2 = (size_t)t->C2 * t->h2 * t->w2;
		size_t cw1 = (size_t)t->C1 * C * kk,
		       cw2 = (size_t)t->C2 * t->C1 * kk;
		t->col1 = carve(&cur, B * C * kk * t->h1 * t->w1);
		t->c1 = carve(&cur, B * n1);
		t->r1 = carve(&cur, B * n1);
		t->p1 = carve(&cur, B * q1);
		t->col2 = carve(&cur, B * t->C1 * kk * t->h2 * t->w2);
		t->c2 = carve(&cur, B * n2);
		t->r2 = carve(&cur, B * n2);
		t->p2 = carve(&cur, B * t->flat);
		t->f1 = carve(&cur, B * t->F1);
		t->r3 = carve(&cur, B * t->F1);
		t->f2 = carve(&cur, B * t->F2);
		t->r4 = carve(&cur, B * t->F2);
		t->g_p2 = carve(&cur, B * t->flat);
		t->g_r2 = carve(&cur, B * n2);
		t->g_c2 = carve(&cur, B * n2);
		t->g_p1 = carve(&cur, B * q1);
		t->g_r1 = carve(&cur, B * n1);
		t->g_c1 = carve(&cur, B * n1);
		t->g_r3 = carve(&cur, B * t->F1);
		t->g_f1 = carve(&cur, B * t->F1);
		t->g_r4 = carve(&cur, B * t->F2);
		t->g_f2 = carve(&cur, B * t->F2);
		t->dcol2 = carve(&cur, B * t->C1 * kk * t->h2 * t->w2);
		t->dwb = carve(&cur, B * (cw1 > cw2 ? cw1 : cw2));
		t->arg1 = (int32_t *)carve(&cur, B * q1);
		t->arg2 = (int32_t *)carve(&cur, B * t->flat);
	}
	t->logits = carve(&cur, B * V);
	t->g_logits = carve(&cur, B * V);
	t->row_correct = (int32_t *)carve(&cur, B);
	/* doubles: two floats each, 64-byte aligned by carve */
	t->row_loss = (double *)carve(&cur, 2 * B);
	return (size_t)(cur - base);
}

// Take the layer sizes of the mlp or cnn from the engine's description
// and check every tensor length against them (the manifest order of
// model.c): an mlp is fc1.{weight,bias}, fc2.{...}; a cnn conv1, conv2,
// fc1, fc2, fc3. Returns -1 on a table of another shape.
static int
derive_sizes(struct cuda_task *t, struct ipc_error *err)
{
	const struct cuda_model_desc *m = &t->m;
	t->in = m->channels * m->height * m->width;
	t->V = m->classes;
	if (m->kind == CUDA_MODEL_MLP && m->tensors == 4) {
		t->hidden = m->hidden;
		t->dropout = m->dropout;
		size_t H = (size_t)t->hidden, V = (size_t)t->V;
		if (H > 0 && m->count[0] == H * (size_t)t->in &&
		    m->count[1] == H && m->count[2] == V * H &&
		    m->count[3] == V)
			return 0;
	}
	if (m->kind == CUDA_MODEL_CNN && m->tensors == 10) {
		t->C1 = m->c1;
		t->C2 = m->c2;
		t->F1 = m->f1;
		t->F2 = m->f2;
		t->K = m->k;
		t->h1 = m->height - t->K + 1;
		t->w1 = m->width - t->K + 1;
		t->h2 = t->h1 / 2 - t->K + 1;
		t->w2 = t->w1 / 2 - t->K + 1;
		t->flat = t->C2 * (t->h2 / 2) * (t->w2 / 2);
		size_t kk = (size_t)t->K * t->K, C = (size_t)m->channels;
		size_t c1 = (size_t)t->C1, c2 = (size_t)t->C2;
		size_t f1 = (size_t)t->F1, f2 = (size_t)t->F2;
		size_t V = (size_t)t->V, flat = (size_t)t->flat;
		size_t want[10] = {c1 * C * kk, c1, c2 * c1 * kk, c2,
		                   f1 * flat,   f1, f2 * f1,      f2,
		                   V * f2,      V};
		int ok = t->K > 0 && t->h2 >= 2 && t->w2 >= 2;
		for (int i = 0; i < 10; i++)
			ok &= m->count[i] == want[i];
		if (ok)
			return 0;
	}
	err->code = IPC_E_MISMATCH;
	snprintf(err->message, sizeof err->message,
	         "cuda: model description (kind %d, %d tensors) is not a "
	         "built-in mlp or cnn",
	         (int)m->kind, m->tensors);
	return -1;
}

// Upload n bytes to a fresh device buffer (NULL with a sticky error).
static void *
upload_new(struct cuda_ctx *c, const void *src, size_t bytes)
{
	void *p = cuda_alloc(c, bytes);
	if (p != NULL)
		cuda_upload(c, p, src, bytes);
	return p;
}

// Copy the task to the device and allocate everything a step needs.
struct cuda_task *
cuda_task_begin(struct cuda_ctx *c, const struct cuda_model_desc *m,
                const struct cuda_data_desc *d, uint32_t max_batch,
                const float *params, const float *global,
                const struct cuda_optim_desc *o, struct ipc_error *err)
{
	struct cuda_task *t = (struct cuda_task *)calloc(1, sizeof *t);
	if (t == NULL) {
		err->code = IPC_E_IO;
		snprintf(err->message, sizeof err->message,
		         "cuda: out of host memory for a task");
		return NULL;
	}
	t->c = c;
	t->m = *m;
	t->max_batch = max_batch;
	t->n = d->n;
	if (derive_sizes(t, err) != 0) {
		free(t);
		return NULL;
	}
	size_t sample = (size_t)d->channels * d->plane;
	size_t region = m->region_floats * sizeof(float);
	t->pixels = (uint8_t *)upload_new(c, d->pixels, d->n * sample);
	t->labels = (int32_t *)upload_new(c, d->labels, d->n * sizeof(int32_t));
	t->norm = (float *)upload_new(
	    c, d->norm, (size_t)d->channels * 256 * sizeof(float));
	t->order = (uint32_t *)cuda_alloc(c, d->n * sizeof(uint32_t));
	t->params = (float *)upload_new(c, params, region);
	size_t floats = workspace_layout(t, NULL);
	t->slab = (float *)cuda_alloc(c, floats * sizeof(float));
	if (t->slab != NULL)
		workspace_layout(t, t->slab);
	if (o != NULL) {
		struct cuda_region r;
		memset(&r, 0, sizeof r);
		r.count = m->tensors;
		for (int i = 0; i < m->tensors; i++) {
			r.offset[i] = (uint32_t)m->offset[i];
			r.length[i] = (uint32_t)m->count[i];
		}
		t->grads = (float *)cuda_alloc(c, region);
		if (global != NULL && o->prox_mu != 0.0f)
			t->global = (float *)upload_new(c, global, region);
		if (!c->failed)
			t->opt = cuda_optim_create(c, o, &r, m->region_floats);
	}
	t->host_loss = (double *)calloc(max_batch, sizeof(double));
	t->host_correct = (int32_t *)calloc(max_batch, sizeof(int32_t));
	if (cuda_ctx_check(c, err) != 0) {
		cuda_task_end(t);
		return NULL;
	}
	if (t->host_loss == NULL || t->host_correct == NULL) {
		err->code = IPC_E_IO;
		snprintf(err->message, sizeof err->message,
		         "cuda: out of host memory for a task");
		cuda_task_end(t);
		return NULL;
	}
	return t;
}

// Upload the order the next steps read the samples in.
int
cuda_task_order(struct cuda_task *t, const uint32_t *order,
                struct ipc_error *err)
{
	cuda_upload(t->c, t->order, order, t->n * sizeof(uint32_t));
	return cuda_ctx_check(t->c, err);
}

// fc1 -> relu -> dropout (training) -> fc2 -> softmax-CE, and back.
static void
mlp_step(struct cuda_task *t, int B, int train, uint64_t key)
{
	struct cuda_ctx *c = t->c;
	const size_t *o = t->m.offset;
	const float *p = t->params;
	float *g = t->grads;
	int H = t->hidden, V = t->V;
	size_t nh = (size_t)B * H;
	cuda_linear_forward(c, t->h1a, t->x, p + o[0], p + o[1], B, t->in, H);
	cuda_relu_forward(c, t->a1, t->h1a, nh);
	const float *h = t->a1;
	if (train) {
		cuda_dropout_forward(c, t->d1, t->a1, nh, t->dropout, key);
		h = t->d1;
	}
	cuda_linear_forward(c, t->logits, h, p + o[2], p + o[3], B, H, V);
	cuda_softmax_crossentropy(c, train ? t->g_logits : NULL, t->row_loss,
	                          t->row_correct, t->logits, t->y, B, V);
	if (!train)
		return;
	cuda_linear_backward(c, t->g_d1, g + o[2], g + o[3], t->g_logits, h,
	                     p + o[2], B, H, V);
	cuda_dropout_backward(c, t->g_a1, t->g_d1, nh, t->dropout, key);
	cuda_relu_backward(c, t->g_h1, t->g_a1, t->a1, nh);
	cuda_linear_backward(c, NULL, g + o[0], g + o[1], t->g_h1, t->x,
	                     p + o[0], B, t->in, H);
}

// conv1-relu-pool-conv2-relu-pool-flatten-fc1-relu-fc2-relu-fc3, and back.
static void
cnn_step(struct cuda_task *t, int B, int train)
{
	struct cuda_ctx *c = t->c;
	const size_t *o = t->m.offset;
	const float *p = t->params;
	float *g = t->grads;
	int C = t->m.channels, V = t->V, K = t->K;
	int q1h = t->h1 / 2, q1w = t->w1 / 2;
	size_t n1 = (size_t)B * t->C1 * t->h1 * t->w1;
	size_t n2 = (size_t)B * t->C2 * t->h2 * t->w2;
	cuda_conv2d_forward(c, t->c1, t->col1, t->x, p + o[0], p + o[1], B, C,
	                    t->m.height, t->m.width, t->C1, K);
	cuda_relu_forward(c, t->r1, t->c1, n1);
	cuda_maxpool_forward(c, t->p1, t->arg1, t->r1, B * t->C1, t->h1, t->w1);
	cuda_conv2d_forward(c, t->c2, t->col2, t->p1, p + o[2], p + o[3], B,
	                    t->C1, q1h, q1w, t->C2, K);
	cuda_relu_forward(c, t->r2, t->c2, n2);
	cuda_maxpool_forward(c, t->p2, t->arg2, t->r2, B * t->C2, t->h2, t->w2);
	cuda_linear_forward(c, t->f1, t->p2, p + o[4], p + o[5], B, t->flat,
	                    t->F1);
	cuda_relu_forward(c, t->r3, t->f1, (size_t)B * t->F1);
	cuda_linear_forward(c, t->f2, t->r3, p + o[6], p + o[7], B, t->F1,
	                    t->F2);
	cuda_relu_forward(c, t->r4, t->f2, (size_t)B * t->F2);
	cuda_linear_forward(c, t->logits, t->r4, p + o[8], p + o[9], B, t->F2,
	                    V);
	cuda_softmax_crossentropy(c, train ? t->g_logits : NULL, t->row_loss,
	                          t->row_correct, t->logits, t->y, B, V);
	if (!train)
		return;
	cuda_linear_backward(c, t->g_r4, g + o[8], g + o[9], t->g_logits, t->r4,
	                     p + o[8], B, t->F2, V);
	cuda_relu_backward(c, t->g_f2, t->g_r4, t->r4, (size_t)B * t->F2);
	cuda_linear_backward(c, t->g_r3, g + o[6], g + o[7], t->g_f2, t->r3,
	                     p + o[6], B, t->F1, t->F2);
	cuda_relu_backward(c, t->g_f1, t->g_r3, t->r3, (size_t)B * t->F1);
	cuda_linear_backward(c, t->g_p2, g + o[4], g + o[5], t->g_f1, t->p2,
	                     p + o[4], B, t->flat, t->F1);
	cuda_maxpool_backward(c, t->g_r2, t->g_p2, t->arg2, B * t->C2, t->h2,
	                      t->w2);
	cuda_relu_backward(c, t->g_c2, t->g_r2, t->r2, n2);
	cuda_conv2d_backward(c, t->g_p1, t->dcol2, t->dwb, g + o[2], g + o[3],
	                     t->g_c2, t->col2, p + o[2], B, t->C1, q1h, q1w,
	                     t->C2, K);
	cuda_maxpool_backward(c, t->g_r1, t->g_p1, t->arg1, B * t->C1, t->h1,
	                      t->w1);
	cuda_relu_backward(c, t->g_c1, t->g_r1, t->r1, n1);
	cuda_conv2d_backward(c, NULL, NULL, t->dwb, g + o[0], g + o[1], t->g_c1,
	                     t->col1, p + o[0], B, C, t->m.height, t->m.width,
	                     t->C1, K);
}

// Gather the batch, run the model, fetch the per-row losses (the one sync of
// a step) and, when training and the loss is finite, take the optimiser step.
int
cuda_task_step(struct cuda_task *t, size_t start, uint32_t n, int train,
               uint64_t key, double *loss, uint32_t *correct,
               struct ipc_error *err)
{
	struct cuda_ctx *c = t->c;
	if (n == 0 || n > t->max_batch || start + n > t->n ||
	    (train && t->opt == NULL)) {
		err->code = IPC_E_BAD_VALUE;
		snprintf(err->message, sizeof err->message,
		         "cuda: step of %u samples from %zu for a task of %zu "
		         "samples in batches of %u%s",
		         n, start, t->n, t->max_batch,
		         train && t->opt == NULL ? " without an optimiser"
		                                 : "");
		return -1;
	}
	int B = (int)n;
	cuda_gather_batch(c, t->x, t->y, t->pixels, t->labels, t->norm,
	                  t->order + start, B, t->m.channels,
	                  t->m.height * t->m.width);
	if (train)
		CUDA_CHECK(c,
		           cudaMemsetAsync(t->grads, 0,
		                           t->m.region_floats * sizeof(float),
		                           c->stream));
	if (t->m.kind == CUDA_MODEL_MLP)
		mlp_step(t, B, train, key);
	else
		cnn_step(t, B, train);
	if (!c->failed)
		CUDA_CHECK(c, cudaMemcpyAsync(
		                  t->host_loss, t->row_loss, n * sizeof(double),
		                  cudaMemcpyDeviceToHost, c->stream));
	if (!c->failed)
		CUDA_CHECK(c,
		           cudaMemcpyAsync(t->host_correct, t->row_correct,
		                           n * sizeof(int32_t),
		                           cudaMemcpyDeviceToHost, c->stream));
	if (cuda_ctx_check(c, err) != 0)
		return -1;
	double total = 0.0;
	for (uint32_t i = 0; i < n; i++) {
		total += t->host_loss[i];
		*correct += (uint32_t)t->host_correct[i];
	}
	*loss = total / B;
	if (train && isfinite(*loss))
		cuda_optim_step(c, t->opt, t->params, t->grads, t->global);
	return 0;
}

// Download the parameters into the caller's region.
int
cuda_task_params(struct cuda_task *t, float *params, struct ipc_error *err)
{
	cuda_download(t->c, params, t->params,
	              t->m.region_floats * sizeof(float));
	return cuda_ctx_check(t->c, err);
}

// Free every device buffer of the task; the context stays for the next.
void
cuda_task_end(struct cuda_task *t)
{
	if (t == NULL)
		return;
	struct cuda_ctx *c = t->c;
	cuda_optim_free(c, t->opt);
	cuda_free(c, t->slab);
	cuda_free(c, t->global);
	cuda_free(c, t->grads);
	cuda_free(c, t->params);
	cuda_free(c, t->order);
	cuda_free(c, t->norm);
	cuda_free(c, t->labels);
	cuda_free(c, t->pixels);
	/* a failed free has nothing left to fail: the task is over */
	cuda_ctx_check(c, NULL);
	free(t->host_loss);
	free(t->host_correct);
	free(t);
}
