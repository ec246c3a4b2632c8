/* prepare.c: decode the dataset, split it across clients and write the
 * seeded initial model: everything a job needs once, before round 1. */
#include "prepare.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataset.h"
#include "gpt2.h"
#include "model.h"
#include "models.h"
#include "partition.h"
#include "rng.h"
#include "safetensors.h"
#include "synthetic.h"

/* The config keys prepare reads; the orchestrator validated them already. */
struct prepare_config {
	uint64_t seed;
	uint32_t clients;
	const char *model;
	const char *dataset;
	const char *data_dir;
	const char *cache_dir;
	const char *partition;
	double alpha;
	uint32_t shards_per_client;
	double holdout;
	uint32_t samples_per_client; /* 0: the data split across clients */
};

const char *
prepare_default_cache_dir(void)
{
	static char path[4096];
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	if (xdg != NULL && xdg[0] != '\0')
		snprintf(path, sizeof path, "%s/cohort", xdg);
	else if (home != NULL && home[0] != '\0')
		snprintf(path, sizeof path, "%s/.cache/cohort", home);
	else
		snprintf(path, sizeof path, "/tmp/cohort-cache");
	return path;
}

/* Fetch section.key from the config, or NULL. */
static json_t *
config_get(json_t *root, const char *section, const char *key)
{
	json_t *s = json_object_get(root, section);
	return s != NULL ? json_object_get(s, key) : NULL;
}

/* The error of a key config.json lacks: the orchestrator writes every key
 * (the defaults are its configuration schema's), so one missing is a file
 * written by hand or by another version. */
static int
missing_key(const char *path, const char *section, const char *key,
            struct ipc_error *err)
{
	return ipc_error_set(err, IPC_E_MISSING_KEY,
	                     "%s: %s.%s is missing (cohort-orchestrator writes "
	                     "every key of the job's configuration there)",
	                     path, section, key);
}

/* Read a string key. */
static int
config_string(json_t *root, const char *section, const char *key,
              const char **out, const char *path, struct ipc_error *err)
{
	json_t *v = config_get(root, section, key);
	if (v == NULL)
		return missing_key(path, section, key, err);
	if (!json_is_string(v))
		return ipc_error_set(err, IPC_E_WRONG_TYPE,
		                     "%s: %s.%s: expected a string", path,
		                     section, key);
	*out = json_string_value(v);
	return 0;
}

/* Read a number key. */
static int
config_number(json_t *root, const char *section, const char *key, double *out,
              const char *path, struct ipc_error *err)
{
	json_t *v = config_get(root, section, key);
	if (v == NULL)
		return missing_key(path, section, key, err);
	if (!json_is_number(v))
		return ipc_error_set(err, IPC_E_WRONG_TYPE,
		                     "%s: %s.%s: expected a number", path,
		                     section, key);
	*out = json_number_value(v);
	return 0;
}

/* Fill cfg from the parsed config.json. */
static int
prepare_read_config(json_t *root, const char *path, struct prepare_config *cfg,
                    struct ipc_error *err)
{
	double seed = 0, clients = 0, shards = 0;
	if (config_number(root, "job", "seed", &seed, path, err) != 0 ||
	    config_number(root, "federation", "clients", &clients, path, err) !=
	        0 ||
	    config_string(root, "model", "name", &cfg->model, path, err) != 0 ||
	    config_string(root, "data", "dataset", &cfg->dataset, path, err) !=
	        0 ||
	    config_string(root, "data", "dir", &cfg->data_dir, path, err) !=
	        0 ||
	    config_string(root, "data", "cache_dir", &cfg->cache_dir, path,
	                  err) != 0 ||
	    config_string(root, "data", "partition", &cfg->partition, path,
	                  err) != 0 ||
	    config_number(root, "data", "alpha", &cfg->alpha, path, err) != 0 ||
	    config_number(root, "data", "shards_per_client", &shards, path,
	                  err) != 0 ||
	    config_number(root, "data", "holdout", &cfg->holdout, path, err) !=
	        0)
		return -1;
	if (clients < 1 || clients > 1e7)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "%s: federation.clients: expected a "
		                     "positive integer",
		                     path);
	/* absent in a workspace made before the key existed: a split */
	json_t *spc = config_get(root, "data", "samples_per_client");
	double per_client = json_is_number(spc) ? json_number_value(spc) : 0;
	if (spc != NULL &&
	    (!json_is_number(spc) || per_client < 0 || per_client > UINT32_MAX))
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "%s: data.samples_per_client: expected a "
		                     "non-negative integer",
		                     path);
	cfg->samples_per_client = (uint32_t)per_client;
	cfg->seed = (uint64_t)seed;
	cfg->clients = (uint32_t)clients;
	cfg->shards_per_client = (uint32_t)shards;
	if (cfg->cache_dir[0] == '\0')
		cfg->cache_dir = prepare_default_cache_dir();
	return 0;
}

/* Create dir (one level) if missing. */
static int
ensure_dir(const char *dir, struct ipc_error *err)
{
	if (mkdir(dir, 0777) != 0 && errno != EEXIST)
		return ipc_error_set(err, IPC_E_IO, "%s: cannot create: %s",
		                     dir, strerror(errno));
	return 0;
}

/* Write the seeded initial model for the dataset's input shape. */
static int
prepare_initial_model(const struct prepare_config *cfg,
                      const struct dataset *train, const char *path,
                      struct ipc_error *err)
{
	struct model_shape shape = {
	    .channels = (int)train->channels,
	    .height = (int)train->height,
	    .width = (int)train->width,
	    .classes = (int)train->classes,
	};
	struct model *m = model_create(cfg->model, &shape, err);
	if (m == NULL)
		return -1;
	const struct tensor_manifest *mf = model_manifest(m);
	float *params = NULL;
	if (posix_memalign((void **)&params, TENSOR_ALIGN, mf->total_size) != 0)
		fatal("out of memory for %llu bytes of parameters",
		      (unsigned long long)mf->total_size);
	memset(params, 0, mf->total_size);
	model_init(m, params, rng_derive(cfg->seed, "init", 0));

	struct st_metadata meta = {0};
	st_metadata_set(&meta, "format", "pt");
	st_metadata_set(&meta, "cohort.model", cfg->model);
	int rc = safetensors_write(path, mf, params, &meta, err);
	st_metadata_free(&meta);
	free(params);
	model_free(m);
	return rc;
}

/* What a text model's prepare step reads beyond prepare_config: the text
 * source (the tokenizer's directory resolved) and the GPT-2's sizes (its
 * vocabulary is the tokenizer's, set once the data is tokenized). */
struct prepare_text {
	struct text_source src;
	char tokenizer[4096];
	struct gpt2_config gpt2;
};

/* Read a text model's keys. */
static int
prepare_read_text(json_t *root, const char *path,
                  const struct prepare_config *cfg, struct prepare_text *t,
                  struct ipc_error *err)
{
	static const char *const sizes[] = {"n_layer", "n_head", "n_embd",
	                                    "n_ctx"};
	double n[4];
	const char *preset = "", *tok = "";
	if (config_string(root, "model", "preset", &preset, path, err) != 0 ||
	    config_string(root, "data", "text_field", &t->src.text_field, path,
	                  err) != 0 ||
	    config_string(root, "data", "label_field", &t->src.label_field,
	                  path, err) != 0 ||
	    config_string(root, "data", "tokenizer", &tok, path, err) != 0)
		return -1;
	for (size_t i = 0; i < 4; i++)
		if (config_number(root, "model", sizes[i], &n[i], path, err) !=
		    0)
			return -1;
	if (gpt2_sizes(preset, (long)n[0], (long)n[1], (long)n[2], (long)n[3],
	               &t->gpt2, err) != 0) {
		ipc_error_prefix(err, "%s: ", path);
		return -1;
	}
	gpt2_bpe_dir(tok, t->tokenizer, sizeof t->tokenizer);
	t->src.dir = cfg->data_dir;
	t->src.tokenizer = t->tokenizer;
	return 0;
}

/* Write the seeded initial GPT-2 (Hugging Face's init) for the tokenizer's
 * vocabulary. */
static int
prepare_gpt2_model(const struct prepare_config *cfg, struct prepare_text *t,
                   const struct dataset *train, const char *path,
                   struct ipc_error *err)
{
	t->gpt2.vocab_size = (int)train->vocab_size;
	struct tensor_manifest mf;
	if (gpt2_manifest(&t->gpt2, &mf, err) != 0)
		return -1;
	float *params = NULL;
	if (posix_memalign((void **)&params, TENSOR_ALIGN, mf.total_size) != 0)
		fatal("out of memory for %llu bytes of parameters",
		      (unsigned long long)mf.total_size);
	gpt2_init(&t->gpt2, params, rng_derive(cfg->seed, "init", 0));
	struct st_metadata meta = {0};
	st_metadata_set(&meta, "format", "pt");
	st_metadata_set(&meta, "cohort.model", cfg->model);
	int rc = safetensors_write(path, &mf, params, &meta, err);
	st_metadata_free(&meta);
	free(params);
	tensor_manifest_free(&mf);
	return rc;
}

/* The custom model's initial model: model.init's file, checked (a valid
 * safetensors file, every value finite) and written in cohort's layout. */
static int
prepare_custom_model(json_t *root, const char *config_path, const char *path,
                     struct ipc_error *err)
{
	const char *init = "";
	if (config_string(root, "model", "init", &init, config_path, err) != 0)
		return -1;
	/* None: the orchestrator asks worker.command's program for it (an
	 * init task, orchestrator/init-run.c). */
	if (init[0] == '\0')
		return 0;
	struct tensor_manifest mf;
	void *region = NULL;
	tensor_manifest_init(&mf);
	int rc = safetensors_read(init, &mf, &region, NULL, err);
	if (rc == 0)
		rc = tensor_region_check_finite(&mf, region, err);
	if (rc == 0 && mf.count == 0)
		rc = ipc_error_set(err, IPC_E_BAD_VALUE, "holds no tensor");
	if (rc != 0) {
		ipc_error_prefix(err, "model.init %s: ", init);
	} else {
		struct st_metadata meta = {0};
		st_metadata_set(&meta, "format", "pt");
		st_metadata_set(&meta, "cohort.model", "custom");
		rc = safetensors_write(path, &mf, region, &meta, err);
		st_metadata_free(&meta);
	}
	free(region);
	tensor_manifest_free(&mf);
	return rc;
}

/* Each client's training and held-out example counts, from the partition
 * file, as "client_train" and "client_holdout" of o: the most a result may
 * claim. Arrays of one count per client, or one count for every client
 * (a sampled partition). */
static int
add_client_sizes(json_t *o, const char *partition_path, struct ipc_error *err)
{
	struct partition p;
	if (partition_open(partition_path, &p, err) != 0)
		return -1;
	if (p.per_client > 0) {
		json_object_set_new(
		    o, "client_train",
		    json_integer((json_int_t)(p.per_client - p.holdout)));
		json_object_set_new(o, "client_holdout",
		                    json_integer((json_int_t)p.holdout));
		partition_close(&p);
		return 0;
	}
	json_t *train = json_array(), *holdout = json_array();
	int rc = 0;
	for (uint32_t c = 0; c < p.clients && rc == 0; c++) {
		const uint32_t *ti, *hi;
		size_t nt, nh;
		rc = partition_client(&p, c, &ti, &nt, &hi, &nh, err);
		if (rc != 0)
			break;
		json_array_append_new(train, json_integer((json_int_t)nt));
		json_array_append_new(holdout, json_integer((json_int_t)nh));
	}
	partition_close(&p);
	json_object_set_new(o, "client_train", train);
	json_object_set_new(o, "client_holdout", holdout);
	return rc;
}

/* Write data/prepared.json: what the orchestrator forwards to workers. */
static int
prepare_write_summary(const char *workspace, const char *train_cache,
                      const char *test_cache, const char *partition_path,
                      const char *initial_path,
                      const struct prepare_config *cfg, uint32_t num_train,
                      uint32_t num_test, struct ipc_error *err)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "train",
	                      train_cache, "test", test_cache, "partition",
	                      partition_path, "model", cfg->model, "initial",
	                      initial_path, "num_train", (json_int_t)num_train,
	                      "num_test", (json_int_t)num_test);
	if (partition_path[0] != '\0' &&
	    add_client_sizes(o, partition_path, err) != 0) {
		json_decref(o);
		return -1;
	}
	char *path = xasprintf("%s/data/prepared.json", workspace);
	char *tmp = xasprintf("%s.tmp", path);
	int rc = 0;
	if (json_dump_file(o, tmp, JSON_INDENT(2) | JSON_SORT_KEYS) != 0 ||
	    rename(tmp, path) != 0) {
		rc = ipc_error_set(err, IPC_E_IO, "%s: cannot write: %s", path,
		                   strerror(errno));
		unlink(tmp);
	}
	free(tmp);
	free(path);
	json_decref(o);
	return rc;
}

/* The synthetic model needs no dataset: its initial model and a summary
 * without data paths. */
static int
prepare_synthetic(json_t *root, const char *config_path, const char *workspace,
                  const char *initial_path, const struct prepare_config *cfg,
                  struct ipc_error *err)
{
	const char *preset = "tiny", *file = "";
	if (config_string(root, "model", "preset", &preset, config_path, err) !=
	        0 ||
	    config_string(root, "model", "file", &file, config_path, err) !=
	        0 ||
	    synthetic_write_initial(preset, file, initial_path, err) != 0)
		return -1;
	return prepare_write_summary(workspace, "", "", "", initial_path, cfg,
	                             0, 0, err);
}

int
prepare_workspace(const char *workspace_arg, struct ipc_error *err)
{
	/* Absolute paths: workers read prepared.json from any directory. */
	char workspace[PATH_MAX];
	if (realpath(workspace_arg, workspace) == NULL)
		return ipc_error_set(err, IPC_E_IO, "%s: %s", workspace_arg,
		                     strerror(errno));
	char *config_path = xasprintf("%s/config.json", workspace);
	json_error_t jerr;
	json_t *root = json_load_file(config_path, 0, &jerr);
	if (root == NULL) {
		ipc_error_set(err, IPC_E_IO, "%s: %s (line %d)", config_path,
		              jerr.text, jerr.line);
		free(config_path);
		return -1;
	}

	int rc = -1;
	struct prepare_config cfg = {0};
	char train_cache[4096], test_cache[4096];
	char *data_dir = xasprintf("%s/data", workspace);
	char *ckpt_dir = xasprintf("%s/checkpoints", workspace);
	char *partition_path = xasprintf("%s/partition.bin", data_dir);
	char *initial_path = xasprintf("%s/initial.safetensors", ckpt_dir);
	struct dataset train = {0}, test = {0};
	struct partition_spec spec = {0};

	if (prepare_read_config(root, config_path, &cfg, err) != 0 ||
	    ensure_dir(data_dir, err) != 0 || ensure_dir(ckpt_dir, err) != 0)
		goto out;
	const struct model_info *mi = models_find(cfg.model);
	if (mi == NULL) {
		ipc_error_set(err, IPC_E_BAD_VALUE,
		              "%s: model.name \"%s\": expected %s", config_path,
		              cfg.model, MODELS_CHOICES);
		goto out;
	}
	if (mi->closed_form) {
		rc = prepare_synthetic(root, config_path, workspace,
		                       initial_path, &cfg, err);
		goto out;
	}
	/* A custom model reading its own data: its initial model alone. */
	if (mi->own && strcmp(cfg.dataset, "none") == 0) {
		if (prepare_custom_model(root, config_path, initial_path,
		                         err) == 0)
			rc = prepare_write_summary(workspace, "", "", "",
			                           initial_path, &cfg, 0, 0,
			                           err);
		goto out;
	}
	if (partition_scheme_parse(cfg.partition, &spec.scheme, err) != 0)
		goto out;
	spec.alpha = cfg.alpha;
	spec.shards_per_client = cfg.shards_per_client;
	spec.holdout_fraction = cfg.holdout;
	spec.seed = cfg.seed;
	spec.samples_per_client = cfg.samples_per_client;

	struct prepare_text text;
	if (mi->text) {
		if (prepare_read_text(root, config_path, &cfg, &text, err) !=
		        0 ||
		    dataset_prepare_text(&text.src, "train", cfg.cache_dir,
		                         train_cache, sizeof train_cache,
		                         err) != 0 ||
		    dataset_prepare_text(&text.src, "test", cfg.cache_dir,
		                         test_cache, sizeof test_cache,
		                         err) != 0)
			goto out;
	} else if (dataset_prepare(cfg.dataset, cfg.data_dir, "train",
	                           cfg.cache_dir, train_cache,
	                           sizeof train_cache, err) != 0 ||
	           dataset_prepare(cfg.dataset, cfg.data_dir, "test",
	                           cfg.cache_dir, test_cache, sizeof test_cache,
	                           err) != 0) {
		goto out;
	}
	if (dataset_open(train_cache, &train, err) != 0 ||
	    dataset_open(test_cache, &test, err) != 0)
		goto out;
	if (partition_build(train.labels, train.count, train.classes,
	                    cfg.clients, &spec, partition_path, err) != 0)
		goto out;
	if (mi->own ? prepare_custom_model(root, config_path, initial_path,
	                                   err) != 0
	    : mi->text
	        ? prepare_gpt2_model(&cfg, &text, &train, initial_path, err) !=
	              0
	        : prepare_initial_model(&cfg, &train, initial_path, err) != 0)
		goto out;
	rc = prepare_write_summary(workspace, train_cache, test_cache,
	                           partition_path, initial_path, &cfg,
	                           train.count, test.count, err);
out:
	dataset_close(&train);
	dataset_close(&test);
	free(initial_path);
	free(partition_path);
	free(ckpt_dir);
	free(data_dir);
	free(config_path);
	json_decref(root);
	return rc;
}
