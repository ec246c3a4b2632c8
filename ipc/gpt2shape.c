/* gpt2shape.c: GPT-2's presets and tensor table. */
#include "gpt2shape.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const struct {
	const char *name;
	struct gpt2_config c;
} presets[] = {
    {"tiny", {64, 512, 2, 2, 32}},
    {"gpt2-small", {1024, 50257, 12, 12, 768}},
    {"gpt2-medium", {1024, 50257, 24, 16, 1024}},
    {"gpt2-large", {1024, 50257, 36, 20, 1280}},
    {"gpt2-xl", {1024, 50257, 48, 25, 1600}},
};

int
gpt2_preset(const char *name, struct gpt2_config *c, struct ipc_error *err)
{
	for (size_t i = 0; i < ARRAY_LEN(presets); i++)
		if (strcmp(presets[i].name, name) == 0) {
			*c = presets[i].c;
			return 0;
		}
	return ipc_error_set(err, IPC_E_BAD_VALUE,
	                     "model.preset \"%s\": expected one of %s", name,
	                     GPT2_PRESETS);
}

int
gpt2_sizes(const char *preset, long n_layer, long n_head, long n_embd,
           long n_ctx, struct gpt2_config *c, struct ipc_error *err)
{
	if (gpt2_preset(preset, c, err) < 0)
		return -1;
	if (n_layer > 0)
		c->num_layers = (int)n_layer;
	if (n_head > 0)
		c->num_heads = (int)n_head;
	if (n_embd > 0)
		c->channels = (int)n_embd;
	if (n_ctx > 0)
		c->max_seq_len = (int)n_ctx;
	if (c->channels % c->num_heads != 0)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "model.n_embd %d is not a multiple of "
		                     "model.n_head %d (model.preset %s gives "
		                     "the ones not set)",
		                     c->channels, c->num_heads, preset);
	return 0;
}

int
gpt2_config_check(const struct gpt2_config *c, struct ipc_error *err)
{
	const struct {
		const char *name;
		int value;
	} f[] = {{"max_seq_len", c->max_seq_len},
	         {"vocab_size", c->vocab_size},
	         {"num_layers", c->num_layers},
	         {"num_heads", c->num_heads},
	         {"channels", c->channels}};
	for (size_t i = 0; i < ARRAY_LEN(f); i++)
		if (f[i].value <= 0)
			return ipc_error_set(err, IPC_E_SHAPE,
			                     "gpt2: %s is %d, must be positive",
			                     f[i].name, f[i].value);
	if (c->channels % c->num_heads != 0)
		return ipc_error_set(err, IPC_E_SHAPE,
		                     "gpt2: channels %d is not a multiple of "
		                     "num_heads %d",
		                     c->channels, c->num_heads);
	return 0;
}

/* Append one F32 tensor of rank 1 or 2 (d1 == 0: rank 1). */
static int
add_f32(struct tensor_manifest *m, const char *name, uint64_t d0, uint64_t d1,
        struct ipc_error *err)
{
	uint64_t shape[2] = {d0, d1};
	return tensor_manifest_add(m, name, DTYPE_F32, d1 > 0 ? 2 : 1, shape,
	                           err);
}

int
gpt2_manifest(const struct gpt2_config *c, struct tensor_manifest *m,
              struct ipc_error *err)
{
	static const struct {
		const char *name;
		uint64_t d0, d1; /* in units of C; 0 = no dimension */
	} block[] = {
	    {"ln_1.weight", 1, 0},        {"ln_1.bias", 1, 0},
	    {"attn.c_attn.weight", 1, 3}, {"attn.c_attn.bias", 3, 0},
	    {"attn.c_proj.weight", 1, 1}, {"attn.c_proj.bias", 1, 0},
	    {"ln_2.weight", 1, 0},        {"ln_2.bias", 1, 0},
	    {"mlp.c_fc.weight", 1, 4},    {"mlp.c_fc.bias", 4, 0},
	    {"mlp.c_proj.weight", 4, 1},  {"mlp.c_proj.bias", 1, 0},
	};
	tensor_manifest_init(m);
	if (gpt2_config_check(c, err) != 0)
		return -1;
	uint64_t C = (uint64_t)c->channels;
	if (add_f32(m, "wte.weight", (uint64_t)c->vocab_size, C, err) < 0 ||
	    add_f32(m, "wpe.weight", (uint64_t)c->max_seq_len, C, err) < 0)
		goto fail;
	for (int l = 0; l < c->num_layers; l++)
		for (size_t k = 0; k < ARRAY_LEN(block); k++) {
			char name[TENSOR_MAX_NAME];
			snprintf(name, sizeof name, "h.%d.%s", l,
			         block[k].name);
			if (add_f32(m, name, block[k].d0 * C, block[k].d1 * C,
			            err) < 0)
				goto fail;
		}
	if (add_f32(m, "ln_f.weight", C, 0, err) < 0 ||
	    add_f32(m, "ln_f.bias", C, 0, err) < 0)
		goto fail;
	return 0;
fail:
	tensor_manifest_free(m);
	return -1;
}

uint64_t
gpt2_param_count(const struct gpt2_config *c)
{
	uint64_t C = (uint64_t)c->channels;
	uint64_t block = 12 * C * C + 13 * C;
	return ((uint64_t)c->vocab_size + (uint64_t)c->max_seq_len) * C +
	       (uint64_t)c->num_layers * block + 2 * C;
}

int
gpt2_config_from_manifest(const struct tensor_manifest *m, int num_heads,
                          struct gpt2_config *c, struct ipc_error *err)
{
	if (m->count < 4 || strcmp(m->tensors[0].name, "wte.weight") != 0 ||
	    m->tensors[0].rank != 2 ||
	    strcmp(m->tensors[1].name, "wpe.weight") != 0 ||
	    m->tensors[1].rank != 2)
		return ipc_error_set(
		    err, IPC_E_MISMATCH,
		    "not a GPT-2's tensors: expected wte.weight "
		    "[vocab, width] then wpe.weight [context, "
		    "width] first");
	c->vocab_size = (int)m->tensors[0].shape[0];
	c->channels = (int)m->tensors[0].shape[1];
	c->max_seq_len = (int)m->tensors[1].shape[0];
	c->num_heads = num_heads;
	c->num_layers = (int)((m->count - 4) / 12);
	struct tensor_manifest want;
	if (gpt2_manifest(c, &want, err) != 0)
		return -1;
	int rc = tensor_manifest_equal(m, &want, err);
	tensor_manifest_free(&want);
	if (rc != 0)
		ipc_error_prefix(err,
		                 "not GPT-2's tensors of %d blocks, width "
		                 "%d: ",
		                 c->num_layers, c->channels);
	return rc;
}

void
gpt2_bpe_dir(const char *configured, char *out, size_t cap)
{
	const char *env = getenv("COHORT_GPT2_BPE_DIR");
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	if (configured != NULL && configured[0] != '\0')
		snprintf(out, cap, "%s", configured);
	else if (env != NULL && env[0] != '\0')
		snprintf(out, cap, "%s", env);
	else if (xdg != NULL && xdg[0] != '\0')
		snprintf(out, cap, "%s/cohort/gpt2-bpe", xdg);
	else
		snprintf(out, cap, "%s/.cache/cohort/gpt2-bpe",
		         home != NULL ? home : "");
}
