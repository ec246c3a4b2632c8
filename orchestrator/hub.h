/* hub.h: GPT-2 checkpoints in Hugging Face's layout, in and out.
 *
 * In: a model.safetensors from the Hugging Face hub (GPT2LMHeadModel's
 * "transformer."-prefixed names or GPT2Model's bare ones, the causal-mask
 * buffers h.N.attn.bias / masked_bias of older files, a tied
 * lm_head.weight, F32, F16 or BF16) as model.init of model gpt2.
 *
 * Out: results/huggingface/, the final model as transformers'
 * from_pretrained() reads a directory: config.json, model.safetensors,
 * and the tokenizer's vocab.json and merges.txt. */
#ifndef COHORT_HUB_H
#define COHORT_HUB_H

#include "error.h"
#include "tensor.h"

/* Read the GPT-2 checkpoint at path (a safetensors file, or a directory
 * holding model.safetensors) into region, laid out by m (gpt2_manifest's
 * table). Every tensor of m must be there with its shape (a mismatch names
 * the tensor and the model.preset / model.n_* the checkpoint implies); an
 * untied lm_head.weight, any other tensor, or a sharded checkpoint is
 * refused. */
int hub_gpt2_read_into(const char *path, const struct tensor_manifest *m,
                       void *region, struct ipc_error *err);

/* Write dir (created if missing) as a Hugging Face GPT-2 directory:
 * config.json from m's sizes and n_head, model.safetensors a hard link to
 * model_path (a copy where linking fails), and vocab.json + merges.txt
 * copied from tokenizer_dir (its vocab.json/merges.txt or
 * encoder.json/vocab.bpe). Tokenizer files missing there are left out with
 * a warning; *warned is set then. */
int hub_gpt2_write_dir(const char *dir, const struct tensor_manifest *m,
                       int n_head, const char *model_path,
                       const char *tokenizer_dir, int *warned,
                       struct ipc_error *err);

#endif
