/* backend.h: where a worker trains: the CPU engine of train.h, or the GPU
 * through the CUDA plugin libcohort-cuda.so, chosen at runtime from a device
 * string. Parameters and samples stay in host (shared) memory; a GPU backend
 * copies a task's samples and parameters in, trains, and writes the
 * parameters back into the caller's buffer. One backend serves any number
 * of tasks (pool mode keeps the CUDA context and cuBLAS handle between
 * them); close releases everything. */
#ifndef COHORT_BACKEND_H
#define COHORT_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "error.h"
#include "model.h"
#include "train.h"

struct cuda_plugin;

struct backend {
	const char *name; /* "cpu" | "cuda:N" */
	/* train_local's contract (train.h), on this device. */
	int (*train)(struct backend *b, struct model *m, float *params,
	             const float *global, const struct dataset *ds,
	             const uint32_t *idx, size_t n,
	             const struct train_config *cfg, struct train_stats *stats,
	             train_progress_fn progress, void *ctx,
	             struct ipc_error *err);
	/* model_evaluate's contract (train.h), on this device. */
	int (*evaluate)(struct backend *b, struct model *m, const float *params,
	                const struct dataset *ds, const uint32_t *idx, size_t n,
	                uint32_t batch_size, double *loss, double *accuracy,
	                struct ipc_error *err);
	void (*close)(struct backend *b);
	void *impl;
};

/* Open the backend a device string names:
 * - "cpu": the CPU engine;
 * - "cuda" (device 0) or "cuda:N": that GPU, or an error naming why not
 *   (no CUDA in this build, plugin missing, no device, driver error);
 * - "auto": the GPU when the plugin loads and device 0 is usable, else the
 *   CPU, with one log line saying why.
 * The plugin is $COHORT_CUDA_PLUGIN when set, else libcohort-cuda.so next
 * to the executable, else found by the dynamic loader's search path. */
int backend_open(const char *device, struct backend **out,
                 struct ipc_error *err);
/* b->close(b), NULL being fine. */
void backend_close(struct backend *b);
/* 1 when this build produced the CUDA plugin, 0 for a COHORT_CUDA=OFF or
 * toolkit-less build. */
int backend_cuda_built(void);
/* The plugin's entry table, loaded on first use (tests and tools reach the
 * GPU layers through it); NULL with the reason. */
const struct cuda_plugin *backend_cuda_plugin(struct ipc_error *err);

#endif
