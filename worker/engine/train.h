/* train.h: local training and evaluation of a model on (a slice of) a
 * dataset, on the CPU. */
#ifndef COHORT_TRAIN_H
#define COHORT_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "error.h"
#include "model.h"
#include "optim.h"

struct train_config {
	uint32_t epochs;
	uint32_t batch_size;
	float lr, momentum, weight_decay;
	enum optimizer_kind optimizer;
	float beta1, beta2, eps;
	float prox_mu;
	uint64_t seed;
	uint64_t max_steps; /* 0 = no limit */
};

/* epochs 1, batch 32, lr 0.01, momentum 0.9, no weight decay, SGD, Adam
 * betas 0.9/0.999 and eps 1e-8, no proximal term, seed 1, no step limit. */
void train_config_defaults(struct train_config *c);

struct train_stats {
	uint64_t num_examples, steps;
	double loss;     /* mean over the last epoch */
	double accuracy; /* train accuracy over the last epoch */
	double seconds;
	double gflops; /* achieved */
};

/* Called after every optimiser step with that batch's mean loss; callers
 * that report over a socket throttle it themselves. */
typedef void (*train_progress_fn)(void *ctx, uint32_t epoch, uint64_t step,
                                  double loss);

/* Train params (laid out by model_manifest(m), updated in place) on samples
 * idx[0..n) of ds (idx NULL: all n = ds->count samples), reshuffled every
 * epoch from cfg->seed; the last partial batch is used. global is the round's
 * global model for FedProx (may be NULL). Errors: no samples or bad config
 * (IPC_E_BAD_VALUE), dataset shape not the model's (IPC_E_MISMATCH), index
 * out of range (IPC_E_BOUNDS), non-finite loss (IPC_E_NONFINITE naming the
 * step and epoch). Threads: COHORT_THREADS OpenBLAS threads (default 1). */
int train_local(struct model *m, float *params, const float *global,
                const struct dataset *ds, const uint32_t *idx, size_t n,
                const struct train_config *cfg, struct train_stats *stats,
                train_progress_fn progress, void *ctx, struct ipc_error *err);

/* Epoch-by-epoch training, for callers that act between epochs (standalone
 * mode evaluates the test set): train_begin checks everything train_local
 * checks and allocates the buffers and optimiser state once; each
 * train_epoch runs one epoch (the optimiser state carries over), filling
 * stats for that epoch (steps: total so far); train_end frees. A session
 * with cfg->epochs == 0 is refused: use train_local. */
struct train_session;
struct train_session *train_begin(struct model *m, float *params,
                                  const float *global, const struct dataset *ds,
                                  const uint32_t *idx, size_t n,
                                  const struct train_config *cfg,
                                  struct ipc_error *err);
int train_epoch(struct train_session *s, struct train_stats *stats,
                train_progress_fn progress, void *ctx, struct ipc_error *err);
void train_end(struct train_session *s);

/* OpenBLAS threads: 1 unless COHORT_THREADS says otherwise (workers get
 * their parallelism from running as several processes); IPC_E_BAD_VALUE
 * for a value that is not a count. */
int train_set_threads(struct ipc_error *err);

/* Mean loss and accuracy of params over samples idx[0..n) of ds (idx NULL:
 * all samples), in batches of batch_size, dropout off. */
int model_evaluate(struct model *m, const float *params,
                   const struct dataset *ds, const uint32_t *idx, size_t n,
                   uint32_t batch_size, double *loss, double *accuracy,
                   struct ipc_error *err);

#endif
