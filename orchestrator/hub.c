/* hub.c: GPT-2 checkpoints in Hugging Face's layout: a hub file read into
 * cohort's table, the final model written back as a from_pretrained()
 * directory. */
#include "hub.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomicfile.h"
#include "console.h"
#include "files.h"
#include "gpt2shape.h"
#include "safetensors.h"
#include "util.h"

#define PREFIX "transformer."

/* What the renaming saw. */
struct hub_names {
	int lm_head; /* the file holds lm_head.weight */
};

/* 1 when name is h.N.<rest> for a block number N. */
static int
block_tensor(const char *name, const char *rest)
{
	if (strncmp(name, "h.", 2) != 0)
		return 0;
	const char *p = name + 2;
	if (*p < '0' || *p > '9')
		return 0;
	while (*p >= '0' && *p <= '9')
		p++;
	return *p == '.' && strcmp(p + 1, rest) == 0;
}

/* A hub name as cohort's: the prefix dropped; the mask buffers and the
 * tied head left out (the head is compared with wte afterwards). */
static int
hub_rename(const char *name, char *out, size_t cap, void *ctx,
           struct ipc_error *err)
{
	struct hub_names *h = ctx;
	(void)err;
	if (strncmp(name, PREFIX, strlen(PREFIX)) == 0)
		name += strlen(PREFIX);
	if (block_tensor(name, "attn.bias") ||
	    block_tensor(name, "attn.masked_bias"))
		return 0;
	if (strcmp(name, "lm_head.weight") == 0) {
		h->lm_head = 1;
		return 0;
	}
	snprintf(out, cap, "%s", name);
	return 1;
}

/* Only lm_head.weight, as if it were wte.weight. */
static int
head_rename(const char *name, char *out, size_t cap, void *ctx,
            struct ipc_error *err)
{
	(void)ctx;
	(void)err;
	if (strcmp(name, "lm_head.weight") != 0)
		return 0;
	snprintf(out, cap, "wte.weight");
	return 1;
}

/* The file to read for path: itself, or a directory's model.safetensors;
 * sharded checkpoints are refused. */
static char *
checkpoint_file(const char *path, struct ipc_error *err)
{
	struct stat st;
	const char *index = ".index.json";
	size_t n = strlen(path), k = strlen(index);
	if (n > k && strcmp(path + n - k, index) == 0) {
		ipc_error_set(err, IPC_E_BAD_VALUE,
		              "%s: a sharded checkpoint: cohort reads one "
		              "model.safetensors (merge the shards, e.g. load "
		              "and save_pretrained with max_shard_size large "
		              "enough)",
		              path);
		return NULL;
	}
	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return xstrdup(path);
	char *file = xasprintf("%s/model.safetensors", path);
	char *sharded = xasprintf("%s/model.safetensors.index.json", path);
	int have = files_exist(file), shards = files_exist(sharded);
	free(sharded);
	if (have)
		return file;
	free(file);
	ipc_error_set(err, IPC_E_IO,
	              shards ? "%s holds a sharded checkpoint "
	                       "(model.safetensors.index.json): cohort reads "
	                       "one model.safetensors (merge the shards)"
	                     : "%s: no model.safetensors in this directory",
	              path);
	return NULL;
}

/* Append to err what GPT-2 the file at path is, when it is one. */
static void
explain_sizes(const char *path, const struct tensor_manifest *m,
              struct ipc_error *err)
{
	struct tensor_manifest f;
	struct ipc_error ignored;
	if (safetensors_list(path, &f, &ignored) != 0)
		return;
	long vocab = 0, width = 0, ctx = 0, blocks = 0;
	for (size_t i = 0; i < f.count; i++) {
		const struct tensor_desc *t = &f.tensors[i];
		const char *name = t->name;
		if (strncmp(name, PREFIX, strlen(PREFIX)) == 0)
			name += strlen(PREFIX);
		if (strcmp(name, "wte.weight") == 0 && t->rank == 2) {
			vocab = (long)t->shape[0];
			width = (long)t->shape[1];
		} else if (strcmp(name, "wpe.weight") == 0 && t->rank == 2) {
			ctx = (long)t->shape[0];
		} else if (block_tensor(name, "ln_1.weight")) {
			blocks++;
		}
	}
	tensor_manifest_free(&f);
	struct gpt2_config want;
	if (width == 0 || gpt2_config_from_manifest(m, 1, &want, &ignored) != 0)
		return;
	char hint[512];
	snprintf(hint, sizeof hint,
	         " (the checkpoint is a GPT-2 of %ld blocks, width %ld, "
	         "context %ld, vocabulary %ld; this job's has %d, %d, %d, %d: "
	         "set model.preset, or model.n_layer %ld, model.n_embd %ld, "
	         "model.n_ctx %ld%s)",
	         blocks, width, ctx, vocab, want.num_layers, want.channels,
	         want.max_seq_len, want.vocab_size, blocks, width, ctx,
	         vocab != want.vocab_size ? "; the vocabulary is the "
	                                    "tokenizer's (data.tokenizer)"
	                                  : "");
	size_t len = strlen(err->message);
	snprintf(err->message + len, sizeof err->message - len, "%s", hint);
}

int
hub_gpt2_read_into(const char *path, const struct tensor_manifest *m,
                   void *region, struct ipc_error *err)
{
	char *file = checkpoint_file(path, err);
	if (file == NULL)
		return -1;
	struct hub_names seen = {0};
	int rc =
	    safetensors_read_renamed(file, m, region, hub_rename, &seen, err);
	if (rc != 0 && err->code == IPC_E_MISMATCH)
		explain_sizes(file, m, err);
	const struct tensor_desc *wte = m->count > 0 ? &m->tensors[0] : NULL;
	if (rc == 0 && seen.lm_head && wte != NULL) {
		/* The head must be wte itself: cohort's GPT-2 ties them. */
		struct tensor_manifest one;
		tensor_manifest_init(&one);
		rc = tensor_manifest_add(&one, "wte.weight", DTYPE_F32,
		                         wte->rank, wte->shape, err);
		void *head = NULL;
		if (rc == 0 &&
		    posix_memalign(&head, TENSOR_ALIGN, one.total_size) != 0)
			fatal("out of memory for lm_head.weight");
		if (rc == 0)
			rc = safetensors_read_renamed(file, &one, head,
			                              head_rename, NULL, err);
		if (rc == 0 && memcmp(head, (char *)region + wte->offset,
		                      wte->nbytes) != 0)
			rc =
			    ipc_error_set(err, IPC_E_MISMATCH,
			                  "%s: lm_head.weight differs from "
			                  "wte.weight: cohort's GPT-2 ties the "
			                  "head to the token embedding",
			                  file);
		free(head);
		tensor_manifest_free(&one);
	}
	free(file);
	return rc;
}

/* Copy src's bytes to fd. */
static int
copy_fill(int fd, const void *arg, struct ipc_error *err)
{
	const char *src = arg;
	int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return ipc_error_set(err, IPC_E_IO, "%s: %s", src,
		                     strerror(errno));
	char buf[1 << 16];
	ssize_t n;
	int rc = 0;
	while ((n = read(in, buf, sizeof buf)) > 0 && rc == 0)
		rc = write_all(fd, buf, (size_t)n);
	if (n < 0 || rc != 0)
		rc = ipc_error_set(err, IPC_E_IO, "copying %s: %s", src,
		                   strerror(errno));
	close(in);
	return rc;
}

/* The final model as dir/model.safetensors: a hard link, else a copy. */
static int
place_model(const char *model_path, const char *dst, struct ipc_error *err)
{
	unlink(dst);
	if (link(model_path, dst) == 0)
		return 0;
	return atomicfile_write(dst, copy_fill, model_path, err);
}

/* config.json as transformers writes a GPT2Config. */
static int
write_config(const char *path, const struct gpt2_config *c,
             struct ipc_error *err)
{
	int eos = c->vocab_size == 50257 ? 50256 : c->vocab_size - 1;
	json_t *o = json_pack(
	    "{s:s, s:[s], s:i, s:i, s:i, s:i, s:i, s:i, s:s, s:f, s:i, s:i, "
	    "s:b, s:f, s:f, s:f, s:f, s:s}",
	    "model_type", "gpt2", "architectures", "GPT2LMHeadModel", "n_layer",
	    c->num_layers, "n_head", c->num_heads, "n_embd", c->channels,
	    "n_positions", c->max_seq_len, "n_ctx", c->max_seq_len,
	    "vocab_size", c->vocab_size, "activation_function", "gelu_new",
	    "layer_norm_epsilon", 1e-5, "bos_token_id", eos, "eos_token_id",
	    eos, "tie_word_embeddings", 1, "resid_pdrop", 0.1, "embd_pdrop",
	    0.1, "attn_pdrop", 0.1, "initializer_range", 0.02, "torch_dtype",
	    "float32");
	char *text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
	int rc = atomicfile_write_buffer(path, text, strlen(text), err);
	free(text);
	json_decref(o);
	return rc;
}

/* Copy the tokenizer's vocabulary and merges under Hugging Face's names;
 * 1 when they are not there. */
static int
copy_tokenizer(const char *dir, const char *tok, struct ipc_error *err)
{
	static const char *const pairs[][2] = {{"vocab.json", "merges.txt"},
	                                       {"encoder.json", "vocab.bpe"}};
	static const char *const names[2] = {"vocab.json", "merges.txt"};
	for (size_t i = 0; i < ARRAY_LEN(pairs); i++) {
		char *src[2], *dst[2];
		int have = 1;
		for (int k = 0; k < 2; k++) {
			src[k] = xasprintf("%s/%s", tok, pairs[i][k]);
			dst[k] = xasprintf("%s/%s", dir, names[k]);
			have = have && files_exist(src[k]);
		}
		int rc = 0;
		for (int k = 0; k < 2 && have && rc == 0; k++)
			rc = atomicfile_write(dst[k], copy_fill, src[k], err);
		for (int k = 0; k < 2; k++) {
			free(src[k]);
			free(dst[k]);
		}
		if (have)
			return rc;
	}
	return 1;
}

int
hub_gpt2_write_dir(const char *dir, const struct tensor_manifest *m, int n_head,
                   const char *model_path, const char *tokenizer_dir,
                   int *warned, struct ipc_error *err)
{
	struct gpt2_config c;
	*warned = 0;
	if (gpt2_config_from_manifest(m, n_head, &c, err) != 0 ||
	    files_mkdirs(dir, 0755, err) != 0)
		return -1;
	char *config = xasprintf("%s/config.json", dir);
	char *model = xasprintf("%s/model.safetensors", dir);
	int rc = write_config(config, &c, err);
	if (rc == 0)
		rc = place_model(model_path, model, err);
	if (rc == 0) {
		rc = copy_tokenizer(dir, tokenizer_dir, err);
		if (rc == 1) {
			console_err(
			    "results: %s has no vocab.json + merges.txt "
			    "or encoder.json + vocab.bpe: "
			    "results/huggingface/ is written without the "
			    "tokenizer (copy GPT-2's there as vocab.json "
			    "and merges.txt)",
			    tokenizer_dir);
			*warned = 1;
			rc = 0;
		}
	}
	free(config);
	free(model);
	return rc;
}
