/* gpuinfo.c: device count, names and free memory through NVML, resolved
 * with dlopen/dlsym so that the driver library is needed only when asked. */
#include "gpuinfo.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#define NVML_LIBRARY "libnvidia-ml.so.1"

/* NVML's C ABI, as far as this file uses it: int results (0 = success),
 * an opaque device handle and nvmlMemory_t's three byte counts. */
typedef int nvml_return;
typedef struct nvml_device *nvml_device;
struct nvml_memory {
	unsigned long long total, free, used;
};

struct nvml {
	nvml_return (*init)(void);
	nvml_return (*shutdown)(void);
	nvml_return (*count)(unsigned *);
	nvml_return (*handle)(unsigned, nvml_device *);
	nvml_return (*memory)(nvml_device, struct nvml_memory *);
	nvml_return (*name)(nvml_device, char *, unsigned);
	nvml_return (*uuid)(nvml_device, char *, unsigned);
	const char *(*error)(nvml_return);
};

/* Resolve one symbol into a function pointer slot; -1 if absent. */
static int
resolve(void *lib, const char *symbol, void *slot)
{
	void *p = dlsym(lib, symbol);
	if (p == NULL)
		return -1;
	memcpy(slot, &p, sizeof p);
	return 0;
}

/* Load the library once and resolve every entry point. */
static const struct nvml *
nvml_load(struct ipc_error *err)
{
	static struct nvml api;
	static int loaded;
	if (loaded)
		return &api;
	void *lib = dlopen(NVML_LIBRARY, RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) {
		const char *e = dlerror();
		ipc_error_set(err, IPC_E_IO,
		              "gpuinfo: cannot load %s (installed with the "
		              "NVIDIA driver): %s",
		              NVML_LIBRARY, e != NULL ? e : "unknown error");
		return NULL;
	}
	const char *missing = NULL;
	if (resolve(lib, "nvmlInit_v2", &api.init) != 0)
		missing = "nvmlInit_v2";
	else if (resolve(lib, "nvmlShutdown", &api.shutdown) != 0)
		missing = "nvmlShutdown";
	else if (resolve(lib, "nvmlDeviceGetCount_v2", &api.count) != 0)
		missing = "nvmlDeviceGetCount_v2";
	else if (resolve(lib, "nvmlDeviceGetHandleByIndex_v2", &api.handle) !=
	         0)
		missing = "nvmlDeviceGetHandleByIndex_v2";
	else if (resolve(lib, "nvmlDeviceGetMemoryInfo", &api.memory) != 0)
		missing = "nvmlDeviceGetMemoryInfo";
	else if (resolve(lib, "nvmlDeviceGetName", &api.name) != 0)
		missing = "nvmlDeviceGetName";
	else if (resolve(lib, "nvmlDeviceGetUUID", &api.uuid) != 0)
		missing = "nvmlDeviceGetUUID";
	else if (resolve(lib, "nvmlErrorString", &api.error) != 0)
		missing = "nvmlErrorString";
	if (missing != NULL) {
		ipc_error_set(err, IPC_E_IO, "gpuinfo: %s has no %s",
		              NVML_LIBRARY, missing);
		dlclose(lib);
		return NULL;
	}
	loaded = 1;
	return &api;
}

/* Record a failed NVML call; returns -1. */
static int
nvml_fail(const struct nvml *api, struct ipc_error *err, const char *call,
          nvml_return r)
{
	return ipc_error_set(err, IPC_E_IO, "gpuinfo: %s failed: %s (%d)", call,
	                     api->error(r), r);
}

/* Init NVML, read every device it reports, shut it down again. */
int
gpuinfo_query(struct gpuinfo_device *out, size_t cap, unsigned *count,
              struct ipc_error *err)
{
	*count = 0;
	const struct nvml *api = nvml_load(err);
	if (api == NULL)
		return -1;
	nvml_return r = api->init();
	if (r != 0)
		return nvml_fail(api, err, "nvmlInit_v2", r);
	int rc = 0;
	unsigned n = 0;
	r = api->count(&n);
	if (r != 0)
		rc = nvml_fail(api, err, "nvmlDeviceGetCount_v2", r);
	for (unsigned i = 0; rc == 0 && i < n && i < cap; i++) {
		struct gpuinfo_device *d = &out[i];
		nvml_device h;
		struct nvml_memory mem;
		memset(d, 0, sizeof *d);
		d->index = i;
		if ((r = api->handle(i, &h)) != 0)
			rc = nvml_fail(api, err,
			               "nvmlDeviceGetHandleByIndex_v2", r);
		else if ((r = api->name(h, d->name, sizeof d->name)) != 0)
			rc = nvml_fail(api, err, "nvmlDeviceGetName", r);
		else if ((r = api->uuid(h, d->uuid, sizeof d->uuid)) != 0)
			rc = nvml_fail(api, err, "nvmlDeviceGetUUID", r);
		else if ((r = api->memory(h, &mem)) != 0)
			rc = nvml_fail(api, err, "nvmlDeviceGetMemoryInfo", r);
		else {
			d->total_bytes = mem.total;
			d->free_bytes = mem.free;
			d->used_bytes = mem.used;
		}
	}
	api->shutdown();
	if (rc == 0)
		*count = n;
	return rc;
}
