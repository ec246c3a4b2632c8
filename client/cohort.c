/* cohort.c: libcohort-client, the worker side of the protocol
 * (docs/protocol.md) behind client/cohort/client.h. One task is open at a
 * time: its frame, its global model (a sealed read-only mapping, or a
 * buffer the chunks were received into) and its update (the memfd the
 * task frame brought, or a buffer streamed back after the result). */
#include "cohort/client.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "forkserver.h"
#include "frame.h"
#include "internal.h"
#include "message.h"
#include "shm.h"
#include "shmcache.h"
#include "taskconf.h"
#include "tensor.h"
#include "transfer.h"
#include "wsum.h"

_Static_assert((int)COHORT_F32 == DTYPE_F32 && (int)COHORT_U8 == DTYPE_U8,
               "cohort_dtype and tensor_dtype agree");
_Static_assert((int)COHORT_FIT == TASK_FIT &&
                   (int)COHORT_EVALUATE == TASK_EVALUATE &&
                   (int)COHORT_INIT == TASK_INIT,
               "cohort_kind and task_kind agree");
_Static_assert(COHORT_MAX_RANK == TENSOR_MAX_RANK, "ranks agree");
_Static_assert(COHORT_PROTO_VERSION == PROTO_VERSION, "versions agree");

/* The most an init task's model is sent inline, in its result frame. */
#define INIT_INLINE_MAX (32u << 20)

struct cohort_task {
	struct cohort_client *cl;
	struct msg m;              /* the task frame */
	struct shm_segment global; /* its model in shared memory, or */
	void *gbuf;                /* the buffer it was streamed into */
	const uint8_t *gaddr;      /* where the global model is */
	uint64_t gsize;
	struct shm_segment update; /* the update's memfd, mapped, or */
	void *ubuf;                /* the buffer streamed after the result */
	uint8_t *uaddr;            /* where the update is; NULL: none yet */
	size_t chunk_bytes;
	int fold;   /* a fit folded into the partial sum, not returned */
	void *fbuf; /* its update: private memory (the segment stays empty) */
};

/* The partial sum a pool worker folds its fits into (docs/protocol.md,
 * "Partial sums"): a segment a task frame brought, mapped writable until
 * it is sent. Ids grow; one sent is never taken again. */
struct partial {
	struct shm_segment seg; /* fd -1: none held */
	uint64_t id;
	uint64_t sent;   /* the last id sent (0: none) */
	size_t numel;    /* its float64 elements */
	uint64_t *tasks; /* folded into it, in order */
	size_t n, cap;
	double weight;
	size_t flush_every; /* the task's flush_every (0: when idle) */
};

struct cohort_client {
	int fd;
	char token[MSG_MAX_TOKEN + 1];
	char device[MSG_MAX_DEVICE + 1];
	int64_t client_id;
	long tasks_left;
	int said_hello, ended, status;
	struct ipc_error err;
	struct shm_cache maps; /* small segments stay mapped across tasks */
	struct frame_fds fds;  /* descriptors the task frame brought */
	void *idle_buf;        /* a streamed model's buffer kept for the next */
	size_t idle_size;      /* task of a pool (its pages are in memory) */
	struct cohort_task task;
	int open; /* task is a task not yet reported */
	struct partial partial;
};

/* Record a failure of cl (printf-style) and log it; returns -1. */
static int fail_cl(struct cohort_client *cl, enum ipc_code code,
                   const char *fmt, ...) COHORT_PRINTF(3, 4);
static int
fail_cl(struct cohort_client *cl, enum ipc_code code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cl->err.code = code;
	vsnprintf(cl->err.message, sizeof cl->err.message, fmt, ap);
	va_end(ap);
	log_error("%s", cl->err.message);
	return -1;
}

/* A buffer of size bytes for a streamed model: the one kept from the last
 * task when it has that size, else a new one. */
static void *
buf_get(struct cohort_client *cl, size_t size)
{
	if (cl->idle_buf != NULL && cl->idle_size == size) {
		void *b = cl->idle_buf;
		cl->idle_buf = NULL;
		return b;
	}
	return big_alloc(size);
}

/* Done with buffer b of size bytes: keep it for the next task, or free. */
static void
buf_put(struct cohort_client *cl, void *b, size_t size)
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

/* A required environment variable, or the reason it is missing. */
static const char *
need_env(const char *name, char *err, size_t errlen)
{
	const char *v = getenv(name);
	if (v == NULL || v[0] == '\0') {
		snprintf(err, errlen,
		         "%s is not set: this program serves cohort tasks and "
		         "is started by cohort-orchestrator (worker.command)",
		         name);
		return NULL;
	}
	return v;
}

/* Connect to the orchestrator's Unix socket at path. */
static int
connect_socket(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof addr.sun_path) {
		snprintf(err, errlen, "socket path too long: %s", path);
		return -1;
	}
	strcpy(addr.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
		snprintf(err, errlen, "connect %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

struct cohort_client *
cohort_open(char *err, size_t errlen)
{
	const char *sock = need_env("COHORT_SOCKET", err, errlen);
	const char *token = sock ? need_env("COHORT_TOKEN", err, errlen) : NULL;
	if (token == NULL)
		return NULL;
	if (strlen(token) > MSG_MAX_TOKEN) {
		snprintf(err, errlen, "COHORT_TOKEN is longer than %d bytes",
		         MSG_MAX_TOKEN);
		return NULL;
	}
	die_with_parent();
	keep_private();
	/* Launch mode fork-server: from here on this is one of its children
	 * (the environment, with COHORT_CLIENT_ID, is the fork frame's). */
	const char *fork_server = getenv("COHORT_FORK_SERVER");
	if (fork_server != NULL && strcmp(fork_server, "1") == 0) {
		if (forkserver_run(sock, token) != 0) {
			snprintf(err, errlen,
			         "the fork server could not start "
			         "(its log says why)");
			return NULL;
		}
		die_with_parent();
	}
	const char *id = need_env("COHORT_CLIENT_ID", err, errlen);
	if (id == NULL)
		return NULL;
	int fd = connect_socket(sock, err, errlen);
	if (fd < 0)
		return NULL;
	struct cohort_client *cl = xcalloc(1, sizeof *cl);
	cl->fd = fd;
	snprintf(cl->token, sizeof cl->token, "%s", token);
	const char *dev = getenv("COHORT_DEVICE");
	snprintf(cl->device, sizeof cl->device, "%s",
	         dev != NULL && dev[0] != '\0' ? dev : "cpu");
	cl->client_id = strtoll(id, NULL, 10);
	const char *tasks = getenv("COHORT_TASKS");
	cl->tasks_left = tasks != NULL ? strtol(tasks, NULL, 10) : 1;
	if (cl->tasks_left < 1)
		cl->tasks_left = 1;
	/* The global model of this round and the last (FedAvg writes the
	 * next model into the same memfd), the relay of cyclic rounds. */
	shm_cache_init(&cl->maps, 4);
	frame_fds_init(&cl->fds);
	cl->partial.seg.fd = -1;
	return cl;
}

void
cohort_set_device(struct cohort_client *cl, const char *device)
{
	snprintf(cl->device, sizeof cl->device, "%s", device);
}

const char *
cohort_error(const struct cohort_client *cl)
{
	return cl->err.message;
}

void
cohortx_client_error(const struct cohort_client *cl, struct ipc_error *err)
{
	*err = cl->err;
}

/* Send m on cl's socket; -1 with the reason recorded. */
static int
send_msg(struct cohort_client *cl, const struct msg *m)
{
	if (msg_send(cl->fd, m, &cl->err) != 0) {
		cl->status = 1;
		return -1;
	}
	return 0;
}

static int
say_hello(struct cohort_client *cl)
{
	struct msg hello;
	msg_init(&hello, MSG_HELLO);
	snprintf(hello.u.hello.token, sizeof hello.u.hello.token, "%s",
	         cl->token);
	hello.u.hello.client_id = cl->client_id;
	hello.u.hello.pid = (int32_t)getpid();
	snprintf(hello.u.hello.device, sizeof hello.u.hello.device, "%s",
	         cl->device);
	cl->said_hello = 1;
	if (send_msg(cl, &hello) != 0) {
		struct ipc_error why = cl->err;
		return fail_cl(cl, why.code, "hello: %s", why.message);
	}
	return 0;
}

/* Drop the task's model regions and frame; the task is over. */
static void
task_end(struct cohort_task *t)
{
	struct cohort_client *cl = t->cl;
	shm_segment_close(&t->global);
	shm_segment_close(&t->update);
	buf_put(cl, t->gbuf, t->gsize);
	buf_put(cl, t->ubuf, t->gsize);
	buf_put(cl, t->fbuf, t->gsize);
	msg_free(&t->m);
	memset(t, 0, sizeof *t);
	t->global.fd = t->update.fd = -1;
	frame_fds_close(&cl->fds);
	cl->open = 0;
	cl->tasks_left--;
}

/* Map or receive the task's global model. */
static int
task_take_global(struct cohort_task *t, struct ipc_error *err)
{
	struct cohort_client *cl = t->cl;
	const struct msg_task *mt = &t->m.u.task;
	if (mt->kind == TASK_INIT)
		return 0;
	t->gsize = mt->params.manifest.total_size;
	if (mt->params.where == PARAMS_FD) {
		int fd = frame_fds_take(&cl->fds, mt->params.fd);
		if (fd < 0)
			return ipc_error_set(
			    err, IPC_E_BAD_VALUE,
			    "task %llu: its frame carried no descriptor %u for "
			    "the global model",
			    (unsigned long long)mt->task_id,
			    (unsigned)mt->params.fd);
		if (shm_cache_open(&cl->maps, &t->global, fd,
		                   "the global model",
		                   SHM_SEALED_SIZE | SHM_SEALED_READONLY,
		                   SHM_READ, t->gsize, err) != 0)
			return -1;
		t->gaddr = t->global.addr;
		return 0;
	}
	if (mt->params.where != PARAMS_STREAM)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "task %llu: params must be in shared "
		                     "memory or streamed",
		                     (unsigned long long)mt->task_id);
	t->gbuf = buf_get(cl, t->gsize);
	t->gaddr = t->gbuf;
	return transfer_receive(cl->fd, mt->task_id, t->gbuf, t->gsize, err);
}

/* Send the partial sum held, if a fit is folded into it: the segment is
 * unmapped and closed first (the orchestrator seals it against writes). */
static int
partial_send(struct cohort_client *cl)
{
	struct partial *p = &cl->partial;
	if (p->seg.fd < 0 || p->n == 0)
		return 0;
	shm_segment_close(&p->seg);
	p->seg.fd = -1;
	struct msg m;
	msg_init(&m, MSG_PARTIAL);
	m.u.partial.id = p->id;
	m.u.partial.tasks = p->tasks;
	m.u.partial.ntasks = p->n;
	m.u.partial.weight = p->weight;
	p->sent = p->id;
	p->n = 0;
	p->weight = 0;
	int rc = send_msg(cl, &m);
	m.u.partial.tasks = NULL; /* ours, kept for the next */
	msg_free(&m);
	if (rc != 0) {
		struct ipc_error why = cl->err;
		return fail_cl(cl, why.code, "cannot send partial sum %llu: %s",
		               (unsigned long long)p->id, why.message);
	}
	return 0;
}

/* A fit task's partial sum: the one held (its descriptor again), or a
 * new one to map; a segment already sent, or one that comes while
 * another is held, is not folded into (t->fold stays 0). */
static int
partial_take(struct cohort_task *t, struct ipc_error *err)
{
	struct cohort_client *cl = t->cl;
	struct partial *p = &cl->partial;
	const struct msg_task *mt = &t->m.u.task;
	int fd = frame_fds_take(&cl->fds, (unsigned)mt->partial_fd);
	size_t numel = wsum_numel(&mt->params.manifest);
	if (fd < 0)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "task %llu: its frame carried no partial "
		                     "sum descriptor",
		                     (unsigned long long)mt->task_id);
	if (p->seg.fd >= 0 && mt->partial_id == p->id) {
		close(fd);
		t->fold = numel == p->numel;
		return 0;
	}
	if (p->seg.fd >= 0 || mt->partial_id <= p->sent ||
	    mt->partial_size != numel * sizeof(double)) {
		close(fd);
		return 0;
	}
	struct stat st;
	if (shm_fd_check(fd, "the partial sum", SHM_SEALED_SIZE,
	                 mt->partial_size, &st, err) != 0 ||
	    shm_segment_map(&p->seg, "the partial sum", fd, mt->partial_size,
	                    SHM_WRITE, err) != 0) {
		p->seg.fd = -1;
		return -1;
	}
	p->id = mt->partial_id;
	p->numel = numel;
	t->fold = 1;
	return 0;
}

/* How long a pool worker waits for its next frame before it sends its
 * partial sum: the orchestrator writes a worker's next task when the
 * result before arrives, so a frame not there at once may be on its way
 * (docs/protocol.md, "Partial sums"). */
#define PARTIAL_WAIT_MS 2

/* Whether a frame from the orchestrator comes within PARTIAL_WAIT_MS. */
static int
frame_waiting(int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	return poll(&pfd, 1, PARTIAL_WAIT_MS) > 0;
}

int
cohort_next(struct cohort_client *cl, struct cohort_task **out)
{
	*out = NULL;
	if (cl->open)
		cohort_fail(&cl->task, "protocol",
		            "task %llu: the program asked for the next task "
		            "before reporting this one",
		            (unsigned long long)cl->task.m.u.task.task_id);
	if (!cl->said_hello && say_hello(cl) != 0)
		return -1;
	while (!cl->ended && cl->tasks_left > 0) {
		struct cohort_task *t = &cl->task;
		struct ipc_error err;
		frame_fds_close(&cl->fds);
		if (msg_recv_fds(cl->fd, FRAME_MAX_DEFAULT, &t->m, &cl->fds,
		                 &err) != 0) {
			cl->ended = 1;
			if (err.code == IPC_E_CLOSED)
				return 0;
			cl->status = 1;
			return fail_cl(cl, err.code,
			               "bad frame from the orchestrator: %s",
			               err.message);
		}
		if (t->m.type == MSG_ERROR) {
			cl->ended = 1;
			cl->status = 1;
			fail_cl(cl, IPC_E_BAD_VALUE,
			        "the orchestrator refused us: %s",
			        t->m.u.error.message);
			msg_free(&t->m);
			return -1;
		}
		if (t->m.type != MSG_TASK || t->m.u.task.kind != TASK_FIT)
			partial_send(cl); /* before anything but a fit */
		if (t->m.type != MSG_TASK ||
		    t->m.u.task.kind == TASK_SHUTDOWN) {
			int other = t->m.type != MSG_TASK;
			if (other)
				log_warn("ignoring unexpected %s frame",
				         msg_type_name(t->m.type));
			msg_free(&t->m);
			if (other)
				continue;
			cl->ended = 1;
			return 0;
		}
		t->cl = cl;
		t->global.fd = t->update.fd = -1;
		cl->open = 1;
		if (taskconf_check(&t->m.u.task, &err) != 0 ||
		    task_take_global(t, &err) != 0 ||
		    (t->m.u.task.partial_fd >= 0 &&
		     partial_take(t, &err) != 0)) {
			cohortx_fail_error(t, &err);
			cl->err = err;
			return -1;
		}
		if (t->m.u.task.params.where == PARAMS_STREAM ||
		    t->m.u.task.kind == TASK_INIT)
			t->chunk_bytes =
			    (size_t)taskconf_num(&t->m.u.task, TK_CHUNK_BYTES);
		*out = t;
		return 1;
	}
	return 0;
}

int
cohort_close(struct cohort_client *cl)
{
	if (cl == NULL)
		return 1;
	if (cl->open)
		cohort_fail(&cl->task, "protocol",
		            "task %llu: the program ended without reporting it",
		            (unsigned long long)cl->task.m.u.task.task_id);
	partial_send(cl);
	int status = cl->status;
	free(cl->partial.tasks);
	frame_fds_close(&cl->fds);
	shm_cache_free(&cl->maps);
	big_free(cl->idle_buf, cl->idle_size);
	close(cl->fd);
	free(cl);
	return status;
}

uint64_t
cohort_task_id(const struct cohort_task *t)
{
	return t->m.u.task.task_id;
}

enum cohort_kind
cohort_task_kind(const struct cohort_task *t)
{
	return (enum cohort_kind)t->m.u.task.kind;
}

uint32_t
cohort_task_round(const struct cohort_task *t)
{
	return t->m.u.task.round;
}

int64_t
cohort_task_client(const struct cohort_task *t)
{
	return t->m.u.task.client_id;
}

const char *
cohort_task_str(const struct cohort_task *t, const char *key)
{
	const struct kv_entry *e = kv_find(&t->m.u.task.config, key);
	return e != NULL && e->type == KV_STR ? e->str : NULL;
}

double
cohort_task_num(const struct cohort_task *t, const char *key, double def)
{
	return kv_get_num(&t->m.u.task.config, key, def);
}

const struct msg_task *
cohortx_task_msg(const struct cohort_task *t)
{
	return &t->m.u.task;
}

const void *
cohortx_task_global(const struct cohort_task *t, size_t *size)
{
	*size = t->gsize;
	return t->gaddr;
}

size_t
cohort_task_tensors(const struct cohort_task *t)
{
	return t->m.u.task.kind == TASK_INIT
	           ? 0
	           : t->m.u.task.params.manifest.count;
}

/* Tensor i of the task's layout with its values at region base. */
static int
tensor_at(const struct cohort_task *t, size_t i, const uint8_t *base,
          struct cohort_tensor *out)
{
	if (i >= cohort_task_tensors(t) || base == NULL)
		return -1;
	const struct tensor_desc *d = &t->m.u.task.params.manifest.tensors[i];
	out->name = d->name;
	out->dtype = (enum cohort_dtype)d->dtype;
	out->rank = d->rank;
	memcpy(out->shape, d->shape, sizeof out->shape);
	out->data = (void *)(base + d->offset);
	out->nbytes = d->nbytes;
	return 0;
}

int
cohort_task_tensor(const struct cohort_task *t, size_t i,
                   struct cohort_tensor *out)
{
	return tensor_at(t, i, t->gaddr, out);
}

int
cohort_task_find(const struct cohort_task *t, const char *name,
                 struct cohort_tensor *out)
{
	const struct tensor_manifest *mf = &t->m.u.task.params.manifest;
	for (size_t i = 0; i < cohort_task_tensors(t); i++)
		if (strcmp(mf->tensors[i].name, name) == 0)
			return cohort_task_tensor(t, i, out);
	return -1;
}

/* The update memfd the task frame brought, filled with the global model
 * (pwrite: fresh pages are not zeroed first) and mapped read-write. It is
 * unmapped before the result goes: the orchestrator then seals it. */
/* Fill the task's update segment with src; with map, map it writable. */
static int
map_update(struct cohort_task *t, const void *src, int map,
           struct ipc_error *err)
{
	const struct msg_task *mt = &t->m.u.task;
	int fd = mt->update_fd >= 0
	             ? frame_fds_take(&t->cl->fds, (unsigned)mt->update_fd)
	             : -1;
	struct stat st;
	if (fd < 0)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "task %llu: its frame carried no update "
		                     "descriptor",
		                     (unsigned long long)mt->task_id);
	if (shm_fd_check(fd, "the update segment", SHM_SEALED_SIZE, t->gsize,
	                 &st, err) != 0)
		return -1; /* fd closed */
	if (shm_fd_fill(fd, "the update segment", src, t->gsize, err) != 0 ||
	    !map) {
		close(fd);
		return map ? -1 : 0;
	}
	return shm_segment_map(&t->update, "the update segment", fd, t->gsize,
	                       SHM_WRITE, err);
}

void *
cohort_task_update(struct cohort_task *t, unsigned flags, size_t *size)
{
	struct cohort_client *cl = t->cl;
	*size = t->gsize;
	if (t->uaddr != NULL)
		return t->uaddr;
	if (t->m.u.task.kind != TASK_FIT) {
		fail_cl(cl, IPC_E_BAD_VALUE,
		        "task %llu: only a fit task has an update",
		        (unsigned long long)cohort_task_id(t));
		return NULL;
	}
	if (t->gbuf != NULL) {
		/* Stream transport: the update goes back after the result. */
		if (flags & COHORT_UPDATE_REUSE_GLOBAL) {
			t->ubuf = t->gbuf;
			t->gbuf = NULL;
			t->gaddr = NULL;
		} else {
			t->ubuf = buf_get(cl, t->gsize);
			memcpy(t->ubuf, t->gbuf, t->gsize);
		}
		t->uaddr = t->ubuf;
		return t->uaddr;
	}
	if (t->fold) {
		/* Folded here, never returned: train in private memory (no
		 * copy into the segment, no mapping of it; the buffer's pages
		 * stay in place from task to task). */
		t->fbuf = buf_get(cl, t->gsize);
		memcpy(t->fbuf, t->gaddr, t->gsize);
		t->uaddr = t->fbuf;
		return t->uaddr;
	}
	if (map_update(t, t->gaddr, 1, &cl->err) != 0)
		return NULL;
	t->uaddr = t->update.addr;
	return t->uaddr;
}

int
cohort_task_update_tensor(struct cohort_task *t, size_t i,
                          struct cohort_tensor *out)
{
	size_t size;
	if (cohort_task_update(t, 0, &size) == NULL)
		return -1;
	return tensor_at(t, i, t->uaddr, out);
}

/* n values into a kv list of numbers. */
static void
values_set(struct kv_list *l, const struct cohort_value *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		kv_set_num(l, v[i].key, v[i].value);
}

int
cohort_log(struct cohort_task *t, uint64_t step,
           const struct cohort_value *values, size_t n)
{
	struct msg m;
	msg_init(&m, MSG_METRICS);
	m.u.metrics.task_id = cohort_task_id(t);
	m.u.metrics.step = step;
	values_set(&m.u.metrics.values, values, n);
	int rc = send_msg(t->cl, &m);
	msg_free(&m);
	return rc;
}

/* Fold fit t's update into the partial sum with its weight and make r
 * say so; -1 leaves both as they were (an update that is not finite, a
 * fit without a weight: the orchestrator judges the update itself). */
static int
partial_fold(struct cohort_task *t, struct msg *r)
{
	struct partial *p = &t->cl->partial;
	const struct msg_task *mt = &t->m.u.task;
	struct ipc_error err;
	double w;
	if (wsum_weight(taskconf_str(mt, TK_WEIGHTING),
	                r->u.result.num_examples,
	                kv_get_num(&r->u.result.metrics, "steps", NAN), &w,
	                &err) != 0 ||
	    wsum_add_finite(p->seg.addr, &mt->params.manifest, t->uaddr, w,
	                    p->n == 0) != 0)
		return -1;
	if (p->n == p->cap) {
		p->cap = p->cap ? 2 * p->cap : 64;
		p->tasks = xreallocarray(p->tasks, p->cap, sizeof *p->tasks);
	}
	p->tasks[p->n++] = mt->task_id;
	p->weight += w;
	p->flush_every = (size_t)taskconf_num(mt, TK_FLUSH_EVERY);
	/* The update goes nowhere: nothing of it stays mapped here. */
	shm_segment_close(&t->update);
	r->u.result.folded = (int64_t)p->id;
	return 0;
}

/* Send the result r of task t, then (stream) the bytes of buf as chunk
 * frames; the task is over either way. */
static int
report(struct cohort_task *t, struct msg *r, const void *buf, uint64_t size)
{
	struct cohort_client *cl = t->cl;
	uint64_t id = cohort_task_id(t);
	int rc = send_msg(cl, r);
	if (rc == 0 && buf != NULL &&
	    transfer_send(cl->fd, id, buf, 0, size, t->chunk_bytes, &cl->err) !=
	        0) {
		cl->status = 1;
		rc = -1;
	}
	if (rc != 0) {
		struct ipc_error why = cl->err;
		fail_cl(cl, why.code, "cannot report task %llu: %s",
		        (unsigned long long)id, why.message);
	}
	msg_free(r);
	task_end(t);
	return rc;
}

int
cohort_done(struct cohort_task *t, uint64_t num_examples,
            const struct cohort_value *metrics, size_t n)
{
	struct cohort_client *cl = t->cl;
	const struct msg_task *mt = &t->m.u.task;
	if (mt->kind == TASK_INIT)
		return cohort_fail(t, "protocol",
		                   "task %llu: an init task is reported with "
		                   "cohort_done_init (the program's model)",
		                   (unsigned long long)mt->task_id);
	size_t size;
	if (mt->kind == TASK_FIT &&
	    cohort_task_update(t, COHORT_UPDATE_REUSE_GLOBAL, &size) == NULL) {
		struct ipc_error err = cl->err;
		cohortx_fail_error(t, &err);
		cl->err = err;
		return -1;
	}
	struct msg r;
	msg_init(&r, MSG_RESULT);
	r.u.result.task_id = mt->task_id;
	r.u.result.num_examples = num_examples;
	values_set(&r.u.result.metrics, metrics, n);
	if (mt->kind == TASK_FIT && t->fold && partial_fold(t, &r) == 0) {
		int rc = report(t, &r, NULL, 0);
		const struct partial *p = &cl->partial;
		if (rc == 0 &&
		    (cl->tasks_left <= 0 ||
		     (p->flush_every > 0 && p->n >= p->flush_every) ||
		     !frame_waiting(cl->fd)))
			rc = partial_send(cl);
		return rc;
	}
	if (mt->kind == TASK_FIT && t->fbuf != NULL &&
	    map_update(t, t->fbuf, 0, &cl->err) != 0) {
		/* Not folded after all: it goes back through its segment. */
		struct ipc_error err = cl->err;
		msg_free(&r);
		cohortx_fail_error(t, &err);
		cl->err = err;
		return -1;
	}
	if (mt->kind == TASK_FIT) {
		struct params_ref *p = &r.u.result.params;
		tensor_manifest_copy(&p->manifest, &mt->params.manifest);
		p->size = t->gsize;
		if (t->ubuf != NULL) {
			p->where = PARAMS_STREAM;
		} else {
			/* Nothing of the update stays writable here. */
			shm_segment_close(&t->update);
			p->where = PARAMS_FD;
			p->fd = (uint32_t)mt->update_fd;
		}
	}
	return report(t, &r, t->ubuf, t->gsize);
}

/* The manifest of an init task's tensors; -1 naming the bad one. */
static int
init_manifest(const struct cohort_tensor *tensors, size_t n,
              struct tensor_manifest *mf, struct ipc_error *err)
{
	if (n == 0)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "an init task sends the model's tensors, "
		                     "and got none");
	for (size_t i = 0; i < n; i++) {
		const struct cohort_tensor *c = &tensors[i];
		if (tensor_manifest_add(mf, c->name != NULL ? c->name : "",
		                        (enum tensor_dtype)c->dtype, c->rank,
		                        c->shape, err) != 0 ||
		    tensor_check_finite(&mf->tensors[i], c->data, err) != 0) {
			ipc_error_prefix(err, "init tensor %zu: ", i);
			return -1;
		}
	}
	return 0;
}

int
cohort_done_init(struct cohort_task *t, const struct cohort_tensor *tensors,
                 size_t n)
{
	struct cohort_client *cl = t->cl;
	if (t->m.u.task.kind != TASK_INIT)
		return cohort_fail(
		    t, "protocol",
		    "task %llu: cohort_done_init answers an init "
		    "task, and this is a %s task",
		    (unsigned long long)cohort_task_id(t),
		    task_kind_name(t->m.u.task.kind));
	struct msg r;
	msg_init(&r, MSG_RESULT);
	struct params_ref *p = &r.u.result.params;
	struct ipc_error err;
	if (init_manifest(tensors, n, &p->manifest, &err) != 0) {
		msg_free(&r);
		cohortx_fail_error(t, &err);
		cl->err = err;
		return -1;
	}
	uint64_t size = p->manifest.total_size;
	uint8_t *region = xcalloc(1, size);
	for (size_t i = 0; i < n; i++)
		memcpy(region + p->manifest.tensors[i].offset, tensors[i].data,
		       p->manifest.tensors[i].nbytes);
	r.u.result.task_id = cohort_task_id(t);
	int inline_ = size <= t->chunk_bytes && size <= INIT_INLINE_MAX;
	if (inline_) {
		p->where = PARAMS_INLINE;
		p->inline_data = region;
		p->inline_len = size;
		region = NULL;
	} else {
		p->where = PARAMS_STREAM;
		p->size = size;
	}
	int rc = report(t, &r, region, size);
	free(region);
	return rc;
}

int
cohortx_fail_error(struct cohort_task *t, const struct ipc_error *err)
{
	return cohort_fail(t, ipc_code_name(err->code), "%s", err->message);
}

int
cohort_fail(struct cohort_task *t, const char *code, const char *fmt, ...)
{
	struct cohort_client *cl = t->cl;
	const struct msg_task *mt = &t->m.u.task;
	struct msg m;
	msg_init(&m, MSG_ERROR);
	va_list ap;
	va_start(ap, fmt);
	char text[sizeof cl->err.message];
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	log_error("task %llu (%s, round %u, client %lld) failed: %s",
	          (unsigned long long)mt->task_id, task_kind_name(mt->kind),
	          mt->round, (long long)mt->client_id, text);
	m.u.error.task_id = mt->task_id;
	m.u.error.code = xstrdup(code);
	m.u.error.message = xstrdup(text);
	cl->status = 1;
	cl->err.code = IPC_E_BAD_VALUE;
	snprintf(cl->err.message, sizeof cl->err.message, "%s", text);
	int rc = send_msg(cl, &m);
	msg_free(&m);
	task_end(t);
	return rc;
}
