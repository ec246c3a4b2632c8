/* models.c: the table of models. */
#include "models.h"

#include <stddef.h>
#include <string.h>

const struct model_info models[MODEL_COUNT] = {
    [MODEL_MLP] = {MODEL_MLP, "mlp", 1, 0, 0, 0,
                   "Flatten -> Linear(pixels,128) -> ReLU -> Dropout(0.2) "
                   "-> Linear(128,classes) (PyTorch's MLP of the "
                   "Fashion-MNIST seeds)"},
    [MODEL_CNN] = {MODEL_CNN, "cnn", 1, 0, 0, 0,
                   "Conv2d(channels,6,5) -> ReLU -> MaxPool2d(2) -> "
                   "Conv2d(6,16,5) -> ReLU -> MaxPool2d(2) -> Flatten -> "
                   "Linear(features,120) -> ReLU -> Linear(120,84) -> ReLU "
                   "-> Linear(84,classes) (LeNet-style, the CIFAR-10 seeds' "
                   "Net)"},
    [MODEL_GPT2] = {MODEL_GPT2, "gpt2", 1, 0, 0, 1,
                    "GPT2LMHeadModel: token + position embeddings, "
                    "pre-LayerNorm blocks of causal self-attention and a "
                    "GELU MLP, final LayerNorm, head tied to the token "
                    "embedding (Hugging Face's GPT-2; docs/gpt2.md)"},
    [MODEL_SYNTHETIC] = {MODEL_SYNTHETIC, "synthetic", 0, 1, 0, 0,
                         "GPT-2-shaped weights, no dataset, closed-form "
                         "updates (docs/large-models.md)"},
    [MODEL_CUSTOM] = {MODEL_CUSTOM, "custom", 1, 0, 1, 0,
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
