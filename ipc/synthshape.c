/* synthshape.c: the tensor lists of the synthetic model: GPT-2 sizes
 * (Hugging Face GPT2Model state_dict names and shapes) or a safetensors
 * file's F32 tensors. The worker fills and trains them; the orchestrator
 * sizes a job's memory from them before anything is prepared. */
#include "synthshape.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpt2shape.h"
#include "safetensors.h"
#include "util.h"

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
		struct gpt2_config c;
		rc = gpt2_preset(preset, &c, err);
		if (rc == 0)
			rc = gpt2_manifest(&c, m, err);
	}
	if (rc < 0)
		tensor_manifest_free(m);
	return rc;
}
