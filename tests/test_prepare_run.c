/* test_prepare_run.c: the most examples a result may claim, from
 * prepared.json: one count per client, one count for every client (a
 * sampled partition, data.samples_per_client), the whole set, or the
 * configured federation.max_examples. */
#include <jansson.h>

#include "harness.h"
#include "prepare-run.h"

static void
test_examples_cap(void)
{
	json_t *split = json_loads("{\"num_train\": 600, \"num_test\": 100, "
	                           "\"client_train\": [10, 20, 30], "
	                           "\"client_holdout\": [1, 2, 3]}",
	                           0, NULL);
	CHECK(prepare_examples_cap(split, 1, EXAMPLES_TRAIN, 0) == 20);
	CHECK(prepare_examples_cap(split, 2, EXAMPLES_HOLDOUT, 0) == 3);
	CHECK(prepare_examples_cap(split, -1, EXAMPLES_TEST, 0) == 100);
	/* beyond the list: the whole training set */
	CHECK(prepare_examples_cap(split, 7, EXAMPLES_TRAIN, 0) == 600);
	CHECK(prepare_examples_cap(split, 1, EXAMPLES_TRAIN, 5) == 5);
	json_decref(split);

	json_t *sampled = json_loads("{\"num_train\": 60000, \"num_test\": "
	                             "10000, \"client_train\": 54, "
	                             "\"client_holdout\": 6}",
	                             0, NULL);
	CHECK(prepare_examples_cap(sampled, 0, EXAMPLES_TRAIN, 0) == 54);
	CHECK(prepare_examples_cap(sampled, 999999, EXAMPLES_TRAIN, 0) == 54);
	CHECK(prepare_examples_cap(sampled, 123456, EXAMPLES_HOLDOUT, 0) == 6);
	CHECK(prepare_examples_cap(sampled, -1, EXAMPLES_TEST, 0) == 10000);
	json_decref(sampled);

	json_t *none = json_object();
	CHECK(prepare_examples_cap(none, 0, EXAMPLES_TRAIN, 0) == UINT32_MAX);
	json_decref(none);
}

int
main(void)
{
	RUN(test_examples_cap);
	return harness_finish();
}
