/* gpuinfo.h: the GPUs of this machine as NVML sees them (count, name, UUID,
 * memory), read without creating a CUDA context, so the launcher can size
 * its GPU slots before it starts a worker. NVML comes with the NVIDIA driver
 * and is loaded at runtime (dlopen of libnvidia-ml.so.1): no build or CPU
 * run depends on it. NVML numbers devices in PCI order and ignores
 * CUDA_VISIBLE_DEVICES; match devices to CUDA's by UUID. */
#ifndef COHORT_GPUINFO_H
#define COHORT_GPUINFO_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct gpuinfo_device {
	unsigned index;
	char name[96];
	char uuid[96];
	uint64_t total_bytes, free_bytes, used_bytes;
};

/* Fill out[0 .. min(*count, cap)) and set *count to the number of devices
 * NVML reports (0 is a valid answer). Errors (IPC_E_IO) name the library
 * that could not be loaded or the NVML call that failed and its message. */
int gpuinfo_query(struct gpuinfo_device *out, size_t cap, unsigned *count,
                  struct ipc_error *err);

#endif
