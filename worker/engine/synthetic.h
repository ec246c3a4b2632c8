/* synthetic.h: the synthetic model, for exchanging large weights without a
 * dataset: GPT-2-shaped tensors (Hugging Face GPT2Model state_dict names)
 * or the tensor list of a safetensors file, a deterministic initial fill,
 * and a closed-form "training" step whose FedAvg result tests can check
 * exactly. */
#ifndef COHORT_SYNTHETIC_H
#define COHORT_SYNTHETIC_H

#include <stdint.h>

#include "error.h"
#include "synthshape.h"
#include "tensor.h"

/* Element k (counted over the whole model in manifest order) of the
 * initial model: ((k * 2654435761) mod 257 - 128) * 2^-9, exact in F32. */
void synthetic_fill(const struct tensor_manifest *m, void *region);
/* The local update: region (holding the global model) += epochs *
 * delta(client, round, k), delta = (client + 1) * (1 + (k + round) mod 4)
 * * 2^-12. Returns the result's num_examples, client + 1. */
uint64_t synthetic_fit(const struct tensor_manifest *m, void *region,
                       int64_t client, uint32_t round, uint32_t epochs);
/* Write the initial model of preset/file to path (safetensors). */
int synthetic_write_initial(const char *preset, const char *file,
                            const char *path, struct ipc_error *err);

#endif
