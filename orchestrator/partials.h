/* partials.h: the partial sums of pool workers (docs/protocol.md,
 * "Partial sums"). With launcher.partial_sums on, a pool worker folds
 * the updates of its fits into one float64 sum (wsum.h) in a segment the
 * orchestrator gave it, reports each fit as folded, and sends the sum
 * once it runs out of queued tasks; the orchestrator then folds one sum
 * per worker instead of one update per fit. A folded fit ends (ok) when
 * its sum is folded; a worker that dies first takes its sum with it, and
 * its folded fits run again (their seeds make them the same fits).
 *
 * Per worker: the segment it folds into (a memfd of 8 bytes per model
 * element, sealed against resizing; sealed against writes when its
 * partial frame comes, then read), its id (ids grow across the job, so a
 * worker never folds into a sum it sent), and the fits reported folded
 * into it with their weights and numbers. */
#ifndef COHORT_PARTIALS_H
#define COHORT_PARTIALS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "closer.h"
#include "error.h"
#include "message.h"
#include "shm.h"

/* A fit reported folded, waiting for its partial sum. */
struct partial_fit {
	uint64_t task_id;
	double weight;
	uint64_t num_examples;
	struct kv_list metrics; /* its result's numbers */
};

struct worker_partial {
	pid_t pid;
	struct shm_segment seg; /* fd -1: none made yet */
	uint64_t id;
	struct partial_fit *fits;
	size_t n, cap;
	double weight; /* of the fits, added in the order they came */
	/* A fit folded into it was refused (its numbers): why. Its other
	 * fits cannot be told apart from it in the sum. */
	char refused[512];
};

struct partials {
	struct worker_partial **w;
	unsigned n, cap;
	size_t numel; /* float64 elements of a sum */
	int on;
	unsigned flush_every; /* folded fits per sum (0: when idle) */
	uint64_t next_id;
	const char *jobkey; /* labels segments cohort.<key>.p<id> */
};

void partials_init(struct partials *p, size_t numel, int on,
                   unsigned flush_every, const char *jobkey);
/* Worker pid's partial sum; with make, one is made (and its segment)
 * when it has none. NULL when none (make 0) or with err. */
struct worker_partial *partials_get(struct partials *p, pid_t pid, int make,
                                    struct ipc_error *err);
/* A fit of r's numbers and weight was reported folded into w's sum. */
void partials_note(struct worker_partial *w, uint64_t task_id, double weight,
                   const struct msg_result *r);
/* A fit folded into w's sum was refused for why (the first reason stays). */
void partials_refuse(struct worker_partial *w, uint64_t task_id,
                     const char *why);
/* Check that partial frame m is w's sum with exactly its folded fits and
 * their weight; -1 with err naming the difference. */
int partials_match(const struct worker_partial *w, const struct msg_partial *m,
                   struct ipc_error *err);
/* Seal w's segment against writes and map it read-only: its sum, or NULL
 * with err (the worker still maps it writable). */
const double *partials_open(struct partials *p, struct worker_partial *w,
                            struct ipc_error *err);
/* w's sum is dealt with: hand its fits to the caller (*n of them; free
 * them with partials_fits_free), close its segment and give it the next
 * id. */
struct partial_fit *partials_take(struct worker_partial *w, struct closer *c,
                                  size_t *n);
/* Worker pid exited: its record goes, and its unsent fits are handed to
 * the caller (*n; NULL when none). */
struct partial_fit *partials_gone(struct partials *p, pid_t pid,
                                  struct closer *c, size_t *n);
void partials_fits_free(struct partial_fit *fits, size_t n);
void partials_free(struct partials *p, struct closer *c);

#endif
