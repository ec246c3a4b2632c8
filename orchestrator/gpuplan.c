/* gpuplan.c: GPU slots for a job: NVML inventory (no CUDA context), the
 * visible list (gpu.devices or the inherited CUDA_VISIBLE_DEVICES), slot
 * sizing, and the one log line that says what was decided. */
#include "gpuplan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console.h"
#include "models.h"
#include "gpuinfo.h"

#define GPUPLAN_MAX_GPUS 64

/* Log what the plan gives the job. */
static void
report(const struct gpuslots *s, const struct gpuinfo_device *inv,
       unsigned max_concurrent, const struct config *c)
{
	char line[1024];
	size_t off = 0;
	for (unsigned i = 0; i < s->ngpus && off < sizeof line; i++) {
		const struct gpuslots_gpu *g = &s->gpu[i];
		if (g->nvml_index >= 0)
			off += (size_t)snprintf(
			    line + off, sizeof line - off,
			    "%s%s %s (%llu MiB free): %u", i ? "; " : "",
			    g->visible, inv[g->nvml_index].name,
			    (unsigned long long)g->free_mb, g->slots);
		else
			off += (size_t)snprintf(line + off, sizeof line - off,
			                        "%s%s: %u", i ? "; " : "",
			                        g->visible, g->slots);
	}
	unsigned at_once =
	    max_concurrent < s->nslots ? max_concurrent : s->nslots;
	console_out("gpu: %u GPU%s, slots %s; %u workers at once%s", s->ngpus,
	            s->ngpus == 1 ? "" : "s", line, at_once,
	            at_once < s->nslots ? " (launcher.max_concurrent)" : "");
	if (c->gpu.workers_per_gpu == 0)
		console_log("gpu: slots = free MiB / gpu.mem_per_worker_mb "
		            "(%lld), at least 1",
		            (long long)c->gpu.mem_per_worker_mb);
}

int
gpuplan_make(const struct config *c, unsigned max_concurrent,
             struct gpuslots *out, const char **device, struct ipc_error *err)
{
	memset(out, 0, sizeof *out);
	*device = c->worker.device;
	enum gpuslots_device kind;
	int index;
	if (gpuslots_parse_device(c->worker.device, &kind, &index, err) < 0)
		return -1;
	if (kind == GPUSLOTS_CPU)
		return 0;
	const struct model_info *mi = models_find(c->model.name);
	if (mi != NULL && mi->text) {
		/* config_check refused cuda for it. */
		console_log("gpu: model %s trains on the CPU (its CUDA path "
		            "is not written yet)",
		            mi->name);
		*device = "cpu";
		return 0;
	}
	struct gpuslots_request req = {
	    .visible = getenv("CUDA_VISIBLE_DEVICES"),
	    .visible_name = "CUDA_VISIBLE_DEVICES",
	    .only = index,
	    .workers_per_gpu = (unsigned)c->gpu.workers_per_gpu,
	    .mem_per_worker_mb = (uint64_t)c->gpu.mem_per_worker_mb,
	};
	if (c->gpu.devices[0] != '\0') {
		req.visible = c->gpu.devices;
		req.visible_name = "gpu.devices";
	}
	struct gpuinfo_device *inv = xcalloc(GPUPLAN_MAX_GPUS, sizeof *inv);
	unsigned n = 0;
	struct ipc_error qerr;
	int have = gpuinfo_query(inv, GPUPLAN_MAX_GPUS, &n, &qerr) == 0;
	if (n > GPUPLAN_MAX_GPUS)
		n = GPUPLAN_MAX_GPUS;
	if (!have && kind == GPUSLOTS_AUTO && c->gpu.devices[0] == '\0') {
		/* As before GPU slots: each worker decides for itself. */
		console_log("gpu: no GPU slots: %s", qerr.message);
		free(inv);
		return 0;
	}
	int rc = gpuslots_plan(have ? inv : NULL, n, &req, out, err);
	char nvml[32];
	snprintf(nvml, sizeof nvml, have ? "%u GPUs" : "unavailable", n);
	if (rc == 0 && out->nslots == 0 && kind == GPUSLOTS_CUDA)
		rc = ipc_error_set(
		    err, IPC_E_BAD_VALUE,
		    "worker.device %s: no GPU visible (%s=\"%s\", "
		    "NVML %s); use worker.device auto or cpu",
		    c->worker.device, req.visible_name,
		    req.visible ? req.visible : "(unset)", nvml);
	else if (rc == 0 && out->nslots == 0)
		console_log("gpu: no GPU visible; workers run on the CPU");
	else if (rc == 0) {
		/* Inside a worker its one GPU is device 0. */
		if (kind == GPUSLOTS_CUDA)
			*device = "cuda";
		report(out, inv, max_concurrent, c);
	}
	if (rc < 0 && !have)
		console_log("gpu: NVML unavailable: %s", qerr.message);
	if (rc < 0)
		gpuslots_free(out);
	free(inv);
	return rc;
}
