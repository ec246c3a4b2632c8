/* datasets.c: the table of datasets and their normalisation. */
#include "datasets.h"

#include <stddef.h>
#include <string.h>

const struct dataset_info datasets[DATASET_COUNT] = {
    [DATASET_FASHION_MNIST] = {DATASET_FASHION_MNIST,
                               "fashion-mnist",
                               1,
                               {0.2860f, 0.2860f, 0.2860f},
                               {0.3530f, 0.3530f, 0.3530f}},
    [DATASET_MNIST] = {DATASET_MNIST,
                       "mnist",
                       1,
                       {0.1307f, 0.1307f, 0.1307f},
                       {0.3081f, 0.3081f, 0.3081f}},
    [DATASET_CIFAR10] = {DATASET_CIFAR10,
                         "cifar10",
                         3,
                         {0.4914f, 0.4822f, 0.4465f},
                         {0.2470f, 0.2435f, 0.2616f}},
};

const struct dataset_info *
datasets_find(const char *name)
{
	for (size_t i = 0; name != NULL && i < DATASET_COUNT; i++)
		if (strcmp(datasets[i].name, name) == 0)
			return &datasets[i];
	return NULL;
}
