/* models.c: the table of models. */
#include "models.h"

#include <stddef.h>
#include <string.h>

const struct model_info models[MODEL_COUNT] = {
    [MODEL_MLP] = {MODEL_MLP, "mlp", 1, 0, 0,
                   "784-128-10 perceptron with dropout (PyTorch's MLP of "
                   "the Fashion-MNIST seeds)"},
    [MODEL_CNN] = {MODEL_CNN, "cnn", 1, 0, 0,
                   "LeNet-style 2 conv + 3 linear layers (the CIFAR-10 "
                   "seeds' Net)"},
    [MODEL_SYNTHETIC] = {MODEL_SYNTHETIC, "synthetic", 0, 1, 0,
                         "GPT-2-shaped weights, no dataset, closed-form "
                         "updates (docs/large-models.md)"},
    [MODEL_CUSTOM] = {MODEL_CUSTOM, "custom", 1, 0, 1,
                      "your own model: the tensors of model.init, trained "
                      "by worker.command's program (docs/python.md)"},
};

const struct model_info *
models_find(const char *name)
{
	for (size_t i = 0; name != NULL && i < MODEL_COUNT; i++)
		if (strcmp(models[i].name, name) == 0)
			return &models[i];
	return NULL;
}
