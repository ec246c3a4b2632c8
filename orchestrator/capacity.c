/* capacity.c: the memory and /dev/shm budget of a job, checked before
 * round 1. */
#include "capacity.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "console.h"
#include "job.h"

#define GIB(x) ((double)(x) / (1024.0 * 1024 * 1024))

struct capacity_need
capacity_need(uint64_t model, uint64_t acc, unsigned k, int stream)
{
	struct capacity_need n;
	/* shm: the global model in /dev/shm, twice while a round's result
	 * is published, and every update in flight is a segment. stream: the
	 * global model is a file of the workspace (page cache the kernel can
	 * write back and drop, not counted); a worker holds the model in its
	 * own memory and the orchestrator stages the one update coming in
	 * (the launcher lets one in at a time). */
	if (stream) {
		n.shm = 0;
		n.ram = acc + (1 + (uint64_t)k) * model;
	} else {
		n.shm = (2 + (uint64_t)k) * model;
		n.ram = n.shm + acc;
	}
	return n;
}

/* MemAvailable of /proc/meminfo in bytes (0 if unknown). */
static uint64_t
mem_available(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	unsigned long long kb = 0;
	char line[256];
	while (f != NULL && fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			break;
	if (f != NULL)
		fclose(f);
	return (uint64_t)kb * 1024;
}

/* Most concurrent updates that fit (0 if none). */
static unsigned
fitting(uint64_t model, uint64_t acc, uint64_t shm, uint64_t ram, int stream)
{
	unsigned k = 0;
	while (k < 100000) {
		struct capacity_need n =
		    capacity_need(model, acc, k + 1, stream);
		if (n.shm > shm || n.ram > ram)
			break;
		k++;
	}
	return k;
}

int
capacity_plan(struct job *j)
{
	const struct config *c = j->cfg;
	uint64_t model = j->model.total_size;
	uint64_t acc = tensor_manifest_numel(&j->model) * sizeof(double);
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t k = c->launcher.max_concurrent > 0
	                 ? (uint64_t)c->launcher.max_concurrent
	                 : (uint64_t)(cpus > 0 ? cpus : 1);
	if (k > (uint64_t)c->federation.fit_clients)
		k = (uint64_t)c->federation.fit_clients;
	uint64_t shm = 0;
	struct ipc_error err;
	if (shm_free_bytes(&shm, &err) < 0) {
		console_err("%s", err.message);
		return -1;
	}
	/* The model just read is freed once the global model is written. */
	uint64_t ram = mem_available() + model;
	struct capacity_need viashm = capacity_need(model, acc, (unsigned)k, 0);
	struct capacity_need viastream =
	    capacity_need(model, acc, (unsigned)k, 1);
	const char *mode = c->transport.mode;
	int stream = strcmp(mode, "stream") == 0;
	if (strcmp(mode, "auto") == 0 && viashm.shm > shm) {
		stream = 1;
		console_out(
		    "transport.mode auto: /dev/shm has %.2f GiB free, "
		    "the shm transport needs %.2f GiB (model %.2f GiB x "
		    "(2 + %llu updates in flight)); using the stream "
		    "transport",
		    GIB(shm), GIB(viashm.shm), GIB(model),
		    (unsigned long long)k);
	}
	if (stream && (j->strategy.ops->kind != STRATEGY_STREAM)) {
		console_err("transport stream: strategy %s keeps updates in "
		            "shared memory; set transport.mode=shm (and a "
		            "bigger /dev/shm) or strategy.name=fedavg",
		            j->strategy.ops->name);
		return -1;
	}
	struct capacity_need need = stream ? viastream : viashm;
	if (need.shm > shm || need.ram > ram) {
		unsigned kfit = fitting(model, acc, shm, ram, stream);
		unsigned kother = fitting(model, acc, shm, ram, !stream);
		console_err(
		    "model too large for this machine with the %s transport: "
		    "model %.2f GiB, accumulator %.2f GiB, %llu updates in "
		    "flight need %.2f GiB of /dev/shm (%.2f GiB free) and %.2f "
		    "GiB of memory (%.2f GiB available). Fix: %s%u "
		    "(launcher.max_concurrent=%u)%s%s, or a bigger /dev/shm "
		    "(mount -o remount,size=NG /dev/shm) and more memory",
		    stream ? "stream" : "shm", GIB(model), GIB(acc),
		    (unsigned long long)k, GIB(need.shm), GIB(shm),
		    GIB(need.ram), GIB(ram),
		    kfit ? "fewer concurrent workers: at most "
		         : "no worker "
		           "count fits: ",
		    kfit, kfit ? kfit : 1, kother ? "; or transport.mode=" : "",
		    kother ? (stream ? "shm" : "stream") : "");
		return -1;
	}
	console_log("capacity: model %.2f GiB, accumulator %.2f GiB, %llu "
	            "in flight, %s transport: needs %.2f GiB /dev/shm (%.2f "
	            "free), %.2f GiB memory (%.2f available)",
	            GIB(model), GIB(acc), (unsigned long long)k,
	            stream ? "stream" : "shm", GIB(need.shm), GIB(shm),
	            GIB(need.ram), GIB(ram));
	stream_init(&j->stream, stream, (size_t)c->transport.chunk_mb << 20,
	            &j->model);
	return 0;
}
