/* model.h: the engine's layered models ("mlp", "cnn") as a table of named
 * tensors over one flat parameter region, plus their forward/backward pass.
 * Each model is a file of its own (model-mlp.c, model-cnn.c, behind
 * model-impl.h's struct model_ops); model.c holds what they share.
 *
 * The region is laid out by the model's manifest (PyTorch state_dict names,
 * F32, 64-byte-aligned offsets). The engine never owns it: in a federated run
 * it is the worker's shared-memory update segment, trained in place. */
#ifndef COHORT_MODEL_H
#define COHORT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "models.h"
#include "tensor.h"

/* The drop probability of the mlp's dropout layer (the CPU engine and its
 * GPU twin mask the same elements with it). */
#define MLP_DROPOUT 0.2f

struct model_shape {
	int channels, height, width, classes;
};

/* The layer sizes of a built model, as llm.c's GPT2Config: what model.c
 * builds and steps, what the CUDA plugin runs (worker/engine/backend.c
 * hands them over instead of the plugin guessing them from tensor sizes),
 * and what the manifest's shapes come from. */
struct model_layers {
	int in;                /* C*H*W */
	int hidden;            /* mlp: fc1's width */
	int k, c1, c2, f1, f2; /* cnn: kernel, conv channels, linear widths */
	int h1, w1;            /* cnn: conv1's output */
	int h2, w2;            /* cnn: conv2's output */
	int flat;              /* cnn: c2 * pooled h2 * pooled w2 */
};

struct model;

/* Build model "mlp" or "cnn" for inputs of the given shape; an unknown name
 * is IPC_E_BAD_VALUE listing the choices, a shape the model cannot take is
 * IPC_E_SHAPE saying which dimension and why. */
struct model *model_create(const char *name, const struct model_shape *shape,
                           struct ipc_error *err);
void model_free(struct model *m);
/* The model's name as given to model_create, and its entry (models.h). */
const char *model_name(const struct model *m);
enum model_id model_id(const struct model *m);
/* The input shape and class count the model was built for. */
const struct model_shape *model_input_shape(const struct model *m);
/* Its layer sizes. */
const struct model_layers *model_layers(const struct model *m);
/* Tensor names, shapes and offsets of the parameter region. */
const struct tensor_manifest *model_manifest(const struct model *m);
/* PyTorch default init (nn.Linear / nn.Conv2d): weight and bias uniform in
 * +-1/sqrt(fan_in), drawn deterministically from seed. Padding between
 * tensors is zeroed. */
void model_init(const struct model *m, float *params, uint64_t seed);
/* Forward + backward FLOPs (2 per multiply-add) per training sample. */
uint64_t model_flops_per_sample(const struct model *m);

/* Activation and gradient buffers for batches of up to max_batch samples:
 * one allocation, made once per training or evaluation call. */
struct model_workspace;
struct model_workspace *model_workspace_create(const struct model *m,
                                               uint32_t max_batch);
void model_workspace_free(struct model_workspace *ws);
/* Where the caller writes a batch's inputs: max_batch * C*H*W floats. */
float *model_workspace_input(struct model_workspace *ws);

/* Run n samples (inputs already in model_workspace_input, labels in y)
 * through the model and return the mean cross-entropy loss, adding the
 * number of correct predictions to *correct. With grads != NULL this is a
 * training step: dropout is on (masks keyed by mask_key, see dropout_key()) and
 * parameter gradients, laid out like params, are accumulated into grads. */
double model_step(const struct model *m, struct model_workspace *ws,
                  const float *params, float *grads, const int32_t *y,
                  uint32_t n, uint64_t mask_key, uint32_t *correct);

#endif
