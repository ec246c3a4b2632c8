/* test_hub.c: GPT-2 checkpoints in Hugging Face's layout
 * (orchestrator/hub.c). A hub file loads into cohort's table whatever its
 * variant: names with or without "transformer.", the causal-mask buffers,
 * a tied lm_head.weight, F16 and BF16 (widened exactly), a directory
 * holding model.safetensors. Refused, saying why: an untied head, a
 * missing tensor, another size (naming the sizes the file implies), an
 * unknown tensor, a directory without the file, a sharded checkpoint.
 * results/huggingface/: config.json's fields, the model linked, the
 * tokenizer copied under Hugging Face's names, or left out with a
 * warning. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "gpt2shape.h"
#include "harness.h"
#include "hub.h"
#include "safetensors.h"
#include "util.h"

static const struct gpt2_config tiny = {.max_seq_len = 8,
                                        .vocab_size = 50,
                                        .num_layers = 2,
                                        .num_heads = 2,
                                        .channels = 16};

/* Value k of tensor i: exact in F16 and BF16 (a multiple of 1/64 below
 * 2). */
static float
value(size_t i, size_t k)
{
	return (float)((int)((i * 7 + k * 3) % 97) - 48) / 64.0f;
}

/* The expected layout and its values. */
static float *
reference(struct tensor_manifest *m)
{
	struct ipc_error err;
	CHECK_EQ_INT(gpt2_manifest(&tiny, m, &err), 0);
	float *p = calloc(1, m->total_size);
	for (size_t i = 0; i < m->count; i++)
		for (size_t k = 0; k < m->tensors[i].nbytes / 4; k++)
			p[m->tensors[i].offset / 4 + k] = value(i, k);
	return p;
}

/* Options of a hub-style file. */
struct variant {
	const char *prefix;
	int buffers; /* h.N.attn.bias and masked_bias */
	int lm_head; /* 1 tied, 2 untied */
	int dtype;   /* DTYPE_F32, DTYPE_F16, DTYPE_BF16 */
	int drop;    /* leave tensor 3 out */
	int extra;   /* add "score.weight" */
	int wide;    /* width 32 instead of 16 */
};

/* Bits of a float in F16 or BF16 (values() are exact in both). */
static uint16_t
narrow(float f, int dtype)
{
	uint32_t b;
	memcpy(&b, &f, 4);
	if (dtype == DTYPE_BF16)
		return (uint16_t)(b >> 16);
	uint32_t sign = (b >> 16) & 0x8000;
	int exp = (int)((b >> 23) & 0xff) - 127 + 15;
	uint32_t mant = (b >> 13) & 0x3ff;
	if ((b & 0x7fffffff) == 0)
		return (uint16_t)sign;
	return (uint16_t)(sign | (uint32_t)exp << 10 | mant);
}

/* Write a file of variant v at path. */
static void
write_variant(const char *path, const struct variant *v)
{
	struct gpt2_config c = tiny;
	if (v->wide)
		c.channels = 32;
	struct tensor_manifest ours, out;
	struct ipc_error err;
	CHECK_EQ_INT(gpt2_manifest(&c, &ours, &err), 0);
	tensor_manifest_init(&out);
	size_t esize = v->dtype == DTYPE_F32 ? 4 : 2;
	for (size_t i = 0; i < ours.count; i++) {
		const struct tensor_desc *t = &ours.tensors[i];
		char name[TENSOR_MAX_NAME];
		if (v->drop && i == 3)
			continue;
		snprintf(name, sizeof name, "%s%s", v->prefix, t->name);
		CHECK_EQ_INT(tensor_manifest_add(&out, name, v->dtype, t->rank,
		                                 t->shape, &err),
		             0);
		if (v->buffers && strstr(t->name, "ln_1.weight")) {
			uint64_t mask[4] = {1, 1, 8, 8}, one[1] = {1};
			snprintf(
			    name, sizeof name, "%s%.*sattn.bias", v->prefix,
			    (int)(strstr(t->name, "ln_1") - t->name), t->name);
			tensor_manifest_add(&out, name, v->dtype, 4, mask,
			                    &err);
			snprintf(name, sizeof name, "%s%.*sattn.masked_bias",
			         v->prefix,
			         (int)(strstr(t->name, "ln_1") - t->name),
			         t->name);
			tensor_manifest_add(&out, name, v->dtype, 1, one, &err);
		}
	}
	if (v->lm_head)
		tensor_manifest_add(&out, "lm_head.weight", v->dtype, 2,
		                    ours.tensors[0].shape, &err);
	if (v->extra) {
		uint64_t s[1] = {4};
		tensor_manifest_add(&out, "score.weight", v->dtype, 1, s, &err);
	}
	uint8_t *region = calloc(1, out.total_size);
	for (size_t i = 0; i < out.count; i++) {
		const struct tensor_desc *t = &out.tensors[i];
		const char *n = t->name + strlen(v->prefix);
		size_t src = SIZE_MAX;
		if (strcmp(t->name, "lm_head.weight") == 0)
			src = 0;
		for (size_t k = 0; k < ours.count && src == SIZE_MAX; k++)
			if (strcmp(ours.tensors[k].name, n) == 0)
				src = k;
		for (size_t k = 0; k < t->nbytes / esize; k++) {
			float f = src == SIZE_MAX ? 1.0f : value(src, k);
			if (v->lm_head == 2 &&
			    strcmp(t->name, "lm_head.weight") == 0 && k == 5)
				f += 0.5f;
			uint8_t *at = region + t->offset + k * esize;
			if (esize == 4) {
				memcpy(at, &f, 4);
			} else {
				uint16_t h = narrow(f, v->dtype);
				memcpy(at, &h, 2);
			}
		}
	}
	CHECK_EQ_INT(safetensors_write(path, &out, region, NULL, &err), 0);
	free(region);
	tensor_manifest_free(&out);
	tensor_manifest_free(&ours);
}

/* Read variant v with hub_gpt2_read_into: 0 and the reference values, or
 * -1 with err. */
static int
read_variant(const struct variant *v, const char *tag, struct ipc_error *err)
{
	char *path = xasprintf("%s/%s.safetensors", harness_tmpdir(), tag);
	write_variant(path, v);
	struct tensor_manifest m;
	float *want = reference(&m);
	float *got = calloc(1, m.total_size);
	int rc = hub_gpt2_read_into(path, &m, got, err);
	if (rc == 0)
		CHECK(memcmp(want, got, m.total_size) == 0);
	free(want);
	free(got);
	free(path);
	tensor_manifest_free(&m);
	return rc;
}

static void
test_variants(void)
{
	struct ipc_error err;
	struct variant v[] = {
	    {.prefix = "", .dtype = DTYPE_F32},
	    {.prefix = "transformer.", .dtype = DTYPE_F32},
	    {.prefix = "transformer.", .buffers = 1, .dtype = DTYPE_F32},
	    {.prefix = "transformer.", .lm_head = 1, .dtype = DTYPE_F32},
	    {.prefix = "", .buffers = 1, .lm_head = 1, .dtype = DTYPE_F16},
	    {.prefix = "transformer.", .dtype = DTYPE_BF16},
	};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		char tag[16];
		snprintf(tag, sizeof tag, "v%zu", i);
		CHECK_EQ_INT(read_variant(&v[i], tag, &err), 0);
	}
}

static void
test_refusals(void)
{
	struct ipc_error err;
	struct variant untied = {
	    .prefix = "", .lm_head = 2, .dtype = DTYPE_F32};
	CHECK_EQ_INT(read_variant(&untied, "untied", &err), -1);
	CHECK_STR_CONTAINS(err.message, "lm_head.weight differs from "
	                                "wte.weight");
	struct variant missing = {.prefix = "", .drop = 1, .dtype = DTYPE_F32};
	CHECK_EQ_INT(read_variant(&missing, "missing", &err), -1);
	CHECK_STR_CONTAINS(err.message, "tensor 'h.0.ln_1.bias' is missing");
	struct variant wide = {
	    .prefix = "transformer.", .wide = 1, .dtype = DTYPE_F32};
	CHECK_EQ_INT(read_variant(&wide, "wide", &err), -1);
	CHECK_STR_CONTAINS(err.message, "has shape [50, 32] where [50, 16]");
	CHECK_STR_CONTAINS(err.message,
	                   "the checkpoint is a GPT-2 of 2 blocks, width 32, "
	                   "context 8, vocabulary 50");
	CHECK_STR_CONTAINS(err.message, "model.n_embd 32");
	struct variant extra = {.prefix = "", .extra = 1, .dtype = DTYPE_F32};
	CHECK_EQ_INT(read_variant(&extra, "extra", &err), -1);
	CHECK_STR_CONTAINS(err.message,
	                   "tensor 'score.weight' is not expected");

	struct tensor_manifest m;
	float *want = reference(&m);
	char *dir = xasprintf("%s/nofile", harness_tmpdir());
	mkdir(dir, 0755);
	CHECK_EQ_INT(hub_gpt2_read_into(dir, &m, want, &err), -1);
	CHECK_STR_CONTAINS(err.message,
	                   "no model.safetensors in this directory");
	char *index = xasprintf("%s/model.safetensors.index.json", dir);
	FILE *f = fopen(index, "w");
	fputs("{}", f);
	fclose(f);
	CHECK_EQ_INT(hub_gpt2_read_into(dir, &m, want, &err), -1);
	CHECK_STR_CONTAINS(err.message, "sharded checkpoint");
	CHECK_EQ_INT(hub_gpt2_read_into(index, &m, want, &err), -1);
	CHECK_STR_CONTAINS(err.message, "sharded checkpoint");
	/* A directory with model.safetensors reads like the file. */
	char *file = xasprintf("%s/hub/model.safetensors", harness_tmpdir());
	char *hub = xasprintf("%s/hub", harness_tmpdir());
	mkdir(hub, 0755);
	struct variant plain = {.prefix = "transformer.", .dtype = DTYPE_F32};
	write_variant(file, &plain);
	float *got = calloc(1, m.total_size);
	CHECK_EQ_INT(hub_gpt2_read_into(hub, &m, got, &err), 0);
	CHECK(memcmp(got, want, m.total_size) == 0);
	free(got);
	free(file);
	free(hub);
	free(index);
	free(dir);
	free(want);
	tensor_manifest_free(&m);
}

/* A file of text at dir/name. */
static void
put(const char *dir, const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	free(path);
}

/* The text of dir/name ("" when missing; static). */
static const char *
get(const char *dir, const char *name)
{
	static char *last;
	free(last);
	last = NULL;
	char *path = xasprintf("%s/%s", dir, name);
	size_t len;
	struct ipc_error err;
	if (files_read_all(path, &last, &len, &err) != 0)
		last = xstrdup("");
	free(path);
	return last;
}

static void
test_write_dir(void)
{
	struct tensor_manifest m;
	float *p = reference(&m);
	struct ipc_error err;
	char *model = xasprintf("%s/global.safetensors", harness_tmpdir());
	struct st_metadata meta = {0};
	st_metadata_set(&meta, "format", "pt");
	CHECK_EQ_INT(safetensors_write(model, &m, p, &meta, &err), 0);
	st_metadata_free(&meta);
	char *tok = xasprintf("%s/tok", harness_tmpdir());
	mkdir(tok, 0755);
	put(tok, "encoder.json", "{\"a\": 0}");
	put(tok, "vocab.bpe", "#version: 0.2\na b\n");
	char *dir = xasprintf("%s/results/huggingface", harness_tmpdir());
	int warned = -1;
	CHECK_EQ_INT(hub_gpt2_write_dir(dir, &m, 2, model, tok, &warned, &err),
	             0);
	CHECK_EQ_INT(warned, 0);
	CHECK(strcmp(get(dir, "vocab.json"), "{\"a\": 0}") == 0);
	CHECK(strcmp(get(dir, "merges.txt"), "#version: 0.2\na b\n") == 0);
	json_error_t jerr;
	char *cfg = xasprintf("%s/config.json", dir);
	json_t *c = json_load_file(cfg, 0, &jerr);
	CHECK(c != NULL);
	CHECK_EQ_INT(json_integer_value(json_object_get(c, "n_layer")), 2);
	CHECK_EQ_INT(json_integer_value(json_object_get(c, "n_head")), 2);
	CHECK_EQ_INT(json_integer_value(json_object_get(c, "n_embd")), 16);
	CHECK_EQ_INT(json_integer_value(json_object_get(c, "n_positions")), 8);
	CHECK_EQ_INT(json_integer_value(json_object_get(c, "vocab_size")), 50);
	CHECK_EQ_INT(json_integer_value(json_object_get(c, "eos_token_id")),
	             49);
	CHECK(strcmp(json_string_value(json_object_get(c, "model_type")),
	             "gpt2") == 0);
	CHECK(strcmp(json_string_value(json_array_get(
	                 json_object_get(c, "architectures"), 0)),
	             "GPT2LMHeadModel") == 0);
	CHECK(
	    strcmp(json_string_value(json_object_get(c, "activation_function")),
	           "gelu_new") == 0);
	CHECK(json_is_true(json_object_get(c, "tie_word_embeddings")));
	json_decref(c);
	/* The model is the very file (a hard link here). */
	char *linked = xasprintf("%s/model.safetensors", dir);
	struct stat a, b;
	CHECK(stat(model, &a) == 0 && stat(linked, &b) == 0 &&
	      a.st_ino == b.st_ino);
	/* Again, without a tokenizer: written, with a warning. */
	char *empty = xasprintf("%s/empty", harness_tmpdir());
	mkdir(empty, 0755);
	char *dir2 = xasprintf("%s/results2", harness_tmpdir());
	CHECK_EQ_INT(
	    hub_gpt2_write_dir(dir2, &m, 2, model, empty, &warned, &err), 0);
	CHECK_EQ_INT(warned, 1);
	CHECK(strcmp(get(dir2, "vocab.json"), "") == 0);
	CHECK(get(dir2, "config.json")[0] == '{');
	free(empty);
	free(dir2);
	free(linked);
	free(cfg);
	free(dir);
	free(tok);
	free(model);
	free(p);
	tensor_manifest_free(&m);
}

int
main(void)
{
	RUN(test_variants);
	RUN(test_refusals);
	RUN(test_write_dir);
	return harness_finish();
}
