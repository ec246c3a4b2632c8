/* model.c: the built-in mlp and cnn: tensor tables matching their PyTorch
 * state_dicts, default init, FLOP counts, and the forward/backward pass
 * composed from layers.c over one flat workspace. */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "rng.h"

#define MLP_HIDDEN 128
#define CNN_K 5
#define CNN_C1 6
#define CNN_C2 16
#define CNN_F1 120
#define CNN_F2 84
#define MODEL_MAX_TENSORS 10

struct model {
	enum model_id kind;
	struct model_shape shape;
	struct tensor_manifest manifest;
	size_t off[MODEL_MAX_TENSORS]; /* float offset of each tensor */
	size_t fan_in[MODEL_MAX_TENSORS];
	struct model_layers L;
	uint64_t flops;
};

/* Buffers of one batch; every pointer is a slice of mem. */
struct model_workspace {
	uint32_t max_batch;
	float *mem;
	float *x;
	/* mlp */
	float *h1, *a1, *d1, *g_d1, *g_a1, *g_h1;
	/* cnn */
	float *col1, *c1, *r1, *p1, *col2, *c2, *r2, *p2, *f1, *r3, *f2, *r4;
	float *g_p2, *g_r2, *g_c2, *g_p1, *g_r1, *g_c1, *g_r3, *g_f1, *g_r4,
	    *g_f2, *dcol2;
	int32_t *arg1, *arg2;
	/* both */
	float *logits, *g_logits;
};

/* Append one F32 tensor to the manifest and remember its fan-in. */
static void
add_tensor(struct model *m, const char *name, int rank, const uint64_t *shape,
           size_t fan_in)
{
	struct ipc_error err;
	size_t i = m->manifest.count;
	if (i >= MODEL_MAX_TENSORS ||
	    tensor_manifest_add(&m->manifest, name, DTYPE_F32, rank, shape,
	                        &err) != 0)
		fatal("model: cannot add tensor %s: %s", name, err.message);
	m->off[i] = m->manifest.tensors[i].offset / sizeof(float);
	m->fan_in[i] = fan_in;
}

/* Weight and bias of nn.Linear(in, out) named prefix.weight / prefix.bias. */
static void
add_linear(struct model *m, const char *prefix, int in, int out)
{
	char name[64];
	uint64_t ws[2] = {(uint64_t)out, (uint64_t)in}, bs[1] = {(uint64_t)out};
	snprintf(name, sizeof name, "%s.weight", prefix);
	add_tensor(m, name, 2, ws, (size_t)in);
	snprintf(name, sizeof name, "%s.bias", prefix);
	add_tensor(m, name, 1, bs, (size_t)in);
}

/* Weight and bias of nn.Conv2d(in_c, out_c, k). */
static void
add_conv(struct model *m, const char *prefix, int in_c, int out_c, int k)
{
	char name[64];
	uint64_t ws[4] = {(uint64_t)out_c, (uint64_t)in_c, (uint64_t)k,
	                  (uint64_t)k};
	uint64_t bs[1] = {(uint64_t)out_c};
	size_t fan_in = (size_t)in_c * k * k;
	snprintf(name, sizeof name, "%s.weight", prefix);
	add_tensor(m, name, 4, ws, fan_in);
	snprintf(name, sizeof name, "%s.bias", prefix);
	add_tensor(m, name, 1, bs, fan_in);
}

/* FLOPs of a linear layer per sample: forward, dW, and dx unless first. */
static uint64_t
linear_flops(uint64_t in, uint64_t out, int first)
{
	return 2 * in * out * (first ? 2 : 3);
}

/* FLOPs of a conv layer per sample, counted the same way. */
static uint64_t
conv_flops(uint64_t in_c, uint64_t out_c, uint64_t k, uint64_t oh, uint64_t ow,
           int first)
{
	return 2 * out_c * in_c * k * k * oh * ow * (first ? 2 : 3);
}

/* Build the mlp or cnn for a validated shape. */
struct model *
model_create(const char *name, const struct model_shape *shape,
             struct ipc_error *err)
{
	const struct model_info *mi = models_find(name);
	if (mi == NULL || mi->closed_form) {
		ipc_error_set(err, IPC_E_BAD_VALUE,
		              "model: %s model \"%s\" (the engine builds mlp "
		              "or cnn)",
		              mi == NULL ? "unknown" : "no layers to build for",
		              name != NULL ? name : "(null)");
		return NULL;
	}
	enum model_id kind = mi->id;
	const int limit = 4096;
	if (shape->channels < 1 || shape->channels > 3 || shape->height < 1 ||
	    shape->height > limit || shape->width < 1 || shape->width > limit ||
	    shape->classes < 1 || shape->classes > 65536) {
		ipc_error_set(err, IPC_E_SHAPE,
		              "model %s: input shape %dx%dx%d with %d classes "
		              "is out of range (channels 1-3, height/width "
		              "1-%d, classes 1-65536)",
		              name, shape->channels, shape->height,
		              shape->width, shape->classes, limit);
		return NULL;
	}
	struct model *m = xcalloc(1, sizeof *m);
	m->kind = kind;
	m->shape = *shape;
	m->L.in = shape->channels * shape->height * shape->width;
	if (kind == MODEL_MLP) {
		m->L.hidden = MLP_HIDDEN;
	} else {
		m->L.k = CNN_K;
		m->L.c1 = CNN_C1;
		m->L.c2 = CNN_C2;
		m->L.f1 = CNN_F1;
		m->L.f2 = CNN_F2;
	}
	tensor_manifest_init(&m->manifest);
	uint64_t k = shape->classes;
	if (kind == MODEL_MLP) {
		add_linear(m, "fc1", m->L.in, m->L.hidden);
		add_linear(m, "fc2", m->L.hidden, shape->classes);
		m->flops = linear_flops((uint64_t)m->L.in, m->L.hidden, 1) +
		           linear_flops(m->L.hidden, k, 0);
		return m;
	}
	m->L.h1 = shape->height - m->L.k + 1;
	m->L.w1 = shape->width - m->L.k + 1;
	m->L.h2 = m->L.h1 / 2 - m->L.k + 1;
	m->L.w2 = m->L.w1 / 2 - m->L.k + 1;
	if (m->L.h2 < 2 || m->L.w2 < 2) {
		ipc_error_set(err, IPC_E_SHAPE,
		              "model cnn: input %dx%d is too small (two 5x5 "
		              "convolutions and 2x2 pools need at least 16x16)",
		              shape->height, shape->width);
		model_free(m);
		return NULL;
	}
	m->L.flat = m->L.c2 * (m->L.h2 / 2) * (m->L.w2 / 2);
	add_conv(m, "conv1", shape->channels, m->L.c1, m->L.k);
	add_conv(m, "conv2", m->L.c1, m->L.c2, m->L.k);
	add_linear(m, "fc1", m->L.flat, m->L.f1);
	add_linear(m, "fc2", m->L.f1, m->L.f2);
	add_linear(m, "fc3", m->L.f2, shape->classes);
	m->flops =
	    conv_flops(shape->channels, m->L.c1, m->L.k, m->L.h1, m->L.w1, 1) +
	    conv_flops(m->L.c1, m->L.c2, m->L.k, m->L.h2, m->L.w2, 0) +
	    linear_flops(m->L.flat, m->L.f1, 0) +
	    linear_flops(m->L.f1, m->L.f2, 0) + linear_flops(m->L.f2, k, 0);
	return m;
}

/* Release a model (NULL is fine). */
void
model_free(struct model *m)
{
	if (m == NULL)
		return;
	tensor_manifest_free(&m->manifest);
	free(m);
}

const char *
model_name(const struct model *m)
{
	return models[m->kind].name;
}

enum model_id
model_id(const struct model *m)
{
	return m->kind;
}

const struct model_layers *
model_layers(const struct model *m)
{
	return &m->L;
}

/* The shape given to model_create. */
const struct model_shape *
model_input_shape(const struct model *m)
{
	return &m->shape;
}

/* The parameter region's tensor table. */
const struct tensor_manifest *
model_manifest(const struct model *m)
{
	return &m->manifest;
}

/* U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for every tensor, one stream each. */
void
model_init(const struct model *m, float *params, uint64_t seed)
{
	memset(params, 0, m->manifest.total_size);
	for (size_t i = 0; i < m->manifest.count; i++) {
		const struct tensor_desc *t = &m->manifest.tensors[i];
		struct rng r;
		rng_seed(&r, rng_derive(seed, "init", i), 0);
		double bound = 1.0 / sqrt((double)m->fan_in[i]);
		float *p = params + m->off[i];
		size_t n = t->nbytes / sizeof(float);
		for (size_t j = 0; j < n; j++)
			p[j] = (float)((2.0 * rng_uniform(&r) - 1.0) * bound);
	}
}

/* Forward + backward FLOPs per training sample. */
uint64_t
model_flops_per_sample(const struct model *m)
{
	return m->flops;
}

/* Carve count floats (rounded up to 64 bytes) from the cursor. */
static float *
carve(float **cursor, size_t count)
{
	float *p = *cursor;
	*cursor += (count + 15) & ~(size_t)15;
	return p;
}

/* Lay the workspace out over mem (or just count its size when mem is NULL). */
static size_t
workspace_layout(const struct model *m, struct model_workspace *ws, float *mem)
{
	size_t B = ws->max_batch, V = (size_t)m->shape.classes;
	float *cur = mem;
	ws->x = carve(&cur, B * m->L.in);
	if (m->kind == MODEL_MLP) {
		ws->h1 = carve(&cur, B * m->L.hidden);
		ws->a1 = carve(&cur, B * m->L.hidden);
		ws->d1 = carve(&cur, B * m->L.hidden);
		ws->g_d1 = carve(&cur, B * m->L.hidden);
		ws->g_a1 = carve(&cur, B * m->L.hidden);
		ws->g_h1 = carve(&cur, B * m->L.hidden);
	} else {
		size_t C = (size_t)m->shape.channels;
		size_t n1 = (size_t)m->L.c1 * m->L.h1 * m->L.w1;
		size_t q1 = (size_t)m->L.c1 * (m->L.h1 / 2) * (m->L.w1 / 2);
		size_t n2 = (size_t)m->L.c2 * m->L.h2 * m->L.w2;
		size_t kk = (size_t)m->L.k * m->L.k;
		ws->col1 = carve(&cur, B * C * kk * m->L.h1 * m->L.w1);
		ws->c1 = carve(&cur, B * n1);
		ws->r1 = carve(&cur, B * n1);
		ws->p1 = carve(&cur, B * q1);
		ws->col2 = carve(&cur, B * m->L.c1 * kk * m->L.h2 * m->L.w2);
		ws->c2 = carve(&cur, B * n2);
		ws->r2 = carve(&cur, B * n2);
		ws->p2 = carve(&cur, B * m->L.flat);
		ws->f1 = carve(&cur, B * m->L.f1);
		ws->r3 = carve(&cur, B * m->L.f1);
		ws->f2 = carve(&cur, B * m->L.f2);
		ws->r4 = carve(&cur, B * m->L.f2);
		ws->g_p2 = carve(&cur, B * m->L.flat);
		ws->g_r2 = carve(&cur, B * n2);
		ws->g_c2 = carve(&cur, B * n2);
		ws->g_p1 = carve(&cur, B * q1);
		ws->g_r1 = carve(&cur, B * n1);
		ws->g_c1 = carve(&cur, B * n1);
		ws->g_r3 = carve(&cur, B * m->L.f1);
		ws->g_f1 = carve(&cur, B * m->L.f1);
		ws->g_r4 = carve(&cur, B * m->L.f2);
		ws->g_f2 = carve(&cur, B * m->L.f2);
		ws->dcol2 = carve(&cur, m->L.c1 * kk * m->L.h2 * m->L.w2);
		/* int32 and float are both 4 bytes: argmax lives in the slab.
		 */
		ws->arg1 = (int32_t *)carve(&cur, B * q1);
		ws->arg2 = (int32_t *)carve(&cur, B * m->L.flat);
	}
	ws->logits = carve(&cur, B * V);
	ws->g_logits = carve(&cur, B * V);
	return (size_t)(cur - mem);
}

/* One allocation holding every activation and gradient of a batch. */
struct model_workspace *
model_workspace_create(const struct model *m, uint32_t max_batch)
{
	struct model_workspace *ws = xcalloc(1, sizeof *ws);
	ws->max_batch = max_batch;
	size_t floats = workspace_layout(m, ws, NULL);
	ws->mem = aligned_alloc(64, floats * sizeof(float));
	if (ws->mem == NULL)
		fatal("model: out of memory for a %zu-byte workspace",
		      floats * sizeof(float));
	workspace_layout(m, ws, ws->mem);
	return ws;
}

/* Release a workspace (NULL is fine). */
void
model_workspace_free(struct model_workspace *ws)
{
	if (ws == NULL)
		return;
	free(ws->mem);
	free(ws);
}

/* The input slab of the workspace. */
float *
model_workspace_input(struct model_workspace *ws)
{
	return ws->x;
}

/* fc1 -> relu -> dropout (training only) -> fc2 -> softmax-CE, and back. */
static double
mlp_step(const struct model *m, struct model_workspace *ws, const float *p,
         float *g, const int32_t *y, int B, uint64_t key, uint32_t *correct)
{
	int H = m->L.hidden, V = m->shape.classes;
	size_t nh = (size_t)B * H;
	const size_t *o = m->off;
	linear_forward(ws->h1, ws->x, p + o[0], p + o[1], B, m->L.in, H);
	relu_forward(ws->a1, ws->h1, nh);
	const float *h = ws->a1;
	if (g != NULL) {
		dropout_forward(ws->d1, ws->a1, nh, MLP_DROPOUT, key);
		h = ws->d1;
	}
	linear_forward(ws->logits, h, p + o[2], p + o[3], B, H, V);
	double loss = softmax_crossentropy(g != NULL ? ws->g_logits : NULL,
	                                   correct, ws->logits, y, B, V);
	if (g == NULL)
		return loss;
	linear_backward(ws->g_d1, g + o[2], g + o[3], ws->g_logits, h, p + o[2],
	                B, H, V);
	dropout_backward(ws->g_a1, ws->g_d1, nh, MLP_DROPOUT, key);
	relu_backward(ws->g_h1, ws->g_a1, ws->a1, nh);
	linear_backward(NULL, g + o[0], g + o[1], ws->g_h1, ws->x, p + o[0], B,
	                m->L.in, H);
	return loss;
}

/* conv1-relu-pool-conv2-relu-pool-flatten-fc1-relu-fc2-relu-fc3, and back. */
static double
cnn_step(const struct model *m, struct model_workspace *ws, const float *p,
         float *g, const int32_t *y, int B, uint32_t *correct)
{
	int C = m->shape.channels, V = m->shape.classes;
	int q1h = m->L.h1 / 2, q1w = m->L.w1 / 2;
	size_t n1 = (size_t)B * m->L.c1 * m->L.h1 * m->L.w1;
	size_t n2 = (size_t)B * m->L.c2 * m->L.h2 * m->L.w2;
	const size_t *o = m->off;
	conv2d_forward(ws->c1, ws->col1, ws->x, p + o[0], p + o[1], B, C,
	               m->shape.height, m->shape.width, m->L.c1, m->L.k);
	relu_forward(ws->r1, ws->c1, n1);
	maxpool_forward(ws->p1, ws->arg1, ws->r1, B * m->L.c1, m->L.h1,
	                m->L.w1);
	conv2d_forward(ws->c2, ws->col2, ws->p1, p + o[2], p + o[3], B, m->L.c1,
	               q1h, q1w, m->L.c2, m->L.k);
	relu_forward(ws->r2, ws->c2, n2);
	maxpool_forward(ws->p2, ws->arg2, ws->r2, B * m->L.c2, m->L.h2,
	                m->L.w2);
	linear_forward(ws->f1, ws->p2, p + o[4], p + o[5], B, m->L.flat,
	               m->L.f1);
	relu_forward(ws->r3, ws->f1, (size_t)B * m->L.f1);
	linear_forward(ws->f2, ws->r3, p + o[6], p + o[7], B, m->L.f1, m->L.f2);
	relu_forward(ws->r4, ws->f2, (size_t)B * m->L.f2);
	linear_forward(ws->logits, ws->r4, p + o[8], p + o[9], B, m->L.f2, V);
	double loss = softmax_crossentropy(g != NULL ? ws->g_logits : NULL,
	                                   correct, ws->logits, y, B, V);
	if (g == NULL)
		return loss;
	linear_backward(ws->g_r4, g + o[8], g + o[9], ws->g_logits, ws->r4,
	                p + o[8], B, m->L.f2, V);
	relu_backward(ws->g_f2, ws->g_r4, ws->r4, (size_t)B * m->L.f2);
	linear_backward(ws->g_r3, g + o[6], g + o[7], ws->g_f2, ws->r3,
	                p + o[6], B, m->L.f1, m->L.f2);
	relu_backward(ws->g_f1, ws->g_r3, ws->r3, (size_t)B * m->L.f1);
	linear_backward(ws->g_p2, g + o[4], g + o[5], ws->g_f1, ws->p2,
	                p + o[4], B, m->L.flat, m->L.f1);
	maxpool_backward(ws->g_r2, ws->g_p2, ws->arg2, B * m->L.c2, m->L.h2,
	                 m->L.w2);
	relu_backward(ws->g_c2, ws->g_r2, ws->r2, n2);
	conv2d_backward(ws->g_p1, ws->dcol2, g + o[2], g + o[3], ws->g_c2,
	                ws->col2, p + o[2], B, m->L.c1, q1h, q1w, m->L.c2,
	                m->L.k);
	maxpool_backward(ws->g_r1, ws->g_p1, ws->arg1, B * m->L.c1, m->L.h1,
	                 m->L.w1);
	relu_backward(ws->g_c1, ws->g_r1, ws->r1, n1);
	conv2d_backward(NULL, NULL, g + o[0], g + o[1], ws->g_c1, ws->col1,
	                p + o[0], B, C, m->shape.height, m->shape.width,
	                m->L.c1, m->L.k);
	return loss;
}

/* Forward (and backward when grads != NULL) of n <= max_batch samples. */
double
model_step(const struct model *m, struct model_workspace *ws,
           const float *params, float *grads, const int32_t *y, uint32_t n,
           uint64_t mask_key, uint32_t *correct)
{
	if (n == 0 || n > ws->max_batch)
		fatal("model_step: batch of %u samples for a workspace of %u",
		      n, ws->max_batch);
	if (m->kind == MODEL_MLP)
		return mlp_step(m, ws, params, grads, y, (int)n, mask_key,
		                correct);
	return cnn_step(m, ws, params, grads, y, (int)n, correct);
}
