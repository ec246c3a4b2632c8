/* gpt2-train.h: training and evaluating a GPT-2 (gpt2.h) on a stream of
 * token ids, on the CPU.
 *
 * The stream (a client's documents, each ending in <|endoftext|>) is cut
 * into windows of seq_len + 1 tokens that overlap by one: window w feeds
 * tokens [w T, w T + T) and predicts [w T + 1, w T + T + 1). The last window
 * may be short; its missing positions are padding whose targets are
 * ignored. A fit shuffles the windows every epoch (seeded) and takes
 * optimizer steps of grad_accum micro-batches of batch_size windows; the
 * step's loss is the mean over every counted token of its micro-batches
 * (each micro-batch's gradient weighed by its share of them). Before each
 * step the gradient's global norm is clipped, and the learning rate follows
 * a linear warmup then a constant or cosine schedule over the fit's steps. */
#ifndef COHORT_GPT2_TRAIN_H
#define COHORT_GPT2_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "gpt2shape.h"
#include "optim.h"
#include "train.h"

struct gpt2_train_config {
	uint32_t epochs;
	uint32_t batch_size; /* windows per micro-batch */
	uint32_t grad_accum; /* micro-batches per optimizer step */
	uint32_t seq_len;
	enum optimizer_kind optimizer;
	float lr, min_lr, momentum, weight_decay, beta1, beta2, eps;
	float max_grad_norm; /* 0: no clipping */
	float prox_mu;       /* FedProx (0: none) */
	uint64_t warmup_steps;
	int cosine; /* 0: constant after the warmup */
	uint64_t seed;
	uint64_t max_steps; /* 0 = no limit */
};

/* The learning rate of step s (0-based) of a fit of total steps:
 * lr (s + 1) / warmup during the warmup, then lr, or
 * min_lr + (lr - min_lr) (1 + cos(pi p)) / 2 with p the share of the steps
 * after the warmup already taken. */
double gpt2_train_lr(const struct gpt2_train_config *tc, uint64_t s,
                     uint64_t total);

/* Train params (laid out by gpt2_manifest(c)) in place on ntok tokens
 * (each < c->vocab_size); global is the round's model for FedProx (may be
 * NULL). stats: steps, loss (per token, over the last epoch), accuracy
 * (next-token, over the last epoch), seconds, gflops; num_examples is the
 * caller's. Errors: bad config or fewer than 2 tokens (IPC_E_BAD_VALUE), a
 * token outside the vocabulary (IPC_E_BOUNDS), a loss or weight that is
 * not finite (IPC_E_NONFINITE naming the step). */
int gpt2_train(const struct gpt2_config *c, float *params, const float *global,
               const uint32_t *tokens, size_t ntok,
               const struct gpt2_train_config *tc, struct train_stats *stats,
               train_progress_fn progress, void *ctx, struct ipc_error *err);

/* Mean next-token loss and accuracy of params over every window of tokens
 * (in order, batch_size windows at a time), and the tokens counted. */
int gpt2_evaluate(const struct gpt2_config *c, const float *params,
                  const uint32_t *tokens, size_t ntok, uint32_t seq_len,
                  uint32_t batch_size, double *loss, double *accuracy,
                  uint64_t *counted, struct ipc_error *err);

#endif
