/* models.h: the models cohort knows, one entry each, read by both sides.
 * The orchestrator checks model.name against it and plans a round from a
 * model's properties (does it have data to evaluate on?); the worker builds
 * the model, picks its training path and its GPU kernels from the same
 * entry. Nothing compares model names anywhere else.
 *
 * Adding a model: its engine (worker/engine/model.c builds the layered ones),
 * one line in models.c, and its name in MODELS_CHOICES (test_models checks
 * the two agree). */
#ifndef COHORT_MODELS_H
#define COHORT_MODELS_H

enum model_id {
	MODEL_MLP,
	MODEL_CNN,
	MODEL_GPT2,
	MODEL_SYNTHETIC,
	MODEL_CUSTOM,
	MODEL_COUNT,
};

struct model_info {
	enum model_id id;
	const char *name;
	/* Trains and evaluates on a dataset (prepared, partitioned); without,
	 * there is no evaluation and no data step. */
	int has_data;
	/* Its update is computed in closed form from the global model
	 * (worker/engine/synthetic.c), not trained: any tensor list, no
	 * engine. */
	int closed_form;
	/* The user's own: its tensors and initial values are model.init's
	 * file, and only worker.command's program trains it (the built-in
	 * worker has no engine for it). */
	int own;
	/* Trains on a text dataset (data.dataset text: token ids), not on
	 * images. */
	int text;
	/* What it is, for a user (the final model's "architecture"
	 * metadata): the layered ones as their PyTorch modules. */
	const char *summary;
};

/* model.name's choices, for the configuration schema: the names of the
 * table in order, joined by '|'. */
#define MODELS_CHOICES "mlp|cnn|gpt2|synthetic|custom"

extern const struct model_info models[MODEL_COUNT];

/* The model named name, or NULL. */
const struct model_info *models_find(const char *name);

#endif
