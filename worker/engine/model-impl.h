/* model-impl.h: what model.c (the table of the engine's models, init,
 * workspaces, the step) and each model's own file (model-NAME.c: its
 * tensors, layer sizes, buffers and forward/backward pass) share; private
 * to worker/engine. A new layered model is a model-NAME.c defining a
 * struct model_ops and a line in model.c's table (plus its entry in
 * ipc/models.c). */
#ifndef COHORT_MODEL_IMPL_H
#define COHORT_MODEL_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

#define MODEL_MAX_TENSORS 16

struct model_ops;

struct model {
	enum model_id kind;
	const struct model_ops *ops;
	struct model_shape shape;
	struct tensor_manifest manifest;
	size_t off[MODEL_MAX_TENSORS]; /* float offset of each tensor */
	size_t fan_in[MODEL_MAX_TENSORS];
	struct model_layers L;
	uint64_t flops; /* forward + backward per sample */
};

/* Buffers of one batch; every pointer is a slice of mem. own points at
 * the model's own buffer table (its file's struct, own_size bytes). */
struct model_workspace {
	uint32_t max_batch;
	float *mem;
	float *x;
	float *logits, *g_logits;
	void *own;
};

struct model_ops {
	/* Add the tensors (PyTorch state_dict names and order) and set
	 * m->L and m->flops for m->shape; -1 (err set) when the shape does
	 * not suit the model. */
	int (*build)(struct model *m, struct ipc_error *err);
	/* Bytes of the model's buffer table (ws->own). */
	size_t own_size;
	/* Carve its buffers for ws->max_batch samples at *cursor (carve). */
	void (*layout)(const struct model *m, struct model_workspace *ws,
	               float **cursor);
	/* Forward of B samples (inputs in ws->x, labels y) and, when g is
	 * not NULL, backward into g; the mean loss, correct predictions
	 * added to *correct; key keys dropout masks. */
	double (*step)(const struct model *m, struct model_workspace *ws,
	               const float *p, float *g, const int32_t *y, int B,
	               uint64_t key, uint32_t *correct);
};

extern const struct model_ops model_mlp, model_cnn;

/* Weight and bias of nn.Linear(in, out) named prefix.weight/.bias. */
void model_add_linear(struct model *m, const char *prefix, int in, int out);
/* Weight and bias of nn.Conv2d(in_c, out_c, k). */
void model_add_conv(struct model *m, const char *prefix, int in_c, int out_c,
                    int k);
/* FLOPs per sample of a linear layer: forward, dW, and dx unless first. */
uint64_t model_linear_flops(uint64_t in, uint64_t out, int first);
/* FLOPs per sample of a conv layer, counted the same way. */
uint64_t model_conv_flops(uint64_t in_c, uint64_t out_c, uint64_t k,
                          uint64_t oh, uint64_t ow, int first);
/* count floats (rounded up to 64 bytes) from the cursor. */
float *model_carve(float **cursor, size_t count);

#endif
