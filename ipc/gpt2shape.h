/* gpt2shape.h: the shape of a GPT-2, described once for both sides: its
 * sizes (Hugging Face's GPT2Config), the presets of the released models,
 * and its tensor table (Hugging Face's state_dict names and Conv1D layouts).
 * The worker's engine trains that table (worker/engine/gpt2.c), the
 * synthetic model moves it without training, the orchestrator sizes a job
 * and writes a Hugging Face config.json from it. */
#ifndef COHORT_GPT2SHAPE_H
#define COHORT_GPT2SHAPE_H

#include "error.h"
#include "tensor.h"

/* Sizes of a GPT-2 (Hugging Face's GPT2Config names in comments). */
struct gpt2_config {
	int max_seq_len; /* n_positions: rows of wpe */
	int vocab_size;  /* vocab_size: rows of wte */
	int num_layers;  /* n_layer */
	int num_heads;   /* n_head */
	int channels;    /* n_embd; a multiple of num_heads */
};

/* model.preset's choices. */
#define GPT2_PRESETS "tiny|gpt2-small|gpt2-medium|gpt2-large|gpt2-xl"

/* The sizes of preset name (tiny: 2 layers, 2 heads, 32 wide, 64 tokens of
 * context, 512 words; gpt2-small is "gpt2" on the Hugging Face hub, 124M
 * parameters, gpt2-medium 355M, gpt2-large 774M, gpt2-xl 1.5B: vocabulary
 * 50257, context 1024); IPC_E_BAD_VALUE listing the choices otherwise. */
int gpt2_preset(const char *name, struct gpt2_config *c, struct ipc_error *err);

/* preset's sizes with each of n_layer, n_head, n_embd, n_ctx that is
 * above 0 instead of the preset's (model.n_*); IPC_E_BAD_VALUE for an
 * unknown preset, or heads that do not divide the width. */
int gpt2_sizes(const char *preset, long n_layer, long n_head, long n_embd,
               long n_ctx, struct gpt2_config *c, struct ipc_error *err);

/* Positive sizes, heads dividing channels (IPC_E_SHAPE naming the field). */
int gpt2_config_check(const struct gpt2_config *c, struct ipc_error *err);

/* The parameter tensors of c in Hugging Face's state_dict order (F32,
 * 64-byte aligned): wte.weight [V, C], wpe.weight [maxT, C], per block
 * h.N.ln_1, attn.c_attn [C, 3C], attn.c_proj [C, C], ln_2, mlp.c_fc
 * [C, 4C], mlp.c_proj [4C, C] (weight then bias each), then ln_f. m is
 * initialised here; free it with tensor_manifest_free. */
int gpt2_manifest(const struct gpt2_config *c, struct tensor_manifest *m,
                  struct ipc_error *err);

/* The sizes of the GPT-2 whose parameters manifest m lays out (V and C
 * from wte.weight, the context from wpe.weight, the layers from the h.N
 * blocks) with num_heads heads; IPC_E_MISMATCH saying what is missing or
 * off when m is not exactly gpt2_manifest's table of those sizes. */
int gpt2_config_from_manifest(const struct tensor_manifest *m, int num_heads,
                              struct gpt2_config *c, struct ipc_error *err);

/* Where tools/fetch-gpt2-bpe.sh puts GPT-2's tokenizer files: configured
 * when not empty, else $COHORT_GPT2_BPE_DIR, else
 * ${XDG_CACHE_HOME:-$HOME/.cache}/cohort/gpt2-bpe (written into out). */
void gpt2_bpe_dir(const char *configured, char *out, size_t cap);

/* Parameters of c. */
uint64_t gpt2_param_count(const struct gpt2_config *c);

#endif
