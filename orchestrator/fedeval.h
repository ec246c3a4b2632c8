/* fedeval.h: federated evaluation (evaluate.fraction): after a round's new
 * global model is published, a seeded share of the available clients
 * evaluate it on their own held-out slices, and the round reports the
 * example-weighted mean loss and accuracy next to the central test ones. */
#ifndef COHORT_FEDEVAL_H
#define COHORT_FEDEVAL_H

#include <stdint.h>

#include "error.h"

/* One client's evaluate task of the current round. */
struct fedeval_task {
	uint64_t task_id;
	int64_t client;
	int done;
};

struct fedeval {
	struct fedeval_task *tasks;
	unsigned ntasks, done, ok, failed;
	double examples, loss_sum, acc_sum; /* sums weighted by examples */
};

/* How many of navail available clients evaluate: floor(fraction * navail),
 * at least 1 when fraction > 0 and a client is available. */
unsigned fedeval_count(double fraction, unsigned navail);
/* Pick the round's evaluators among avail (navail ids) into out, ascending;
 * the draw depends on (seed, round) only, so a resumed job repeats it.
 * Returns how many were picked. */
unsigned fedeval_sample(uint64_t seed, unsigned round, double fraction,
                        const uint32_t *avail, unsigned navail, uint32_t *out);
/* Start a round's evaluation: one task per client, with task ids taken
 * from *next_task_id in order. Forgets the previous round's. */
void fedeval_begin(struct fedeval *fe, const uint32_t *clients, unsigned n,
                   uint64_t *next_task_id);
/* The unfinished task with this id, or NULL. */
struct fedeval_task *fedeval_find(struct fedeval *fe, uint64_t task_id);
/* Account a task's result. A result whose numbers eval_numbers_check
 * refuses is not counted: -1, and err says why (the caller then calls
 * fedeval_failed). */
int fedeval_result(struct fedeval *fe, struct fedeval_task *t,
                   uint64_t num_examples, uint64_t max_examples, double loss,
                   double accuracy, struct ipc_error *err);
/* The numbers of an evaluation result: 1 to max_examples examples, a
 * finite loss, an accuracy in [0, 1]; -1 and err saying which is wrong. */
int eval_numbers_check(uint64_t num_examples, uint64_t max_examples,
                       double loss, double accuracy, struct ipc_error *err);
/* Account a failed task. */
void fedeval_failed(struct fedeval *fe, struct fedeval_task *t);
/* Whether some task of the round has not ended. */
int fedeval_pending(const struct fedeval *fe);
/* The example-weighted means of the round (NAN without a counted result). */
double fedeval_loss(const struct fedeval *fe);
double fedeval_accuracy(const struct fedeval *fe);
void fedeval_free(struct fedeval *fe);

#endif
