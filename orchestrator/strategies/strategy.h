/* strategy.h: how a round's client updates become the next global model.
 * Every strategy goes through the same steps: configure the round (which
 * clients train, in which order), fold each result as it arrives, finish the
 * round into the new global model, and save/load its own state with the
 * round checkpoint. strategy.c maps and validates updates and picks the
 * strategy by name; each strategy-NAME.c holds one algorithm. */
#ifndef COHORT_STRATEGY_H
#define COHORT_STRATEGY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config.h"
#include "error.h"
#include "fedavg.h"
#include "message.h"
#include "shm.h"
#include "tensor.h"

/* How a strategy consumes the updates of a round. */
enum strategy_kind {
	STRATEGY_STREAM, /* folds each update as it arrives, then drops it */
	STRATEGY_ALL,    /* keeps every update mapped until the round ends */
	STRATEGY_RELAY,  /* trains clients one at a time, each from the last */
};

/* What the round engine does after a relay hop failed. */
enum strategy_hop {
	STRATEGY_HOP_NEXT,  /* go on with the next client */
	STRATEGY_HOP_RETRY, /* run the same client again */
	STRATEGY_HOP_ABORT, /* fail the job */
};

/* A tensor's elements as floats of the model region: the flat model is
 * the concatenation of the spans (the region pads tensors to 64 bytes). */
struct strategy_span {
	size_t at; /* float index into the region */
	size_t n;
};

struct strategy;

struct strategy_ops {
	const char *name;
	enum strategy_kind kind;
	/* Allocate the strategy's state (s->priv). */
	int (*init)(struct strategy *s, struct ipc_error *err);
	/* Order the round's clients (NULL: the sampled clients, ascending);
	 * returns how many were written to order. */
	unsigned (*configure)(struct strategy *s, unsigned round,
	                      unsigned attempt, const uint32_t *sampled,
	                      unsigned nsampled, const uint32_t *available,
	                      unsigned navailable, const void *global,
	                      uint32_t *order);
	/* The old global model is read by finish, so it must outlive the
	 * writing of the new one (FedAvgM, FedOpt). */
	int reads_global;
	/* Take one validated update (a region laid out as the model). */
	int (*fold)(struct strategy *s, const void *update, double weight,
	            struct ipc_error *err);
	/* Write the new global model from the old one and the round's
	 * updates (out and global are regions laid out as the model). */
	int (*finish)(struct strategy *s, const void *global, void *out,
	              struct ipc_error *err);
	/* Add the state to checkpoint after round to obj (NULL: stateless). */
	int (*save)(struct strategy *s, unsigned round, json_t *obj,
	            struct ipc_error *err);
	/* Restore what save wrote (obj NULL: nothing saved yet). */
	int (*load)(struct strategy *s, const json_t *obj,
	            struct ipc_error *err);
	void (*free)(struct strategy *s);
};

/* Where a strategy lives: set by the caller before strategy_init. */
struct strategy_env {
	const struct config *cfg;
	const struct tensor_manifest *model;
	const char *jobkey;   /* labels the relay segment cohort.<key>.relay */
	const char *ckpt_dir; /* NULL: no checkpoints (unit tests) */
};

struct dp;

struct strategy {
	const struct strategy_ops *ops;
	const struct config *cfg;
	const struct tensor_manifest *model;
	char *jobkey;
	char *ckpt_dir;
	struct strategy_span *spans;
	size_t nspans;
	size_t numel;             /* elements of the flat model */
	struct fedavg acc;        /* the weighted sum of STREAM strategies */
	struct shm_segment *kept; /* ALL: the round's update mappings */
	double *kept_weight;
	unsigned nkept, capkept;
	struct dp *dp; /* privacy.dp central: clipping, noise, accountant */
	void *priv;
};

/* The fold of STRATEGY_ALL strategies: nothing to add up, strategy_fold
 * keeps the update mapped until the round ends. */
/* A fold for strategies that only need the round's weighted sum: add the
 * update to s->acc (FedAvg, FedProx, FedAvgM, FedOpt). */
int strategy_fold_mean(struct strategy *s, const void *update, double weight,
                       struct ipc_error *err);
/* True for strategies whose aggregate is the round's weighted sum, which
 * may come as partial sums (FedAvg, FedProx, FedAvgM, FedOpt). */
int strategy_folds_sums(const struct strategy *s);
/* Fold a partial sum of count updates (laid out as s->acc, wsum.h) whose
 * weights add up to weight; -1 when a value is not finite or the
 * strategy needs every update. */
int strategy_fold_sum(struct strategy *s, const double *sum, double weight,
                      unsigned count, struct ipc_error *err);
/* The finish of a plain mean (FedAvg, FedProx): the accumulator's weighted
 * mean rounded to float32; the old model is not read. */
int strategy_finish_mean(struct strategy *s, const void *global, void *out,
                         struct ipc_error *err);
/* The check of an aggregate whose largest magnitude is peak (INFINITY:
 * not finite) against strategy.max_weight: 0, or -1 and err saying the
 * round's aggregate is refused. */
int strategy_check_peak(const struct strategy *s, double peak,
                        struct ipc_error *err);
/* Before a mean's finish (either transport's): with privacy.dp central,
 * the noise and the fixed denominator (dp.h); else nothing. */
int strategy_release_mean(struct strategy *s, struct ipc_error *err);
/* The new global model was published: the accountant counts the round. */
void strategy_released(struct strategy *s);
/* privacy.dp central: what the last released round spent and clipped
 * (dp.h); 0 when DP is off. */
struct dp_round_info;
int strategy_dp_info(const struct strategy *s, struct dp_round_info *info);
int strategy_keep_update(struct strategy *s, const void *update, double weight,
                         struct ipc_error *err);
/* For every coordinate of the model, hand the kept updates' values, sorted
 * ascending, to reduce and write its result to out (laid out as the model).
 */
void strategy_reduce_sorted(struct strategy *s, void *out,
                            float (*reduce)(const float *sorted, unsigned n,
                                            const void *ctx),
                            const void *ctx);

/* Check the strategy.* keys against the rest of the config;
 * the message names the key and the fix. */
int strategy_check_config(const struct config *c, struct ipc_error *err);
/* Set up the strategy c->strategy.name for models laid out as m (F32
 * tensors); STRATEGY_ALL ones check that /dev/shm can hold a round. */
int strategy_init(struct strategy *s, const struct strategy_env *env,
                  struct ipc_error *err);
void strategy_free(struct strategy *s);
/* Start a round attempt from the global model: drop what the last attempt
 * folded and write the clients to train into order (room for every
 * available client); returns their number. */
unsigned strategy_configure(struct strategy *s, unsigned round,
                            unsigned attempt, const uint32_t *sampled,
                            unsigned nsampled, const uint32_t *available,
                            unsigned navailable, const void *global,
                            uint32_t *order);
/* The weight of a result: strategy.weighting examples, uniform or steps
 * (the result's "steps" metric); -1 with err when it has none. */
double strategy_weight(const struct strategy *s, const struct msg_result *r,
                       struct ipc_error *err);
/* Check the layout of the update p describes (mapped in seg, sealed) equals
 * the model's and its values are finite, and fold it. Strategies that keep
 * updates take seg (it is left closed); the caller closes it otherwise. */
int strategy_fold(struct strategy *s, const struct params_ref *p,
                  struct shm_segment *seg, double weight,
                  struct ipc_error *err);
/* Write the round's new global model into out and release the round's
 * updates. */
int strategy_finish(struct strategy *s, const void *global, void *out,
                    struct ipc_error *err);
/* True for strategies that train the round's clients one at a time. */
int strategy_is_relay(const struct strategy *s);
/* Relay: the descriptor of the segment the next fit task trains from. */
int strategy_relay_fd(const struct strategy *s);
/* Relay: where the round continues (0, or the hop after the last one
 * checkpointed before a restart) with the counts so far: hops ok and
 * failed (a hop and its retries are one), and failed tries retried. */
unsigned strategy_relay_position(struct strategy *s, unsigned *ok,
                                 unsigned *failed, unsigned *retried);
/* Relay: a hop's task ended (ok or failed); checkpoints the cycle position
 * and says what comes next. */
enum strategy_hop strategy_relay_hop(struct strategy *s, int64_t client,
                                     int ok);
/* The strategy's checkpoint state ({"name": ..., ...}); NULL on error. */
json_t *strategy_save(struct strategy *s, unsigned round,
                      struct ipc_error *err);
/* Restore a checkpoint's strategy object (NULL: no round completed yet,
 * or a state.json without one); a relay strategy also picks up a cycle
 * checkpointed inside the next round. */
int strategy_load(struct strategy *s, const json_t *obj, struct ipc_error *err);

/* Helpers for strategy-*.c */
/* Write a flat float64 vector into a region laid out as the model. */
void strategy_store(const struct strategy *s, const double *flat, void *out);
/* Read a region laid out as the model into a flat float64 vector. */
void strategy_load_flat(const struct strategy *s, const void *region,
                        double *flat);
/* Save named flat float64 vectors as checkpoints/strategy-NNNN.safetensors
 * and name the file in obj's "file". */
int strategy_save_vectors(struct strategy *s, unsigned round, json_t *obj,
                          const char *const *names, double *const *vecs,
                          size_t count, struct ipc_error *err);
/* Read back what strategy_save_vectors wrote (each numel doubles); obj
 * NULL leaves the vectors as they are. */
int strategy_load_vectors(struct strategy *s, const json_t *obj,
                          const char *const *names, double *const *vecs,
                          size_t count, struct ipc_error *err);

/* The strategies (a new one: its strategy-NAME.c, a name here and in
 * STRATEGY_CHOICES, a line in strategy.c's registry; test_strategy checks
 * the choices and the registry agree). */
extern const struct strategy_ops strategy_fedavg, strategy_fedprox,
    strategy_fedavgm, strategy_fedadam, strategy_fedyogi, strategy_fedadagrad,
    strategy_median, strategy_trimmed, strategy_krum, strategy_cyclic;
/* strategy.name's choices for the configuration schema: the registry's
 * names in order, joined by '|'. */
#define STRATEGY_CHOICES                                                       \
	"fedavg|fedprox|fedavgm|fedadam|fedyogi|fedadagrad|median|trimmed|"    \
	"krum|cyclic"
/* The name of registry entry i, NULL past the last. */
const char *strategy_registry_name(size_t i);

#endif
