/* datasets.h: the image datasets cohort decodes, one entry each, read by
 * both sides: the worker scales every pixel with its entry's mean and std
 * (worker/data/dataset.c), the orchestrator writes them into the final
 * model's metadata, so whoever loads the model feeds it inputs scaled the
 * same way. */
#ifndef COHORT_DATASETS_H
#define COHORT_DATASETS_H

enum dataset_id {
	DATASET_FASHION_MNIST,
	DATASET_MNIST,
	DATASET_CIFAR10,
	DATASET_COUNT,
};

struct dataset_info {
	enum dataset_id id;
	const char *name;
	unsigned channels;
	/* Per channel, the network's input is (pixel / 255 - mean) / std. */
	float mean[3], std[3];
};

extern const struct dataset_info datasets[DATASET_COUNT];

/* The dataset named name, or NULL (also for "none"). */
const struct dataset_info *datasets_find(const char *name);

#endif
