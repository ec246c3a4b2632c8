/* gpt2.h: GPT-2's forward and backward pass on the CPU, chaining the layers
 * of gpt2-layers.h exactly as Hugging Face's GPT2LMHeadModel does:
 *
 *   x = wte[tokens] + wpe[positions]
 *   per block: x = x + c_proj(attention(c_attn(ln_1(x))))
 *              x = x + mlp.c_proj(gelu(mlp.c_fc(ln_2(x))))
 *   logits = ln_f(x) wte^T (the head is tied to wte); loss = cross-entropy
 *
 * Parameters are one flat region laid out by gpt2_manifest()
 * (ipc/gpt2shape.h, with struct gpt2_config): Hugging
 * Face's names and Conv1D layouts (wte.weight [V, C], wpe.weight
 * [maxT, C], h.N.attn.c_attn.weight [C, 3C], ..., ln_f.bias [C]), so a
 * real checkpoint loads by name. The model never owns that region; it owns
 * the activations of one batch shape. No dropout (GPT-2's is 0.1 in
 * training; this pass is the deterministic one a reference can match). */
#ifndef COHORT_GPT2_H
#define COHORT_GPT2_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "gpt2shape.h"
#include "tensor.h"

struct gpt2;

/* A model of config c with activations for batches of B sequences of T
 * tokens (T <= max_seq_len); NULL and err set for an invalid shape. */
struct gpt2 *gpt2_create(const struct gpt2_config *c, int B, int T,
                         struct ipc_error *err);
void gpt2_free(struct gpt2 *g);
/* The layout of its parameter region (and of a gradient region). */
const struct tensor_manifest *gpt2_tensors(const struct gpt2 *g);
/* Bytes of activations and activation gradients it holds. */
size_t gpt2_activation_bytes(const struct gpt2 *g);
/* Forward + backward FLOPs (2 per multiply-add) of one batch. */
double gpt2_flops_per_batch(const struct gpt2 *g);

/* Forward of tokens [B, T] (each in [0, V)) with params laid out by
 * gpt2_tensors; returns the mean cross-entropy against targets [B, T]
 * (-1 ignored), or 0 when targets is NULL (logits only). tokens and
 * targets are copied. */
double gpt2_forward(struct gpt2 *g, const float *params, const int32_t *tokens,
                    const int32_t *targets);
/* Logits [B, T, V] of the last forward (until the next backward, which
 * turns them into their gradient in place). */
const float *gpt2_logits(const struct gpt2 *g);
/* Backward of the last forward (which had targets): parameter gradients,
 * laid out like params, are accumulated (+=) into grads. */
void gpt2_backward(struct gpt2 *g, const float *params, float *grads);
/* gpt2_backward of weight * the mean loss (gradient accumulation weighs
 * each micro-batch by its share of the step's counted tokens). */
void gpt2_backward_weighted(struct gpt2 *g, const float *params, float *grads,
                            double weight);

/* Seeded initial parameters of config c, laid out by gpt2_manifest, as
 * Hugging Face initialises a new GPT2LMHeadModel (padding zeroed). */
void gpt2_init(const struct gpt2_config *c, float *params, uint64_t seed);

#endif
