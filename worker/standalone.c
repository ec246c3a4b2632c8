/* standalone.c: `cohort-worker --standalone`: train a built-in model on a
 * whole dataset without an orchestrator and print one line per epoch; the
 * quickest way to check accuracy and speed of the engine (CPU or GPU) on a
 * machine. */
#include "standalone.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "dataset.h"
#include "model.h"
#include "models.h"
#include "prepare.h"
#include "rng.h"
#include "train.h"

#define DEFAULT_FASHION_DIR "/usr/share/datasets/fashion-mnist"

struct options {
	const char *model, *dataset, *data_dir, *cache_dir, *device;
	struct train_config cfg;
	unsigned long threads;
};

/* Print the option summary to f. */
static void
usage(FILE *f)
{
	fprintf(f, "usage: cohort-worker --standalone [options]\n"
	           "  --model mlp|cnn          model (default mlp)\n"
	           "  --epochs E               epochs (default 1)\n"
	           "  --lr LR                  learning rate (default 0.01)\n"
	           "  --momentum M             SGD momentum (default 0.9)\n"
	           "  --batch-size B           batch size (default 32)\n"
	           "  --optimizer sgd|adam|adamw  optimiser (default sgd)\n"
	           "  --seed S                 seed of init, shuffles, dropout "
	           "(default 1)\n"
	           "  --dataset NAME           fashion-mnist|mnist|cifar10 "
	           "(default fashion-mnist)\n"
	           "  --data-dir DIR           source files "
	           "(default " DEFAULT_FASHION_DIR
	           " for fashion-mnist; required for mnist and cifar10)\n"
	           "  --cache-dir DIR          decoded cache (default "
	           "$XDG_CACHE_HOME/cohort, ~/.cache/cohort or\n"
	           "                           /tmp/cohort-cache)\n"
	           "  --threads N              OpenBLAS threads (default 1)\n"
	           "  --device D               cpu|auto|cuda|cuda:N (default "
	           "cpu; on a GPU\n"
	           "                           the optimiser state restarts "
	           "every epoch)\n"
	           "  --help                   this text\n");
}

/* A bad option: one line saying what is wrong, then the usage; exit 2. */
static int
bad_option(const char *fmt, const char *opt, const char *value)
{
	fprintf(stderr, "cohort-worker: ");
	fprintf(stderr, fmt, opt, value);
	fputc('\n', stderr);
	usage(stderr);
	return 2;
}

/* Parse an unsigned integer in [lo, hi]; -1 if s is not one. */
static int
parse_ulong(const char *s, unsigned long lo, unsigned long hi,
            unsigned long *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < lo ||
	    v > hi)
		return -1;
	*out = v;
	return 0;
}

/* Parse a finite float >= 0; -1 if s is not one. */
static int
parse_float(const char *s, float *out)
{
	char *end;
	errno = 0;
	float v = strtof(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= 0.0f) || v > 1e30f)
		return -1;
	*out = v;
	return 0;
}

/* Fill o from argv; 0 to run, 1 after --help, 2 on a bad option. */
static int
parse_options(int argc, char **argv, struct options *o)
{
	enum {
		O_MODEL = 256,
		O_EPOCHS,
		O_LR,
		O_MOMENTUM,
		O_BATCH,
		O_OPT,
		O_SEED,
		O_DATASET,
		O_DATA_DIR,
		O_CACHE_DIR,
		O_THREADS,
		O_DEVICE,
		O_HELP
	};
	static const struct option longopts[] = {
	    {"model", required_argument, NULL, O_MODEL},
	    {"epochs", required_argument, NULL, O_EPOCHS},
	    {"lr", required_argument, NULL, O_LR},
	    {"momentum", required_argument, NULL, O_MOMENTUM},
	    {"batch-size", required_argument, NULL, O_BATCH},
	    {"optimizer", required_argument, NULL, O_OPT},
	    {"seed", required_argument, NULL, O_SEED},
	    {"dataset", required_argument, NULL, O_DATASET},
	    {"data-dir", required_argument, NULL, O_DATA_DIR},
	    {"cache-dir", required_argument, NULL, O_CACHE_DIR},
	    {"threads", required_argument, NULL, O_THREADS},
	    {"device", required_argument, NULL, O_DEVICE},
	    {"help", no_argument, NULL, O_HELP},
	    {NULL, 0, NULL, 0}};
	struct ipc_error err;
	unsigned long v;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		const char *a = optarg, *name = argv[optind - 1];
		switch (c) {
		case O_MODEL:
			if (models_find(a) != NULL && models_find(a)->text)
				return bad_option(
				    "%s: model %s trains in a "
				    "job only (data.dataset text; "
				    "docs/gpt2.md)",
				    "--model", a);
			if (models_find(a) == NULL ||
			    models_find(a)->closed_form)
				return bad_option("%s: unknown model \"%s\" "
				                  "(choose mlp or cnn)",
				                  "--model", a);
			o->model = a;
			break;
		case O_EPOCHS:
			if (parse_ulong(a, 0, 100000, &v) != 0)
				return bad_option("%s: \"%s\" is not an epoch "
				                  "count (0 to 100000)",
				                  "--epochs", a);
			o->cfg.epochs = (uint32_t)v;
			break;
		case O_LR:
			if (parse_float(a, &o->cfg.lr) != 0)
				return bad_option("%s: \"%s\" is not a "
				                  "learning rate (a number "
				                  ">= 0)",
				                  "--lr", a);
			break;
		case O_MOMENTUM:
			if (parse_float(a, &o->cfg.momentum) != 0 ||
			    o->cfg.momentum >= 1.0f)
				return bad_option("%s: \"%s\" is not a "
				                  "momentum (0 <= m < 1)",
				                  "--momentum", a);
			break;
		case O_BATCH:
			if (parse_ulong(a, 1, 1 << 20, &v) != 0)
				return bad_option("%s: \"%s\" is not a batch "
				                  "size (1 to 1048576)",
				                  "--batch-size", a);
			o->cfg.batch_size = (uint32_t)v;
			break;
		case O_OPT:
			if (optimizer_parse(a, &o->cfg.optimizer, &err) != 0)
				return bad_option("%s: %s", "--optimizer",
				                  err.message);
			break;
		case O_SEED:
			if (parse_ulong(a, 0, ~0UL, &v) != 0)
				return bad_option("%s: \"%s\" is not a seed "
				                  "(an integer >= 0)",
				                  "--seed", a);
			o->cfg.seed = v;
			break;
		case O_DATASET:
			if (strcmp(a, "fashion-mnist") != 0 &&
			    strcmp(a, "mnist") != 0 &&
			    strcmp(a, "cifar10") != 0)
				return bad_option(
				    "%s: unknown dataset \"%s\" "
				    "(choose fashion-mnist, mnist "
				    "or cifar10)",
				    "--dataset", a);
			o->dataset = a;
			break;
		case O_DATA_DIR:
			o->data_dir = a;
			break;
		case O_CACHE_DIR:
			o->cache_dir = a;
			break;
		case O_THREADS:
			if (parse_ulong(a, 1, 1024, &v) != 0)
				return bad_option("%s: \"%s\" is not a thread "
				                  "count (1 to 1024)",
				                  "--threads", a);
			o->threads = v;
			break;
		case O_DEVICE:
			if (strcmp(a, "cpu") != 0 && strcmp(a, "auto") != 0 &&
			    strcmp(a, "cuda") != 0 &&
			    strncmp(a, "cuda:", 5) != 0)
				return bad_option("%s: unknown device \"%s\" "
				                  "(choose cpu, auto, cuda or "
				                  "cuda:N)",
				                  "--device", a);
			o->device = a;
			break;
		case O_HELP:
			usage(stdout);
			return 1;
		default:
			return bad_option("%s%s: unknown option or missing "
			                  "value",
			                  name, "");
		}
	}
	if (optind < argc)
		return bad_option("%s%s: unexpected argument", argv[optind],
		                  "");
	if (o->data_dir == NULL && strcmp(o->dataset, "fashion-mnist") != 0)
		return bad_option("--dataset %s has no default location: give "
		                  "--data-dir DIR%s",
		                  o->dataset, "");
	return 0;
}

/* Prepare (decode once, cached) and map one split. */
static int
open_split(const struct options *o, const char *dir, const char *split,
           struct dataset *ds)
{
	struct ipc_error err;
	char path[4096];
	if (dataset_prepare(o->dataset, dir, split, o->cache_dir, path,
	                    sizeof path, &err) != 0 ||
	    dataset_open(path, ds, &err) != 0) {
		fprintf(stderr, "cohort-worker: %s\n", err.message);
		if (strcmp(o->dataset, "fashion-mnist") == 0 &&
		    strcmp(dir, DEFAULT_FASHION_DIR) == 0)
			fprintf(stderr, "cohort-worker: install it with "
			                "\"apt-get install "
			                "dataset-fashion-mnist\" or give "
			                "--data-dir DIR\n");
		return -1;
	}
	return 0;
}

/* One epoch through a GPU backend: one b->train call of one epoch. Its seed
 * is the epoch's own, so every epoch reshuffles and draws new dropout
 * masks; the optimiser state (momentum, Adam moments) starts from zero each
 * epoch, unlike the CPU session. */
static int
backend_epoch(struct backend *b, struct model *m, float *params,
              const struct dataset *ds, const struct train_config *cfg,
              uint32_t epoch, struct train_stats *st, struct ipc_error *err)
{
	struct train_config one = *cfg;
	one.epochs = 1;
	one.seed = rng_derive(cfg->seed, "standalone-epoch", epoch);
	return b->train(b, m, params, NULL, ds, NULL, 0, &one, st, NULL, NULL,
	                err);
}

/* Train on the training split, evaluating on the test split every epoch. */
static int
run(const struct options *o)
{
	const char *dir =
	    o->data_dir != NULL ? o->data_dir : DEFAULT_FASHION_DIR;
	struct dataset train, test;
	struct ipc_error err;
	if (open_split(o, dir, "train", &train) != 0)
		return 1;
	if (open_split(o, dir, "test", &test) != 0) {
		dataset_close(&train);
		return 1;
	}
	struct model_shape shape = {(int)train.channels, (int)train.height,
	                            (int)train.width, (int)train.classes};
	struct model *m = model_create(o->model, &shape, &err);
	if (m == NULL) {
		fprintf(stderr, "cohort-worker: %s\n", err.message);
		dataset_close(&train);
		dataset_close(&test);
		return 1;
	}
	struct backend *b = NULL;
	if (backend_open(o->device, &b, &err) != 0) {
		fprintf(stderr, "cohort-worker: %s\n", err.message);
		model_free(m);
		dataset_close(&train);
		dataset_close(&test);
		return 1;
	}
	/* The CPU keeps its epoch-wise session: results as before. */
	int on_cpu = strcmp(b->name, "cpu") == 0;
	const struct tensor_manifest *mf = model_manifest(m);
	float *params = aligned_alloc(TENSOR_ALIGN, mf->total_size);
	if (params == NULL)
		fatal("standalone: out of memory for parameters");
	model_init(m, params, o->cfg.seed);
	printf("# %s on %s (%u train, %u test samples), %s, lr %g, batch %u, "
	       "%lu thread(s), %.3f MFLOP per sample, device %s\n",
	       o->model, o->dataset, train.count, test.count,
	       optimizer_name(o->cfg.optimizer), (double)o->cfg.lr,
	       o->cfg.batch_size, o->threads,
	       (double)model_flops_per_sample(m) / 1e6, b->name);
	printf("%5s %10s %9s %10s %9s %8s %10s %8s\n", "epoch", "train_loss",
	       "train_acc", "test_loss", "test_acc", "seconds", "samples/s",
	       "GFLOP/s");
	fflush(stdout);

	int rc = 0;
	struct train_session *s = NULL;
	if (on_cpu && o->cfg.epochs > 0)
		s = train_begin(m, params, NULL, &train, NULL, 0, &o->cfg,
		                &err);
	if (on_cpu && o->cfg.epochs > 0 && s == NULL)
		rc = -1;
	for (uint32_t e = 1; rc == 0 && e <= o->cfg.epochs; e++) {
		struct train_stats st;
		double test_loss, test_acc;
		if (on_cpu)
			rc = train_epoch(s, &st, NULL, NULL, &err);
		else
			rc = backend_epoch(b, m, params, &train, &o->cfg, e - 1,
			                   &st, &err);
		if (rc == 0)
			rc = b->evaluate(b, m, params, &test, NULL, 0, 256,
			                 &test_loss, &test_acc, &err);
		if (rc == 0) {
			printf("%5u %10.4f %9.4f %10.4f %9.4f %8.3f %10.0f "
			       "%8.2f\n",
			       e, st.loss, st.accuracy, test_loss, test_acc,
			       st.seconds, (double)train.count / st.seconds,
			       st.gflops);
			fflush(stdout);
		}
	}
	if (rc != 0)
		fprintf(stderr, "cohort-worker: %s\n", err.message);
	train_end(s);
	backend_close(b);
	free(params);
	model_free(m);
	dataset_close(&train);
	dataset_close(&test);
	return rc == 0 ? 0 : 1;
}

/* Entry point for `cohort-worker --standalone ...`. */
int
standalone_main(int argc, char **argv)
{
	struct options o = {.model = "mlp",
	                    .dataset = "fashion-mnist",
	                    .device = "cpu",
	                    .threads = 1};
	train_config_defaults(&o.cfg);
	int rc = parse_options(argc, argv, &o);
	if (rc != 0)
		return rc == 1 ? 0 : rc;
	if (o.cache_dir == NULL)
		o.cache_dir = prepare_default_cache_dir();
	char threads[32];
	snprintf(threads, sizeof threads, "%lu", o.threads);
	setenv("COHORT_THREADS", threads, 1);
	return run(&o);
}
