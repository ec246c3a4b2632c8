/* synthshape.c: the tensor lists of the synthetic model: GPT-2 sizes
 * (Hugging Face GPT2Model state_dict names and shapes) or a safetensors
 * file's F32 tensors. The worker fills and trains them; the orchestrator
 * sizes a job's memory from them before anything is prepared. */
#include "synthshape.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"
#include "util.h"

/* A GPT-2 size: embedding width, layers, vocabulary, context. */
struct gpt2_size {
	const char *preset;
	uint64_t d, layers, vocab, context;
};

static const struct gpt2_size gpt2_sizes[] = {
    {"tiny", 32, 2, 512, 64},
    {"gpt2-small", 768, 12, 50257, 1024},
    {"gpt2-large", 1280, 36, 50257, 1024},
};

/* Append one F32 tensor of rank 1 or 2 (d1 == 0: rank 1). */
static int
add(struct tensor_manifest *m, const char *name, uint64_t d0, uint64_t d1,
    struct ipc_error *err)
{
	uint64_t shape[2] = {d0, d1};
	return tensor_manifest_add(m, name, DTYPE_F32, d1 ? 2 : 1, shape, err);
}

/* The GPT2Model parameters of one size, in state_dict order. */
static int
gpt2_manifest(const struct gpt2_size *s, struct tensor_manifest *m,
              struct ipc_error *err)
{
	uint64_t d = s->d;
	if (add(m, "wte.weight", s->vocab, d, err) < 0 ||
	    add(m, "wpe.weight", s->context, d, err) < 0)
		return -1;
	for (uint64_t i = 0; i < s->layers; i++) {
		static const struct {
			const char *name;
			uint64_t d0, d1; /* in units of d; 0 = no dim */
		} layer[] = {
		    {"ln_1.weight", 1, 0},        {"ln_1.bias", 1, 0},
		    {"attn.c_attn.weight", 1, 3}, {"attn.c_attn.bias", 3, 0},
		    {"attn.c_proj.weight", 1, 1}, {"attn.c_proj.bias", 1, 0},
		    {"ln_2.weight", 1, 0},        {"ln_2.bias", 1, 0},
		    {"mlp.c_fc.weight", 1, 4},    {"mlp.c_fc.bias", 4, 0},
		    {"mlp.c_proj.weight", 4, 1},  {"mlp.c_proj.bias", 1, 0},
		};
		for (size_t k = 0; k < ARRAY_LEN(layer); k++) {
			char name[TENSOR_MAX_NAME];
			snprintf(name, sizeof name, "h.%llu.%s",
			         (unsigned long long)i, layer[k].name);
			if (add(m, name, layer[k].d0 * d, layer[k].d1 * d,
			        err) < 0)
				return -1;
		}
	}
	if (add(m, "ln_f.weight", d, 0, err) < 0 ||
	    add(m, "ln_f.bias", d, 0, err) < 0)
		return -1;
	return 0;
}

/* The tensor list of a safetensors file (header only; F32 tensors). */
static int
file_manifest(const char *path, struct tensor_manifest *m,
              struct ipc_error *err)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return ipc_error_set(err, IPC_E_IO,
		                     "model.file %s: %s (set model.file to a "
		                     "safetensors file, or use model.preset)",
		                     path, strerror(errno));
	uint8_t len8[8];
	uint64_t n = 0;
	int rc = -1;
	uint8_t *json = NULL;
	if (fread(len8, 1, 8, f) != 8)
		goto bad;
	for (int i = 7; i >= 0; i--)
		n = n << 8 | len8[i];
	if (n == 0 || n > SAFETENSORS_MAX_HEADER)
		goto bad;
	json = xmalloc(n);
	if (fread(json, 1, n, f) != n || fseek(f, 0, SEEK_END) != 0)
		goto bad;
	long end = ftell(f);
	if (end < 0 || (uint64_t)end < 8 + n)
		goto bad;
	struct tensor_manifest file;
	tensor_manifest_init(&file);
	if (safetensors_parse_header(json, n, (uint64_t)end - 8 - n, &file,
	                             NULL, err) < 0) {
		ipc_error_prefix(err, "model.file %s: ", path);
		goto out;
	}
	rc = 0;
	for (size_t i = 0; i < file.count && rc == 0; i++) {
		const struct tensor_desc *t = &file.tensors[i];
		if (t->dtype != DTYPE_F32)
			rc = ipc_error_set(err, IPC_E_DTYPE,
			                   "model.file %s: tensor %s is %s; "
			                   "the synthetic model uses F32 "
			                   "tensors only",
			                   path, t->name,
			                   tensor_dtype_name(t->dtype));
		else
			rc = tensor_manifest_add(m, t->name, DTYPE_F32, t->rank,
			                         t->shape, err);
	}
	tensor_manifest_free(&file);
	goto out;
bad:
	rc = ipc_error_set(err, IPC_E_BAD_VALUE,
	                   "model.file %s: not a safetensors file", path);
out:
	free(json);
	fclose(f);
	return rc;
}

int
synthetic_manifest(const char *preset, const char *file,
                   struct tensor_manifest *m, struct ipc_error *err)
{
	tensor_manifest_init(m);
	int rc = -1;
	if (file != NULL && file[0] != '\0') {
		rc = file_manifest(file, m, err);
	} else {
		for (size_t i = 0; i < ARRAY_LEN(gpt2_sizes); i++)
			if (strcmp(gpt2_sizes[i].preset, preset) == 0)
				rc = gpt2_manifest(&gpt2_sizes[i], m, err);
		if (rc < 0 && m->count == 0)
			ipc_error_set(err, IPC_E_BAD_VALUE,
			              "model.preset \"%s\": expected tiny, "
			              "gpt2-small or gpt2-large",
			              preset);
	}
	if (rc < 0)
		tensor_manifest_free(m);
	return rc;
}
