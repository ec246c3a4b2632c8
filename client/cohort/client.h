/* cohort/client.h: the worker side of cohort's protocol (docs/protocol.md)
 * for programs in C, the library the built-in worker itself is built on.
 *
 * A program started by cohort-orchestrator as worker.command serves its
 * tasks with this loop:
 *
 *	char err[256];
 *	struct cohort_client *cl = cohort_open(err, sizeof err);
 *	if (cl == NULL) { fprintf(stderr, "%s\n", err); return 2; }
 *	struct cohort_task *t;
 *	while (cohort_next(cl, &t) > 0) {
 *		... read cohort_task_tensor(t, i, &g), train ...
 *		... write cohort_task_update_tensor(t, i, &u) ...
 *		cohort_done(t, num_examples, metrics, nmetrics);
 *	}
 *	return cohort_close(cl);
 *
 * The library says hello, maps the global model of each task (shared
 * memory, sealed read-only) or receives it (stream transport), gives the
 * task an update region laid out as the global model, and reports the
 * result, metrics or an error. In launch mode fork-server cohort_open is
 * the fork point: the server never returns from it, every child returns
 * from it as an ordinary worker. pkg-config name: cohort-client. */
#ifndef COHORT_CLIENT_LIB_H
#define COHORT_CLIENT_LIB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define COHORT_PROTO_VERSION 2

struct cohort_client;
struct cohort_task;

enum cohort_kind {
	COHORT_FIT = 0,      /* train from the global model, send an update */
	COHORT_EVALUATE = 1, /* evaluate the global model */
	COHORT_INIT = 3,     /* send the job's initial model (model custom) */
};

/* Element types, by their safetensors names. */
enum cohort_dtype {
	COHORT_F32 = 0,
	COHORT_F16,
	COHORT_BF16,
	COHORT_F64,
	COHORT_I64,
	COHORT_I32,
	COHORT_U8,
};

#define COHORT_MAX_RANK 8

/* One tensor of a task's model: name, type, shape and where its values
 * are (read-only for the global model, writable for the update). */
struct cohort_tensor {
	const char *name;
	enum cohort_dtype dtype;
	int rank;
	uint64_t shape[COHORT_MAX_RANK];
	void *data;
	uint64_t nbytes;
};

/* A metric: a name and a number. */
struct cohort_value {
	const char *key;
	double value;
};

/* Start serving: read the environment the orchestrator set (COHORT_SOCKET,
 * COHORT_TOKEN, COHORT_CLIENT_ID, COHORT_TASKS, COHORT_FORK_SERVER) and
 * connect. NULL with the reason in err (errlen bytes) when the program was
 * not started by cohort-orchestrator or cannot reach it. */
struct cohort_client *cohort_open(char *err, size_t errlen);

/* The device named in the hello (default: COHORT_DEVICE, else "cpu");
 * call before the first cohort_next. */
void cohort_set_device(struct cohort_client *cl, const char *device);

/* The next task: 1 and *t set, 0 when there are no more (shutdown, the
 * socket ended, COHORT_TASKS served), -1 on a protocol error (its reason
 * in cohort_error; a task it concerned has been failed with it). A task
 * still open when cohort_next is called is failed first. */
int cohort_next(struct cohort_client *cl, struct cohort_task **t);

/* The reason of the last failure of cl. */
const char *cohort_error(const struct cohort_client *cl);

/* Exit status for main: 0 when every task was reported and no protocol
 * error occurred, else 1. Frees cl and closes the connection. */
int cohort_close(struct cohort_client *cl);

/* The task's fields (docs/protocol.md "Messages"). */
uint64_t cohort_task_id(const struct cohort_task *t);
enum cohort_kind cohort_task_kind(const struct cohort_task *t);
uint32_t cohort_task_round(const struct cohort_task *t);
int64_t cohort_task_client(const struct cohort_task *t);

/* Its config (docs/protocol.md "Task config"): the string at key, or NULL;
 * the number at key, or def when there is none. */
const char *cohort_task_str(const struct cohort_task *t, const char *key);
double cohort_task_num(const struct cohort_task *t, const char *key,
                       double def);

/* The global model: its tensor count (0 for an init task), tensor i or the
 * tensor named name (0, or -1 when there is none), read-only. */
size_t cohort_task_tensors(const struct cohort_task *t);
int cohort_task_tensor(const struct cohort_task *t, size_t i,
                       struct cohort_tensor *out);
int cohort_task_find(const struct cohort_task *t, const char *name,
                     struct cohort_tensor *out);

/* Flags of cohort_task_update. */
enum {
	/* The update may take the global model's memory (stream transport:
	 * saves a copy); the global model's tensors are not read again. */
	COHORT_UPDATE_REUSE_GLOBAL = 1,
};

/* A fit task's update: a writable region laid out as the global model
 * and holding a copy of it, size bytes; NULL (cohort_error says why) when
 * it cannot be had. The same region on every call. */
void *cohort_task_update(struct cohort_task *t, unsigned flags, size_t *size);
/* Tensor i of the update (mapping it first): 0, or -1. */
int cohort_task_update_tensor(struct cohort_task *t, size_t i,
                              struct cohort_tensor *out);

/* Progress during a task: a metrics frame of n values at step. */
int cohort_log(struct cohort_task *t, uint64_t step,
               const struct cohort_value *values, size_t n);

/* Report the task and free it: the result with num_examples and n metrics
 * (a fit task's update, as written, goes with it). 0, or -1 (cohort_error
 * says why; the task is gone either way). */
int cohort_done(struct cohort_task *t, uint64_t num_examples,
                const struct cohort_value *metrics, size_t n);

/* Report an init task: the program's model, n tensors (name, dtype,
 * rank, shape, data; nbytes is computed) in that order. 0, or -1. */
int cohort_done_init(struct cohort_task *t, const struct cohort_tensor *tensors,
                     size_t n);

/* Fail the task with a short code ("train", "data", ...) and a message a
 * user can act on, and free it. 0, or -1 when it could not be sent. */
int cohort_fail(struct cohort_task *t, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif

#endif
