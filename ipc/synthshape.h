/* synthshape.h: the tensor list of the synthetic model, known from its
 * config alone (model.preset or model.file). */
#ifndef COHORT_SYNTHSHAPE_H
#define COHORT_SYNTHSHAPE_H

#include "error.h"
#include "tensor.h"

/* Presets: ipc/gpt2shape.h's (tiny for CI, gpt2-small 124M, ...); a
 * non-empty file takes that safetensors file's F32 tensor list instead. */
int synthetic_manifest(const char *preset, const char *file,
                       struct tensor_manifest *m, struct ipc_error *err);

#endif
