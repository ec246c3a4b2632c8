/* gpuslots.h: the GPU slots of a job: which GPUs its workers may use, how
 * many workers each GPU holds at once, the CUDA_VISIBLE_DEVICES value that
 * shows a worker exactly one of them, and which free slot the next worker
 * takes. Pure computation over an NVML inventory (ipc/gpuinfo.h) and a
 * CUDA_VISIBLE_DEVICES-style list, so it is tested without a GPU. */
#ifndef COHORT_GPUSLOTS_H
#define COHORT_GPUSLOTS_H

#include <stdint.h>

#include "error.h"
#include "gpuinfo.h"

struct gpuslots_gpu {
	char *visible;    /* CUDA_VISIBLE_DEVICES of a worker on this GPU */
	int nvml_index;   /* its NVML device, -1 without an inventory */
	uint64_t free_mb; /* free memory at planning time (0 if unknown) */
	unsigned slots;   /* workers it holds at once */
};

struct gpuslots {
	struct gpuslots_gpu *gpu;
	unsigned ngpus;
	unsigned *slot_gpu; /* per slot: index into gpu, GPUs interleaved */
	unsigned nslots;
};

/* What to plan for. */
struct gpuslots_request {
	/* The visible GPUs as CUDA_VISIBLE_DEVICES writes them: NULL = every
	 * GPU of the inventory; "" = none; else comma-separated entries, each
	 * a device index or a GPU-/MIG- UUID (or a unique prefix of one); an
	 * entry "-1" ends the list, as it does for CUDA. */
	const char *visible;
	const char *visible_name; /* names the list in errors */
	int only;                 /* >= 0: keep only the visible GPU at this
	                             position (device cuda:N) */
	unsigned workers_per_gpu; /* 0 = floor(free / mem_per_worker_mb) */
	uint64_t mem_per_worker_mb;
};

/* Plan the slots. inv NULL means no inventory (NVML unavailable): the list
 * must then be given and workers_per_gpu set. A GPU with less free memory
 * than mem_per_worker_mb still gets one slot. ngpus 0 (no GPU visible) is
 * a valid plan. Errors (IPC_E_BAD_VALUE) name the list and the entry. */
int gpuslots_plan(const struct gpuinfo_device *inv, unsigned ninv,
                  const struct gpuslots_request *req, struct gpuslots *out,
                  struct ipc_error *err);
/* The free slot to give the next worker: on the GPU with the fewest busy
 * slots (ties to the earlier GPU); -1 when every slot is busy. */
int gpuslots_pick(const struct gpuslots *s, const unsigned char *busy);
/* CUDA_VISIBLE_DEVICES for a worker in slot i. */
const char *gpuslots_visible(const struct gpuslots *s, unsigned i);
/* A deep copy of src. */
void gpuslots_copy(struct gpuslots *dst, const struct gpuslots *src);
void gpuslots_free(struct gpuslots *s);
enum gpuslots_device { GPUSLOTS_AUTO, GPUSLOTS_CPU, GPUSLOTS_CUDA };

/* Read a device string: auto, cpu, cuda (any visible GPU) or cuda:N (the
 * visible GPU N); *index is N, else -1. */
int gpuslots_parse_device(const char *device, enum gpuslots_device *kind,
                          int *index, struct ipc_error *err);

#endif
