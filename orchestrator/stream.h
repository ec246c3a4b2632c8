/* stream.h: the orchestrator's side of moving large models: the global
 * model streamed to workers as chunk frames (transport.mode stream),
 * streamed updates staged per task until their last byte, and folding an
 * update into the FedAvg accumulator tensor by tensor, releasing the pages
 * it has read so resident memory never holds a whole update it no longer
 * needs. */
#ifndef COHORT_STREAM_H
#define COHORT_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "message.h"
#include "shmcache.h"
#include "tensor.h"

struct job;
struct strategy;

/* A streamed update being received. */
struct stream_inbox {
	uint64_t task_id;
	uint8_t *buf; /* the update, laid out as the model */
	uint64_t have;
	struct stream_inbox *next;
};

struct stream {
	int enabled;        /* transport.mode resolved to stream */
	size_t chunk_bytes; /* transport.chunk_mb in bytes */
	const struct tensor_manifest *model;
	struct stream_inbox *inbox; /* one per update in flight */
	unsigned staged_peak;       /* most updates staged at once */
	uint8_t **idle;             /* staging buffers of dropped updates, */
	unsigned nidle, idle_cap;   /* kept for the next (at most the peak) */
	uint8_t *copy; /* private copy of a worker's own update (small) */
};

void stream_init(struct stream *s, int enabled, size_t chunk_bytes,
                 const struct tensor_manifest *model);
/* Copy bytes [offset, offset + len) of task_id's streamed update of total
 * bytes into its staging, counted as received: in order, no gap or
 * overlap, total equal to the model's size; -1 (err set) otherwise. */
int stream_receive(struct stream *s, uint64_t task_id, uint64_t total,
                   uint64_t offset, const uint8_t *data, size_t len,
                   struct ipc_error *err);
/* The complete staged update of task_id, or NULL. */
const void *stream_staged(const struct stream *s, uint64_t task_id);
/* Forget task_id's staged update (folded, failed or cut off). */
void stream_drop(struct stream *s, uint64_t task_id);
void stream_free(struct stream *s);

/* Fold the update a result carries (the task's update segment, or its
 * staged stream) with weight into the strategy. The segment is sealed
 * against writes first (refused while its worker still maps it writable:
 * the task fails), so what is checked is what is folded; a worker's own
 * segment (mine, updates.h) is not sealed but copied, and the copy checked
 * and folded (it stays mapped for the worker's next task); every value is
 * checked finite, then folded; for FedAvg/FedProx tensor by tensor,
 * releasing pages as soon as they have been read. On error nothing is
 * added. Strategies that keep every update take shared memory only, and
 * take the segment (update is left closed). */
int stream_fold(struct stream *s, struct strategy *st, uint64_t task_id,
                const struct params_ref *p, struct shm_segment *update,
                int mine, double weight, struct ipc_error *err);
/* Whether strategy st folds each update into the mean and drops it (what
 * a worker's own segments need). */
int stream_folds_mean(const struct strategy *st);
/* Seal a new global model (g) read-only for everyone but the mapping the
 * orchestrator already has. */
int stream_seal_global(struct job *j, struct shm_segment *g,
                       struct ipc_error *err);

/* Before the next global model is written: a strategy whose finish does
 * not read the old model (FedAvg, FedProx) reuses its segment, renamed to
 * name (a memfd is only relabelled), and returns 1; the caller writes the new
 * model over it. The old and the new model never take memory together (the peak
 * of a round is the accumulator and one model, not two) and the new one is
 * written into pages already in memory. Returns 0 for other strategies, which
 * keep the old model until the new one is written. Every fit of the round has
 * ended. */
int stream_recycle_global(struct job *j, const char *name);
/* Write the recycled global model (strategy_finish_mean's model) tensor by
 * tensor; a large model's pages leave the resident set as soon as they are
 * written. -1 when the aggregate is refused (strategy_check_peak). */
int stream_finish_global(struct job *j, struct ipc_error *err);

/* A large global model (over SHM_POPULATE_MAX) stays in shared memory but
 * not in the orchestrator's resident set: workers map it themselves, streamed
 * chunks and the checkpoint are copied from its file descriptor
 * (sendfile), and the orchestrator brings in only what it reads or writes
 * and drops it after. Release the whole mapping (after the orchestrator
 * has read or written all of it). */
void stream_release_global(struct job *j);

/* Launcher hooks of the stream transport (arg is the job): the global
 * model's memfd to send after a task frame, where a streamed result's chunk
 * goes, and a streamed result cut off. */
int stream_task_source(void *arg, uint64_t task_id, uint64_t *size);
uint8_t *stream_on_chunk(void *arg, uint64_t task_id, uint64_t total,
                         uint64_t offset, size_t len, struct ipc_error *err);
void stream_on_abort(void *arg, uint64_t task_id);

#endif
