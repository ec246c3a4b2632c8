/* capacity.c: the memory budget of a job, checked before round 1. */
#include "capacity.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "console.h"
#include "job.h"
#include "models.h"
#include "synthshape.h"
#include "util.h"

#define GIB(x) ((double)(x) / (1024.0 * 1024 * 1024))

struct capacity_need
capacity_need(uint64_t model, uint64_t acc, unsigned k, int stream)
{
	struct capacity_need n;
	/* shm: the global model in shared memory (memfds, counted as
	 * memory), twice while a round's result is published, and every
	 * update in flight is a segment. stream: the global model is a
	 * memfd too (twice as well: FedAvgM and FedOpt hold the old and the
	 * new one while publishing); a worker holds the model in its own
	 * memory and the orchestrator stages the one update coming in (the
	 * launcher lets one in at a time). */
	if (stream) {
		n.shm = 2 * model;
		n.ram = acc + (3 + (uint64_t)k) * model;
	} else {
		n.shm = (2 + (uint64_t)k) * model;
		n.ram = n.shm + acc;
	}
	return n;
}

/* Most concurrent updates that fit (0 if none). */
static unsigned
fitting(uint64_t model, uint64_t acc, uint64_t ram, int stream)
{
	unsigned k = 0;
	while (k < 100000) {
		struct capacity_need n =
		    capacity_need(model, acc, k + 1, stream);
		if (n.ram > ram)
			break;
		k++;
	}
	return k;
}

/* Updates in flight at once: launcher.max_concurrent, else the CPUs, at
 * most a round's clients. */
static uint64_t
in_flight(const struct config *c)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t k = c->launcher.max_concurrent > 0
	                 ? (uint64_t)c->launcher.max_concurrent
	                 : (uint64_t)(cpus > 0 ? cpus : 1);
	if (k > (uint64_t)c->federation.fit_clients)
		k = (uint64_t)c->federation.fit_clients;
	return k;
}

/* Whether a model of model bytes (acc: its float64 accumulator) fits in
 * memory with k updates in flight; the refusal, with the fix, printed. ram
 * is the memory the job may use. */
static int
fits(uint64_t model, uint64_t acc, uint64_t k, int stream, uint64_t ram)
{
	struct capacity_need need =
	    capacity_need(model, acc, (unsigned)k, stream);
	if (need.ram > ram) {
		unsigned kfit = fitting(model, acc, ram, stream);
		unsigned kother = fitting(model, acc, ram, !stream);
		console_err(
		    "model too large for this machine with the %s transport: "
		    "model %.2f GiB, accumulator %.2f GiB, %llu updates in "
		    "flight need %.2f GiB of memory (%.2f GiB available). "
		    "Fix: %s%u (launcher.max_concurrent=%u)%s%s, or more "
		    "memory",
		    stream ? "stream" : "shm", GIB(model), GIB(acc),
		    (unsigned long long)k, GIB(need.ram), GIB(ram),
		    kfit ? "fewer concurrent workers: at most "
		         : "no worker "
		           "count fits: ",
		    kfit, kfit ? kfit : 1, kother ? "; or transport.mode=" : "",
		    kother ? (stream ? "shm" : "stream") : "");
		return -1;
	}
	return 0;
}

/* transport.mode: auto is shm. Stream needs a model more (each worker's
 * own copy, the staged update) and only pays off where workers cannot
 * share memory with the orchestrator. */
static int
wants_stream(const struct config *c)
{
	return strcmp(c->transport.mode, "stream") == 0;
}

int
capacity_precheck(const struct config *c)
{
	const struct model_info *info = models_find(c->model.name);
	if (info == NULL || info->id != MODEL_SYNTHETIC)
		return 0; /* sized once prepared (small, or the user's file) */
	struct tensor_manifest m;
	struct ipc_error err;
	if (synthetic_manifest(c->model.preset, c->model.file, &m, &err) < 0)
		return 0; /* the prepare step says what is wrong */
	uint64_t model = m.total_size;
	uint64_t acc = tensor_manifest_numel(&m) * sizeof(double);
	tensor_manifest_free(&m);
	/* the prepare step and then the orchestrator hold it once more */
	return fits(model, acc, in_flight(c), wants_stream(c),
	            mem_available_bytes());
}

int
capacity_plan(struct job *j)
{
	const struct config *c = j->cfg;
	uint64_t model = j->model.total_size;
	uint64_t acc = tensor_manifest_numel(&j->model) * sizeof(double);
	uint64_t k = in_flight(c);
	int stream = wants_stream(c);
	if (stream && (j->strategy.ops->kind != STRATEGY_STREAM)) {
		console_err("transport stream: strategy %s keeps updates in "
		            "shared memory; set transport.mode=shm or "
		            "strategy.name=fedavg",
		            j->strategy.ops->name);
		return -1;
	}
	/* The model just read is freed once the global model is written. */
	uint64_t ram = mem_available_bytes() + model;
	if (fits(model, acc, k, stream, ram) < 0)
		return -1;
	struct capacity_need need =
	    capacity_need(model, acc, (unsigned)k, stream);
	console_log("capacity: model %.2f GiB, accumulator %.2f GiB, %llu "
	            "in flight, %s transport: needs %.2f GiB of memory, "
	            "%.2f GiB of it shared (%.2f available)",
	            GIB(model), GIB(acc), (unsigned long long)k,
	            stream ? "stream" : "shm", GIB(need.ram), GIB(need.shm),
	            GIB(ram));
	stream_init(&j->stream, stream, (size_t)c->transport.chunk_mb << 20,
	            &j->model);
	return 0;
}
