/* test_accuracy.c: the MLP learns real Fashion-MNIST: one epoch with the
 * default settings reaches at least 80% test accuracy (the engine end to
 * end: decode, batches, layers, optimiser). Skipped without the dataset. */
#include "harness.h"
#include "dataset.h"
#include "model.h"
#include "train.h"

#include <stdlib.h>
#include <unistd.h>

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

/* Prepare one split into the test's temporary cache and map it. */
static int
open_split(const char *split, struct dataset *ds)
{
	struct ipc_error err;
	char path[4096];
	if (dataset_prepare("fashion-mnist", FASHION_DIR, split,
	                    harness_tmpdir(), path, sizeof path, &err) != 0 ||
	    dataset_open(path, ds, &err) != 0) {
		harness_fail(__FILE__, __LINE__, "%s: %s", split, err.message);
		return -1;
	}
	return 0;
}

static void
test_mlp_one_epoch_fashion_mnist(void)
{
	if (access(FASHION_DIR "/train-images-idx3-ubyte.gz", R_OK) != 0) {
		harness_skip(FASHION_DIR " is missing (apt-get install "
		                         "dataset-fashion-mnist)");
		return;
	}
	struct dataset train, test;
	if (open_split("train", &train) != 0)
		return;
	if (open_split("test", &test) != 0) {
		dataset_close(&train);
		return;
	}
	struct ipc_error err;
	struct model_shape s = {1, 28, 28, 10};
	struct model *m = model_create("mlp", &s, &err);
	float *params = malloc(model_manifest(m)->total_size);
	model_init(m, params, 1);
	struct train_config cfg;
	train_config_defaults(&cfg);
	struct train_stats st;
	CHECK(train_local(m, params, NULL, &train, NULL, 0, &cfg, &st, NULL,
	                  NULL, &err) == 0);
	double loss, acc;
	CHECK(model_evaluate(m, params, &test, NULL, 0, 256, &loss, &acc,
	                     &err) == 0);
	printf("  mlp 1 epoch: %.3f s (%.0f samples/s, %.1f GFLOP/s), "
	       "train loss %.4f, test loss %.4f, test accuracy %.4f\n",
	       st.seconds, (double)st.num_examples / st.seconds, st.gflops,
	       st.loss, loss, acc);
	CHECK_EQ_INT(st.num_examples, 60000);
	CHECK_EQ_INT(st.steps, 1875);
	CHECK(acc >= 0.80);
	free(params);
	model_free(m);
	dataset_close(&train);
	dataset_close(&test);
}

int
main(void)
{
	RUN(test_mlp_one_epoch_fashion_mnist);
	return harness_finish();
}
