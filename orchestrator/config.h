/* config.h: a job's configuration: built-in defaults, a JSON file, --set
 * overrides, validation against one schema table, and the resolved copy
 * saved in the workspace. */
#ifndef COHORT_CONFIG_H
#define COHORT_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "error.h"

struct config {
	struct {
		char *name;
		int64_t seed;
		char *workspace_root;
		int shared_workspace; /* 0: workspace 0700, files 0600 */
	} job;
	struct {
		int64_t clients;
		int64_t min_clients;
		int64_t fit_clients;
		int64_t rounds;
		int64_t min_fit; /* 0 = min_clients capped at fit_clients */
		int64_t max_examples; /* 0 = what the data says */
		int64_t round_retries;
		int64_t max_consecutive_failures;
		double availability;
		char *on_unavailable; /* wait|skip|fail */
	} federation;
	struct {
		char *name;
		char *preset; /* gpt2 and synthetic: GPT2_PRESETS */
		/* gpt2: its sizes, 0 = the preset's (ipc/gpt2shape.h) */
		int64_t n_layer, n_head, n_embd, n_ctx;
		char *file; /* synthetic model: tensor list */
		char *init; /* initial weights (safetensors), "" = seeded */
	} model;
	struct {
		char *mode; /* shm|stream|auto */
		int64_t chunk_mb;
	} transport;
	struct {
		char *dataset;
		char *dir;
		char *cache_dir;
		char *partition;
		double alpha;
		int64_t shards_per_client;
		int64_t samples_per_client; /* 0 = split the training set */
		double holdout;
		char *text_field;  /* text: JSONL field of the text */
		char *label_field; /* text: JSONL field of a label, "" = none */
		char *tokenizer;   /* text: BPE files' directory, "" = cache */
	} data;
	struct {
		int64_t epochs;
		int64_t batch_size;
		double lr;
		double momentum;
		double weight_decay;
		char *optimizer;
		double mu;
		/* gpt2 */
		int64_t seq_len; /* 0 = model's context */
		int64_t grad_accum;
		int64_t warmup_steps;
		char *lr_schedule; /* constant|cosine */
		double min_lr;
		double max_grad_norm; /* 0 = no clipping */
	} train;
	struct {
		char *name;
		char *weighting;
		double max_weight;      /* largest |weight| of an aggregate */
		double server_lr;       /* fedavgm */
		double server_momentum; /* fedavgm */
		double eta; /* fedadam|fedyogi|fedadagrad; 0 = default */
		double beta1, beta2, tau;
		double trim_beta;        /* trimmed */
		int64_t krum_f;          /* krum: Byzantine clients tolerated */
		int64_t krum_m;          /* krum: updates averaged (1 = Krum) */
		char *cyclic_order;      /* fixed|random|random_no_repeat */
		char *cyclic_clients;    /* "0,2,1" or "" */
		char *cyclic_on_failure; /* skip|retry|abort */
		int64_t cyclic_retries;
	} strategy;
	struct {
		char *dp;         /* off|central */
		double clip_norm; /* C: L2 bound of one update's change */
		double noise_multiplier; /* noise sd / C */
		double delta;            /* of the (epsilon, delta) reported */
		int adaptive_clip;       /* clip_norm follows a quantile */
		double target_quantile, clip_learning_rate, clip_count_stddev;
	} privacy;
	struct {
		bool central;
		double fraction; /* of available clients, on their holdout */
		int64_t
		    max_tokens; /* gpt2: tokens an evaluation scores, 0 all */
	} evaluate;
	struct {
		char *worker;
		int64_t max_concurrent; /* 0 = online CPUs */
		int64_t tasks_per_worker;
		char *mode;         /* spawn|fork-server */
		char *partial_sums; /* auto|on|off */
		int64_t partial_flush_every;
		double task_timeout_s;
		double kill_grace_s;
	} launcher;
	struct {
		char *device;  /* auto|cpu|cuda|cuda:N, COHORT_DEVICE */
		char *adapter; /* none|nvflare */
		char *
		    command; /* "": the built-in worker; else argv, by spaces */
	} worker;
	struct {
		int64_t workers_per_gpu; /* 0 = from free memory */
		int64_t mem_per_worker_mb;
		char *devices; /* "" = CUDA_VISIBLE_DEVICES or all (NVML) */
	} gpu;
	struct {
		char *signal; /* USR1|USR2|TERM|INT */
		double deadline_s;
	} preempt;
	struct {
		char *progress;
		int64_t task_metrics; /* progress metric lines a task may add */
		char *client_metrics; /* all|summary */
		int64_t keep_checkpoints; /* round models kept; 0 = all */
	} output;
	struct {
		char *mlflow_uri; /* "" = MLFLOW_TRACKING_URI, unset = off */
		char *experiment; /* "" = MLFLOW_EXPERIMENT_NAME or "cohort" */
		bool child_runs;
		bool tensorboard;
		bool report;
		double drain_s;
	} tracking;
};

/* Fill every key with its built-in default. */
void config_defaults(struct config *c);
void config_free(struct config *c);
/* Overlay the keys of a JSON file; unknown keys, wrong types, out-of-range
 * values and bad choices are errors naming the file and key path. */
int config_load_file(struct config *c, const char *path, struct ipc_error *err);
/* The same for a workspace's own config.json, as the job saved it: its
 * paths are taken as they are (they were made absolute when the job read
 * its config; a relative default such as job.workspace_root stays as it
 * was). */
int config_load_saved(struct config *c, const char *path,
                      struct ipc_error *err);
/* Apply one "key.path=value" override, the value parsed as the key's type. */
int config_set(struct config *c, const char *assignment, struct ipc_error *err);
/* Check the relations between keys (e.g. fit_clients <= clients). */
int config_check(const struct config *c, struct ipc_error *err);
/* Effective min_fit: the configured one, or min_clients capped at fit_clients.
 */
/* Model gpt2's sizes: model.preset's, model.n_* where set (the
 * vocabulary stays the preset's: the prepare step takes the tokenizer's);
 * IPC_E_BAD_VALUE when the heads do not divide the width. */
struct gpt2_config;
int config_gpt2(const struct config *c, struct gpt2_config *g,
                struct ipc_error *err);

int64_t config_min_fit(const struct config *c);
/* Write the resolved configuration as JSON (every key), atomically. */
int config_save(const struct config *c, const char *path,
                struct ipc_error *err);
/* The resolved configuration as a JSON object of sections (every key). */
json_t *config_to_json(const struct config *c);
/* Append "section.key is A there, B here" for every job-defining key (not
 * the runtime sections launcher, output, tracking, preempt, transport,
 * worker, gpu, nor job.workspace_root) of given that differs in saved, at
 * most four of them, to buf; returns how many differ. */
int config_job_differences(json_t *saved, json_t *given, char *buf,
                           size_t size);
/* Print every key with its type, default and documentation. */
void config_print_keys(FILE *out);

#endif
