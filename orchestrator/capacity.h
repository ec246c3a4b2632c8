/* capacity.h: before the first round, check that the model, the
 * accumulator and the updates in flight fit in memory (shared memory is
 * memfds: /dev/shm's size does not limit it), and resolve transport.mode
 * (auto is shm). A job that cannot fit
 * fails up front with the numbers and the fix, never with a SIGBUS or the OOM
 * killer halfway through a round. */
#ifndef COHORT_CAPACITY_H
#define COHORT_CAPACITY_H

#include <stdint.h>

#include "config.h"
#include "error.h"

struct job;

/* What one transport needs, in bytes. */
struct capacity_need {
	uint64_t shm; /* in shared memory (memfds) */
	uint64_t ram; /* in memory, shared memory included */
};

/* Needs of a job with a model of model_bytes, an accumulator of acc_bytes
 * and concurrent updates in flight, through shm (stream 0) or stream. */
struct capacity_need capacity_need(uint64_t model_bytes, uint64_t acc_bytes,
                                   unsigned concurrent, int stream);
/* Resolve the transport of job j, check it fits, set up j->stream. */
int capacity_plan(struct job *j);
/* Before anything is prepared: the same check for a model whose size the
 * config alone gives (the synthetic presets and files), so a job too large
 * is refused in a moment, not after minutes of preparation. -1: refused,
 * said on the console. */
int capacity_precheck(const struct config *c);

#endif
