/* client.c: a worker serving tasks: map the global model, train or evaluate
 * on this client's slice, write the update into its own segment, report. */
#include "client.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "backend.h"
#include "dataset.h"
#include "forkserver.h"
#include "frame.h"
#include "message.h"
#include "model.h"
#include "models.h"
#include "partition.h"
#include "shm.h"
#include "shmcache.h"
#include "synthetic.h"
#include "taskconf.h"
#include "train.h"
#include "transfer.h"

/* What a worker keeps between tasks in pool mode: opened files and the model,
 * reused while the task names the same paths. */
struct client_cache {
	char *train_path, *test_path, *partition_path, *model_name;
	struct dataset train, test;
	struct partition partition;
	struct model *model;
};

struct client {
	int fd;
	const char *job;
	struct backend *backend; /* cpu or cuda:N, kept for every task */
	struct client_cache cache;
	uint64_t task_id;        /* task in progress, for metrics frames */
	uint64_t progress_every; /* steps between metrics frames; 0 = none */
	void *outgoing;          /* update to stream after the result frame */
	uint64_t outgoing_size;
	size_t chunk_bytes;    /* task config chunk_bytes (stream transport) */
	struct shm_cache maps; /* small segments stay mapped across tasks */
	struct frame_fds fds;  /* descriptors the task frame brought */
	void *idle_buf;        /* a streamed model's buffer kept for the next */
	size_t idle_size;      /* task of a pool (its pages are in memory) */
};

/* The task's global model: a read-only shm mapping, or (stream transport)
 * a buffer of our own the chunks were received into. */
struct task_region {
	struct shm_segment seg;
	void *buf;
	size_t size; /* bytes of buf */
	void *addr;
};

/* A buffer of size bytes for a streamed model: the one kept from the last
 * task when it has that size, else a new one. */
static void *
buf_get(struct client *cl, size_t size)
{
	void *b = NULL;
	if (cl->idle_buf != NULL && cl->idle_size == size) {
		b = cl->idle_buf;
		cl->idle_buf = NULL;
	} else {
		b = big_alloc(size);
	}
	return b;
}

/* Done with buffer b: keep it for the next task, or free it. */
static void
buf_put(struct client *cl, void *b, size_t size)
{
	if (b == NULL)
		return;
	if (cl->idle_buf == NULL) {
		cl->idle_buf = b;
		cl->idle_size = size;
	} else {
		big_free(b, size);
	}
}

/* Read a required environment variable or explain which one is missing. */
static const char *
client_env(const char *name)
{
	const char *v = getenv(name);
	if (v == NULL || v[0] == '\0') {
		log_error("%s is not set: cohort-worker in client mode is "
		          "started by cohort-orchestrator (use --standalone "
		          "to train on its own)",
		          name);
		return NULL;
	}
	return v;
}

/* Connect to the orchestrator's Unix socket. */
static int
client_connect(const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof addr.sun_path) {
		log_error("socket path too long: %s", path);
		return -1;
	}
	strcpy(addr.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_error("socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
		log_error("connect %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
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
	struct msg m;
	msg_init(&m, MSG_METRICS);
	m.u.metrics.task_id = cl->task_id;
	m.u.metrics.step = step;
	kv_set_num(&m.u.metrics.values, "loss", loss);
	kv_set_num(&m.u.metrics.values, "epoch", epoch);
	struct ipc_error err;
	if (msg_send(cl->fd, &m, &err) != 0)
		log_warn("metrics frame not sent: %s", err.message);
	msg_free(&m);
}

/* Map or receive the task's global model after checking its layout is mf. */
static int
task_map_global(struct client *cl, const struct msg_task *t,
                const struct tensor_manifest *mf, struct task_region *g,
                struct ipc_error *err)
{
	memset(g, 0, sizeof *g);
	g->seg.fd = -1;
	if (t->params.where != PARAMS_FD && t->params.where != PARAMS_STREAM)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "task %llu: params must be in shared "
		                     "memory or streamed",
		                     (unsigned long long)t->task_id);
	if (tensor_manifest_equal(&t->params.manifest, mf, err) != 0) {
		ipc_error_prefix(err,
		                 "task %llu: global model does not fit "
		                 "model %s: ",
		                 (unsigned long long)t->task_id,
		                 taskconf_str(t, TK_MODEL));
		return -1;
	}
	if (t->params.where == PARAMS_FD) {
		int fd = frame_fds_take(&cl->fds, t->params.fd);
		if (fd < 0)
			return ipc_error_set(
			    err, IPC_E_BAD_VALUE,
			    "task %llu: its frame carried no "
			    "descriptor %u for the global model",
			    (unsigned long long)t->task_id,
			    (unsigned)t->params.fd);
		if (shm_cache_open(&cl->maps, &g->seg, fd, "the global model",
		                   SHM_SEALED_SIZE | SHM_SEALED_READONLY,
		                   SHM_READ, mf->total_size, err) != 0)
			return -1;
		g->addr = g->seg.addr;
		return 0;
	}
	g->buf = buf_get(cl, mf->total_size);
	g->size = mf->total_size;
	g->addr = g->buf;
	cl->chunk_bytes = (size_t)taskconf_num(t, TK_CHUNK_BYTES);
	return transfer_receive(cl->fd, t->task_id, g->buf, mf->total_size,
	                        err);
}

/* Unmap or free the task's global model. */
static void
task_region_free(struct client *cl, struct task_region *g)
{
	shm_segment_close(&g->seg);
	buf_put(cl, g->buf, g->size);
	memset(g, 0, sizeof *g);
	g->seg.fd = -1;
}

/* Our update segment: the descriptor the task frame brought, filled with
 * the global model (pwrite: fresh pages are not zeroed first) and mapped
 * read-write. It must be unmapped before the result is sent: the
 * orchestrator then seals it against writes. */
static int
map_update(struct client *cl, const struct msg_task *t, const void *global,
           size_t size, struct shm_segment *update, struct ipc_error *err)
{
	int fd = t->update_fd >= 0
	             ? frame_fds_take(&cl->fds, (unsigned)t->update_fd)
	             : -1;
	struct stat st;
	if (fd < 0)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "task %llu: its frame carried no update "
		                     "descriptor",
		                     (unsigned long long)t->task_id);
	if (shm_fd_check(fd, "the update segment", SHM_SEALED_SIZE, size, &st,
	                 err) != 0)
		return -1;
	if (shm_fd_fill(fd, "the update segment", global, size, err) != 0) {
		close(fd);
		return -1;
	}
	return shm_segment_map(update, "the update segment", fd, size,
	                       SHM_WRITE, err);
}

/* Where the update goes: our own shm segment (a copy of the global model),
 * or with the stream transport the received buffer itself, kept for
 * sending after the result (a copy when training needs the global model). */
static int
task_update_region(struct client *cl, const struct msg_task *t,
                   const struct tensor_manifest *mf, struct task_region *g,
                   int keep_global, struct shm_segment *update, void **out,
                   struct ipc_error *err)
{
	if (g->buf != NULL) {
		if (keep_global) {
			*out = buf_get(cl, mf->total_size);
			memcpy(*out, g->buf, mf->total_size);
		} else {
			*out = g->buf;
			g->buf = NULL;
			g->addr = NULL;
		}
		cl->outgoing = *out;
		cl->outgoing_size = mf->total_size;
		return 0;
	}
	if (map_update(cl, t, g->addr, mf->total_size, update, err) != 0)
		return -1;
	*out = update->addr;
	return 0;
}

/* Describe the update in the result: its segment, or a stream. */
static void
result_params(const struct client *cl, const struct msg_task *t,
              const struct tensor_manifest *mf, struct msg_result *r)
{
	tensor_manifest_copy(&r->params.manifest, mf);
	r->params.size = mf->total_size;
	if (cl->outgoing != NULL) {
		r->params.where = PARAMS_STREAM;
		return;
	}
	r->params.where = PARAMS_FD;
	r->params.fd = (uint32_t)t->update_fd;
}

/* Drop an update that will not be sent (the task failed). */
static void
drop_update(struct client *cl, struct shm_segment *update)
{
	shm_segment_close(update);
	buf_put(cl, cl->outgoing, cl->outgoing_size);
	cl->outgoing = NULL;
}

/* A fit task of the synthetic model: no dataset; the update is the global
 * model plus the closed-form delta, written where the transport wants it. */
static int
task_fit_synthetic(struct client *cl, const struct msg_task *t,
                   struct msg *result, struct ipc_error *err)
{
	const struct tensor_manifest *mf = &t->params.manifest;
	for (size_t i = 0; i < mf->count; i++)
		if (mf->tensors[i].dtype != DTYPE_F32)
			return ipc_error_set(
			    err, IPC_E_DTYPE,
			    "synthetic model: tensor %s is %s, expected "
			    "F32",
			    mf->tensors[i].name,
			    tensor_dtype_name(mf->tensors[i].dtype));
	double epochs = taskconf_num(t, TK_EPOCHS);
	double t0 = now_seconds();
	struct task_region g;
	struct shm_segment update = {.fd = -1};
	void *u;
	if (task_map_global(cl, t, mf, &g, err) != 0 ||
	    task_update_region(cl, t, mf, &g, 0, &update, &u, err) != 0) {
		task_region_free(cl, &g);
		return -1;
	}
	task_region_free(cl, &g);
	uint64_t n =
	    synthetic_fit(mf, u, t->client_id, t->round, (uint32_t)epochs);
	shm_segment_close(&update);
	struct msg_result *r = &result->u.result;
	r->task_id = t->task_id;
	r->num_examples = n;
	kv_set_num(&r->metrics, "seconds", now_seconds() - t0);
	result_params(cl, t, mf, r);
	return 0;
}

/* Run a fit task: copy the global model into our own segment, train in
 * place, and describe the segment in the result. */
static int
task_fit(struct client *cl, const struct msg_task *t, struct msg *result,
         struct ipc_error *err)
{
	const struct dataset *ds;
	const uint32_t *idx;
	size_t n;
	struct train_config tc;
	if (task_samples(cl, t, &ds, &idx, &n, err) != 0 ||
	    task_train_config(t, &tc, err) != 0)
		return -1;
	const char *model = taskconf_str(t, TK_MODEL);
	if (cache_model(&cl->cache, model, ds, err) != 0)
		return -1;

	const struct tensor_manifest *mf = model_manifest(cl->cache.model);
	struct task_region global;
	struct shm_segment update = {.fd = -1};
	void *u;
	if (task_map_global(cl, t, mf, &global, err) != 0 ||
	    task_update_region(cl, t, mf, &global, tc.prox_mu > 0, &update, &u,
	                       err) != 0) {
		task_region_free(cl, &global);
		return -1;
	}

	struct train_stats st;
	cl->task_id = t->task_id;
	double cpu0 = process_cpu_seconds();
	int rc = cl->backend->train(cl->backend, cl->cache.model, u,
	                            tc.prox_mu > 0 ? global.addr : NULL, ds,
	                            idx, n, &tc, &st, client_progress, cl, err);
	task_region_free(cl, &global);
	if (rc != 0) {
		drop_update(cl, &update);
		return -1;
	}
	shm_segment_close(&update);

	struct msg_result *r = &result->u.result;
	r->task_id = t->task_id;
	r->num_examples = st.num_examples;
	/* No epoch ran: there is no training loss to report (NaN reads "-"). */
	kv_set_num(&r->metrics, "loss", tc.epochs ? st.loss : NAN);
	kv_set_num(&r->metrics, "accuracy", tc.epochs ? st.accuracy : NAN);
	kv_set_num(&r->metrics, "seconds", st.seconds);
	kv_set_num(&r->metrics, "cpu_seconds", process_cpu_seconds() - cpu0);
	kv_set_num(&r->metrics, "steps", (double)st.steps);
	kv_set_num(&r->metrics, "gflops", st.gflops);
	result_params(cl, t, mf, r);
	return 0;
}

/* Run an evaluate task on the global model, in place. */
static int
task_evaluate(struct client *cl, const struct msg_task *t, struct msg *result,
              struct ipc_error *err)
{
	const struct dataset *ds;
	const uint32_t *idx;
	size_t n;
	if (task_samples(cl, t, &ds, &idx, &n, err) != 0)
		return -1;
	const char *model = taskconf_str(t, TK_MODEL);
	if (cache_model(&cl->cache, model, ds, err) != 0)
		return -1;
	struct task_region global;
	if (task_map_global(cl, t, model_manifest(cl->cache.model), &global,
	                    err) != 0) {
		task_region_free(cl, &global);
		return -1;
	}
	double loss, acc;
	uint32_t batch = (uint32_t)taskconf_num(t, TK_BATCH_SIZE);
	int rc =
	    cl->backend->evaluate(cl->backend, cl->cache.model, global.addr, ds,
	                          idx, n, batch, &loss, &acc, err);
	task_region_free(cl, &global);
	if (rc != 0)
		return -1;
	struct msg_result *r = &result->u.result;
	r->task_id = t->task_id;
	r->num_examples = n;
	kv_set_num(&r->metrics, "loss", loss);
	kv_set_num(&r->metrics, "accuracy", acc);
	return 0;
}

/* Serve one task; 0 when the worker may take another. */
static int
client_serve(struct client *cl, const struct msg_task *t)
{
	struct msg reply;
	struct ipc_error err = {0};
	msg_init(&reply, MSG_RESULT);
	int rc = taskconf_check(t, &err);
	const struct model_info *mi =
	    rc == 0 ? models_find(taskconf_str(t, TK_MODEL)) : NULL;
	if (rc == 0 && mi == NULL)
		rc =
		    ipc_error_set(&err, IPC_E_BAD_VALUE,
		                  "task %llu: config.model \"%s\": not a model "
		                  "this worker knows (%s)",
		                  (unsigned long long)t->task_id,
		                  taskconf_str(t, TK_MODEL), MODELS_CHOICES);
	if (rc == 0 && mi->own)
		rc = ipc_error_set(&err, IPC_E_BAD_VALUE,
		                   "task %llu: model custom is trained by your "
		                   "own program (worker.command), not by the "
		                   "built-in worker",
		                   (unsigned long long)t->task_id);
	int synthetic = mi != NULL && mi->closed_form;
	cl->progress_every = rc == 0 && t->kind == TASK_FIT
	                         ? (uint64_t)taskconf_num(t, TK_PROGRESS_EVERY)
	                         : 0;
	if (rc != 0)
		; /* reported below */
	else if (t->kind == TASK_FIT)
		rc = synthetic ? task_fit_synthetic(cl, t, &reply, &err)
		               : task_fit(cl, t, &reply, &err);
	else if (!mi->has_data)
		rc = ipc_error_set(&err, IPC_E_BAD_VALUE,
		                   "model %s has no data to evaluate on",
		                   mi->name);
	else
		rc = task_evaluate(cl, t, &reply, &err);
	if (rc != 0) {
		log_error("task %llu (%s, round %u, client %lld) failed: %s",
		          (unsigned long long)t->task_id,
		          task_kind_name(t->kind), t->round,
		          (long long)t->client_id, err.message);
		msg_free(&reply);
		msg_init(&reply, MSG_ERROR);
		reply.u.error.task_id = t->task_id;
		reply.u.error.code = xstrdup(ipc_code_name(err.code));
		reply.u.error.message = xstrdup(err.message);
	}
	struct ipc_error serr;
	if (msg_send(cl->fd, &reply, &serr) != 0 ||
	    (rc == 0 && cl->outgoing != NULL &&
	     transfer_send(cl->fd, t->task_id, cl->outgoing, 0,
	                   cl->outgoing_size, cl->chunk_bytes, &serr) != 0)) {
		log_error("cannot report task %llu: %s",
		          (unsigned long long)t->task_id, serr.message);
		rc = -1;
	}
	buf_put(cl, cl->outgoing, cl->outgoing_size);
	cl->outgoing = NULL;
	msg_free(&reply);
	return rc;
}

int
client_main(void)
{
	const char *socket_path = client_env("COHORT_SOCKET");
	const char *token = client_env("COHORT_TOKEN");
	const char *job = client_env("COHORT_JOB");
	const char *client_id = client_env("COHORT_CLIENT_ID");
	if (!socket_path || !token || !job || !client_id)
		return 2;
	die_with_parent();
	keep_private();
	/* Launch mode fork-server: from here on this is one of its children
	 * (the environment, with COHORT_CLIENT_ID, is the fork frame's). */
	const char *fork_server = getenv("COHORT_FORK_SERVER");
	if (fork_server != NULL && strcmp(fork_server, "1") == 0) {
		if (forkserver_run(socket_path, token) != 0)
			return 1;
		die_with_parent();
		client_id = client_env("COHORT_CLIENT_ID");
		if (client_id == NULL)
			return 2;
	}
	const char *tasks_env = getenv("COHORT_TASKS");
	long max_tasks = tasks_env ? strtol(tasks_env, NULL, 10) : 1;
	if (max_tasks < 1)
		max_tasks = 1;

	struct client cl = {.job = job};
	struct ipc_error err;
	const char *device = getenv("COHORT_DEVICE");
	if (backend_open(device && device[0] ? device : "auto", &cl.backend,
	                 &err) != 0) {
		log_error("%s", err.message);
		return 1;
	}
	cl.fd = client_connect(socket_path);
	if (cl.fd < 0) {
		backend_close(cl.backend);
		return 1;
	}

	struct msg hello;
	msg_init(&hello, MSG_HELLO);
	snprintf(hello.u.hello.token, sizeof hello.u.hello.token, "%s", token);
	hello.u.hello.client_id = strtoll(client_id, NULL, 10);
	hello.u.hello.pid = (int32_t)getpid();
	snprintf(hello.u.hello.device, sizeof hello.u.hello.device, "%s",
	         cl.backend->name);
	if (msg_send(cl.fd, &hello, &err) != 0) {
		log_error("hello: %s", err.message);
		close(cl.fd);
		backend_close(cl.backend);
		return 1;
	}

	/* The global model of this round and the last (FedAvg writes the
	 * next model into the same memfd), the relay of cyclic rounds. */
	shm_cache_init(&cl.maps, 4);
	frame_fds_init(&cl.fds);
	int status = 0;
	for (long done = 0; done < max_tasks;) {
		struct msg m;
		frame_fds_close(&cl.fds);
		if (msg_recv_fds(cl.fd, FRAME_MAX_DEFAULT, &m, &cl.fds, &err) !=
		    0) {
			if (err.code != IPC_E_CLOSED) {
				log_error("bad frame from orchestrator: %s",
				          err.message);
				status = 1;
			}
			break;
		}
		if (m.type == MSG_ERROR) {
			log_error("orchestrator refused us: %s",
			          m.u.error.message);
			msg_free(&m);
			status = 1;
			break;
		}
		if (m.type != MSG_TASK) {
			log_warn("ignoring unexpected %s frame",
			         msg_type_name(m.type));
			msg_free(&m);
			continue;
		}
		if (m.u.task.kind == TASK_SHUTDOWN) {
			msg_free(&m);
			break;
		}
		if (client_serve(&cl, &m.u.task) != 0)
			status = 1;
		msg_free(&m);
		done++;
		if (status != 0)
			break;
	}
	frame_fds_close(&cl.fds);
	cache_free(&cl.cache);
	shm_cache_free(&cl.maps);
	big_free(cl.idle_buf, cl.idle_size);
	backend_close(cl.backend);
	close(cl.fd);
	return status;
}
