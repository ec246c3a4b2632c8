/* launcher.h: runs client tasks in fork/exec'd worker processes: a queue,
 * concurrency slots, per-worker logs, the listening socket workers connect
 * to, task frames with their shared memory's descriptors, per-task timeouts
 * (SIGTERM then SIGKILL) and exit-status accounting. Everything happens inside
 * the caller's libevent loop; outcomes come back through hooks. */
#ifndef COHORT_LAUNCHER_H
#define COHORT_LAUNCHER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <event2/event.h>

#include "error.h"
#include "message.h"

struct launcher_options {
	const char *worker_path; /* executable run for every worker */
	/* Its arguments after argv[0] (NULL-terminated; NULL: none). */
	const char *const *worker_args;
	const char *socket_path; /* where to listen (its directory is 0700) */
	const char *jobkey;      /* the job's key (COHORT_JOB for workers) */
	const char *token;       /* secret a worker must present in its hello */
	const char *workspace;   /* COHORT_WORKSPACE for workers */
	const char *log_dir;     /* per-worker stdout/stderr logs go here */
	unsigned max_concurrent; /* worker processes alive at once, >= 1 */
	unsigned tasks_per_worker; /* 1: a process per task; > 1: a pool */
	/* Launch mode fork-server: the worker program runs once as a fork
	 * server (COHORT_FORK_SERVER=1) and every worker is a child it
	 * forks (docs/protocol.md, "Fork server"); 0: each is spawned. */
	int fork_server;
	int send_ahead; /* pool: send a busy worker its next task before it
	                 * reports, so it never waits for the orchestrator
	                 * between tasks (not with streamed parameters) */
	double task_timeout_s;
	double kill_grace_s;
	size_t chunk_bytes; /* chunk frames of streamed regions (0 = 4 MiB) */
	const char *device; /* COHORT_DEVICE for workers (NULL = inherited) */
	/* GPU slots (copied; NULL or no slot = none): each worker holds one
	 * for its life, with CUDA_VISIBLE_DEVICES showing it that GPU only,
	 * and at most min(max_concurrent, slots) workers are alive. */
	const struct gpuslots *gpus;
};

/* What the launcher tells its owner. Hooks may call launcher_submit and
 * launcher_stop. Every submitted task ends in exactly one of result or
 * failed (unless the launcher is stopped first). */
struct launcher_hooks {
	/* Encode the task frame (msg_encode_frame) for task_id, to be sent
	 * to worker process pid; -1 fails it. */
	int (*encode_task)(void *arg, uint64_t task_id, pid_t pid,
	                   uint8_t **frame, size_t *len);
	/* Optional. The descriptors to send with task_id's frame (its shared
	 * memory, in the order its params number them) to the worker process
	 * pid, at most cap, into fds: how many, or -1 to fail the task. They
	 * stay the owner's: the launcher sends copies. */
	int (*task_fds)(void *arg, uint64_t task_id, pid_t pid, int *fds,
	                unsigned cap);
	/* A result for task_id arrived; m is owned by the launcher. */
	void (*result)(void *arg, uint64_t task_id, const struct msg *m);
	/* A progress frame for task_id arrived. */
	void (*metrics)(void *arg, uint64_t task_id, const struct msg *m);
	/* task_id failed; reason says why (exit status, timeout, protocol). */
	void (*failed)(void *arg, uint64_t task_id, const char *reason);
	/* Worker process pid was reaped and its tasks reported (the owner
	 * may be waiting for none). */
	void (*exited)(void *arg, pid_t pid);
	/* Optional. Worker process pid sent a partial sum (m, owned by the
	 * launcher; docs/protocol.md, "Partial sums"); -1 with err is a
	 * protocol error: the worker is killed. A worker that reported a
	 * folded result owes one: idle for task_timeout_s without sending
	 * it, it is killed. NULL: a partial frame is a protocol error. */
	int (*partial)(void *arg, pid_t pid, const struct msg *m,
	               struct ipc_error *err);
	void *arg;
	/* Optional (transport stream). A file to send as chunk frames after
	 * task_id's task frame, its first *size bytes, read with sendfile; -1
	 * sends none. It must stay open and unchanged until the task ends. */
	int (*task_stream)(void *arg, uint64_t task_id, uint64_t *size);
	/* Where bytes [offset, offset + len) of a streamed result's region
	 * of total bytes go (the launcher copies them there, or reads them
	 * from the socket straight into it); NULL refuses the stream (a
	 * protocol error naming err). The result hook runs once the last
	 * byte is in. */
	uint8_t *(*result_chunk)(void *arg, uint64_t task_id, uint64_t total,
	                         uint64_t offset, size_t len,
	                         struct ipc_error *err);
	/* A streamed result was cut off: drop what arrived (the task fails). */
	void (*result_abort)(void *arg, uint64_t task_id);
};

struct launcher_stats {
	unsigned spawned;
	unsigned exited_ok;      /* exit status 0 */
	unsigned exited_error;   /* non-zero exit status */
	unsigned signalled;      /* killed by a signal */
	unsigned timeouts;       /* tasks that ran past task_timeout_s */
	unsigned sigterms;       /* SIGTERMs sent */
	unsigned sigkills;       /* SIGKILLs sent */
	unsigned refused;        /* connections refused (uid, unknown pid) */
	unsigned peak_alive;     /* most worker processes alive at once */
	size_t peak_partial;     /* most bytes held of incomplete frames */
	unsigned peak_gpu;       /* most workers on one GPU at once */
	unsigned spawn_failures; /* workers that could not be started */
};

/* Bytes of incomplete frames the launcher holds for all its workers
 * together before it stops reading from any worker but one: a frame may
 * be up to 64 MiB, and a worker that sends all of one but its last byte
 * would otherwise make the orchestrator hold 64 MiB per worker. With the
 * budget spent, the worker that went over first goes on (it may complete
 * a frame of the full size), the others wait, unread, in their sockets.
 * The most held is the budget plus one frame, whatever the number of
 * workers. */
#define LAUNCHER_PARTIAL_BUDGET (32u << 20)

struct launcher;
struct gpuslots;

/* Listen on the socket and get ready to run tasks. */
struct launcher *launcher_create(struct event_base *base,
                                 const struct launcher_options *opt,
                                 const struct launcher_hooks *hooks,
                                 struct ipc_error *err);
/* Queue a task for client_id (-1 = not a client: central evaluation). */
void launcher_submit(struct launcher *l, uint64_t task_id, int64_t client_id);
/* Stop: drop queued tasks, tell idle workers to shut down and SIGTERM busy
 * ones (SIGKILL after the grace period); with force, SIGKILL everything now. */
void launcher_stop(struct launcher *l, int force);
/* Worker processes alive (not yet reaped). */
unsigned launcher_alive(const struct launcher *l);
const struct launcher_stats *launcher_stats(const struct launcher *l);
/* SIGKILL and reap whatever is still alive, close the socket and free
 * everything. */
void launcher_free(struct launcher *l);

#endif
