/* config.c: the schema table of job keys and everything driven by it:
 * defaults, JSON loading, --set overrides, validation and saving. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "models.h"
#include "atomicfile.h"
#include "gpt2shape.h"
#include "files.h"
#include "gpuslots.h"
#include "strategy.h"

enum key_type { KEY_INT, KEY_NUM, KEY_STR, KEY_BOOL, KEY_CHOICE };

struct key {
	const char *path; /* "section.name" */
	enum key_type type;
	size_t offset;       /* into struct config */
	const char *def;     /* default, written as a --set value */
	double min, max;     /* numeric range (inclusive) */
	const char *choices; /* KEY_CHOICE: "a|b|c" */
	const char *doc;
};

#define OFF(field) offsetof(struct config, field)
#define NOMAX INFINITY

static const struct key keys[] = {
    {"job.name", KEY_STR, OFF(job.name), "cohort", 0, 0, NULL,
     "job name, the first part of the workspace directory name"},
    {"job.seed", KEY_INT, OFF(job.seed), "1", 0, NOMAX, NULL,
     "seed of every random choice (sampling, partition, init, shuffles)"},
    {"job.workspace_root", KEY_STR, OFF(job.workspace_root), "workspaces", 0, 0,
     NULL, "directory under which job workspaces are created"},
    {"job.shared_workspace", KEY_BOOL, OFF(job.shared_workspace), "false", 0, 0,
     NULL,
     "let other users read the workspace (directories 0755, files 0644); "
     "by default only its owner can (0700, 0600)"},
    {"federation.clients", KEY_INT, OFF(federation.clients), "2", 1, 1e6, NULL,
     "number of clients (data partitions)"},
    {"federation.min_clients", KEY_INT, OFF(federation.min_clients), "2", 1,
     1e6, NULL, "clients that must be available for a round to start"},
    {"federation.fit_clients", KEY_INT, OFF(federation.fit_clients), "2", 1,
     1e6, NULL, "clients sampled for training each round"},
    {"federation.rounds", KEY_INT, OFF(federation.rounds), "3", 1, 1e6, NULL,
     "number of rounds"},
    {"federation.min_fit", KEY_INT, OFF(federation.min_fit), "0", 0, 1e6, NULL,
     "successful fits a round needs (0 = min_clients capped at "
     "fit_clients)"},
    {"federation.max_examples", KEY_INT, OFF(federation.max_examples), "0", 0,
     NOMAX, NULL,
     "most examples a result may report (0 = the client's slice of the "
     "data, as prepared; set it for data cohort does not prepare)"},
    {"federation.round_retries", KEY_INT, OFF(federation.round_retries), "1", 0,
     100, NULL, "times a round below min_fit is retried"},
    {"federation.max_consecutive_failures", KEY_INT,
     OFF(federation.max_consecutive_failures), "3", 1, 1e6, NULL,
     "failed fits in a row (for cyclic: failed hops, however many tries "
     "each took) after which a client is excluded for the rest of the job"},
    {"federation.availability", KEY_NUM, OFF(federation.availability), "1.0", 0,
     1, NULL, "probability that a client is online in a round (seeded)"},
    {"federation.on_unavailable", KEY_CHOICE, OFF(federation.on_unavailable),
     "wait", 0, 0, "wait|skip|fail",
     "a round with fewer than min_clients available: wait (draw "
     "availability again, seeded by round and draw, up to 100 draws, then "
     "fail saying availability is too low), skip the round (model "
     "unchanged, recorded as skipped) or fail the job; too few clients "
     "left after exclusions fail the job whatever it says"},
    {"model.name", KEY_CHOICE, OFF(model.name), "mlp", 0, 0, MODELS_CHOICES,
     "model architecture (synthetic: GPT-2-shaped weights, no dataset, "
     "closed-form updates; see docs/large-models.md)"},
    {"model.preset", KEY_CHOICE, OFF(model.preset), "tiny", 0, 0, GPT2_PRESETS,
     "GPT-2 sizes of model gpt2 (model.n_* override them) or of the "
     "synthetic model's tensors (model.file overrides): tiny (2 layers, "
     "32 wide), gpt2-small (124M, \"gpt2\" on the Hugging Face hub), "
     "gpt2-medium, gpt2-large, gpt2-xl"},
    {"model.n_layer", KEY_INT, OFF(model.n_layer), "0", 0, 1e4, NULL,
     "gpt2: transformer blocks (0 = model.preset's)"},
    {"model.n_head", KEY_INT, OFF(model.n_head), "0", 0, 1e4, NULL,
     "gpt2: attention heads, dividing model.n_embd (0 = model.preset's)"},
    {"model.n_embd", KEY_INT, OFF(model.n_embd), "0", 0, 1e6, NULL,
     "gpt2: embedding width (0 = model.preset's)"},
    {"model.n_ctx", KEY_INT, OFF(model.n_ctx), "0", 0, 1e6, NULL,
     "gpt2: positions, the longest sequence (0 = model.preset's)"},
    {"model.init", KEY_STR, OFF(model.init), "", 0, 0, NULL,
     "safetensors file of the initial global model of a new job: every "
     "tensor of the model, matched by name in any order (Hugging Face's "
     "writer sorts them), same dtype and shape, finite (\"\" = the "
     "seeded PyTorch-default init)"},
    {"model.file", KEY_STR, OFF(model.file), "", 0, 0, NULL,
     "safetensors file whose F32 tensor list the synthetic model uses"},
    {"transport.mode", KEY_CHOICE, OFF(transport.mode), "auto", 0, 0,
     "shm|stream|auto",
     "how weights travel: shared memory (memfds: /dev/shm's size does not "
     "limit them), chunk frames over the socket (for workers that cannot "
     "map the orchestrator's memory), or auto (= shm)"},
    {"transport.chunk_mb", KEY_INT, OFF(transport.chunk_mb), "4", 1, 32, NULL,
     "MiB per chunk frame of the stream transport"},
    {"data.dataset", KEY_CHOICE, OFF(data.dataset), "fashion-mnist", 0, 0,
     "fashion-mnist|mnist|cifar10|text|none",
     "dataset format (text: documents for model gpt2, JSONL or one per "
     "line, docs/data.md; none: a custom model whose program reads its "
     "own data; no cache, no partition)"},
    {"data.dir", KEY_STR, OFF(data.dir), "/usr/share/datasets/fashion-mnist", 0,
     0, NULL, "directory holding the dataset files"},
    {"data.cache_dir", KEY_STR, OFF(data.cache_dir), "", 0, 0, NULL,
     "decoded dataset cache (empty = $XDG_CACHE_HOME/cohort or "
     "~/.cache/cohort)"},
    {"data.partition", KEY_CHOICE, OFF(data.partition), "iid", 0, 0,
     "iid|dirichlet|shards", "how the training set is split across clients"},
    {"data.alpha", KEY_NUM, OFF(data.alpha), "0.5", 1e-6, 1e6, NULL,
     "Dirichlet concentration (partition dirichlet)"},
    {"data.shards_per_client", KEY_INT, OFF(data.shards_per_client), "2", 1,
     1e6, NULL, "label-sorted shards per client (partition shards)"},
    {"data.samples_per_client", KEY_INT, OFF(data.samples_per_client), "0", 0,
     1e8, NULL,
     "> 0: each client holds its own seeded draw of this many distinct "
     "training samples (clients overlap, partition iid only), so a "
     "federation may have more clients than the data has samples, e.g. "
     "1,000,000 clients of 60 on Fashion-MNIST; 0: the training set is "
     "split across the clients (data.partition)"},
    {"data.text_field", KEY_STR, OFF(data.text_field), "text", 0, 0, NULL,
     "text: the JSONL field holding a document's text"},
    {"data.label_field", KEY_STR, OFF(data.label_field), "", 0, 0, NULL,
     "text: a JSONL field holding a document's label (integer 0-255, "
     "boolean or string), for data.partition dirichlet or shards (\"\" "
     "= no labels)"},
    {"data.tokenizer", KEY_STR, OFF(data.tokenizer), "", 0, 0, NULL,
     "text: directory of GPT-2's BPE files, vocab.json + merges.txt or "
     "encoder.json + vocab.bpe (\"\" = where tools/fetch-gpt2-bpe.sh puts "
     "them: $COHORT_GPT2_BPE_DIR or $XDG_CACHE_HOME/cohort/gpt2-bpe)"},
    {"data.holdout", KEY_NUM, OFF(data.holdout), "0.0", 0, 0.9, NULL,
     "share of each client's slice held out for local evaluation"},
    {"train.epochs", KEY_INT, OFF(train.epochs), "1", 0, 1e6, NULL,
     "local epochs per fit task (0 = no training)"},
    {"train.batch_size", KEY_INT, OFF(train.batch_size), "32", 1, 1e6, NULL,
     "local mini-batch size"},
    {"train.lr", KEY_NUM, OFF(train.lr), "0.01", 0, 1e3, NULL,
     "local learning rate"},
    {"train.momentum", KEY_NUM, OFF(train.momentum), "0.9", 0, 1, NULL,
     "SGD momentum"},
    {"train.weight_decay", KEY_NUM, OFF(train.weight_decay), "0.0", 0, 1, NULL,
     "L2 weight decay"},
    {"train.optimizer", KEY_CHOICE, OFF(train.optimizer), "sgd", 0, 0,
     "sgd|adam|adamw",
     "local optimizer (adamw: decoupled weight decay, torch.optim.AdamW; "
     "CPU only)"},
    {"train.mu", KEY_NUM, OFF(train.mu), "0.0", 0, 1e3, NULL,
     "FedProx proximal term (0 = plain FedAvg)"},
    {"train.seq_len", KEY_INT, OFF(train.seq_len), "0", 0, 1e6, NULL,
     "gpt2: tokens per training sequence (0 = model.n_ctx)"},
    {"train.grad_accum", KEY_INT, OFF(train.grad_accum), "1", 1, 1e6, NULL,
     "gpt2: micro-batches of train.batch_size sequences per optimizer "
     "step"},
    {"train.warmup_steps", KEY_INT, OFF(train.warmup_steps), "0", 0, 1e9, NULL,
     "gpt2: optimizer steps of each fit task over which the learning rate "
     "rises linearly to train.lr"},
    {"train.lr_schedule", KEY_CHOICE, OFF(train.lr_schedule), "constant", 0, 0,
     "constant|cosine",
     "gpt2: after the warmup, train.lr (constant) or a cosine from train.lr "
     "to train.min_lr over the fit task's steps"},
    {"train.min_lr", KEY_NUM, OFF(train.min_lr), "0.0", 0, 1e3, NULL,
     "gpt2: the cosine schedule's last learning rate"},
    {"train.max_grad_norm", KEY_NUM, OFF(train.max_grad_norm), "1.0", 0, 1e9,
     NULL,
     "gpt2: the gradient's global L2 norm is clipped to this before every "
     "optimizer step (0 = no clipping)"},
    {"strategy.name", KEY_CHOICE, OFF(strategy.name), "fedavg", 0, 0,
     STRATEGY_CHOICES, "aggregation strategy (docs/strategies.md)"},
    {"strategy.max_weight", KEY_NUM, OFF(strategy.max_weight), "1e15", 1, NOMAX,
     NULL,
     "largest magnitude a weight of the new global model may have: an "
     "aggregate beyond it, or not finite, is not published and the job "
     "stops at the last checkpoint"},
    {"strategy.weighting", KEY_CHOICE, OFF(strategy.weighting), "examples", 0,
     0, "examples|uniform|steps",
     "weight of a client's update: its number of examples, 1, or its local "
     "steps"},
    {"strategy.server_lr", KEY_NUM, OFF(strategy.server_lr), "1.0", 0, 1e3,
     NULL, "fedavgm: server learning rate on the pseudo-gradient"},
    {"strategy.server_momentum", KEY_NUM, OFF(strategy.server_momentum), "0.9",
     0, 0.999999, NULL, "fedavgm: server momentum"},
    {"strategy.eta", KEY_NUM, OFF(strategy.eta), "0", 0, 1e3, NULL,
     "fedadam/fedyogi/fedadagrad: server learning rate (0 = 0.1, fedyogi "
     "0.01)"},
    {"strategy.beta1", KEY_NUM, OFF(strategy.beta1), "0.9", 0, 0.999999, NULL,
     "fedadam/fedyogi/fedadagrad: first-moment decay"},
    {"strategy.beta2", KEY_NUM, OFF(strategy.beta2), "0.99", 0, 0.999999, NULL,
     "fedadam/fedyogi: second-moment decay"},
    {"strategy.tau", KEY_NUM, OFF(strategy.tau), "1e-3", 1e-12, 1e3, NULL,
     "fedadam/fedyogi/fedadagrad: adaptivity (v starts at tau^2)"},
    {"strategy.trim_beta", KEY_NUM, OFF(strategy.trim_beta), "0.2", 0, 0.49,
     NULL, "trimmed: fraction dropped at each end per coordinate"},
    {"strategy.krum_f", KEY_INT, OFF(strategy.krum_f), "0", 0, 1e6, NULL,
     "krum: Byzantine clients tolerated (fit_clients >= 2 f + 3)"},
    {"strategy.krum_m", KEY_INT, OFF(strategy.krum_m), "1", 1, 1e6, NULL,
     "krum: best-scored updates averaged (1 = Krum, > 1 = Multi-Krum)"},
    {"strategy.cyclic_order", KEY_CHOICE, OFF(strategy.cyclic_order), "fixed",
     0, 0, "fixed|random|random_no_repeat",
     "cyclic: relay order of a round's clients (random: reshuffled per "
     "round; random_no_repeat: never starting with the last round's last)"},
    {"strategy.cyclic_clients", KEY_STR, OFF(strategy.cyclic_clients), "", 0, 0,
     NULL,
     "cyclic: explicit relay order, e.g. \"0,2,1\" (replaces sampling; "
     "empty = the sampled clients)"},
    {"strategy.cyclic_on_failure", KEY_CHOICE, OFF(strategy.cyclic_on_failure),
     "skip", 0, 0, "skip|retry|abort",
     "cyclic: a failed hop is skipped (relay goes on from the last good "
     "model), retried cyclic_retries times then skipped, or fails the job"},
    {"strategy.cyclic_retries", KEY_INT, OFF(strategy.cyclic_retries), "1", 0,
     100, NULL, "cyclic: retries of a failed hop (cyclic_on_failure retry)"},
    {"privacy.dp", KEY_CHOICE, OFF(privacy.dp), "off", 0, 0, "off|central",
     "central: DP-FedAvg: each update's change clipped to "
     "privacy.clip_norm, Gaussian noise on the round's sum, divided by "
     "fit_clients; epsilon reported every round (docs/privacy.md)"},
    {"privacy.clip_norm", KEY_NUM, OFF(privacy.clip_norm), "1.0", 1e-12, NOMAX,
     NULL, "L2 norm an update's change from the global model is clipped to"},
    {"privacy.noise_multiplier", KEY_NUM, OFF(privacy.noise_multiplier), "1.0",
     0, 1e6, NULL,
     "standard deviation of the noise per element / privacy.clip_norm (0: "
     "clipping only, no privacy)"},
    {"privacy.adaptive_clip", KEY_BOOL, OFF(privacy.adaptive_clip), "false", 0,
     0, NULL,
     "move privacy.clip_norm each round towards privacy.target_quantile of "
     "the updates' change norms, by a noisy count (Andrew et al. 2021); "
     "privacy.clip_norm is then the first round's"},
    {"privacy.target_quantile", KEY_NUM, OFF(privacy.target_quantile), "0.5", 0,
     1, NULL, "adaptive clipping: the share of updates left unclipped"},
    {"privacy.clip_learning_rate", KEY_NUM, OFF(privacy.clip_learning_rate),
     "0.2", 0, 10, NULL,
     "adaptive clipping: C <- C exp(-rate (unclipped share - quantile))"},
    {"privacy.clip_count_stddev", KEY_NUM, OFF(privacy.clip_count_stddev), "0",
     0, NOMAX, NULL,
     "adaptive clipping: noise of the count of unclipped updates (0 = "
     "fit_clients / 20); the update's noise multiplier becomes (s^-2 - (2 "
     "sd)^-2)^-1/2, so the accountant's s holds for both"},
    {"privacy.delta", KEY_NUM, OFF(privacy.delta), "1e-5", 1e-300, 0.5, NULL,
     "the delta of the (epsilon, delta) reported; keep it below "
     "1 / federation.clients"},
    {"evaluate.central", KEY_BOOL, OFF(evaluate.central), "true", 0, 0, NULL,
     "evaluate the global model on the test set after every round"},
    {"evaluate.fraction", KEY_NUM, OFF(evaluate.fraction), "0.0", 0, 1, NULL,
     "share of the available clients evaluating each new global model on "
     "their held-out slices (at least 1 when > 0; needs data.holdout > 0)"},
    {"evaluate.max_tokens", KEY_INT, OFF(evaluate.max_tokens), "32768", 0, 1e12,
     NULL,
     "gpt2: an evaluation scores the first this many tokens of its split "
     "(the validation file, or a client's held-out documents), so a large "
     "validation set does not cost hours a round (0 = every token)"},
    {"launcher.worker", KEY_STR, OFF(launcher.worker), "", 0, 0, NULL,
     "worker binary (empty = cohort-worker of this build, then PATH)"},
    {"launcher.max_concurrent", KEY_INT, OFF(launcher.max_concurrent), "0", 0,
     1e5, NULL, "worker processes alive at once (0 = online CPUs)"},
    {"launcher.tasks_per_worker", KEY_INT, OFF(launcher.tasks_per_worker), "1",
     1, 1e6, NULL,
     "tasks a worker process runs before exiting (> 1 = pool mode)"},
    {"launcher.mode", KEY_CHOICE, OFF(launcher.mode), "spawn", 0, 0,
     "spawn|fork-server",
     "how worker processes start: each one exec'd (spawn), or forked by "
     "one fork server that started once and loaded what it needs (the "
     "built-in worker, or worker.command's program at cohort.init(); "
     "docs/protocol.md \"Fork server\")"},
    {"launcher.partial_sums", KEY_CHOICE, OFF(launcher.partial_sums), "auto", 0,
     0, "auto|on|off",
     "pool workers fold their own fits' updates into one float64 sum and "
     "send it when they run out of tasks, so the orchestrator folds one "
     "sum per worker, not one update per fit (docs/protocol.md, \"Partial "
     "sums\"); auto: on in pool mode (tasks_per_worker > 1) with the shm "
     "transport, a strategy that averages (not median, trimmed, krum, "
     "cyclic) and a model of at most 64 MiB"},
    {"launcher.partial_flush_every", KEY_INT, OFF(launcher.partial_flush_every),
     "0", 0, 1e6, NULL,
     "partial sums: a worker sends its sum after this many folded fits (0 = "
     "only when it runs out of tasks; a worker that dies loses its sum, "
     "whose fits then run again)"},
    {"launcher.task_timeout_s", KEY_NUM, OFF(launcher.task_timeout_s), "600",
     0.01, 1e7, NULL, "seconds a task may take before its worker is killed"},
    {"launcher.kill_grace_s", KEY_NUM, OFF(launcher.kill_grace_s), "3", 0, 3600,
     NULL, "seconds between SIGTERM and SIGKILL"},
    {"worker.device", KEY_STR, OFF(worker.device), "auto", 0, 0, NULL,
     "where workers train: auto, cpu, cuda or cuda:N (set as COHORT_DEVICE; "
     "a GPU worker sees only its slot's GPU, docs/gpu.md)"},
    {"worker.command", KEY_STR, OFF(worker.command), "", 0, 0, NULL,
     "your own program for every task instead of the built-in worker, "
     "split at spaces (e.g. \"/usr/bin/python3 train.py\"; the Python "
     "package cohort is on its PYTHONPATH; docs/python.md); the prepare "
     "step still runs the built-in worker"},
    {"worker.adapter", KEY_CHOICE, OFF(worker.adapter), "none", 0, 0,
     "none|nvflare",
     "nvflare: worker.command's script is written for NVFlare's Client API "
     "(import nvflare.client as flare) and runs unchanged on cohort's "
     "stand-in for it (docs/python.md, \"NVFlare scripts\")"},
    {"gpu.workers_per_gpu", KEY_INT, OFF(gpu.workers_per_gpu), "0", 0, 1e4,
     NULL,
     "workers on one GPU at once (0 = its free memory / "
     "gpu.mem_per_worker_mb, at least 1)"},
    {"gpu.mem_per_worker_mb", KEY_INT, OFF(gpu.mem_per_worker_mb), "2048", 1,
     1e7, NULL, "GPU memory a worker is counted as using, to derive slots"},
    {"gpu.devices", KEY_STR, OFF(gpu.devices), "", 0, 0, NULL,
     "GPUs for workers as CUDA_VISIBLE_DEVICES entries, e.g. \"0,1\" (empty "
     "= the inherited CUDA_VISIBLE_DEVICES, else all NVML lists; without "
     "NVML give it with gpu.workers_per_gpu)"},
    {"preempt.signal", KEY_CHOICE, OFF(preempt.signal), "USR1", 0, 0,
     "USR1|USR2|TERM|INT",
     "signal announcing pre-emption (Slurm --signal): finish or abandon the "
     "round in progress, exit 75"},
    {"preempt.deadline_s", KEY_NUM, OFF(preempt.deadline_s), "60", 0, 1e6, NULL,
     "seconds after the pre-emption signal by which the round in progress "
     "must end, else it is abandoned"},
    {"output.progress", KEY_CHOICE, OFF(output.progress), "auto", 0, 0,
     "auto|always|never", "live progress line (auto = on a terminal)"},
    {"output.task_metrics", KEY_INT, OFF(output.task_metrics), "10000", 0,
     NOMAX, NULL,
     "progress metric lines one task may add to metrics.jsonl; the rest are "
     "dropped, with one line in the log (a flooding worker cannot fill the "
     "disk)"},
    {"output.client_metrics", KEY_CHOICE, OFF(output.client_metrics), "all", 0,
     0, "all|summary",
     "all: every task's numbers (loss, examples, seconds, ...) as lines of "
     "metrics.jsonl; summary: per round only their mean, sum, min, max and "
     "10th/50th/90th percentiles across clients (client_KEY_mean, ...; "
     "progress metrics dropped), for thousands of clients per round"},
    {"output.keep_checkpoints", KEY_INT, OFF(output.keep_checkpoints), "2", 0,
     NOMAX, NULL,
     "round checkpoints (global model + state) kept in checkpoints/: the "
     "latest N (1 is enough to resume; each is a copy of the model), 0 = "
     "every round's"},
    {"tracking.mlflow_uri", KEY_STR, OFF(tracking.mlflow_uri), "", 0, 0, NULL,
     "MLflow tracking server (empty = $MLFLOW_TRACKING_URI; unset = off)"},
    {"tracking.experiment", KEY_STR, OFF(tracking.experiment), "", 0, 0, NULL,
     "MLflow experiment (empty = $MLFLOW_EXPERIMENT_NAME or \"cohort\")"},
    {"tracking.child_runs", KEY_BOOL, OFF(tracking.child_runs), "false", 0, 0,
     NULL, "one MLflow child run per client with its training metrics"},
    {"tracking.tensorboard", KEY_BOOL, OFF(tracking.tensorboard), "true", 0, 0,
     NULL, "write TensorBoard event files under WORKSPACE/tensorboard/"},
    {"tracking.report", KEY_BOOL, OFF(tracking.report), "true", 0, 0, NULL,
     "write WORKSPACE/results/report.html at the end"},
    {"tracking.drain_s", KEY_NUM, OFF(tracking.drain_s), "10", 0, 3600, NULL,
     "seconds to wait at exit for MLflow to acknowledge (the rest is sent "
     "by cohort-mlflow-sync)"},
};

/* Address of a key's field inside c. */
static void *
field(const struct config *c, const struct key *k)
{
	return (char *)c + k->offset;
}

/* Find a key by its dotted path. */
static const struct key *
find_key(const char *path)
{
	for (size_t i = 0; i < ARRAY_LEN(keys); i++)
		if (strcmp(keys[i].path, path) == 0)
			return &keys[i];
	return NULL;
}

/* Longest key path worth comparing for a suggestion. */
#define SUGGEST_MAX_LEN 128

/* Insertions, deletions and substitutions that turn a into b (Levenshtein);
 * -1 when either is longer than SUGGEST_MAX_LEN. */
static int
edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	int row[SUGGEST_MAX_LEN + 1];
	if (la > SUGGEST_MAX_LEN || lb > SUGGEST_MAX_LEN)
		return -1;
	for (size_t j = 0; j <= lb; j++)
		row[j] = (int)j;
	for (size_t i = 1; i <= la; i++) {
		int diag = row[0];
		row[0] = (int)i;
		for (size_t j = 1; j <= lb; j++) {
			int up = row[j];
			int best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* True when one of path's dot-separated parts is k's name (what follows
 * its section): "availability.p" and "train.rounds" name
 * federation.availability and federation.rounds. */
static int
names_key(const char *path, const struct key *k)
{
	const char *name = strchr(k->path, '.') + 1;
	size_t len = strlen(name);
	for (const char *p = path;; p++) {
		size_t n = strcspn(p, ".");
		if (n == len && strncmp(p, name, n) == 0)
			return 1;
		p += n;
		if (*p == '\0')
			return 0;
	}
}

/* The key an unknown path most likely meant, or NULL: a key one edit away
 * (a typo), else the one key it names (a key put in the wrong section),
 * else the nearest key within max(2, length / 3) edits. */
static const struct key *
suggest_key(const char *path)
{
	const struct key *named = NULL, *near = NULL;
	int nnamed = 0, near_d = INT_MAX;
	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		int d = edit_distance(path, keys[i].path);
		if (d >= 0 && d < near_d) {
			near = &keys[i];
			near_d = d;
		}
		if (names_key(path, &keys[i])) {
			named = &keys[i];
			nnamed++;
		}
	}
	if (near_d <= 1)
		return near;
	if (nnamed == 1)
		return named;
	int limit = (int)strlen(path) / 3 > 2 ? (int)strlen(path) / 3 : 2;
	return near_d <= limit ? near : NULL;
}

/* Report an unknown key met in where (a file, --set), with the key it most
 * likely meant. */
static int
unknown_key(struct ipc_error *err, const char *where, const char *path)
{
	const struct key *k = suggest_key(path);
	char hint[128] = "";
	if (k != NULL)
		snprintf(hint, sizeof hint, "; did you mean %s?", k->path);
	return ipc_error_set(err, IPC_E_BAD_VALUE,
	                     "%s: %s: unknown key%s (cohort-orchestrator "
	                     "--help lists the keys)",
	                     where, path, hint);
}

/* Report a section whose value is not an object of keys; a section that is
 * a key's name was most likely meant as that key. */
static int
not_a_section(struct ipc_error *err, const char *where, const char *section)
{
	const struct key *k = suggest_key(section);
	char hint[128] = "";
	if (k != NULL)
		snprintf(hint, sizeof hint, "; did you mean %s?", k->path);
	return ipc_error_set(err, IPC_E_WRONG_TYPE,
	                     "%s: %s: expected an object of keys%s", where,
	                     section, hint);
}

/* Human description of what a key accepts, for error messages. */
static void
describe_expected(const struct key *k, char *buf, size_t size)
{
	switch (k->type) {
	case KEY_INT:
		if (k->min == 1 && k->max >= 1e6)
			snprintf(buf, size, "a positive integer");
		else if (k->min == 0 && isinf(k->max))
			snprintf(buf, size, "a non-negative integer");
		else
			snprintf(buf, size, "an integer in [%.0f, %.0f]",
			         k->min, k->max);
		break;
	case KEY_NUM:
		snprintf(buf, size, "a number in [%g, %g]", k->min, k->max);
		break;
	case KEY_STR:
		snprintf(buf, size, "a string");
		break;
	case KEY_BOOL:
		snprintf(buf, size, "true or false");
		break;
	case KEY_CHOICE: {
		size_t off = (size_t)snprintf(buf, size, "one of ");
		const char *p = k->choices;
		while (*p && off < size) {
			size_t n = strcspn(p, "|");
			off += (size_t)snprintf(
			    buf + off, size - off, "%s\"%.*s\"",
			    p == k->choices ? "" : ", ", (int)n, p);
			p += n;
			if (*p == '|')
				p++;
		}
		break;
	}
	}
}

/* True when s is one of the '|'-separated choices. */
static int
choice_ok(const char *choices, const char *s)
{
	size_t len = strlen(s);
	const char *p = choices;
	while (*p) {
		size_t n = strcspn(p, "|");
		if (n == len && strncmp(p, s, n) == 0)
			return 1;
		p += n;
		if (*p == '|')
			p++;
	}
	return 0;
}

/* Report a value that does not fit its key: "WHERE: key: expected X, got V". */
static int
bad_value(struct ipc_error *err, const char *where, const struct key *k,
          const char *got)
{
	char expected[256];
	describe_expected(k, expected, sizeof expected);
	return ipc_error_set(err, IPC_E_BAD_VALUE,
	                     "%s: %s: expected %s, got %s", where, k->path,
	                     expected, got);
}

/* Store a string into a KEY_STR/KEY_CHOICE field, replacing the old one. */
static void
store_string(struct config *c, const struct key *k, const char *s)
{
	char **slot = field(c, k);
	free(*slot);
	*slot = xstrdup(s);
}

/* Parse text as the key's type and store it; got is the text for messages. */
static int
set_from_text(struct config *c, const struct key *k, const char *text,
              const char *where, struct ipc_error *err)
{
	char *quoted = xasprintf("\"%s\"", text);
	char *end;
	int rc = 0;
	errno = 0;
	switch (k->type) {
	case KEY_INT: {
		long long v = strtoll(text, &end, 10);
		if (*text == '\0' || *end != '\0' || errno != 0 ||
		    (double)v < k->min || (double)v > k->max)
			rc = bad_value(err, where, k, quoted);
		else
			*(int64_t *)field(c, k) = v;
		break;
	}
	case KEY_NUM: {
		double v = strtod(text, &end);
		if (*text == '\0' || *end != '\0' || errno != 0 ||
		    !isfinite(v) || v < k->min || v > k->max)
			rc = bad_value(err, where, k, quoted);
		else
			*(double *)field(c, k) = v;
		break;
	}
	case KEY_BOOL:
		if (strcmp(text, "true") == 0)
			*(bool *)field(c, k) = true;
		else if (strcmp(text, "false") == 0)
			*(bool *)field(c, k) = false;
		else
			rc = bad_value(err, where, k, quoted);
		break;
	case KEY_CHOICE:
		if (!choice_ok(k->choices, text)) {
			rc = bad_value(err, where, k, quoted);
			break;
		}
		store_string(c, k, text);
		break;
	case KEY_STR:
		store_string(c, k, text);
		break;
	}
	free(quoted);
	return rc;
}

/* Check a JSON value against the key's type and store it. */
static int
set_from_json(struct config *c, const struct key *k, json_t *v,
              const char *where, struct ipc_error *err)
{
	char *got = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	if (got == NULL)
		fatal("out of memory encoding a JSON value");
	int rc = 0;
	switch (k->type) {
	case KEY_INT:
		if (!json_is_integer(v) ||
		    (double)json_integer_value(v) < k->min ||
		    (double)json_integer_value(v) > k->max)
			rc = bad_value(err, where, k, got);
		else
			*(int64_t *)field(c, k) = json_integer_value(v);
		break;
	case KEY_NUM:
		if (!json_is_number(v) || json_number_value(v) < k->min ||
		    json_number_value(v) > k->max)
			rc = bad_value(err, where, k, got);
		else
			*(double *)field(c, k) = json_number_value(v);
		break;
	case KEY_BOOL:
		if (!json_is_boolean(v))
			rc = bad_value(err, where, k, got);
		else
			*(bool *)field(c, k) = json_is_true(v);
		break;
	case KEY_CHOICE:
		if (!json_is_string(v) ||
		    !choice_ok(k->choices, json_string_value(v)))
			rc = bad_value(err, where, k, got);
		else
			store_string(c, k, json_string_value(v));
		break;
	case KEY_STR:
		if (!json_is_string(v))
			rc = bad_value(err, where, k, got);
		else
			store_string(c, k, json_string_value(v));
		break;
	}
	free(got);
	return rc;
}

void
config_defaults(struct config *c)
{
	memset(c, 0, sizeof *c);
	for (size_t i = 0; i < ARRAY_LEN(keys); i++)
		if (set_from_text(c, &keys[i], keys[i].def, "defaults", NULL) <
		    0)
			fatal("built-in default of %s is invalid",
			      keys[i].path);
}

void
config_free(struct config *c)
{
	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		if (keys[i].type == KEY_STR || keys[i].type == KEY_CHOICE) {
			char **slot = field(c, &keys[i]);
			free(*slot);
			*slot = NULL;
		}
	}
}

/* Parse the JSON file at path; NULL with a message naming the file and the
 * system's reason, or the line and column of the invalid JSON. */
static json_t *
load_json(const char *path, struct ipc_error *err)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		ipc_error_set(err, IPC_E_IO, "%s: cannot open: %s", path,
		              strerror(errno));
		return NULL;
	}
	struct stat st;
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
		fclose(f);
		ipc_error_set(err, IPC_E_IO, "%s: cannot read: %s", path,
		              strerror(EISDIR));
		return NULL;
	}
	json_error_t jerr;
	errno = 0;
	json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
	int read_errno = ferror(f) ? errno : 0;
	fclose(f);
	if (root == NULL && read_errno != 0)
		ipc_error_set(err, IPC_E_IO, "%s: cannot read: %s", path,
		              strerror(read_errno));
	else if (root == NULL)
		ipc_error_set(err, IPC_E_BAD_VALUE,
		              "%s: invalid JSON at line %d, column %d: %s",
		              path, jerr.line, jerr.column, jerr.text);
	return root;
}

/* Keys that name a file or directory: a relative value is relative to the
 * config file that holds it (to the current directory for --set), and is
 * made absolute there, so that a job reads the same files from wherever it
 * is started or resumed. */
static const char *const path_keys[] = {
    "job.workspace_root", "data.dir",   "data.cache_dir",
    "model.init",         "model.file", "data.tokenizer",
};

/* When k is a path key with a relative value, make it base/value. */
static void
anchor_path(struct config *c, const struct key *k, const char *base)
{
	size_t i = 0;
	while (i < ARRAY_LEN(path_keys) && strcmp(path_keys[i], k->path) != 0)
		i++;
	char **field = (char **)((char *)c + k->offset);
	if (i == ARRAY_LEN(path_keys) || *field == NULL ||
	    (*field)[0] == '\0' || (*field)[0] == '/' || base == NULL)
		return;
	/* leading ./ and ../ against base, which is canonical (realpath,
	 * getcwd), so that ../data is <parent>/data */
	char *dir = xstrdup(base);
	const char *rel = *field;
	for (;;) {
		if (strncmp(rel, "./", 2) == 0) {
			rel += 2;
		} else if (strncmp(rel, "../", 3) == 0 ||
		           strcmp(rel, "..") == 0) {
			char *slash = strrchr(dir, '/');
			if (slash != NULL)
				slash[slash == dir] = '\0';
			rel += rel[2] == '/' ? 3 : 2;
		} else {
			break;
		}
	}
	int root = strcmp(dir, "/") == 0;
	char *abs = *rel == '\0' || strcmp(rel, ".") == 0
	                ? xstrdup(dir)
	                : xasprintf("%s%s%s", dir, root ? "" : "/", rel);
	free(dir);
	free(*field);
	*field = abs;
}

/* The absolute directory of the file at path (NULL when it has none). */
static char *
file_dir(const char *path)
{
	char *full = realpath(path, NULL);
	if (full == NULL)
		return NULL;
	char *slash = strrchr(full, '/');
	if (slash == full)
		slash[1] = '\0';
	else
		*slash = '\0';
	return full;
}

/* Overlay the keys of the file at path; with anchor, relative paths are
 * made relative to the file's directory. */
static int
load_file(struct config *c, const char *path, int anchor, struct ipc_error *err)
{
	json_t *root = load_json(path, err);
	if (root == NULL)
		return -1;
	int rc = 0;
	char *base = anchor ? file_dir(path) : NULL;
	if (!json_is_object(root)) {
		rc = ipc_error_set(err, IPC_E_WRONG_TYPE,
		                   "%s: expected a JSON object of sections "
		                   "(\"federation\": {...}, ...)",
		                   path);
		goto out;
	}
	const char *section;
	json_t *sv;
	json_object_foreach(root, section, sv)
	{
		if (!json_is_object(sv)) {
			rc = not_a_section(err, path, section);
			goto out;
		}
		const char *name;
		json_t *v;
		json_object_foreach(sv, name, v)
		{
			char *kp = xasprintf("%s.%s", section, name);
			const struct key *k = find_key(kp);
			if (k == NULL)
				rc = unknown_key(err, path, kp);
			else
				rc = set_from_json(c, k, v, path, err);
			if (rc == 0)
				anchor_path(c, k, base);
			free(kp);
			if (rc < 0)
				goto out;
		}
	}
out:
	free(base);
	json_decref(root);
	return rc;
}

int
config_load_file(struct config *c, const char *path, struct ipc_error *err)
{
	return load_file(c, path, 1, err);
}

int
config_load_saved(struct config *c, const char *path, struct ipc_error *err)
{
	return load_file(c, path, 0, err);
}

int
config_set(struct config *c, const char *assignment, struct ipc_error *err)
{
	const char *eq = strchr(assignment, '=');
	if (eq == NULL || eq == assignment)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "--set %s: expected key.path=value, e.g. "
		                     "--set federation.rounds=5",
		                     assignment);
	char *kp = xasprintf("%.*s", (int)(eq - assignment), assignment);
	const struct key *k = find_key(kp);
	int rc;
	if (k == NULL) {
		rc = unknown_key(err, "--set", kp);
	} else {
		rc = set_from_text(c, k, eq + 1, "--set", err);
		char *cwd = rc == 0 ? getcwd(NULL, 0) : NULL;
		anchor_path(c, k, cwd);
		free(cwd);
	}
	free(kp);
	return rc;
}

/* Model gpt2 and data.dataset text go together; gpt2's sizes are valid and
 * its sequences fit its context; the keys only gpt2 reads keep their
 * defaults with other models. */
static int
check_text(const struct config *c, const struct model_info *mi,
           struct ipc_error *err)
{
	int text_data = strcmp(c->data.dataset, "text") == 0;
	int text_model = mi != NULL && mi->text;
	if (text_model && !text_data)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "model.name gpt2 trains on text: set "
		                     "data.dataset text and data.dir to a "
		                     "directory of train.jsonl (or .txt) and "
		                     "validation.jsonl (docs/data.md)");
	if (text_data && !text_model && (mi == NULL || !mi->own))
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "data.dataset text: model %s trains on "
		                     "images; text trains model.name gpt2",
		                     c->model.name);
	if (!text_model) {
		static const char *const gpt2_only[] = {
		    "model.n_layer",      "model.n_head",
		    "model.n_embd",       "model.n_ctx",
		    "train.seq_len",      "train.grad_accum",
		    "train.warmup_steps", "train.lr_schedule",
		    "evaluate.max_tokens"};
		int set[] = {c->model.n_layer != 0,
		             c->model.n_head != 0,
		             c->model.n_embd != 0,
		             c->model.n_ctx != 0,
		             c->train.seq_len != 0,
		             c->train.grad_accum != 1,
		             c->train.warmup_steps != 0,
		             strcmp(c->train.lr_schedule, "constant") != 0,
		             c->evaluate.max_tokens != 32768};
		for (size_t i = 0; i < ARRAY_LEN(gpt2_only); i++)
			if (set[i])
				return ipc_error_set(
				    err, IPC_E_BAD_VALUE,
				    "%s: only model.name gpt2 reads it (model "
				    "%s): remove it",
				    gpt2_only[i], c->model.name);
		return 0;
	}
	if (strncmp(c->worker.device, "cuda", 4) == 0)
		return ipc_error_set(
		    err, IPC_E_BAD_VALUE,
		    "worker.device %s: model gpt2 trains on "
		    "the CPU only so far (its CUDA path is not "
		    "written yet): set worker.device cpu or "
		    "auto",
		    c->worker.device);
	struct gpt2_config g;
	if (config_gpt2(c, &g, err) < 0)
		return -1;
	if (c->train.seq_len > g.max_seq_len)
		return ipc_error_set(
		    err, IPC_E_BAD_VALUE,
		    "train.seq_len %lld is longer than the "
		    "model's context (model.n_ctx %d): lower it "
		    "or set 0 for the whole context",
		    (long long)c->train.seq_len, g.max_seq_len);
	return 0;
}

int
config_check(const struct config *c, struct ipc_error *err)
{
	if (c->federation.fit_clients > c->federation.clients)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "federation.fit_clients (%lld) is larger "
		                     "than federation.clients (%lld)",
		                     (long long)c->federation.fit_clients,
		                     (long long)c->federation.clients);
	if (c->federation.min_clients > c->federation.clients)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "federation.min_clients (%lld) is larger "
		                     "than federation.clients (%lld)",
		                     (long long)c->federation.min_clients,
		                     (long long)c->federation.clients);
	if (c->federation.min_fit > c->federation.fit_clients)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "federation.min_fit (%lld) is larger than "
		                     "federation.fit_clients (%lld)",
		                     (long long)c->federation.min_fit,
		                     (long long)c->federation.fit_clients);
	if (c->evaluate.fraction > 0 && !(c->data.holdout > 0))
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "evaluate.fraction %g needs held-out data "
		                     "on the clients: set data.holdout above 0 "
		                     "(e.g. --set data.holdout=0.1) or "
		                     "evaluate.fraction to 0",
		                     c->evaluate.fraction);
	if (c->tracking.child_runs &&
	    strcmp(c->output.client_metrics, "summary") == 0)
		return ipc_error_set(
		    err, IPC_E_BAD_VALUE,
		    "tracking.child_runs needs every client's "
		    "numbers: set output.client_metrics to all, "
		    "or tracking.child_runs to false");
	if (strategy_check_config(c, err) < 0)
		return -1;
	enum gpuslots_device kind;
	int gpu;
	if (gpuslots_parse_device(c->worker.device, &kind, &gpu, err) < 0)
		return -1;
	const struct model_info *mi = models_find(c->model.name);
	if (c->model.file[0] != '\0' && mi != NULL && !mi->closed_form)
		return ipc_error_set(
		    err, IPC_E_BAD_VALUE,
		    "model.file: only the synthetic model takes "
		    "its tensor list from a file; for model %s "
		    "set model.init to start from your weights",
		    c->model.name);
	if (strcmp(c->data.dataset, "none") == 0 && (mi == NULL || !mi->own))
		return ipc_error_set(
		    err, IPC_E_BAD_VALUE,
		    "data.dataset none: only model.name custom "
		    "(your own program reading its own data) "
		    "trains without a dataset; %s trains on "
		    "fashion-mnist, mnist or cifar10",
		    c->model.name);
	if (check_text(c, mi, err) < 0)
		return -1;
	if (strcmp(c->worker.adapter, "nvflare") == 0 &&
	    c->worker.command[0] == '\0')
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "worker.adapter nvflare runs your NVFlare "
		                     "script: set worker.command (e.g. "
		                     "\"/usr/bin/python3 train.py\")");
	if (mi != NULL && mi->own && c->worker.command[0] == '\0')
		return ipc_error_set(
		    err, IPC_E_BAD_VALUE,
		    "model.name custom is trained by your own "
		    "program: set worker.command (the built-in "
		    "worker trains %s only)",
		    "mlp, cnn and synthetic");
	if (c->job.name[0] == '\0' || strchr(c->job.name, '/') != NULL)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "job.name: expected a non-empty name "
		                     "without '/', got \"%s\"",
		                     c->job.name);
	return 0;
}

int
config_gpt2(const struct config *c, struct gpt2_config *g,
            struct ipc_error *err)
{
	return gpt2_sizes(c->model.preset, (long)c->model.n_layer,
	                  (long)c->model.n_head, (long)c->model.n_embd,
	                  (long)c->model.n_ctx, g, err);
}

int64_t
config_min_fit(const struct config *c)
{
	if (c->federation.min_fit > 0)
		return c->federation.min_fit;
	if (c->federation.min_clients < c->federation.fit_clients)
		return c->federation.min_clients;
	return c->federation.fit_clients;
}

json_t *
config_to_json(const struct config *c)
{
	json_t *root = json_object();
	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		const struct key *k = &keys[i];
		const char *dot = strchr(k->path, '.');
		char *section =
		    xasprintf("%.*s", (int)(dot - k->path), k->path);
		json_t *sv = json_object_get(root, section);
		if (sv == NULL) {
			sv = json_object();
			json_object_set_new(root, section, sv);
		}
		json_t *v = NULL;
		switch (k->type) {
		case KEY_INT:
			v = json_integer(*(int64_t *)field(c, k));
			break;
		case KEY_NUM:
			v = json_real(*(double *)field(c, k));
			break;
		case KEY_BOOL:
			v = json_boolean(*(bool *)field(c, k));
			break;
		case KEY_STR:
		case KEY_CHOICE:
			v = json_string(*(char **)field(c, k));
			break;
		}
		json_object_set_new(sv, dot + 1, v);
		free(section);
	}
	return root;
}

int
config_save(const struct config *c, const char *path, struct ipc_error *err)
{
	json_t *root = config_to_json(c);
	char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
	                                  JSON_REAL_PRECISION(17));
	json_decref(root);
	if (text == NULL)
		fatal("out of memory encoding the configuration");
	char *withnl = xasprintf("%s\n", text);
	free(text);
	int rc = atomicfile_write_buffer(path, withnl, strlen(withnl), err);
	free(withnl);
	/* a tracking URI with user:password@ makes the file a secret */
	const char *uri = c->tracking.mlflow_uri ? c->tracking.mlflow_uri : "";
	const char *host = strstr(uri, "://");
	host = host ? host + 3 : uri;
	const char *at = strchr(host, '@');
	if (rc == 0 && at != NULL && at < host + strcspn(host, "/?#") &&
	    chmod(path, 0600) < 0)
		return ipc_error_set(err, IPC_E_IO, "%s: cannot chmod 0600: %s",
		                     path, strerror(errno));
	return rc;
}

void
config_print_keys(FILE *out)
{
	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		char expected[256];
		describe_expected(&keys[i], expected, sizeof expected);
		fprintf(out, "  %-36s %s (default \"%s\")\n      %s\n",
		        keys[i].path, expected, keys[i].def, keys[i].doc);
	}
}

/* Sections that may differ between the runs of one job: how it runs, not
 * what it computes (a requeued job may land on a node with other CPUs or
 * GPUs). */
static const char *const runtime_sections[] = {
    "launcher", "output", "tracking", "preempt", "transport", "worker", "gpu"};

/* True when section is one of runtime_sections. */
static int
is_runtime(const char *section)
{
	for (size_t i = 0; i < ARRAY_LEN(runtime_sections); i++)
		if (strcmp(section, runtime_sections[i]) == 0)
			return 1;
	return 0;
}

/* Append "key: a there, b here" lines for every job-defining key that
 * differs; returns how many differ. */
int
config_job_differences(json_t *saved, json_t *given, char *buf, size_t size)
{
	int n = 0;
	const char *section;
	json_t *sv;
	json_object_foreach(given, section, sv)
	{
		if (is_runtime(section))
			continue;
		const char *key;
		json_t *v;
		json_object_foreach(sv, key, v)
		{
			if (strcmp(section, "job") == 0 &&
			    strcmp(key, "workspace_root") == 0)
				continue;
			json_t *old = json_object_get(
			    json_object_get(saved, section), key);
			if (old != NULL && json_equal(old, v))
				continue;
			char *a = old ? json_dumps(old, JSON_ENCODE_ANY)
			              : xstrdup("(absent)");
			char *b = json_dumps(v, JSON_ENCODE_ANY);
			size_t len = strlen(buf);
			if (n < 4 && len < size)
				snprintf(buf + len, size - len,
				         "%s%s.%s is %s there, %s here",
				         n ? "; " : "", section, key, a, b);
			free(a);
			free(b);
			n++;
		}
	}
	return n;
}
