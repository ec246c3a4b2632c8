/* gpuplan.h: a job's GPU slots, from worker.device and the gpu.* keys, the
 * GPUs NVML reports and the CUDA_VISIBLE_DEVICES the orchestrator
 * inherited; the orchestrator itself never creates a CUDA context. */
#ifndef COHORT_GPUPLAN_H
#define COHORT_GPUPLAN_H

#include "config.h"
#include "error.h"
#include "gpuslots.h"

/* Plan the slots (none for a CPU job, or for device auto where NVML is
 * unavailable or sees no GPU) and set *device to the COHORT_DEVICE workers
 * get. max_concurrent is the launcher's cap, for the log line. Errors name
 * the key or variable and the fix. */
int gpuplan_make(const struct config *c, unsigned max_concurrent,
                 struct gpuslots *out, const char **device,
                 struct ipc_error *err);

#endif
