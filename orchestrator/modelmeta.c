/* modelmeta.c: the final model's safetensors metadata, from the config, the
 * model and dataset tables of ipc/ and the model's tensor list. */
#include "modelmeta.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets.h"
#include "models.h"

/* Length of name less its ".weight" (0: it does not end so). */
static size_t
weight_prefix(const char *name)
{
	size_t n = strlen(name), w = strlen(".weight");
	return n > w && strcmp(name + n - w, ".weight") == 0 ? n - w : 0;
}

/* True when d is "P.bias" right after "P.weight" (prev). */
static int
bias_of(const struct tensor_desc *prev, const struct tensor_desc *d)
{
	size_t p = weight_prefix(prev->name);
	return p > 0 && strncmp(d->name, prev->name, p) == 0 &&
	       strcmp(d->name + p, ".bias") == 0;
}

/* Write one tensor as a PyTorch module: "P.weight" [out, in] is
 * "P=Linear(in,out)", [out, in, k, k] "P=Conv2d(in,out,k)"; anything
 * else NAME[shape]. */
static void
put_layer(FILE *f, const struct tensor_desc *d)
{
	int p = (int)weight_prefix(d->name);
	unsigned long long s0 = d->shape[0], s1 = d->shape[1];
	if (p > 0 && d->rank == 2) {
		fprintf(f, "%.*s=Linear(%llu,%llu)", p, d->name, s1, s0);
	} else if (p > 0 && d->rank == 4 && d->shape[2] == d->shape[3]) {
		fprintf(f, "%.*s=Conv2d(%llu,%llu,%llu)", p, d->name, s1, s0,
		        (unsigned long long)d->shape[2]);
	} else {
		char shape[128];
		fprintf(
		    f, "%s%s", d->name,
		    tensor_shape_text(shape, sizeof shape, d->shape, d->rank));
	}
}

/* The layers of m, space-separated; a bias after its weight is implied. */
static char *
layers_text(const struct tensor_manifest *m)
{
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);
	if (f == NULL)
		fatal("open_memstream: %s", strerror(errno));
	for (size_t i = 0; i < m->count; i++) {
		if (i > 0 && bias_of(&m->tensors[i - 1], &m->tensors[i]))
			continue;
		if (i > 0)
			fputc(' ', f);
		put_layer(f, &m->tensors[i]);
	}
	fclose(f);
	return s;
}

/* Per-channel values as a JSON array, e.g. "[0.2860]". */
static char *
channels_text(const float *v, unsigned channels)
{
	char buf[96];
	size_t off = 0;
	for (unsigned c = 0; c < channels && off < sizeof buf; c++)
		off += (size_t)snprintf(buf + off, sizeof buf - off, "%s%.4f",
		                        c ? "," : "[", (double)v[c]);
	return xasprintf("%s]", buf);
}

/* The dataset, and the normalisation of a dataset the engine decodes. */
static void
put_dataset(struct st_metadata *meta, const char *name)
{
	st_metadata_set(meta, "dataset", name);
	const struct dataset_info *d = datasets_find(name);
	if (d == NULL)
		return;
	char *mean = channels_text(d->mean, d->channels);
	char *std = channels_text(d->std, d->channels);
	st_metadata_set(meta, "normalize_mean", mean);
	st_metadata_set(meta, "normalize_std", std);
	st_metadata_set(meta, "normalize", "(pixel / 255 - mean) / std");
	free(mean);
	free(std);
}

void
modelmeta_fill(struct st_metadata *meta, const struct config *c,
               const struct tensor_manifest *m, unsigned round)
{
	const struct model_info *mi = models_find(c->model.name);
	char rs[16];
	snprintf(rs, sizeof rs, "%u", round);
	st_metadata_set(meta, "format", "pt");
	st_metadata_set(meta, "model", c->model.name);
	if (mi != NULL)
		st_metadata_set(meta, "architecture", mi->summary);
	/* The engine's own models are a few layers; a synthetic or custom
	 * model's tensors are the header's own list. */
	if (mi != NULL && mi->has_data && !mi->closed_form && !mi->own) {
		char *layers = layers_text(m);
		st_metadata_set(meta, "layers", layers);
		free(layers);
	}
	if (mi != NULL && mi->closed_form && c->model.file[0] == '\0')
		st_metadata_set(meta, "preset", c->model.preset);
	put_dataset(meta,
	            mi == NULL || mi->has_data ? c->data.dataset : "none");
	st_metadata_set(meta, "round", rs);
	st_metadata_set(meta, "strategy", c->strategy.name);
	st_metadata_set(meta, "cohort_version", COHORT_VERSION);
}
