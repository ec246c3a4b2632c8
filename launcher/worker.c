/* worker.c: one worker process as the launcher sees it: two state machines,
 * its connection (hello, task, result/metrics/error frames) and its process
 * (signals, reaping), changed only through worker_set_conn and
 * worker_set_proc; its timers; and finishing once the connection is closed
 * and the process reaped. */
#include "internal.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "files.h"

static const char *const conn_names[] = {
    "none", "hello", "idle", "busy", "uploading", "retiring", "closed",
};
static const char *const proc_names[] = {
    "running",
    "terminating",
    "killed",
    "exited",
};

/* Allowed moves of each machine: bit "to" of row "from". */
#define TO(s) (1u << (s))
static const unsigned conn_moves[] = {
    [CONN_NONE] = TO(CONN_HELLO),
    [CONN_HELLO] = TO(CONN_IDLE) | TO(CONN_BUSY) | TO(CONN_CLOSED),
    [CONN_IDLE] = TO(CONN_BUSY) | TO(CONN_RETIRING) | TO(CONN_CLOSED),
    [CONN_BUSY] = TO(CONN_UPLOADING) | TO(CONN_IDLE) | TO(CONN_RETIRING) |
                  TO(CONN_CLOSED),
    [CONN_UPLOADING] =
        TO(CONN_BUSY) | TO(CONN_IDLE) | TO(CONN_RETIRING) | TO(CONN_CLOSED),
    [CONN_RETIRING] = TO(CONN_CLOSED),
    [CONN_CLOSED] = 0,
};
static const unsigned proc_moves[] = {
    [PROC_RUNNING] = TO(PROC_TERMINATING) | TO(PROC_KILLED) | TO(PROC_EXITED),
    [PROC_TERMINATING] = TO(PROC_KILLED) | TO(PROC_EXITED),
    [PROC_KILLED] = TO(PROC_EXITED),
    [PROC_EXITED] = 0,
};

/* "worker PID (client N)", "(pool)" or "(central evaluation)", for log
 * lines. */
static const char *
worker_name(const struct worker *w, char *buf, size_t size)
{
	if (w->client_id >= 0)
		snprintf(buf, size, "worker %ld (client %lld)", (long)w->pid,
		         (long long)w->client_id);
	else
		snprintf(buf, size, "worker %ld (%s)", (long)w->pid,
		         w->tasks_max > 1 ? "pool" : "central evaluation");
	return buf;
}

/* Check and log one move of machine what (names, moves) from *state. */
static void
set_state(struct worker *w, const char *what, const char *const *names,
          const unsigned *moves, unsigned *state, unsigned to, const char *why)
{
	char name[64];
	if (!(moves[*state] & TO(to)))
		fatal("launcher: %s: %s %s -> %s is not a move its state "
		      "machine allows (%s)",
		      worker_name(w, name, sizeof name), what, names[*state],
		      names[to], why);
	if (log_enabled(LOG_DEBUG)) {
		char task[40] = "";
		if (w->has_task)
			snprintf(task, sizeof task, ", task %llu",
			         (unsigned long long)w->task_id);
		log_debug("%s: %s %s -> %s: %s%s",
		          worker_name(w, name, sizeof name), what,
		          names[*state], names[to], why, task);
	}
	*state = to;
}

/* Move the connection or the process to a new state, naming why (debug
 * log); a move the machines of internal.h do not allow is a bug (fatal). */
static void
worker_set_conn(struct worker *w, enum worker_conn to, const char *why)
{
	unsigned s = w->conn;
	set_state(w, "connection", conn_names, conn_moves, &s, to, why);
	w->conn = (enum worker_conn)s;
}

static void
worker_set_proc(struct worker *w, enum worker_proc to, const char *why)
{
	unsigned s = w->proc;
	set_state(w, "process", proc_names, proc_moves, &s, to, why);
	w->proc = (enum worker_proc)s;
}

/* The socket is open: HELLO to RETIRING. */
static int
worker_connected(const struct worker *w)
{
	return w->conn != CONN_NONE && w->conn != CONN_CLOSED;
}

static void maybe_finish(struct worker *w);

/* Arm the worker's timer for the given number of seconds. */
static void
arm_timer(struct worker *w, double seconds)
{
	struct timeval tv;
	tv.tv_sec = (time_t)seconds;
	tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
	evtimer_add(w->timer, &tv);
	w->timer_due = now_seconds() + seconds;
	w->timer_left = -1;
}

void
worker_pause_timer(struct worker *w)
{
	if (!evtimer_pending(w->timer, NULL))
		return;
	double left = w->timer_due - now_seconds();
	evtimer_del(w->timer);
	w->timer_left = left > 0 ? left : 0;
}

/* A worker that exited meanwhile gets the grace period worker_exited held
 * back. */
void
worker_resume_timer(struct worker *w)
{
	if (w->proc == PROC_EXITED)
		arm_timer(w, w->l->opt.kill_grace_s + 1.0);
	else if (w->timer_left >= 0)
		arm_timer(w, w->timer_left);
}

void
worker_note(struct worker *w, const char *reason)
{
	if (w->reason[0] == '\0' && reason != NULL)
		snprintf(w->reason, sizeof w->reason, "%s", reason);
}

/* Send a signal to the worker's process group (the worker and the
 * children it started; spawned with a group of its own) unless it is
 * already reaped; to the worker alone if it left its group. */
static void
send_signal(struct worker *w, int sig)
{
	if (w->proc == PROC_EXITED)
		return;
	if (kill(-w->pid, sig) == 0 || kill(w->pid, sig) == 0) {
		if (sig == SIGTERM)
			w->l->stats.sigterms++;
		else if (sig == SIGKILL)
			w->l->stats.sigkills++;
	}
}

/* Close the connection; the worker finishes once its process is reaped. */
static void
close_connection(struct worker *w, const char *why)
{
	if (!worker_connected(w))
		return;
	wire_close(w);
	bufferevent_free(w->bev);
	w->bev = NULL;
	worker_set_conn(w, CONN_CLOSED, why);
	wire_account_partial(w);
	maybe_finish(w);
}

/* Best-effort error frame to the peer before we hang up on it. */
static void
send_error(struct worker *w, const char *code, const char *message)
{
	if (!worker_connected(w))
		return;
	struct msg m;
	msg_init(&m, MSG_ERROR);
	m.u.error.task_id = w->has_task ? w->task_id : 0;
	m.u.error.code = xstrdup(code);
	m.u.error.message = xstrdup(message);
	uint8_t *frame;
	size_t len;
	if (msg_encode_frame(&m, &frame, &len) == 0) {
		bufferevent_flush(w->bev, EV_WRITE, BEV_FLUSH);
		(void)!write(bufferevent_getfd(w->bev), frame, len);
		free(frame);
	}
	msg_free(&m);
}

void
worker_protocol_error(struct worker *w, const char *code, const char *what)
{
	send_error(w, code, what);
	char *reason = xasprintf("protocol error: %s", what);
	worker_terminate(w, reason);
	free(reason);
}

void
worker_hung_up(struct worker *w)
{
	if (w->has_task)
		w->hung_up = 1;
	close_connection(w, "the peer hung up");
}

/* Send the first bytes of a task frame with the task's descriptors
 * attached (SCM_RIGHTS): straight to the socket, which must have nothing
 * queued before it. The bytes sent, or -1 with the reason noted. */
static ssize_t
send_with_fds(struct worker *w, const uint8_t *frame, size_t len,
              const int *fds, unsigned n)
{
	struct evbuffer *out = bufferevent_get_output(w->bev);
	int sock = bufferevent_getfd(w->bev);
	if (evbuffer_get_length(out) > 0)
		evbuffer_write(out, sock);
	if (evbuffer_get_length(out) > 0) {
		worker_note(w, "its socket is full: the worker is not reading "
		               "its task frames");
		return -1;
	}
	ssize_t sent = frame_send_fds(sock, frame, len, fds, n, MSG_DONTWAIT);
	if (sent < 0) {
		char why[160];
		snprintf(
		    why, sizeof why, "cannot send the task's shared memory: %s",
		    errno == EAGAIN ? "its socket is full" : strerror(errno));
		worker_note(w, why);
	}
	return sent;
}

/* Encode task_id's frame, with the descriptors its task carries, and
 * write it at once; 0 on success. */
static int
write_task_frame(struct worker *w, uint64_t task_id)
{
	uint8_t *frame;
	size_t len;
	struct launcher *l = w->l;
	if (l->hooks.encode_task(l->hooks.arg, task_id, w->pid, &frame, &len) <
	    0) {
		worker_terminate(w, "could not encode the task");
		return -1;
	}
	int fds[FRAME_FDS_MAX];
	int n = l->hooks.task_fds == NULL
	            ? 0
	            : l->hooks.task_fds(l->hooks.arg, task_id, w->pid, fds,
	                                FRAME_FDS_MAX);
	ssize_t sent = 0;
	if (n < 0)
		worker_note(w, "could not create the task's shared memory");
	else if (n > 0)
		sent = send_with_fds(w, frame, len, fds, (unsigned)n);
	if (n < 0 || sent < 0) {
		free(frame);
		worker_terminate(w, w->reason);
		return -1;
	}
	bufferevent_write(w->bev, frame + sent, len - (size_t)sent);
	free(frame);
	/* Write now rather than when the loop comes back to this socket: the
	 * caller may go on to fold a large update first, and the worker would
	 * sit idle until then. What the socket cannot take stays queued. */
	evbuffer_write(bufferevent_get_output(w->bev),
	               bufferevent_getfd(w->bev));
	return 0;
}

/* Write the task frame for the task in hand and start its timeout. */
static void
send_task(struct worker *w)
{
	struct launcher *l = w->l;
	if (write_task_frame(w, w->task_id) < 0)
		return;
	worker_set_conn(w, CONN_BUSY, "task sent");
	if (w->tasks_max > 1)
		arm_timer(w, l->opt.task_timeout_s);
	if (l->hooks.task_stream != NULL) {
		uint64_t size = 0;
		int fd = l->hooks.task_stream(l->hooks.arg, w->task_id, &size);
		wire_send_file(w, fd, size);
	}
	launcher_worker_busy(l, w);
}

/* Check a hello against this worker's identity and the job token. */
static void
on_hello(struct worker *w, const struct msg_hello *h)
{
	const char *bad = NULL;
	if (strcmp(h->token, w->l->opt.token) != 0)
		bad = "hello carries a wrong token";
	else if (h->pid != w->pid)
		bad = "hello pid differs from the connection's peer pid";
	else if (h->client_id != w->client_id)
		bad = "hello client_id differs from COHORT_CLIENT_ID";
	if (bad != NULL) {
		worker_protocol_error(w, "bad-hello", bad);
		return;
	}
	if (w->has_task) {
		send_task(w);
		return;
	}
	worker_set_conn(w, CONN_IDLE, "hello checked");
	evtimer_del(w->timer);
	launcher_worker_idle(w->l, w);
}

void
worker_on_result(struct worker *w, const struct msg *m)
{
	struct launcher *l = w->l;
	uint64_t task_id = w->task_id;
	w->reason[0] = '\0';
	w->tasks_done++;
	if (m->u.result.folded >= 0)
		w->owes_partial = 1;
	evtimer_del(w->timer);
	if (w->has_next) {
		/* The task sent ahead is the worker's now: it is already
		 * reading it. Its timeout starts here. */
		w->has_next = 0;
		w->task_id = w->next_task;
		w->timeout_waited = 0;
		if (w->conn != CONN_BUSY)
			worker_set_conn(w, CONN_BUSY, "result in");
		log_debug("launcher: task %llu in; task %llu (sent ahead) "
		          "starts",
		          (unsigned long long)task_id,
		          (unsigned long long)w->task_id);
		arm_timer(w, l->opt.task_timeout_s);
		if (!l->stopping)
			launcher_worker_busy(l, w);
	} else if (w->tasks_done < w->tasks_max) {
		w->has_task = 0;
		worker_set_conn(w, CONN_IDLE, "result in");
		if (w->owes_partial) {
			w->timeout_waited = 0;
			arm_timer(w, l->opt.task_timeout_s);
		}
	} else {
		/* It exits by itself after COHORT_TASKS tasks; a worker that
		 * lingers is told to go after the grace period. */
		w->has_task = 0;
		worker_set_conn(w, CONN_RETIRING, "result of its last task in");
		arm_timer(w, l->opt.kill_grace_s + 1.0);
	}
	/* Hand out the next queued task before the result hook folds this
	 * one (send_task writes it at once), so the worker trains while the
	 * orchestrator aggregates; a task the hook queues finds the worker
	 * through launcher_submit. */
	if (worker_idle(w) && !l->stopping)
		launcher_worker_idle(l, w);
	l->hooks.result(l->hooks.arg, task_id, m);
}

/* The task id a result, metrics or error frame names; -1 for any other
 * frame. */
static int
frame_task(const struct msg *m, uint64_t *id)
{
	switch (m->type) {
	case MSG_RESULT:
		*id = m->u.result.task_id;
		return 0;
	case MSG_METRICS:
		*id = m->u.metrics.task_id;
		return 0;
	case MSG_ERROR:
		*id = m->u.error.task_id;
		return 0;
	default:
		return -1;
	}
}

/* A partial sum arrived (idle, busy or retiring): hand it over. */
static void
on_partial(struct worker *w, const struct msg *m)
{
	struct launcher *l = w->l;
	struct ipc_error err;
	if (l->hooks.partial == NULL) {
		worker_protocol_error(w, "protocol",
		                      "partial sum, but this job hands out "
		                      "none");
		return;
	}
	if (l->hooks.partial(l->hooks.arg, w->pid, m, &err) < 0) {
		worker_protocol_error(w, "bad-partial", err.message);
		return;
	}
	w->owes_partial = 0;
	if (w->conn == CONN_IDLE)
		evtimer_del(w->timer);
}

void
worker_on_message(struct worker *w, struct msg *m)
{
	struct launcher *l = w->l;
	char what[600];
	uint64_t id = 0;
	if (m->type == MSG_PARTIAL &&
	    (w->conn == CONN_IDLE || w->conn == CONN_BUSY ||
	     w->conn == CONN_RETIRING)) {
		on_partial(w, m);
		return;
	}
	switch (w->conn) {
	case CONN_HELLO:
		if (m->type == MSG_HELLO) {
			on_hello(w, &m->u.hello);
			return;
		}
		snprintf(what, sizeof what, "expected hello, got %s",
		         msg_type_name(m->type));
		break;
	case CONN_UPLOADING:
		if (m->type == MSG_CHUNK) {
			wire_on_chunk(w, &m->u.chunk);
			return;
		}
		snprintf(what, sizeof what,
		         "%s frame in the middle of a streamed result",
		         msg_type_name(m->type));
		wire_abort(w);
		break;
	case CONN_BUSY:
		if (frame_task(m, &id) < 0) {
			snprintf(what, sizeof what,
			         "unexpected %s frame during a task",
			         msg_type_name(m->type));
			break;
		}
		if (id != w->task_id && m->type != MSG_ERROR) {
			snprintf(what, sizeof what,
			         "%s for task %llu, expected task %llu",
			         msg_type_name(m->type), (unsigned long long)id,
			         (unsigned long long)w->task_id);
			break;
		}
		if (m->type == MSG_RESULT &&
		    m->u.result.params.where == PARAMS_STREAM) {
			if (l->hooks.result_chunk == NULL ||
			    m->u.result.params.size == 0) {
				snprintf(what, sizeof what,
				         "streamed result but the stream "
				         "transport is off");
				break;
			}
			worker_set_conn(w, CONN_UPLOADING,
			                "streamed result announced");
			wire_receive(w, m);
		} else if (m->type == MSG_RESULT) {
			worker_on_result(w, m);
		} else if (m->type == MSG_METRICS) {
			l->hooks.metrics(l->hooks.arg, w->task_id, m);
		} else {
			snprintf(what, sizeof what, "worker error %s: %s",
			         m->u.error.code, m->u.error.message);
			worker_terminate(w, what);
		}
		return;
	default: /* IDLE, RETIRING */
		snprintf(what, sizeof what, "unexpected %s frame while idle",
		         msg_type_name(m->type));
		break;
	}
	worker_protocol_error(w, "protocol", what);
}

/* The peer hung up or the socket failed. */
static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		worker_hung_up(arg);
}

/* Whether bytes from the worker wait in its socket or its input buffer. */
static int
socket_has_bytes(const struct worker *w)
{
	if (!worker_connected(w))
		return 0;
	int n = 0;
	return evbuffer_get_length(bufferevent_get_input(w->bev)) > 0 ||
	       (ioctl(bufferevent_getfd(w->bev), FIONREAD, &n) == 0 && n > 0);
}

/* Timeout of the task in hand, or the end of a kill grace period. */
static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct launcher *l = w->l;
	(void)fd;
	(void)what;
	switch (w->proc) {
	case PROC_EXITED:
		/* Reaped but something still holds its socket open. */
		close_connection(w, "reaped, and its socket still open");
		break;
	case PROC_RUNNING:
		/* The orchestrator itself may have been stopped (SIGSTOP, a
		 * loaded machine) while the result arrived: what is in the
		 * socket before the deadline is read first, once. */
		if ((w->has_task || w->owes_partial) && !w->timeout_waited &&
		    socket_has_bytes(w)) {
			w->timeout_waited = 1;
			arm_timer(w, 0.5);
			return;
		}
		if (w->has_task) {
			char *r = xasprintf("timed out after %g s",
			                    l->opt.task_timeout_s);
			worker_note(w, r);
			free(r);
			l->stats.timeouts++;
		} else if (w->owes_partial) {
			log_warn("launcher: worker %d sent no partial sum of "
			         "its folded tasks within %g s "
			         "(launcher.task_timeout_s); killing it",
			         (int)w->pid, l->opt.task_timeout_s);
			l->stats.timeouts++;
		}
		worker_terminate(w, NULL);
		break;
	case PROC_TERMINATING:
		worker_kill(w);
		break;
	case PROC_KILLED:
		break;
	}
}

/* Why a worker that died on its own failed its task: its exit status, when
 * (before connecting, before reporting) and the last line of its log, where
 * the cause sits (a CUDA error, a Python traceback's last line). */
static char *
died_reason(const struct worker *w, const char *status)
{
	const char *when = w->conn == CONN_NONE ? "before connecting"
	                                        : "before reporting a result";
	char last[201];
	files_last_line(w->log, last, sizeof last);
	if (last[0] == '\0')
		return xasprintf("%s %s (log %s)", status, when, w->log);
	return xasprintf("%s %s; its log ends \"%s\" (log %s)", status, when,
	                 last, w->log);
}

/* Deferred finish: report the task's failure, clean up, leave. */
static void
finish_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct launcher *l = w->l;
	(void)fd;
	(void)what;
	wire_abort(w);
	if (w->has_task) {
		char status[128];
		if (WIFSIGNALED(w->status))
			snprintf(status, sizeof status,
			         "worker killed by signal %d (%s)",
			         WTERMSIG(w->status),
			         strsignal(WTERMSIG(w->status)));
		else
			snprintf(status, sizeof status,
			         "worker exited with status %d",
			         WEXITSTATUS(w->status));
		char *reason;
		int clean = WIFEXITED(w->status) && WEXITSTATUS(w->status) == 0;
		if (w->reason[0] != '\0')
			reason = xasprintf("%s; %s", w->reason, status);
		else if (w->hung_up && clean)
			reason = xasprintf("connection closed without a "
			                   "result; %s",
			                   status);
		else
			reason = died_reason(w, status);
		w->has_task = 0;
		launcher_task_failed(l, w->task_id, reason);
		free(reason);
	}
	if (w->has_next) {
		w->has_next = 0;
		launcher_requeue(l, w->next_task, w->next_client);
	}
	launcher_worker_gone(l, w);
}

/* Schedule the finish once the connection is closed (or never opened) and
 * the process reaped. */
static void
maybe_finish(struct worker *w)
{
	if (w->proc == PROC_EXITED && !worker_connected(w))
		event_active(w->finish, EV_TIMEOUT, 0);
}

struct worker *
worker_new(struct launcher *l, pid_t pid, int64_t client_id, unsigned tasks_max,
           const char *log)
{
	struct worker *w = xcalloc(1, sizeof *w);
	w->l = l;
	w->pid = pid;
	w->log = xstrdup(log);
	w->conn = CONN_NONE;
	w->proc = PROC_RUNNING;
	w->client_id = client_id;
	w->tasks_max = tasks_max;
	frame_decoder_init(&w->decoder, FRAME_MAX_DEFAULT);
	w->timer = evtimer_new(l->base, timer_cb, w);
	w->finish = evtimer_new(l->base, finish_cb, w);
	if (w->timer == NULL || w->finish == NULL)
		fatal("cannot create worker timers");
	/* Startup counts against the first task's timeout. */
	arm_timer(w, l->opt.task_timeout_s);
	return w;
}

void
worker_assign(struct worker *w, uint64_t task_id)
{
	w->has_task = 1;
	w->task_id = task_id;
	w->timeout_waited = 0;
	w->hung_up = 0;
	w->reason[0] = '\0';
	if (w->conn == CONN_IDLE)
		send_task(w);
}

int
worker_can_take_next(const struct worker *w)
{
	return w->conn == CONN_BUSY && w->proc == PROC_RUNNING &&
	       !w->has_next && !wire_sending(w) &&
	       w->tasks_done + 2 <= w->tasks_max;
}

void
worker_send_next(struct worker *w, uint64_t task_id, int64_t client_id)
{
	w->has_next = 1;
	w->next_task = task_id;
	w->next_client = client_id;
	log_debug("launcher: task %llu sent ahead to worker %ld",
	          (unsigned long long)task_id, (long)w->pid);
	write_task_frame(w, task_id);
}

void
worker_attach(struct worker *w, int fd)
{
	w->bev = bufferevent_socket_new(w->l->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (w->bev == NULL)
		fatal("cannot create a bufferevent");
	worker_set_conn(w, CONN_HELLO, "connected");
	bufferevent_setcb(w->bev, wire_read_cb, wire_write_cb, event_cb, w);
	/* Backpressure: stop reading the socket while two chunks wait to be
	 * decoded; refill the output when it drains below one chunk. */
	size_t chunk = w->l->opt.chunk_bytes;
	bufferevent_setwatermark(w->bev, EV_READ, 0, 2 * chunk + 65536);
	bufferevent_setwatermark(w->bev, EV_WRITE, chunk, 0);
	/* libevent moves at most 16 KiB per read or write call by default:
	 * 200,000 calls each way for a 3 GB model. */
	bufferevent_set_max_single_read(w->bev, chunk);
	bufferevent_set_max_single_write(w->bev, chunk);
	bufferevent_enable(w->bev, EV_READ | EV_WRITE);
}

void
worker_exited(struct worker *w, int status)
{
	char why[96];
	if (WIFSIGNALED(status))
		snprintf(why, sizeof why, "reaped: killed by signal %d",
		         WTERMSIG(status));
	else
		snprintf(why, sizeof why, "reaped: exit status %d",
		         WEXITSTATUS(status));
	worker_set_proc(w, PROC_EXITED, why);
	w->status = status;
	struct launcher_stats *s = &w->l->stats;
	if (WIFSIGNALED(status))
		s->signalled++;
	else if (WEXITSTATUS(status) == 0)
		s->exited_ok++;
	else
		s->exited_error++;
	/* Its socket reaches EOF soon; the timer closes it if a stray child
	 * keeps it open. Not while its streamed result waits for its turn:
	 * the result lies whole in the socket, read once it is let in. */
	if (worker_connected(w) && w->x.gate_ticket == 0) {
		arm_timer(w, w->l->opt.kill_grace_s + 1.0);
	} else {
		evtimer_del(w->timer);
		w->timer_left = -1;
	}
	maybe_finish(w);
}

void
worker_terminate(struct worker *w, const char *reason)
{
	worker_note(w, reason);
	if (w->reason[0] != '\0')
		log_debug("launcher: worker %ld: %s", (long)w->pid, w->reason);
	close_connection(w, "terminated");
	if (w->proc != PROC_RUNNING)
		return;
	if (w->l->opt.kill_grace_s <= 0) {
		worker_kill(w);
		return;
	}
	send_signal(w, SIGTERM);
	worker_set_proc(w, PROC_TERMINATING, "SIGTERM sent");
	arm_timer(w, w->l->opt.kill_grace_s);
}

void
worker_kill(struct worker *w)
{
	close_connection(w, "killed");
	if (w->proc == PROC_EXITED || w->proc == PROC_KILLED)
		return;
	send_signal(w, SIGKILL);
	worker_set_proc(w, PROC_KILLED, "SIGKILL sent");
	evtimer_del(w->timer);
}

void
worker_shutdown(struct worker *w)
{
	struct msg m;
	msg_init(&m, MSG_TASK);
	m.u.task.kind = TASK_SHUTDOWN;
	uint8_t *frame;
	size_t len;
	if (msg_encode_frame(&m, &frame, &len) == 0) {
		bufferevent_write(w->bev, frame, len);
		free(frame);
	}
	msg_free(&m);
	worker_set_conn(w, CONN_RETIRING, "shutdown sent");
	arm_timer(w, w->l->opt.kill_grace_s + 1.0);
}

int
worker_idle(const struct worker *w)
{
	return w->conn == CONN_IDLE && w->proc == PROC_RUNNING;
}

void
worker_free(struct worker *w)
{
	wire_close(w);
	if (w->bev != NULL)
		bufferevent_free(w->bev);
	event_free(w->timer);
	event_free(w->finish);
	frame_decoder_free(&w->decoder);
	msg_free(&w->x.pending);
	free(w->log);
	free(w);
}
