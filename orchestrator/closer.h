/* closer.h: closing large shared-memory segments off the event loop. The
 * last close of a memfd frees its pages there and then (0.3-0.4 s for a
 * 2.9 GB update on this machine), once per fit task, which the
 * orchestrator's one thread would otherwise spend between results. A
 * thread of its own takes such descriptors instead and closes them in
 * order. */
#ifndef COHORT_CLOSER_H
#define COHORT_CLOSER_H

#include <pthread.h>
#include <stddef.h>

#include "error.h"
#include "shm.h"

struct closer {
	int pipe[2]; /* descriptors to close travel through it */
	pthread_t thread;
	int running;
};

/* Start the thread; on failure segments are closed synchronously. */
int closer_start(struct closer *c, struct ipc_error *err);
/* Unmap s and close it: here if it is small or no thread runs, else by
 * the thread. s is closed (fd -1) either way. */
void closer_close(struct closer *c, struct shm_segment *s);
/* Wait until the thread has closed everything it was given, and end it. */
void closer_stop(struct closer *c);

#endif
