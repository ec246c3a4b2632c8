/* test_fedeval.c: federated evaluation: how many clients evaluate, which
 * (seeded, reproducible, among the available ones), the example-weighted
 * means, unusable results, and the config check against data.holdout. */
#include <math.h>
#include <stdlib.h>

#include "config.h"
#include "fedeval.h"
#include "harness.h"

/* floor(fraction * available), at least one, never more than available. */
static void
test_count(void)
{
	CHECK_EQ_INT(fedeval_count(0.0, 10), 0);
	CHECK_EQ_INT(fedeval_count(0.5, 10), 5);
	CHECK_EQ_INT(fedeval_count(0.3, 10), 3);
	CHECK_EQ_INT(fedeval_count(0.7, 10), 7);
	CHECK_EQ_INT(fedeval_count(0.01, 10), 1);
	CHECK_EQ_INT(fedeval_count(1.0, 10), 10);
	CHECK_EQ_INT(fedeval_count(0.5, 0), 0);
	CHECK_EQ_INT(fedeval_count(0.5, 3), 1);
}

/* Whether ids holds n distinct ascending members of set. */
static int
ascending_subset(const uint32_t *ids, unsigned n, const uint32_t *set,
                 unsigned nset)
{
	for (unsigned i = 0; i < n; i++) {
		if (i > 0 && ids[i] <= ids[i - 1])
			return 0;
		int found = 0;
		for (unsigned k = 0; k < nset; k++)
			found |= set[k] == ids[i];
		if (!found)
			return 0;
	}
	return 1;
}

/* The same (seed, round) picks the same clients; rounds and seeds differ;
 * only available clients are picked. */
static void
test_sample(void)
{
	uint32_t avail[8] = {1, 2, 4, 5, 7, 9, 11, 12};
	uint32_t a[8], b[8];
	unsigned n = fedeval_sample(1, 3, 0.5, avail, 8, a);
	CHECK_EQ_INT(n, 4);
	CHECK(ascending_subset(a, n, avail, 8));
	CHECK_EQ_INT(fedeval_sample(1, 3, 0.5, avail, 8, b), 4);
	CHECK(memcmp(a, b, sizeof(uint32_t) * 4) == 0);
	/* Over 20 rounds, at least one draw differs from round 3's, and
	 * every client is picked at some point. */
	int differs = 0;
	unsigned picked[13] = {0};
	for (unsigned round = 1; round <= 20; round++) {
		CHECK_EQ_INT(fedeval_sample(1, round, 0.5, avail, 8, b), 4);
		CHECK(ascending_subset(b, 4, avail, 8));
		differs |= memcmp(a, b, sizeof(uint32_t) * 4) != 0;
		for (unsigned i = 0; i < 4; i++)
			picked[b[i]]++;
	}
	CHECK(differs);
	for (unsigned k = 0; k < 8; k++)
		CHECK(picked[avail[k]] > 0);
	differs = 0;
	for (uint64_t seed = 2; seed < 10; seed++) {
		fedeval_sample(seed, 3, 0.5, avail, 8, b);
		differs |= memcmp(a, b, sizeof(uint32_t) * 4) != 0;
	}
	CHECK(differs);
	CHECK_EQ_INT(fedeval_sample(1, 3, 1.0, avail, 8, b), 8);
	CHECK(memcmp(avail, b, sizeof avail) == 0);
	CHECK_EQ_INT(fedeval_sample(1, 3, 0.0, avail, 8, b), 0);
}

/* Task ids follow on, means are weighted by examples, and a result with
 * no examples or a NaN is a failure that does not move the means. */
static void
test_aggregate(void)
{
	struct fedeval fe = {0};
	uint32_t clients[3] = {0, 3, 5};
	uint64_t next = 40;
	CHECK(isnan(fedeval_loss(&fe)));
	fedeval_begin(&fe, clients, 3, &next);
	CHECK_EQ_INT(next, 43);
	CHECK(fedeval_pending(&fe));
	CHECK(fedeval_find(&fe, 39) == NULL);
	CHECK(fedeval_find(&fe, 43) == NULL);
	struct fedeval_task *t0 = fedeval_find(&fe, 40);
	struct fedeval_task *t1 = fedeval_find(&fe, 41);
	struct fedeval_task *t2 = fedeval_find(&fe, 42);
	CHECK(t0 != NULL && t1 != NULL && t2 != NULL);
	CHECK_EQ_INT(t1->client, 3);
	struct ipc_error err;
	CHECK_EQ_INT(fedeval_result(&fe, t0, 100, 100, 0.5, 0.9, &err), 0);
	CHECK(fedeval_find(&fe, 40) == NULL);
	CHECK_EQ_INT(fedeval_result(&fe, t1, 300, 1000, 1.5, 0.5, &err), 0);
	CHECK_EQ_INT(fedeval_result(&fe, t2, 0, 1000, 1.0, 1.0, &err), -1);
	CHECK_STR_CONTAINS(err.message, "0 examples, expected 1 to 1000");
	CHECK_EQ_INT(fedeval_result(&fe, t2, 1001, 1000, 1.0, 1.0, &err), -1);
	CHECK_STR_CONTAINS(err.message, "1001 examples");
	CHECK_EQ_INT(fedeval_result(&fe, t2, 10, 1000, NAN, 1.0, &err), -1);
	CHECK_STR_CONTAINS(err.message, "loss nan");
	CHECK_EQ_INT(fedeval_result(&fe, t2, 10, 1000, 1.0, 1e308, &err), -1);
	CHECK_STR_CONTAINS(err.message, "accuracy 1e+308, outside [0, 1]");
	CHECK_EQ_INT(fedeval_result(&fe, t2, 10, 1000, 1.0, -3, &err), -1);
	CHECK(fedeval_pending(&fe));
	fedeval_failed(&fe, t2);
	CHECK(!fedeval_pending(&fe));
	CHECK_EQ_INT(fe.ok, 2);
	CHECK_EQ_INT(fe.failed, 1);
	/* (100 * 0.5 + 300 * 1.5) / 400 and (100 * 0.9 + 300 * 0.5) / 400. */
	CHECK_NEAR(fedeval_loss(&fe), 1.25, 1e-15);
	CHECK_NEAR(fedeval_accuracy(&fe), 0.6, 1e-15);
	/* The next round starts from zero. */
	fedeval_begin(&fe, clients, 1, &next);
	CHECK_EQ_INT(fe.ok, 0);
	CHECK(isnan(fedeval_accuracy(&fe)));
	CHECK(fedeval_find(&fe, 43) != NULL);
	fedeval_free(&fe);
}

/* evaluate.fraction needs data.holdout; the message names both keys. */
static void
test_config(void)
{
	struct config c;
	struct ipc_error err;
	config_defaults(&c);
	CHECK_EQ_INT(config_set(&c, "evaluate.fraction=0.5", &err), 0);
	CHECK_EQ_INT(config_check(&c, &err), -1);
	CHECK_STR_CONTAINS(err.message, "evaluate.fraction");
	CHECK_STR_CONTAINS(err.message, "data.holdout");
	CHECK_EQ_INT(config_set(&c, "data.holdout=0.1", &err), 0);
	CHECK_EQ_INT(config_check(&c, &err), 0);
	CHECK_EQ_INT(config_set(&c, "evaluate.fraction=1.5", &err), -1);
	CHECK_STR_CONTAINS(err.message, "evaluate.fraction");
	config_free(&c);
}

int
main(void)
{
	RUN(test_count);
	RUN(test_sample);
	RUN(test_aggregate);
	RUN(test_config);
	return harness_finish();
}
