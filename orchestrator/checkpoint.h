/* checkpoint.h: what survives the orchestrator being killed: after every
 * round the global model (checkpoints/round-NNNN.safetensors, the last two
 * kept) and checkpoints/state.json (round, failure counters, strategy state,
 * per-round metrics), each written atomically. */
#ifndef COHORT_CHECKPOINT_H
#define COHORT_CHECKPOINT_H

#include <jansson.h>

#include "error.h"
#include "tensor.h"

/* Save the model after round (its bytes read from fd, laid out as m, e.g.
 * the global model's segment) and the state object (its "round" and
 * "model" keys are set here), then drop the checkpoint two rounds back. */
int checkpoint_save(const char *dir, unsigned round,
                    const struct tensor_manifest *m, int fd, json_t *state,
                    struct ipc_error *err);
/* Load state.json and the model it names. *state is NULL (and nothing is
 * loaded) when the job has no completed round yet. */
int checkpoint_load(const char *dir, json_t **state, struct tensor_manifest *m,
                    void **region, struct ipc_error *err);

#endif
