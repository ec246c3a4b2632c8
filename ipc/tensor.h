/* tensor.h: named tensor sets. A manifest lists each tensor's name, dtype,
 * shape and byte range inside one flat region (a shm segment, a file body or
 * a model's parameter buffer). Offsets are 64-byte aligned so any tensor can
 * be used in place by SIMD code and by cudaMemcpy without re-packing. */
#ifndef COHORT_TENSOR_H
#define COHORT_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define TENSOR_ALIGN 64
#define TENSOR_MAX_NAME 128 /* bytes including the terminating NUL */
#define TENSOR_MAX_RANK 8
#define TENSOR_MAX_COUNT 65536

enum tensor_dtype {
	DTYPE_F32 = 0,
	DTYPE_F16,
	DTYPE_BF16,
	DTYPE_F64,
	DTYPE_I64,
	DTYPE_I32,
	DTYPE_U8,
	DTYPE_COUNT
};

struct tensor_desc {
	char name[TENSOR_MAX_NAME];
	enum tensor_dtype dtype;
	int rank;
	uint64_t shape[TENSOR_MAX_RANK];
	uint64_t offset; /* from the start of the region */
	uint64_t nbytes; /* product(shape) * dtype size */
};

struct tensor_manifest {
	size_t count;
	struct tensor_desc *tensors; /* owned; count entries */
	uint64_t total_size; /* bytes of the region: end of the last tensor,
	                        rounded up to TENSOR_ALIGN */
};

/* Size in bytes of one element (0 for an invalid dtype). */
size_t tensor_dtype_size(enum tensor_dtype dtype);
/* Safetensors-style names: "F32", "F16", "BF16", "F64", "I64", "I32", "U8". */
const char *tensor_dtype_name(enum tensor_dtype dtype);
/* Parse a dtype name; -1 and IPC_E_DTYPE when unknown. */
int tensor_dtype_parse(const char *name, enum tensor_dtype *out,
                       struct ipc_error *err);

/* Format a shape as "[2, 3]" into buf (truncated to len); returns buf. */
const char *tensor_shape_text(char *buf, size_t len, const uint64_t *shape,
                              int rank);
/* Element count of a shape, overflow-checked (IPC_E_OVERFLOW). */
int tensor_numel(const uint64_t *shape, int rank, uint64_t *out,
                 struct ipc_error *err);

void tensor_manifest_init(struct tensor_manifest *m);
void tensor_manifest_free(struct tensor_manifest *m);
/* Deep copy. */
void tensor_manifest_copy(struct tensor_manifest *dst,
                          const struct tensor_manifest *src);
/* Append a tensor; computes nbytes and places it at the next 64-byte-aligned
 * offset, updating total_size. Errors: name too long/empty, duplicate name,
 * bad dtype or rank, zero dims, overflow. */
int tensor_manifest_add(struct tensor_manifest *m, const char *name,
                        enum tensor_dtype dtype, int rank,
                        const uint64_t *shape, struct ipc_error *err);
/* Find a tensor by name (NULL if absent). */
const struct tensor_desc *tensor_manifest_find(const struct tensor_manifest *m,
                                               const char *name);
/* Check a manifest received from a peer against a region of region_size
 * bytes: names non-empty, NUL-terminated and unique, dtypes known, ranks in
 * range, nbytes == numel * dtype size (overflow-safe), offsets 64-aligned,
 * every tensor inside the region, no two tensors overlapping. */
int tensor_manifest_validate(const struct tensor_manifest *m,
                             uint64_t region_size, struct ipc_error *err);
/* Same names, dtypes, shapes and offsets in the same order (IPC_E_MISMATCH
 * naming the first difference). */
int tensor_manifest_equal(const struct tensor_manifest *a,
                          const struct tensor_manifest *b,
                          struct ipc_error *err);
/* Total number of elements over all tensors. */
uint64_t tensor_manifest_numel(const struct tensor_manifest *m);
/* Check one F32/F64 tensor whose values start at data is finite
 * (IPC_E_NONFINITE naming the tensor and element index); other dtypes pass. */
int tensor_check_finite(const struct tensor_desc *d, const void *data,
                        struct ipc_error *err);
/* Check every F32/F64 tensor in region is finite (IPC_E_NONFINITE naming
 * the tensor and element index). */
int tensor_region_check_finite(const struct tensor_manifest *m,
                               const void *region, struct ipc_error *err);
/* In one pass: every F32/F64 value finite (IPC_E_NONFINITE) and no larger
 * than bound in magnitude (IPC_E_BAD_VALUE naming the tensor, element and
 * value). */
int tensor_region_check_bounded(const struct tensor_manifest *m,
                                const void *region, double bound,
                                struct ipc_error *err);

#endif
