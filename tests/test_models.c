/* test_models.c: the model table: MODELS_CHOICES (the configuration
 * schema's choice list) names its entries in order, each entry's id is its
 * index, lookups find every name and nothing else, and the properties the
 * orchestrator and worker act on are the ones each model has, and the
 * mlp's architecture text names the engine's dropout. */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "model.h"
#include "models.h"

static void
test_table(void)
{
	char joined[256] = "";
	for (unsigned i = 0; i < MODEL_COUNT; i++) {
		CHECK_EQ_INT(models[i].id, i);
		CHECK(models_find(models[i].name) == &models[i]);
		if (i > 0)
			strcat(joined, "|");
		strcat(joined, models[i].name);
		CHECK(models[i].summary != NULL && models[i].summary[0]);
	}
	CHECK(strcmp(joined, MODELS_CHOICES) == 0);
	CHECK(models_find("gpt-2") == NULL);
	CHECK(models_find("") == NULL);
	CHECK(models_find(NULL) == NULL);
	/* What the orchestrator and the worker read: the synthetic model
	 * has no data and a closed-form update; the layered ones train on
	 * data. */
	CHECK(!models[MODEL_SYNTHETIC].has_data &&
	      models[MODEL_SYNTHETIC].closed_form);
	CHECK(models[MODEL_MLP].has_data && !models[MODEL_MLP].closed_form);
	CHECK(models[MODEL_CNN].has_data && !models[MODEL_CNN].closed_form);
	/* Only gpt2 trains on text. */
	for (unsigned i = 0; i < MODEL_COUNT; i++)
		CHECK_EQ_INT(models[i].text, i == MODEL_GPT2);
	CHECK(models[MODEL_GPT2].has_data && !models[MODEL_GPT2].closed_form);
	/* Only the custom model is the user's own (model.init, worker.command).
	 */
	for (unsigned i = 0; i < MODEL_COUNT; i++)
		CHECK_EQ_INT(models[i].own, i == MODEL_CUSTOM);
	CHECK(models[MODEL_CUSTOM].has_data &&
	      !models[MODEL_CUSTOM].closed_form);
	/* The mlp's architecture, written into the final model's metadata,
	 * names the dropout the engine trains with. */
	char dropout[32];
	snprintf(dropout, sizeof dropout, "Dropout(%g)", (double)MLP_DROPOUT);
	CHECK_STR_CONTAINS(models[MODEL_MLP].summary, dropout);
}

int
main(void)
{
	RUN(test_table);
	return harness_finish();
}
