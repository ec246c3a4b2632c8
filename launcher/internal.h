/* internal.h: what launcher.c (processes, slots, queue, socket), worker.c
 * (one worker's two state machines: connection and process) and wire.c
 * (streamed bytes, the upload gate, the partial-frame budget) share;
 * private to launcher/. */
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

/* A worker's connection. NONE until it connects; HELLO until its hello is
 * checked; then IDLE (no task), BUSY (a task sent, its outcome awaited) or
 * UPLOADING (the chunks of its streamed result coming in); RETIRING once
 * it was told to go or reported its last task (only EOF is expected);
 * CLOSED once the socket is gone. worker_set_conn allows:
 *   NONE -> HELLO -> IDLE | BUSY | CLOSED
 *   IDLE -> BUSY | RETIRING | CLOSED
 *   BUSY -> UPLOADING | IDLE | RETIRING | CLOSED
 *   UPLOADING -> BUSY | IDLE | RETIRING | CLOSED
 *   RETIRING -> CLOSED */
enum worker_conn {
	CONN_NONE,
	CONN_HELLO,
	CONN_IDLE,
	CONN_BUSY,
	CONN_UPLOADING,
	CONN_RETIRING,
	CONN_CLOSED,
};

/* Its process: RUNNING, TERMINATING (SIGTERM sent; SIGKILL after the
 * grace period), KILLED (SIGKILL sent), EXITED (reaped, status valid).
 * Each state may only move right. The two machines are independent:
 * "socket closed" and "process reaped" come in either order, and the
 * worker is finished (its task's outcome decided) once the connection is
 * NONE or CLOSED and the process EXITED. */
enum worker_proc {
	PROC_RUNNING,
	PROC_TERMINATING,
	PROC_KILLED,
	PROC_EXITED,
};

/* The bytes moving through a worker's socket besides whole frames
 * (wire.c): the model streamed to it as sendfile'd chunk frames, its
 * streamed result coming in (through the upload gate, chunks read
 * straight into place), and its share of the partial-frame budget. */
struct worker_wire {
	struct evbuffer_file_segment *out_seg; /* NULL: nothing to send */
	uint64_t out_size, out_sent;
	int receiving;        /* pending holds a streamed result */
	struct msg pending;   /* ... whose chunks are arriving */
	uint64_t in_have;     /* bytes of it in place */
	uint64_t gate_ticket; /* waiting at the upload gate (reading off);
	                       * the order waiters are let in; 0: not */
	/* The rest of a chunk read from the socket straight into its place
	 * (the bufferevent's reading is off meanwhile); NULL until needed. */
	struct event *direct;
	uint8_t *direct_to;
	size_t direct_left, direct_len;
	/* Bytes of its incomplete frame counted in launcher.partial; reading
	 * is off while another worker may use the budget alone. */
	size_t partial;
	int partial_paused;
};

struct worker {
	struct launcher *l;
	pid_t pid;
	enum worker_conn conn;
	enum worker_proc proc;
	int64_t client_id;  /* announced in COHORT_CLIENT_ID; -1 for a pool */
	char *log;          /* its stdout/stderr file, quoted when it fails */
	int forked;         /* a child of the fork server, not ours */
	unsigned tasks_max; /* COHORT_TASKS */
	unsigned tasks_done;
	int gpu_slot; /* index into launcher.gpus, -1 = none */

	/* The task in its hands (sent, or to send once it connects), and
	 * in a pool the one sent ahead, which starts (and its timeout runs)
	 * once the first reports. */
	int has_task;
	uint64_t task_id;
	int has_next;
	uint64_t next_task;
	int64_t next_client;
	/* How the task in hand fares: the first failure reason seen, the
	 * peer hanging up on it, its timeout waited once for bytes already
	 * in the socket. */
	char reason[512];
	int hung_up;
	int timeout_waited;
	/* It reported a fit folded into its partial sum, which has not come
	 * yet (idle, its timer gives it task_timeout_s to send it). */
	int owes_partial;

	struct bufferevent *bev; /* set from HELLO until CLOSED */
	struct frame_decoder decoder;
	struct worker_wire x;
	int status;           /* wait status, once EXITED */
	struct event *timer;  /* task timeout, then the kill grace period */
	double timer_due;     /* when it fires (now_seconds clock) */
	double timer_left;    /* paused while waiting to upload; -1: not */
	struct event *finish; /* deferred finish once closed and exited */

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
	char **argv;          /* worker_path and worker_args, owned */
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
	uint64_t gate_tickets;
	struct event *next_inbound;
	/* Bytes held of incomplete frames (LAUNCHER_PARTIAL_BUDGET), and the
	 * one worker that may go on over the budget. */
	size_t partial;
	struct worker *partial_big;
	int stopping;
	struct launcher_stats stats;
	struct forkserver *fs; /* launch mode fork-server; NULL: spawn */
};

/* forkserver.c (launch mode fork-server) */
struct forkserver *fs_new(struct launcher *l);
/* Ask the fork server (started first if need be) for a worker: bound to
 * task_id when has_task, running up to tasks tasks, its output to logfd
 * (taken), the file log, on GPU slot (-1: none). 0: asked (the slot counts in
 * l->alive); 1: not now (the last server is still going; schedule runs
 * again when it is gone); -1: cannot, the reason in l->spawn_reason. */
int fs_request(struct launcher *l, int64_t client_id, int has_task,
               uint64_t task_id, unsigned tasks, int logfd, const char *log,
               int slot);
/* A connection from pid, no worker's: the server's own, or a child's
 * that came before its forked frame (kept until that is read). 1 when
 * taken. */
int fs_accept(struct launcher *l, int fd, pid_t pid);
/* pid is the fork server (not finished). */
int fs_is(const struct launcher *l, pid_t pid);
/* A fork server is running or finishing. */
int fs_alive(const struct launcher *l);
/* The fork server was reaped with status (1), or pid is not it (0). */
int fs_reap(struct launcher *l, pid_t pid, int status);
/* No worker is left and none will be asked for: let the server go. */
void fs_stop(struct launcher *l);
/* SIGKILL and reap it, free everything. */
void fs_free(struct launcher *l);

/* worker.c */
/* A worker for the started process pid, writing its output to log. */
struct worker *worker_new(struct launcher *l, pid_t pid, int64_t client_id,
                          unsigned tasks_max, const char *log);
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
/* True when the worker is connected, idle, running and may take another
 * task. */
int worker_idle(const struct worker *w);
/* True when a busy pool worker may be sent a task ahead: it has room for
 * two more tasks and none is queued in its socket yet. */
int worker_can_take_next(const struct worker *w);
/* Send task_id (client_id, kept to requeue it) ahead to a busy worker. */
void worker_send_next(struct worker *w, uint64_t task_id, int64_t client_id);
/* A decoded frame from the worker, acted on by its connection state. */
void worker_on_message(struct worker *w, struct msg *m);
/* The result of the task in hand (a streamed one once its last byte is
 * in): hand it over, then go idle, on to the next task, or retire. */
void worker_on_result(struct worker *w, const struct msg *m);
/* Remember reason as why the task in hand fails (the first one counts). */
void worker_note(struct worker *w, const char *reason);
/* A protocol violation: tell the peer, fail its task, hang up, kill it. */
void worker_protocol_error(struct worker *w, const char *code,
                           const char *what);
/* The peer hung up (or its socket failed). */
void worker_hung_up(struct worker *w);
/* Stop the task's clock while it waits at the upload gate (the wait is
 * ours, not the worker's), and start it again with what was left. */
void worker_pause_timer(struct worker *w);
void worker_resume_timer(struct worker *w);
void worker_free(struct worker *w);

/* wire.c */
/* Reading callback: decode every whole frame (whole chunks of a streamed
 * result taken without the decoder) and act on it. */
void wire_read_cb(struct bufferevent *bev, void *arg);
/* Writing callback: the output drained to its low watermark. */
void wire_write_cb(struct bufferevent *bev, void *arg);
/* Stream the first size bytes of fd after the task frame as chunk frames
 * of task_id (sendfile; a few chunks buffered at a time). */
void wire_send_file(struct worker *w, int fd, uint64_t size);
/* A model is still being streamed to the worker. */
int wire_sending(const struct worker *w);
/* A streamed result's head arrived (taken from m): receive its chunks,
 * now or once the upload gate lets the worker in. */
void wire_receive(struct worker *w, struct msg *m);
/* A chunk of the streamed result decoded the general way. */
void wire_on_chunk(struct worker *w, const struct msg_chunk *c);
/* Drop a streamed result cut off (the owner drops what arrived). */
void wire_abort(struct worker *w);
/* Count the decoder's incomplete frame against the launcher's budget: 1
 * when the worker must stop reading for now. */
int wire_account_partial(struct worker *w);
/* The socket is closing: stop sending, leave the gate, stop reading
 * directly, give back the budget. */
void wire_close(struct worker *w);
/* Let the next worker whose streamed result waits send it (the
 * next_inbound event's callback). */
void wire_next_inbound(evutil_socket_t fd, short what, void *arg);

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

/* launcher.c, called by forkserver.c */
/* posix_spawn the worker program with its output to log: for client_id
 * (-1: none) and up to tasks tasks, on GPU slot (-1: none), as the fork
 * server when fork_server. -1 with l->spawn_reason set. */
int launcher_spawn_process(struct launcher *l, const char *log,
                           int64_t client_id, unsigned tasks, int slot,
                           int fork_server, pid_t *pid);
/* A worker could not be started: retry after a pause, or fail the queue. */
void launcher_spawn_failed(struct launcher *l);
/* Hand out queued tasks and start workers. */
void launcher_schedule(struct launcher *l);

#endif
