/* updates.h: update segments a pool worker keeps for its own tasks. A fit
 * task's update is otherwise a fresh memfd per task, sealed against
 * writes when its result comes (stream.c), and a fresh segment per task
 * cost a pool of small tasks 1.8x its round time. Reusing a segment for
 * another task is safe only where nobody else can write it: so a worker
 * process keeps up to UPDATES_PER_WORKER segments for the tasks it runs
 * (one being folded, one in training, one sent ahead), and they go when it
 * exits. Whatever it writes into them afterwards can change only its own
 * later tasks, which it computes anyway; the orchestrator folds each such
 * update from a private copy, checked first, so a value changed under it
 * can never reach the accumulator unchecked. Used for small models
 * (SHM_POPULATE_MAX: the copy is cheap) and strategies that fold each
 * update into the mean and drop it. */
#ifndef COHORT_UPDATES_H
#define COHORT_UPDATES_H

#include <stddef.h>
#include <sys/types.h>

#include "closer.h"
#include "error.h"
#include "shm.h"

#define UPDATES_PER_WORKER 3

struct worker_updates {
	pid_t pid;
	struct shm_segment seg[UPDATES_PER_WORKER]; /* fd -1: not made */
	int busy[UPDATES_PER_WORKER];
};

struct updates {
	struct worker_updates *w;
	unsigned n, cap;
	size_t size; /* bytes of every segment (the model's) */
	int on;      /* reuse is on for this job */
};

void updates_init(struct updates *u, size_t size, int on);
/* A free segment of worker pid's own, now busy, with its slot in *slot;
 * NULL when reuse is off or all its segments are busy (err set only when
 * a new segment could not be made). */
struct shm_segment *updates_take(struct updates *u, pid_t pid, int *slot,
                                 struct ipc_error *err);
/* Worker pid's segment in slot, or NULL once the worker is gone. */
struct shm_segment *updates_get(struct updates *u, pid_t pid, int slot);
/* The task that had it ended: the segment is free again. */
void updates_put(struct updates *u, pid_t pid, int slot);
/* Worker pid exited: close its segments. */
void updates_worker_gone(struct updates *u, pid_t pid, struct closer *c);
void updates_free(struct updates *u, struct closer *c);

#endif
