/* internal.h: what launcher.c (processes, slots, queue, socket) and
 * worker.c (one worker's lifecycle and connection) share; private to
 * launcher/. */
#ifndef COHORT_LAUNCHER_INTERNAL_H
#define COHORT_LAUNCHER_INTERNAL_H

#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "frame.h"
#include "gpuslots.h"
#include "launcher.h"

/* A worker's lifecycle. SPAWNED -> CONNECTED (hello ok) -> BUSY (task sent)
 * -> REPORTED (result in; a pool worker with tasks left goes back to
 * CONNECTED) -> EXITED. "Connection closed" and "process exited" may come in
 * either order from any state; the worker is finished once both happened. */
enum worker_state {
	WORKER_SPAWNED,
	WORKER_CONNECTED,
	WORKER_BUSY,
	WORKER_REPORTED,
	WORKER_EXITED,
};

struct worker {
	struct launcher *l;
	pid_t pid;
	enum worker_state state;
	int64_t client_id;  /* announced in COHORT_CLIENT_ID; -1 for a pool */
	unsigned tasks_max; /* COHORT_TASKS */
	unsigned tasks_done;
	int gpu_slot; /* index into launcher.gpus, -1 = none */

	int has_task; /* task_id is in this worker's hands, unreported */
	uint64_t task_id;
	int has_next; /* pool: next_task's frame is sent ahead; it starts */
	uint64_t next_task; /* (and its timeout runs) once task_id reports */
	int64_t next_client;

	struct bufferevent *bev; /* NULL before connecting and after closing */
	int was_connected;
	int closed_early; /* the peer hung up with a task in hand */
	struct frame_decoder decoder;
	/* the file streamed after the task frame (sendfile), NULL if none */
	struct evbuffer_file_segment *out_seg;
	uint64_t out_size, out_sent;
	int receiving; /* a streamed result is arriving into pending */
	struct msg pending;
	uint64_t in_have;
	/* The rest of a chunk read from the socket straight into its place
	 * (the bufferevent's reading is off meanwhile); NULL until needed. */
	struct event *direct;
	uint8_t *direct_to;
	size_t direct_left, direct_len;
	/* Its streamed result waits for another worker's to be in: reading
	 * is off; the order in which the waiters are let in. */
	uint64_t stream_wait;
	/* Bytes of its incomplete frame counted in launcher.partial; reading
	 * is off while another worker may use the budget alone. */
	size_t partial;
	int partial_paused;

	int exited; /* reaped; status is valid */
	int status;
	int kill_stage;       /* 0, 1 = SIGTERM sent, 2 = SIGKILL sent */
	int timeout_waited;   /* the task's timeout waited once for bytes
	                       * already in its socket */
	struct event *timer;  /* task timeout, then the kill grace period */
	double timer_due;     /* when it fires (now_seconds clock) */
	double timer_left;    /* paused while waiting to upload; -1: not */
	struct event *finish; /* deferred finish once closed and exited */
	char reason[512];     /* first failure seen, for the task's report */

	TAILQ_ENTRY(worker) entry;
};

struct queued_task {
	uint64_t task_id;
	int64_t client_id;
	char *reason; /* on launcher.failing: why it failed */
	TAILQ_ENTRY(queued_task) entry;
};

/* Tries at starting a worker before the tasks waiting for one fail, and
 * the first pause between tries (it doubles). */
#define LAUNCHER_SPAWN_TRIES 3
#define LAUNCHER_SPAWN_BACKOFF_S 0.05

struct launcher {
	struct event_base *base;
	struct launcher_options opt; /* strings owned */
	struct launcher_hooks hooks;
	struct evconnlistener *listener;
	struct event *sigchld;
	char **env;           /* inherited environment minus COHORT_* we set */
	struct gpuslots gpus; /* nslots 0: no GPU slots */
	unsigned char *gpu_busy; /* per slot: held by a live worker */
	TAILQ_HEAD(, worker) workers;
	TAILQ_HEAD(, queued_task) queue;
	unsigned queued;
	unsigned alive;
	unsigned pool_seq;
	/* Workers that could not be started: consecutive failures, the
	 * last one's reason, the pause before the next try (schedule starts
	 * none while it is pending), and tasks failed for it, reported from
	 * the loop by report_failing (hooks may submit again). */
	unsigned spawn_fails;
	char spawn_reason[600];
	struct event *spawn_retry;
	TAILQ_HEAD(, queued_task) failing;
	struct event *report_failing;
	/* One streamed result comes in at a time (the owner stages each one
	 * whole): the worker sending it, and a deferred event that lets the
	 * next waiter in. */
	struct worker *inbound;
	uint64_t stream_waits;
	struct event *next_inbound;
	/* Bytes held of incomplete frames (LAUNCHER_PARTIAL_BUDGET), and the
	 * one worker that may go on over the budget. */
	size_t partial;
	struct worker *partial_big;
	int stopping;
	struct launcher_stats stats;
};

/* worker.c */
struct worker *worker_new(struct launcher *l, pid_t pid, int64_t client_id,
                          unsigned tasks_max);
/* Give the worker a task: sent now if it is connected and idle, else kept
 * until its hello. */
void worker_assign(struct worker *w, uint64_t task_id);
/* Adopt an accepted connection whose peer is this worker's process. */
void worker_attach(struct worker *w, int fd);
/* The process was reaped with this wait status. */
void worker_exited(struct worker *w, int status);
/* Fail the task in hand with reason (if any), close the connection and
 * SIGTERM the process (SIGKILL after the grace period). */
void worker_terminate(struct worker *w, const char *reason);
/* SIGKILL now. */
void worker_kill(struct worker *w);
/* Ask an idle connected worker to exit. */
void worker_shutdown(struct worker *w);
/* True when the worker is connected, idle and may take another task. */
int worker_idle(const struct worker *w);
/* Unlink the update segment of the last task this worker was given (a
 * dead worker's leftover). */
/* True when a busy pool worker may be sent a task ahead: it has room for
 * two more tasks and none is queued in its socket yet. */
int worker_can_take_next(const struct worker *w);
/* Let the next worker whose streamed result waits send it (the
 * next_inbound event's callback). */
void worker_next_inbound(evutil_socket_t fd, short what, void *arg);
/* Send task_id (client_id, kept to requeue it) ahead to a busy worker. */
void worker_send_next(struct worker *w, uint64_t task_id, int64_t client_id);
void worker_free(struct worker *w);

/* launcher.c, called by worker.c */
/* An idle worker may take the next queued task. */
void launcher_worker_idle(struct launcher *l, struct worker *w);
/* A busy pool worker may take a queued task ahead (not with streamed
 * parameters: the chunks of the task in hand are still being written). */
void launcher_worker_busy(struct launcher *l, struct worker *w);
/* A task sent ahead to a worker that failed before starting it: back to
 * the head of the queue (it failed nothing of its own). */
void launcher_requeue(struct launcher *l, uint64_t task_id, int64_t client_id);
/* A finished worker (closed and exited) leaves; its slot frees. */
void launcher_worker_gone(struct launcher *l, struct worker *w);
/* Report a task failure to the owner. */
void launcher_task_failed(struct launcher *l, uint64_t task_id,
                          const char *reason);

#endif
