/* fedeval.c: federated evaluation: choosing the round's evaluators and
 * averaging their held-out results by examples. */
#include "fedeval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "util.h"

unsigned
fedeval_count(double fraction, unsigned navail)
{
	if (!(fraction > 0) || navail == 0)
		return 0;
	/* The epsilon keeps 0.3 * 10 at 3, not 2. */
	double want = floor(fraction * (double)navail + 1e-9);
	if (want < 1)
		return 1;
	return want > (double)navail ? navail : (unsigned)want;
}

unsigned
fedeval_sample(uint64_t seed, unsigned round, double fraction,
               const uint32_t *avail, unsigned navail, uint32_t *out)
{
	unsigned n = fedeval_count(fraction, navail);
	if (n == 0)
		return 0;
	uint32_t *pool = xcalloc(navail, sizeof *pool);
	memcpy(pool, avail, navail * sizeof *pool);
	struct rng r;
	rng_seed(&r, rng_derive(seed, "fed_eval", round), 0);
	rng_sample_u32(&r, pool, navail, n);
	memcpy(out, pool, n * sizeof *out);
	free(pool);
	return n;
}

void
fedeval_begin(struct fedeval *fe, const uint32_t *clients, unsigned n,
              uint64_t *next_task_id)
{
	fedeval_free(fe);
	fe->tasks = xcalloc(n ? n : 1, sizeof *fe->tasks);
	fe->ntasks = n;
	for (unsigned i = 0; i < n; i++) {
		fe->tasks[i].task_id = (*next_task_id)++;
		fe->tasks[i].client = clients[i];
	}
}

struct fedeval_task *
fedeval_find(struct fedeval *fe, uint64_t task_id)
{
	if (fe->ntasks == 0 || task_id < fe->tasks[0].task_id ||
	    task_id >= fe->tasks[0].task_id + fe->ntasks)
		return NULL;
	struct fedeval_task *t = &fe->tasks[task_id - fe->tasks[0].task_id];
	return t->done ? NULL : t;
}

int
eval_numbers_check(uint64_t num_examples, uint64_t max_examples, double loss,
                   double accuracy, struct ipc_error *err)
{
	if (num_examples == 0 || num_examples > max_examples)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "evaluate result reports %llu examples, "
		                     "expected 1 to %llu (the data evaluated)",
		                     (unsigned long long)num_examples,
		                     (unsigned long long)max_examples);
	if (!isfinite(loss))
		return ipc_error_set(
		    err, IPC_E_BAD_VALUE,
		    "evaluate result has loss %g, not a finite "
		    "number",
		    loss);
	if (!(accuracy >= 0 && accuracy <= 1))
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "evaluate result has accuracy %g, outside "
		                     "[0, 1]",
		                     accuracy);
	return 0;
}

int
fedeval_result(struct fedeval *fe, struct fedeval_task *t,
               uint64_t num_examples, uint64_t max_examples, double loss,
               double accuracy, struct ipc_error *err)
{
	if (eval_numbers_check(num_examples, max_examples, loss, accuracy,
	                       err) < 0)
		return -1;
	double w = (double)num_examples;
	fe->examples += w;
	fe->loss_sum += loss * w;
	fe->acc_sum += accuracy * w;
	fe->ok++;
	fe->done++;
	t->done = 1;
	return 0;
}

void
fedeval_failed(struct fedeval *fe, struct fedeval_task *t)
{
	fe->failed++;
	fe->done++;
	t->done = 1;
}

int
fedeval_pending(const struct fedeval *fe)
{
	return fe->done < fe->ntasks;
}

double
fedeval_loss(const struct fedeval *fe)
{
	return fe->examples > 0 ? fe->loss_sum / fe->examples : NAN;
}

double
fedeval_accuracy(const struct fedeval *fe)
{
	return fe->examples > 0 ? fe->acc_sum / fe->examples : NAN;
}

void
fedeval_free(struct fedeval *fe)
{
	free(fe->tasks);
	memset(fe, 0, sizeof *fe);
}
