/* synthetic.c: GPT-2-shaped (or file-shaped) synthetic models with a
 * deterministic fill and a closed-form update, for weight-exchange runs. */
#include "synthetic.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"
#include "util.h"

void
synthetic_fill(const struct tensor_manifest *m, void *region)
{
	uint64_t k = 0;
	for (size_t i = 0; i < m->count; i++) {
		float *x = (float *)((char *)region + m->tensors[i].offset);
		size_t n = m->tensors[i].nbytes / sizeof(float);
		for (size_t e = 0; e < n; e++, k++)
			x[e] = (float)((int)(k * 2654435761u % 257) - 128) *
			       0x1p-9f;
	}
}

uint64_t
synthetic_fit(const struct tensor_manifest *m, void *region, int64_t client,
              uint32_t round, uint32_t epochs)
{
	if (epochs > 0) {
		float scale = (float)(client + 1) * (float)epochs * 0x1p-12f;
		uint64_t k = 0;
		for (size_t i = 0; i < m->count; i++) {
			float *x =
			    (float *)((char *)region + m->tensors[i].offset);
			size_t n = m->tensors[i].nbytes / sizeof(float);
			for (size_t e = 0; e < n; e++, k++)
				x[e] += scale * (float)(1 + (k + round) % 4);
		}
	}
	return (uint64_t)(client + 1);
}

int
synthetic_write_initial(const char *preset, const char *file, const char *path,
                        struct ipc_error *err)
{
	struct tensor_manifest m;
	if (synthetic_manifest(preset, file, &m, err) < 0)
		return -1;
	void *region = NULL;
	if (posix_memalign(&region, TENSOR_ALIGN, m.total_size) != 0)
		fatal("out of memory for %llu bytes of parameters",
		      (unsigned long long)m.total_size);
	memset(region, 0, m.total_size);
	synthetic_fill(&m, region);
	struct st_metadata meta = {0};
	st_metadata_set(&meta, "format", "pt");
	st_metadata_set(&meta, "cohort.model", "synthetic");
	int rc = safetensors_write(path, &m, region, &meta, err);
	st_metadata_free(&meta);
	free(region);
	tensor_manifest_free(&m);
	return rc;
}
