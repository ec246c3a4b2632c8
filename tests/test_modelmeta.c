/* test_modelmeta.c: the metadata of results/global_model.safetensors, read
 * back from a written file as a user's loader sees it: the cnn on CIFAR-10
 * names its layers and three channels of normalisation, a synthetic model
 * its preset and no dataset, and "format" stays "pt". */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "harness.h"
#include "modelmeta.h"
#include "safetensors.h"

/* Add tensor name of the given shape (F32) to m. */
static void
add(struct tensor_manifest *m, const char *name, int rank, uint64_t d0,
    uint64_t d1, uint64_t d2, uint64_t d3)
{
	uint64_t shape[4] = {d0, d1, d2, d3};
	struct ipc_error err;
	CHECK_EQ_INT(tensor_manifest_add(m, name, DTYPE_F32, rank, shape, &err),
	             0);
}

/* Fill, write and read back the metadata of model m after round, for the
 * defaults with the "key=value" overrides sets. */
static struct st_metadata
round_trip(const struct tensor_manifest *m, unsigned round,
           const char *const *sets, size_t n)
{
	struct config c;
	struct ipc_error err;
	config_defaults(&c);
	for (size_t i = 0; i < n; i++)
		CHECK_EQ_INT(config_set(&c, sets[i], &err), 0);
	struct st_metadata meta = {0}, back = {0};
	modelmeta_fill(&meta, &c, m, round);
	void *region = xcalloc(1, m->total_size ? m->total_size : 1);
	char *path = xasprintf("%s/model.safetensors", harness_tmpdir());
	CHECK_EQ_INT(safetensors_write(path, m, region, &meta, &err), 0);
	struct tensor_manifest got;
	void *data;
	CHECK_EQ_INT(safetensors_read(path, &got, &data, &back, &err), 0);
	tensor_manifest_free(&got);
	free(data);
	free(path);
	free(region);
	st_metadata_free(&meta);
	config_free(&c);
	return back;
}

/* Value of key in meta, "(missing)" when it has none. */
static const char *
get(const struct st_metadata *meta, const char *key)
{
	const char *v = st_metadata_get(meta, key);
	return v != NULL ? v : "(missing)";
}

/* The cnn as the engine builds it for CIFAR-10, after round 7 of FedAdam. */
static void
test_cnn(void)
{
	struct tensor_manifest m;
	tensor_manifest_init(&m);
	add(&m, "conv1.weight", 4, 6, 3, 5, 5);
	add(&m, "conv1.bias", 1, 6, 0, 0, 0);
	add(&m, "conv2.weight", 4, 16, 6, 5, 5);
	add(&m, "conv2.bias", 1, 16, 0, 0, 0);
	add(&m, "fc1.weight", 2, 120, 400, 0, 0);
	add(&m, "fc1.bias", 1, 120, 0, 0, 0);
	const char *sets[] = {"model.name=cnn", "data.dataset=cifar10",
	                      "strategy.name=fedadam"};
	struct st_metadata meta = round_trip(&m, 7, sets, ARRAY_LEN(sets));
	CHECK(strcmp(get(&meta, "format"), "pt") == 0);
	CHECK(strcmp(get(&meta, "model"), "cnn") == 0);
	CHECK(strcmp(get(&meta, "round"), "7") == 0);
	CHECK(strcmp(get(&meta, "strategy"), "fedadam") == 0);
	CHECK(strcmp(get(&meta, "dataset"), "cifar10") == 0);
	CHECK(strcmp(get(&meta, "layers"),
	             "conv1=Conv2d(3,6,5) conv2=Conv2d(6,16,5) "
	             "fc1=Linear(400,120)") == 0);
	CHECK_STR_CONTAINS(get(&meta, "architecture"), "MaxPool2d(2)");
	CHECK(strcmp(get(&meta, "normalize_mean"), "[0.4914,0.4822,0.4465]") ==
	      0);
	CHECK(strcmp(get(&meta, "normalize_std"), "[0.2470,0.2435,0.2616]") ==
	      0);
	CHECK(strcmp(get(&meta, "cohort_version"), COHORT_VERSION) == 0);
	st_metadata_free(&meta);
	tensor_manifest_free(&m);
}

/* A synthetic model: its preset, no dataset and no normalisation, and no
 * layer list (its tensors are the header's own). */
static void
test_synthetic(void)
{
	struct tensor_manifest m;
	tensor_manifest_init(&m);
	add(&m, "wte.weight", 2, 16, 8, 0, 0);
	const char *sets[] = {"model.name=synthetic"};
	struct st_metadata meta = round_trip(&m, 2, sets, ARRAY_LEN(sets));
	CHECK(strcmp(get(&meta, "model"), "synthetic") == 0);
	CHECK(strcmp(get(&meta, "preset"), "tiny") == 0);
	CHECK(strcmp(get(&meta, "dataset"), "none") == 0);
	CHECK(st_metadata_get(&meta, "normalize_mean") == NULL);
	CHECK(st_metadata_get(&meta, "layers") == NULL);
	CHECK(strcmp(get(&meta, "round"), "2") == 0);
	st_metadata_free(&meta);
	tensor_manifest_free(&m);
}

int
main(void)
{
	RUN(test_cnn);
	RUN(test_synthetic);
	return harness_finish();
}
