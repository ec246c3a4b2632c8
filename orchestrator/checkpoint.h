/* checkpoint.h: what survives the orchestrator being killed: after every
 * round the global model (checkpoints/round-NNNN.safetensors, the latest
 * output.keep_checkpoints kept) and checkpoints/state.json (round, failure
 * counters, strategy state, per-round metrics), each written atomically. */
#ifndef COHORT_CHECKPOINT_H
#define COHORT_CHECKPOINT_H

#include <jansson.h>

#include "error.h"
#include "tensor.h"

/* Save the model after round (its bytes read from fd, laid out as m, e.g.
 * the global model's segment) and the state object (its "round" and
 * "model" keys are set here), then drop the model keep rounds back (keep
 * 0: none). state.json names the new model only once it is on disk, and
 * the old one goes only after, so keep 1 is as safe as any. */
int checkpoint_save(const char *dir, unsigned round,
                    const struct tensor_manifest *m, int fd, json_t *state,
                    unsigned keep, struct ipc_error *err);
/* What a checkpoint must agree with: the job's configuration and the
 * layout of its initial model. */
struct checkpoint_expect {
	const struct tensor_manifest *model; /* the initial model's layout */
	int64_t clients;                     /* federation.clients */
	int64_t seed;                        /* job.seed */
};

/* Load state.json and, into region (laid out as want->model), the model it
 * names, trusting neither: the state's fields and ranges (round, model
 * file name, next_task, seed, consecutive_failures, history), the model's
 * own round, its tensors against the job's and every weight finite are
 * checked, and a mismatch is an error naming the file and field. *state
 * is NULL (and nothing is loaded) when the job has no completed round. */
int checkpoint_load(const char *dir, const struct checkpoint_expect *want,
                    json_t **state, void *region, struct ipc_error *err);

#endif
