/* client.c: the built-in worker serving tasks over libcohort-client
 * (client/cohort/client.h): train or evaluate the task's model on this
 * client's slice, in place in the update the library maps. */
#include "client.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "cohort/client.h"
#include "dataset.h"
#include "gpt2-train.h"
#include "internal.h"
#include "model.h"
#include "models.h"
#include "partition.h"
#include "synthetic.h"
#include "taskconf.h"
#include "train.h"

/* What a worker keeps between tasks in pool mode: opened files and the model,
 * reused while the task names the same paths. */
struct client_cache {
	char *train_path, *test_path, *partition_path, *model_name;
	struct dataset train, test;
	struct partition partition;
	struct model *model;
};

struct client {
	struct cohort_client *conn;
	struct backend *backend; /* cpu or cuda:N, kept for every task */
	struct client_cache cache;
	struct cohort_task *task; /* in progress, for metrics frames */
	uint64_t progress_every;  /* steps between metrics frames; 0 = none */
};

/* What a task reports: its examples and metrics. */
struct outcome {
	uint64_t num_examples;
	struct cohort_value metrics[8];
	size_t n;
};

static void
outcome_add(struct outcome *o, const char *key, double value)
{
	if (o->n < sizeof o->metrics / sizeof o->metrics[0])
		o->metrics[o->n++] = (struct cohort_value){key, value};
}

/* Replace *slot with path when it differs; 1 if it changed. */
static int
cache_path_changed(char **slot, const char *path)
{
	if (*slot != NULL && strcmp(*slot, path) == 0)
		return 0;
	free(*slot);
	*slot = xstrdup(path);
	return 1;
}

/* Open (or reuse) the dataset at path into ds. */
static int
cache_dataset(char **slot, struct dataset *ds, const char *path,
              struct ipc_error *err)
{
	if (!cache_path_changed(slot, path))
		return 0;
	dataset_close(ds);
	memset(ds, 0, sizeof *ds);
	if (dataset_open(path, ds, err) != 0) {
		free(*slot);
		*slot = NULL;
		return -1;
	}
	return 0;
}

/* Make sure the model for the task's name and the dataset's shape exists. */
static int
cache_model(struct client_cache *c, const char *name, const struct dataset *ds,
            struct ipc_error *err)
{
	if (!cache_path_changed(&c->model_name, name) && c->model != NULL)
		return 0;
	model_free(c->model);
	struct model_shape shape = {(int)ds->channels, (int)ds->height,
	                            (int)ds->width, (int)ds->classes};
	c->model = model_create(name, &shape, err);
	return c->model != NULL ? 0 : -1;
}

/* Release everything the cache holds. */
static void
cache_free(struct client_cache *c)
{
	dataset_close(&c->train);
	dataset_close(&c->test);
	partition_close(&c->partition);
	model_free(c->model);
	free(c->train_path);
	free(c->test_path);
	free(c->partition_path);
	free(c->model_name);
	memset(c, 0, sizeof *c);
}

/* The sample indices the task's split names: the whole test set, or this
 * client's training or held-out slice. */
static int
task_samples(struct client *cl, const struct msg_task *t,
             const struct dataset **ds, const uint32_t **idx, size_t *n,
             struct ipc_error *err)
{
	struct client_cache *c = &cl->cache;
	const char *split = taskconf_str(t, TK_SPLIT);
	if (strcmp(split, "test") == 0) {
		const char *path = taskconf_str(t, TK_TEST_DATA);
		if (cache_dataset(&c->test_path, &c->test, path, err) != 0)
			return -1;
		*ds = &c->test;
		*idx = NULL;
		*n = c->test.count;
		return 0;
	}
	if (strcmp(split, "train") != 0 && strcmp(split, "holdout") != 0)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "task %llu: config.split \"%s\": expected "
		                     "train, holdout or test",
		                     (unsigned long long)t->task_id, split);
	const char *data = taskconf_str(t, TK_TRAIN_DATA);
	const char *part = taskconf_str(t, TK_PARTITION);
	if (cache_dataset(&c->train_path, &c->train, data, err) != 0)
		return -1;
	if (cache_path_changed(&c->partition_path, part)) {
		partition_close(&c->partition);
		memset(&c->partition, 0, sizeof c->partition);
		if (partition_open(part, &c->partition, err) != 0) {
			free(c->partition_path);
			c->partition_path = NULL;
			return -1;
		}
	}
	if (t->client_id < 0)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "task %llu: split %s needs a client id",
		                     (unsigned long long)t->task_id, split);
	const uint32_t *train, *holdout;
	size_t ntrain, nholdout;
	if (partition_client(&c->partition, (uint32_t)t->client_id, &train,
	                     &ntrain, &holdout, &nholdout, err) != 0)
		return -1;
	*ds = &c->train;
	int want_train = strcmp(split, "train") == 0;
	*idx = want_train ? train : holdout;
	*n = want_train ? ntrain : nholdout;
	if (*n == 0)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "client %lld has no %s samples (set "
		                     "data.holdout above 0 for held-out "
		                     "evaluation)",
		                     (long long)t->client_id, split);
	return 0;
}

/* Training hyper-parameters from the task config. */
static int
task_train_config(const struct msg_task *t, struct train_config *tc,
                  struct ipc_error *err)
{
	/* Adam's betas and epsilon are not task keys: the engine's. */
	train_config_defaults(tc);
	tc->epochs = (uint32_t)taskconf_num(t, TK_EPOCHS);
	tc->batch_size = (uint32_t)taskconf_num(t, TK_BATCH_SIZE);
	tc->lr = (float)taskconf_num(t, TK_LR);
	tc->momentum = (float)taskconf_num(t, TK_MOMENTUM);
	tc->weight_decay = (float)taskconf_num(t, TK_WEIGHT_DECAY);
	tc->prox_mu = (float)taskconf_num(t, TK_MU);
	tc->seed = (uint64_t)taskconf_num(t, TK_SEED);
	return optimizer_parse(taskconf_str(t, TK_OPTIMIZER), &tc->optimizer,
	                       err);
}

/* CPU seconds this process has used so far. */
static double
process_cpu_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Send a metrics frame every progress_every steps. */
static void
client_progress(void *ctx, uint32_t epoch, uint64_t step, double loss)
{
	struct client *cl = ctx;
	if (cl->progress_every == 0 || step % cl->progress_every != 0)
		return;
	struct cohort_value v[] = {{"loss", loss}, {"epoch", epoch}};
	if (cohort_log(cl->task, step, v, 2) != 0)
		log_warn("metrics frame not sent: %s", cohort_error(cl->conn));
}

/* The task's global model must be laid out as model mf. */
static int
check_layout(const struct msg_task *t, const struct tensor_manifest *mf,
             struct ipc_error *err)
{
	if (tensor_manifest_equal(&t->params.manifest, mf, err) == 0)
		return 0;
	ipc_error_prefix(err, "task %llu: global model does not fit model %s: ",
	                 (unsigned long long)t->task_id,
	                 taskconf_str(t, TK_MODEL));
	return -1;
}

/* The task's update region, or -1 with the library's reason. */
static void *
task_update(struct client *cl, unsigned flags, struct ipc_error *err)
{
	size_t size;
	void *u = cohort_task_update(cl->task, flags, &size);
	if (u == NULL)
		cohortx_client_error(cl->conn, err);
	return u;
}

/* A fit task of the synthetic model: no dataset; the update is the global
 * model plus the closed-form delta. */
static int
task_fit_synthetic(struct client *cl, struct outcome *o, struct ipc_error *err)
{
	const struct msg_task *t = cohortx_task_msg(cl->task);
	const struct tensor_manifest *mf = &t->params.manifest;
	for (size_t i = 0; i < mf->count; i++)
		if (mf->tensors[i].dtype != DTYPE_F32)
			return ipc_error_set(
			    err, IPC_E_DTYPE,
			    "synthetic model: tensor %s is %s, expected "
			    "F32",
			    mf->tensors[i].name,
			    tensor_dtype_name(mf->tensors[i].dtype));
	double t0 = now_seconds();
	void *u = task_update(cl, COHORT_UPDATE_REUSE_GLOBAL, err);
	if (u == NULL)
		return -1;
	o->num_examples = synthetic_fit(mf, u, t->client_id, t->round,
	                                (uint32_t)taskconf_num(t, TK_EPOCHS));
	outcome_add(o, "seconds", now_seconds() - t0);
	return 0;
}

/* Run a fit task: train in place in the update (a copy of the global
 * model). FedProx's term reads the global model, which then stays. */
static int
task_fit(struct client *cl, struct outcome *o, struct ipc_error *err)
{
	const struct msg_task *t = cohortx_task_msg(cl->task);
	const struct dataset *ds;
	const uint32_t *idx;
	size_t n;
	struct train_config tc;
	if (task_samples(cl, t, &ds, &idx, &n, err) != 0 ||
	    task_train_config(t, &tc, err) != 0)
		return -1;
	const char *model = taskconf_str(t, TK_MODEL);
	if (cache_model(&cl->cache, model, ds, err) != 0 ||
	    check_layout(t, model_manifest(cl->cache.model), err) != 0)
		return -1;
	int prox = tc.prox_mu > 0;
	size_t gsize;
	const void *global = cohortx_task_global(cl->task, &gsize);
	void *u = task_update(cl, prox ? 0 : COHORT_UPDATE_REUSE_GLOBAL, err);
	if (u == NULL)
		return -1;

	struct train_stats st;
	double cpu0 = process_cpu_seconds();
	if (cl->backend->train(cl->backend, cl->cache.model, u,
	                       prox ? global : NULL, ds, idx, n, &tc, &st,
	                       client_progress, cl, err) != 0)
		return -1;
	o->num_examples = st.num_examples;
	/* No epoch ran: there is no training loss to report (NaN reads "-"). */
	outcome_add(o, "loss", tc.epochs ? st.loss : NAN);
	outcome_add(o, "accuracy", tc.epochs ? st.accuracy : NAN);
	outcome_add(o, "seconds", st.seconds);
	outcome_add(o, "cpu_seconds", process_cpu_seconds() - cpu0);
	outcome_add(o, "steps", (double)st.steps);
	outcome_add(o, "gflops", st.gflops);
	return 0;
}

/* A text model's sizes: the global model's tensors and the task's heads;
 * it trains on the CPU only. */
static int
task_gpt2(struct client *cl, const struct msg_task *t, struct gpt2_config *c,
          struct ipc_error *err)
{
	if (strcmp(cl->backend->name, "cpu") != 0)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "task %llu: model %s trains on the CPU "
		                     "only so far, and this worker runs on %s "
		                     "(set worker.device cpu)",
		                     (unsigned long long)t->task_id,
		                     taskconf_str(t, TK_MODEL),
		                     cl->backend->name);
	int heads = (int)taskconf_num(t, TK_N_HEAD);
	if (gpt2_config_from_manifest(&t->params.manifest, heads, c, err) == 0)
		return 0;
	ipc_error_prefix(err, "task %llu: global model does not fit model %s: ",
	                 (unsigned long long)t->task_id,
	                 taskconf_str(t, TK_MODEL));
	return -1;
}

/* The token stream of the task's documents: the slice's or the test set's;
 * a dataset that is not text is refused. */
static uint32_t *
task_tokens(const struct msg_task *t, const struct dataset *ds,
            const uint32_t *idx, size_t n, size_t *ntok, struct ipc_error *err)
{
	if (!ds->text) {
		ipc_error_set(err, IPC_E_MISMATCH,
		              "task %llu: model %s trains on a text dataset, "
		              "not on images",
		              (unsigned long long)t->task_id,
		              taskconf_str(t, TK_MODEL));
		return NULL;
	}
	return dataset_text_stream(ds, idx, n, ntok);
}

/* Run a fit task of a text model: train in place in the update on the
 * client's documents. */
static int
task_fit_text(struct client *cl, struct outcome *o, struct ipc_error *err)
{
	const struct msg_task *t = cohortx_task_msg(cl->task);
	const struct dataset *ds;
	const uint32_t *idx;
	size_t n, ntok;
	struct train_config tc;
	struct gpt2_config gc;
	if (task_samples(cl, t, &ds, &idx, &n, err) != 0 ||
	    task_train_config(t, &tc, err) != 0 ||
	    task_gpt2(cl, t, &gc, err) != 0)
		return -1;
	struct gpt2_train_config g = {
	    .epochs = tc.epochs,
	    .batch_size = tc.batch_size,
	    .grad_accum = (uint32_t)taskconf_num(t, TK_GRAD_ACCUM),
	    .seq_len = (uint32_t)taskconf_num(t, TK_SEQ_LEN),
	    .optimizer = tc.optimizer,
	    .lr = tc.lr,
	    .min_lr = (float)taskconf_num(t, TK_MIN_LR),
	    .momentum = tc.momentum,
	    .weight_decay = tc.weight_decay,
	    .beta1 = tc.beta1,
	    .beta2 = tc.beta2,
	    .eps = tc.eps,
	    .max_grad_norm = (float)taskconf_num(t, TK_MAX_GRAD_NORM),
	    .prox_mu = tc.prox_mu,
	    .warmup_steps = (uint64_t)taskconf_num(t, TK_WARMUP_STEPS),
	    .cosine = strcmp(taskconf_str(t, TK_LR_SCHEDULE), "cosine") == 0,
	    .seed = tc.seed,
	};
	uint32_t *tokens = task_tokens(t, ds, idx, n, &ntok, err);
	if (tokens == NULL)
		return -1;
	int prox = tc.prox_mu > 0;
	size_t gsize;
	const void *global = cohortx_task_global(cl->task, &gsize);
	void *u = task_update(cl, prox ? 0 : COHORT_UPDATE_REUSE_GLOBAL, err);
	struct train_stats st;
	double cpu0 = process_cpu_seconds();
	int rc = u == NULL
	             ? -1
	             : gpt2_train(&gc, u, prox ? global : NULL, tokens, ntok,
	                          &g, &st, client_progress, cl, err);
	free(tokens);
	if (rc != 0)
		return -1;
	o->num_examples = n;
	outcome_add(o, "loss", tc.epochs ? st.loss : NAN);
	outcome_add(o, "accuracy", tc.epochs ? st.accuracy : NAN);
	outcome_add(o, "tokens", (double)ntok);
	outcome_add(o, "seconds", st.seconds);
	outcome_add(o, "cpu_seconds", process_cpu_seconds() - cpu0);
	outcome_add(o, "steps", (double)st.steps);
	outcome_add(o, "gflops", st.gflops);
	return 0;
}

/* Run an evaluate task of a text model: next-token loss, perplexity and
 * accuracy of the global model over the split's documents (their first
 * max_tokens tokens). */
static int
task_evaluate_text(struct client *cl, struct outcome *o, struct ipc_error *err)
{
	const struct msg_task *t = cohortx_task_msg(cl->task);
	const struct dataset *ds;
	const uint32_t *idx;
	size_t n, ntok;
	struct gpt2_config gc;
	if (task_samples(cl, t, &ds, &idx, &n, err) != 0 ||
	    task_gpt2(cl, t, &gc, err) != 0)
		return -1;
	uint32_t *tokens = task_tokens(t, ds, idx, n, &ntok, err);
	if (tokens == NULL)
		return -1;
	/* The first max_tokens predicted tokens (one more token feeds the
	 * last). */
	double cap = taskconf_num(t, TK_MAX_TOKENS);
	if (cap > 0 && (double)ntok > cap + 1)
		ntok = (size_t)cap + 1;
	size_t gsize;
	const float *global = cohortx_task_global(cl->task, &gsize);
	double loss, acc;
	uint64_t counted;
	int rc = gpt2_evaluate(&gc, global, tokens, ntok,
	                       (uint32_t)taskconf_num(t, TK_SEQ_LEN),
	                       (uint32_t)taskconf_num(t, TK_BATCH_SIZE), &loss,
	                       &acc, &counted, err);
	free(tokens);
	if (rc != 0)
		return -1;
	o->num_examples = n;
	outcome_add(o, "loss", loss);
	outcome_add(o, "accuracy", acc);
	outcome_add(o, "perplexity", exp(loss));
	outcome_add(o, "tokens", (double)counted);
	return 0;
}

/* Run an evaluate task on the global model, in place. */
static int
task_evaluate(struct client *cl, struct outcome *o, struct ipc_error *err)
{
	const struct msg_task *t = cohortx_task_msg(cl->task);
	const struct dataset *ds;
	const uint32_t *idx;
	size_t n;
	if (task_samples(cl, t, &ds, &idx, &n, err) != 0)
		return -1;
	const char *model = taskconf_str(t, TK_MODEL);
	if (cache_model(&cl->cache, model, ds, err) != 0 ||
	    check_layout(t, model_manifest(cl->cache.model), err) != 0)
		return -1;
	size_t gsize;
	const void *global = cohortx_task_global(cl->task, &gsize);
	double loss, acc;
	uint32_t batch = (uint32_t)taskconf_num(t, TK_BATCH_SIZE);
	if (cl->backend->evaluate(cl->backend, cl->cache.model, global, ds, idx,
	                          n, batch, &loss, &acc, err) != 0)
		return -1;
	o->num_examples = n;
	outcome_add(o, "loss", loss);
	outcome_add(o, "accuracy", acc);
	return 0;
}

/* Serve one task and report it; 0 when the worker may take another. */
static int
client_serve(struct client *cl, struct cohort_task *task)
{
	const struct msg_task *t = cohortx_task_msg(task);
	struct ipc_error err = {0};
	struct outcome o = {0};
	int rc = 0;
	const struct model_info *mi = models_find(taskconf_str(t, TK_MODEL));
	cl->task = task;
	if (mi == NULL)
		rc =
		    ipc_error_set(&err, IPC_E_BAD_VALUE,
		                  "task %llu: config.model \"%s\": not a model "
		                  "this worker knows (%s)",
		                  (unsigned long long)t->task_id,
		                  taskconf_str(t, TK_MODEL), MODELS_CHOICES);
	else if (mi->own || t->kind == TASK_INIT)
		rc = ipc_error_set(&err, IPC_E_BAD_VALUE,
		                   "task %llu: model custom is trained by your "
		                   "own program (worker.command), not by the "
		                   "built-in worker",
		                   (unsigned long long)t->task_id);
	cl->progress_every = rc == 0 && t->kind == TASK_FIT
	                         ? (uint64_t)taskconf_num(t, TK_PROGRESS_EVERY)
	                         : 0;
	if (rc != 0)
		; /* reported below */
	else if (t->kind == TASK_FIT)
		rc = mi->closed_form ? task_fit_synthetic(cl, &o, &err)
		     : mi->text      ? task_fit_text(cl, &o, &err)
		                     : task_fit(cl, &o, &err);
	else if (!mi->has_data)
		rc = ipc_error_set(&err, IPC_E_BAD_VALUE,
		                   "model %s has no data to evaluate on",
		                   mi->name);
	else
		rc = mi->text ? task_evaluate_text(cl, &o, &err)
		              : task_evaluate(cl, &o, &err);
	cl->task = NULL;
	if (rc != 0) {
		cohortx_fail_error(task, &err);
		return -1;
	}
	/* The library logs a report that could not be sent. */
	return cohort_done(task, o.num_examples, o.metrics, o.n) != 0 ? -1 : 0;
}

int
client_main(void)
{
	char why[512];
	struct client cl = {0};
	cl.conn = cohort_open(why, sizeof why);
	if (cl.conn == NULL) {
		log_error(
		    "%s%s", why,
		    getenv("COHORT_SOCKET") == NULL
		        ? " (cohort-worker --standalone trains on its own)"
		        : "");
		return getenv("COHORT_SOCKET") == NULL ? 2 : 1;
	}
	struct ipc_error err;
	const char *device = getenv("COHORT_DEVICE");
	if (backend_open(device && device[0] ? device : "auto", &cl.backend,
	                 &err) != 0) {
		log_error("%s", err.message);
		cohort_close(cl.conn);
		return 1;
	}
	cohort_set_device(cl.conn, cl.backend->name);
	struct cohort_task *task;
	/* A failure of cohort_next is logged by the library. */
	while (cohort_next(cl.conn, &task) > 0)
		if (client_serve(&cl, task) != 0)
			break;
	cache_free(&cl.cache);
	backend_close(cl.backend);
	return cohort_close(cl.conn);
}
