/* gpuslots.c: GPU slot planning (visible list against the NVML inventory,
 * slots per GPU, interleaved slot order) and the choice of a free slot. */
#include "gpuslots.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Bytes to whole MiB, rounded down. */
static uint64_t
to_mb(uint64_t bytes)
{
	return bytes >> 20;
}

/* True when s is a decimal number without sign; *v is its value. */
static int
parse_index(const char *s, unsigned long *v)
{
	if (*s == '\0')
		return 0;
	for (const char *p = s; *p; p++)
		if (!isdigit((unsigned char)*p))
			return 0;
	errno = 0;
	*v = strtoul(s, NULL, 10);
	return errno == 0;
}

/* True when s names a GPU or a MIG instance by UUID (or a prefix). */
static int
is_uuid(const char *s)
{
	return (strncmp(s, "GPU-", 4) == 0 || strncmp(s, "MIG-", 4) == 0) &&
	       s[4] != '\0';
}

/* The inventory device an entry names, -1 with err set when none or more
 * than one match. */
static int
match_entry(const struct gpuinfo_device *inv, unsigned ninv, const char *entry,
            const struct gpuslots_request *req, struct ipc_error *err)
{
	unsigned long idx;
	if (parse_index(entry, &idx)) {
		if (idx >= ninv)
			return ipc_error_set(
			    err, IPC_E_BAD_VALUE,
			    "%s=\"%s\": device %s, but NVML reports %u GPU%s",
			    req->visible_name, req->visible, entry, ninv,
			    ninv == 1 ? "" : "s");
		return (int)idx;
	}
	int found = -1;
	size_t len = strlen(entry);
	for (unsigned i = 0; i < ninv; i++) {
		if (strncmp(inv[i].uuid, entry, len) != 0)
			continue;
		if (inv[i].uuid[len] == '\0')
			return (int)i; /* exact beats any prefix */
		if (found >= 0)
			return ipc_error_set(
			    err, IPC_E_BAD_VALUE,
			    "%s=\"%s\": \"%s\" is a prefix of more than one "
			    "GPU's UUID (%s, %s)",
			    req->visible_name, req->visible, entry,
			    inv[found].uuid, inv[i].uuid);
		found = (int)i;
	}
	if (found < 0)
		return ipc_error_set(
		    err, IPC_E_BAD_VALUE,
		    "%s=\"%s\": no GPU with UUID %s among the %u NVML "
		    "reports%s",
		    req->visible_name, req->visible, entry, ninv,
		    strncmp(entry, "MIG-", 4) == 0
		        ? " (MIG instances are not supported: give whole "
		          "GPUs)"
		        : "");
	return found;
}

/* Append one GPU to the plan. */
static void
add_gpu(struct gpuslots *s, const char *visible, int nvml_index,
        uint64_t free_mb)
{
	s->gpu = xreallocarray(s->gpu, s->ngpus + 1, sizeof *s->gpu);
	struct gpuslots_gpu *g = &s->gpu[s->ngpus++];
	g->visible = xstrdup(visible);
	g->nvml_index = nvml_index;
	g->free_mb = free_mb;
	g->slots = 0;
}

/* Split the visible list into GPUs; -1 on a malformed or unknown entry. */
static int
read_visible(const struct gpuinfo_device *inv, unsigned ninv,
             const struct gpuslots_request *req, struct gpuslots *s,
             struct ipc_error *err)
{
	char *copy = xstrdup(req->visible);
	char *p = copy;
	int rc = 0;
	while (rc == 0 && *p != '\0') {
		char *comma = strchr(p, ',');
		if (comma != NULL)
			*comma = '\0';
		while (isspace((unsigned char)*p))
			p++;
		char *end = p + strlen(p);
		while (end > p && isspace((unsigned char)end[-1]))
			*--end = '\0';
		if (strcmp(p, "-1") == 0)
			break; /* CUDA shows nothing from here on */
		unsigned long idx;
		if (!parse_index(p, &idx) && !is_uuid(p)) {
			rc = ipc_error_set(
			    err, IPC_E_BAD_VALUE,
			    "%s=\"%s\": entry \"%s\" is neither a device index "
			    "nor a GPU-/MIG- UUID (expected e.g. \"0,1\" or "
			    "\"GPU-5c3e...,GPU-9a1f...\"; \"\" for no GPU)",
			    req->visible_name, req->visible, p);
			break;
		}
		int nvml = -1;
		uint64_t free_mb = 0;
		if (inv != NULL) {
			nvml = match_entry(inv, ninv, p, req, err);
			if (nvml < 0) {
				rc = -1;
				break;
			}
			free_mb = to_mb(inv[nvml].free_bytes);
		}
		for (unsigned i = 0; i < s->ngpus; i++) {
			int same = nvml >= 0
			               ? s->gpu[i].nvml_index == nvml
			               : strcmp(s->gpu[i].visible, p) == 0;
			if (same)
				rc = ipc_error_set(
				    err, IPC_E_BAD_VALUE,
				    "%s=\"%s\": \"%s\" names a GPU listed "
				    "before",
				    req->visible_name, req->visible, p);
		}
		if (rc == 0)
			add_gpu(s, p, nvml, free_mb);
		if (comma == NULL)
			break;
		p = comma + 1;
		if (rc == 0 && *p == '\0')
			rc = ipc_error_set(err, IPC_E_BAD_VALUE,
			                   "%s=\"%s\": empty entry after the "
			                   "last comma",
			                   req->visible_name, req->visible);
	}
	free(copy);
	return rc;
}

int
gpuslots_plan(const struct gpuinfo_device *inv, unsigned ninv,
              const struct gpuslots_request *req, struct gpuslots *out,
              struct ipc_error *err)
{
	memset(out, 0, sizeof *out);
	if (req->visible == NULL) {
		if (inv == NULL)
			return ipc_error_set(
			    err, IPC_E_BAD_VALUE,
			    "cannot list the GPUs without NVML: give them in "
			    "gpu.devices (e.g. \"0,1\") with "
			    "gpu.workers_per_gpu set");
		/* The worker gets the UUID: unlike an index, it means the
		 * same GPU whatever CUDA_DEVICE_ORDER says. */
		for (unsigned i = 0; i < ninv; i++)
			add_gpu(out, inv[i].uuid, (int)i,
			        to_mb(inv[i].free_bytes));
	} else if (read_visible(inv, ninv, req, out, err) < 0) {
		gpuslots_free(out);
		return -1;
	}
	if (req->only >= 0) {
		if ((unsigned)req->only >= out->ngpus) {
			unsigned n = out->ngpus;
			gpuslots_free(out);
			return ipc_error_set(err, IPC_E_BAD_VALUE,
			                     "worker.device cuda:%d: only %u "
			                     "GPU%s visible",
			                     req->only, n,
			                     n == 1 ? " is" : "s are");
		}
		struct gpuslots_gpu keep = out->gpu[req->only];
		for (unsigned i = 0; i < out->ngpus; i++)
			if (i != (unsigned)req->only)
				free(out->gpu[i].visible);
		out->gpu[0] = keep;
		out->ngpus = 1;
	}
	unsigned most = 0;
	for (unsigned i = 0; i < out->ngpus; i++) {
		struct gpuslots_gpu *g = &out->gpu[i];
		if (req->workers_per_gpu > 0) {
			g->slots = req->workers_per_gpu;
		} else if (g->nvml_index < 0) {
			gpuslots_free(out);
			return ipc_error_set(
			    err, IPC_E_BAD_VALUE,
			    "no free-memory figure for GPU %s without NVML: "
			    "set gpu.workers_per_gpu",
			    req->visible);
		} else {
			uint64_t per = req->mem_per_worker_mb > 0
			                   ? req->mem_per_worker_mb
			                   : 1;
			uint64_t n = g->free_mb / per;
			g->slots = n == 0 ? 1 : n > 65536 ? 65536 : (unsigned)n;
		}
		out->nslots += g->slots;
		if (g->slots > most)
			most = g->slots;
	}
	/* Slot order d0 d1 d2 d0 d1 ...: any prefix spreads over the GPUs. */
	out->slot_gpu =
	    xcalloc(out->nslots ? out->nslots : 1, sizeof *out->slot_gpu);
	unsigned k = 0;
	for (unsigned r = 0; r < most; r++)
		for (unsigned i = 0; i < out->ngpus; i++)
			if (out->gpu[i].slots > r)
				out->slot_gpu[k++] = i;
	return 0;
}

int
gpuslots_pick(const struct gpuslots *s, const unsigned char *busy)
{
	if (s->ngpus == 0)
		return -1;
	unsigned *load = xcalloc(s->ngpus, sizeof *load);
	for (unsigned i = 0; i < s->nslots; i++)
		if (busy[i])
			load[s->slot_gpu[i]]++;
	int best = -1;
	for (unsigned i = 0; i < s->nslots; i++) {
		if (busy[i])
			continue;
		if (best < 0 ||
		    load[s->slot_gpu[i]] < load[s->slot_gpu[(unsigned)best]] ||
		    (load[s->slot_gpu[i]] ==
		         load[s->slot_gpu[(unsigned)best]] &&
		     s->slot_gpu[i] < s->slot_gpu[(unsigned)best]))
			best = (int)i;
	}
	free(load);
	return best;
}

const char *
gpuslots_visible(const struct gpuslots *s, unsigned i)
{
	return s->gpu[s->slot_gpu[i]].visible;
}

void
gpuslots_copy(struct gpuslots *dst, const struct gpuslots *src)
{
	memset(dst, 0, sizeof *dst);
	dst->ngpus = src->ngpus;
	dst->nslots = src->nslots;
	dst->gpu = xcalloc(src->ngpus ? src->ngpus : 1, sizeof *dst->gpu);
	for (unsigned i = 0; i < src->ngpus; i++) {
		dst->gpu[i] = src->gpu[i];
		dst->gpu[i].visible = xstrdup(src->gpu[i].visible);
	}
	dst->slot_gpu =
	    xcalloc(src->nslots ? src->nslots : 1, sizeof *dst->slot_gpu);
	if (src->nslots > 0)
		memcpy(dst->slot_gpu, src->slot_gpu,
		       src->nslots * sizeof *dst->slot_gpu);
}

void
gpuslots_free(struct gpuslots *s)
{
	for (unsigned i = 0; i < s->ngpus; i++)
		free(s->gpu[i].visible);
	free(s->gpu);
	free(s->slot_gpu);
	memset(s, 0, sizeof *s);
}

int
gpuslots_parse_device(const char *device, enum gpuslots_device *kind,
                      int *index, struct ipc_error *err)
{
	unsigned long n;
	*index = -1;
	if (strcmp(device, "auto") == 0)
		*kind = GPUSLOTS_AUTO;
	else if (strcmp(device, "cpu") == 0)
		*kind = GPUSLOTS_CPU;
	else if (strcmp(device, "cuda") == 0)
		*kind = GPUSLOTS_CUDA;
	else if (strncmp(device, "cuda:", 5) == 0 &&
	         parse_index(device + 5, &n) && n < 1024) {
		*kind = GPUSLOTS_CUDA;
		*index = (int)n;
	} else
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "worker.device: expected auto, cpu, cuda "
		                     "or cuda:N, got \"%s\"",
		                     device);
	return 0;
}
