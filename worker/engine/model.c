/* model.c: the engine's models: the table of each layered model's own
 * file (model-NAME.c), building one (tensor tables matching PyTorch
 * state_dicts), default init, FLOP counts, workspaces and the step, which
 * each model's file composes from layers.c. */
#include "model-impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "rng.h"

/* The layered models by id (ipc/models.h); NULL: not built here. */
static const struct model_ops *const engine_models[MODEL_COUNT] = {
    [MODEL_MLP] = &model_mlp,
    [MODEL_CNN] = &model_cnn,
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

void
model_add_linear(struct model *m, const char *prefix, int in, int out)
{
	char name[64];
	uint64_t ws[2] = {(uint64_t)out, (uint64_t)in}, bs[1] = {(uint64_t)out};
	snprintf(name, sizeof name, "%s.weight", prefix);
	add_tensor(m, name, 2, ws, (size_t)in);
	snprintf(name, sizeof name, "%s.bias", prefix);
	add_tensor(m, name, 1, bs, (size_t)in);
}

void
model_add_conv(struct model *m, const char *prefix, int in_c, int out_c, int k)
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

uint64_t
model_linear_flops(uint64_t in, uint64_t out, int first)
{
	return 2 * in * out * (first ? 2 : 3);
}

uint64_t
model_conv_flops(uint64_t in_c, uint64_t out_c, uint64_t k, uint64_t oh,
                 uint64_t ow, int first)
{
	return 2 * out_c * in_c * k * k * oh * ow * (first ? 2 : 3);
}

float *
model_carve(float **cursor, size_t count)
{
	float *p = *cursor;
	*cursor += (count + 15) & ~(size_t)15;
	return p;
}

/* Build a layered model for a validated shape. */
struct model *
model_create(const char *name, const struct model_shape *shape,
             struct ipc_error *err)
{
	const struct model_info *mi = models_find(name);
	if (mi == NULL || engine_models[mi->id] == NULL) {
		ipc_error_set(err, IPC_E_BAD_VALUE,
		              "model: %s model \"%s\" (the engine builds mlp "
		              "or cnn)",
		              mi == NULL ? "unknown" : "no layers to build for",
		              name != NULL ? name : "(null)");
		return NULL;
	}
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
	m->kind = mi->id;
	m->ops = engine_models[mi->id];
	m->shape = *shape;
	m->L.in = shape->channels * shape->height * shape->width;
	tensor_manifest_init(&m->manifest);
	if (m->ops->build(m, err) != 0) {
		model_free(m);
		return NULL;
	}
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

/* Lay the workspace out over mem (or just count its size when mem is
 * NULL). */
static size_t
workspace_layout(const struct model *m, struct model_workspace *ws, float *mem)
{
	size_t B = ws->max_batch, V = (size_t)m->shape.classes;
	float *cur = mem;
	ws->x = model_carve(&cur, B * m->L.in);
	m->ops->layout(m, ws, &cur);
	ws->logits = model_carve(&cur, B * V);
	ws->g_logits = model_carve(&cur, B * V);
	return (size_t)(cur - mem);
}

/* One allocation holding every activation and gradient of a batch. */
struct model_workspace *
model_workspace_create(const struct model *m, uint32_t max_batch)
{
	struct model_workspace *ws = xcalloc(1, sizeof *ws);
	ws->max_batch = max_batch;
	ws->own = xcalloc(1, m->ops->own_size);
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
	free(ws->own);
	free(ws);
}

/* The input slab of the workspace. */
float *
model_workspace_input(struct model_workspace *ws)
{
	return ws->x;
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
	return m->ops->step(m, ws, params, grads, y, (int)n, mask_key, correct);
}
