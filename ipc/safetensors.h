/* safetensors.h: reading and writing Hugging Face safetensors files, the
 * checkpoint format a PyTorch user loads with safetensors.torch.load_file.
 * Layout: 8-byte little-endian header length N, N bytes of JSON
 * ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
 * "__metadata__": {string: string}}), then the tensors' bytes packed
 * back to back. */
#ifndef COHORT_SAFETENSORS_H
#define COHORT_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "tensor.h"

/* Largest JSON header accepted (the reference implementation's limit). */
#define SAFETENSORS_MAX_HEADER (100u * 1000 * 1000)

/* The file's "__metadata__": string keys and values, in insertion order.
 * A zeroed struct is an empty set. */
struct st_metadata {
	size_t count;
	char **keys;
	char **values;
};

/* Set key to value (copies both), replacing an existing value. */
void st_metadata_set(struct st_metadata *meta, const char *key,
                     const char *value);
/* Value of key, or NULL. */
const char *st_metadata_get(const struct st_metadata *meta, const char *key);
/* Free every entry and reset to empty. */
void st_metadata_free(struct st_metadata *meta);

/* Write the tensors of m (bytes taken from region at m's offsets) to path,
 * packed in manifest order. Atomic: written to "path.tmp.<pid>", fsynced and
 * renamed over path; on error an existing path is left untouched. meta may
 * be NULL. */
int safetensors_write(const char *path, const struct tensor_manifest *m,
                      const void *region, const struct st_metadata *meta,
                      struct ipc_error *err);
/* safetensors_write with the tensor bytes taken from file src_fd at m's
 * offsets, copied inside the kernel: a large model held in a shm segment is
 * checkpointed without its pages entering the writer's resident set. */
int safetensors_write_fd(const char *path, const struct tensor_manifest *m,
                         int src_fd, const struct st_metadata *meta,
                         struct ipc_error *err);
/* Read a whole file: *m lists the tensors in file order at 64-byte aligned
 * offsets of *region (posix_memalign'd, free() it; padding is zero). F16 and
 * BF16 tensors keep their dtype. meta may be NULL. On error *m is empty and
 * *region NULL. */
int safetensors_read(const char *path, struct tensor_manifest *m, void **region,
                     struct st_metadata *meta, struct ipc_error *err);
/* Load a file into an existing layout (e.g. a shm segment of
 * expect->total_size bytes): the file must hold exactly the tensors of
 * expect, matched by name, with the same dtypes and shapes (IPC_E_MISMATCH
 * naming the first difference). meta may be NULL. */
int safetensors_read_into(const char *path,
                          const struct tensor_manifest *expect, void *region,
                          struct st_metadata *meta, struct ipc_error *err);
/* The tensors of a file (names, dtypes, shapes; offsets relative to its
 * data), its header alone read and checked against its size. */
int safetensors_list(const char *path, struct tensor_manifest *m,
                     struct ipc_error *err);
/* The name a file's tensor takes in the expected layout: written to out
 * (cap bytes) and 1, 0 to leave the tensor out (e.g. a buffer), -1 with err
 * set to refuse the file. */
typedef int (*st_rename_fn)(const char *name, char *out, size_t cap, void *ctx,
                            struct ipc_error *err);
/* safetensors_read_into with the file's names passed through rename first
 * and F16/BF16 tensors widened to F32 where expect has F32: for checkpoints
 * saved under another library's names (orchestrator/hub.c). */
int safetensors_read_renamed(const char *path,
                             const struct tensor_manifest *expect, void *region,
                             st_rename_fn rename, void *ctx,
                             struct ipc_error *err);
/* Parse and validate a header's JSON against a byte buffer of buffer_size
 * bytes. m_out lists the tensors sorted by data offset, with offsets
 * relative to the buffer (packed, not 64-aligned) and total_size =
 * buffer_size. meta may be NULL. */
int safetensors_parse_header(const uint8_t *json, size_t len,
                             uint64_t buffer_size,
                             struct tensor_manifest *m_out,
                             struct st_metadata *meta, struct ipc_error *err);

/* Widen n IEEE half-precision values to float (exact). */
void safetensors_f16_to_f32(const uint16_t *in, float *out, size_t n);
/* Widen n bfloat16 values to float (exact). */
void safetensors_bf16_to_f32(const uint16_t *in, float *out, size_t n);

#endif
