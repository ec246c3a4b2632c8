/* forkserver.c: launch mode fork-server (docs/protocol.md, "Fork server").
 * The worker program is started once as a fork server; for every worker
 * the launcher would spawn it asks the server for a child instead (a fork
 * frame carrying the child's log), learns the child's pid (forked) and,
 * once the server has reaped it, its wait status (exited). A child is an
 * ordinary worker from its hello on: worker.c knows nothing of how it was
 * started. The orchestrator is a child subreaper, so a child outliving
 * its server is reaped here with its real status. */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "files.h"

/* Frames a server sends are small: forked, exited, error. */
#define FS_FRAME_MAX (64u << 10)
/* Connections from children whose forked frame has not been read yet. */
#define FS_PARKED_MAX 64
#define FS_PARK_S 10.0

/* OFF: no server; STARTING: spawned, its hello awaited; READY: forks go
 * to it; CLOSING: its socket closed or its process gone, the other
 * awaited. */
enum fs_state { FS_OFF, FS_STARTING, FS_READY, FS_CLOSING };

struct pending_fork {
	uint64_t fork_id;
	int64_t client_id;
	int has_task;
	uint64_t task_id;
	unsigned tasks;
	int gpu_slot;
	int logfd; /* sent with the fork frame, then closed */
	char *log; /* the file logfd writes to */
	int sent;
	TAILQ_ENTRY(pending_fork) entry;
};

struct parked {
	int fd;
	pid_t pid;
	double until;
};

struct forkserver {
	struct launcher *l;
	enum fs_state state;
	pid_t pid;
	int exited, status;
	int hello_seen;
	struct bufferevent *bev;
	struct frame_decoder decoder;
	struct event *timer; /* startup, a fork's answer, the stop's grace */
	struct event *finish;
	char *log;
	char reason[512];  /* why it failed: its error frame, a timeout */
	char exit_why[96]; /* how it ended, once reaped */
	uint64_t next_fork_id;
	TAILQ_HEAD(, pending_fork) pending;
	struct parked parked[FS_PARKED_MAX];
	unsigned nparked;
};

static void fs_fail(struct forkserver *fs, const char *reason);

static void
fs_arm(struct forkserver *fs, double seconds)
{
	struct timeval tv = {(time_t)seconds,
	                     (suseconds_t)((seconds - (time_t)seconds) * 1e6)};
	evtimer_add(fs->timer, &tv);
}

static void
fs_note(struct forkserver *fs, const char *reason)
{
	if (fs->reason[0] == '\0')
		snprintf(fs->reason, sizeof fs->reason, "%s", reason);
}

/* Write a fork frame with the child's log attached to its first byte. */
static int
send_fork(struct forkserver *fs, struct pending_fork *p)
{
	struct launcher *l = fs->l;
	struct msg m;
	msg_init(&m, MSG_FORK);
	m.u.fork.fork_id = p->fork_id;
	char num[32];
	snprintf(num, sizeof num, "%lld", (long long)p->client_id);
	kv_set_str(&m.u.fork.env, "COHORT_CLIENT_ID", num);
	snprintf(num, sizeof num, "%u", p->tasks);
	kv_set_str(&m.u.fork.env, "COHORT_TASKS", num);
	if (p->gpu_slot >= 0)
		kv_set_str(&m.u.fork.env, "CUDA_VISIBLE_DEVICES",
		           gpuslots_visible(&l->gpus, (unsigned)p->gpu_slot));
	uint8_t *frame;
	size_t len;
	int rc = msg_encode_frame(&m, &frame, &len);
	msg_free(&m);
	if (rc != 0)
		return -1;
	struct evbuffer *out = bufferevent_get_output(fs->bev);
	int sock = bufferevent_getfd(fs->bev);
	if (evbuffer_get_length(out) > 0)
		evbuffer_write(out, sock);
	ssize_t sent =
	    evbuffer_get_length(out) > 0
	        ? -1
	        : frame_send_fds(sock, frame, len, &p->logfd, 1, MSG_DONTWAIT);
	if (sent >= 0)
		bufferevent_write(fs->bev, frame + sent, len - (size_t)sent);
	free(frame);
	if (sent < 0)
		return -1;
	close(p->logfd);
	p->logfd = -1;
	p->sent = 1;
	return 0;
}

/* Send every fork not sent yet; the oldest unanswered one has the task
 * timeout to be answered. */
static void
send_pending(struct forkserver *fs)
{
	struct pending_fork *p;
	int waiting = 0;
	TAILQ_FOREACH(p, &fs->pending, entry)
	{
		if (!p->sent && send_fork(fs, p) != 0) {
			fs_fail(fs, "its socket is full: the fork server is "
			            "not reading its fork frames");
			return;
		}
		waiting = 1;
	}
	if (waiting && !evtimer_pending(fs->timer, NULL))
		fs_arm(fs, fs->l->opt.task_timeout_s);
	else if (!waiting)
		evtimer_del(fs->timer);
}

static void
free_pending(struct pending_fork *p)
{
	if (p->logfd >= 0)
		close(p->logfd);
	free(p->log);
	free(p);
}

/* Forks not answered go back to the queue; their slots free. */
static void
drop_pending(struct forkserver *fs)
{
	struct launcher *l = fs->l;
	struct pending_fork *p;
	while ((p = TAILQ_FIRST(&fs->pending)) != NULL) {
		TAILQ_REMOVE(&fs->pending, p, entry);
		if (p->gpu_slot >= 0)
			l->gpu_busy[p->gpu_slot] = 0;
		l->alive--;
		if (p->has_task)
			launcher_requeue(l, p->task_id, p->client_id);
		free_pending(p);
	}
}

/* The child of request fork_id is pid: its worker from now on. */
static void
on_forked(struct forkserver *fs, uint64_t fork_id, pid_t pid)
{
	struct launcher *l = fs->l;
	struct pending_fork *p;
	TAILQ_FOREACH(p, &fs->pending, entry)
	if (p->fork_id == fork_id && p->sent)
		break;
	if (p == NULL) {
		fs_fail(fs, "forked names a fork request it was not sent");
		return;
	}
	TAILQ_REMOVE(&fs->pending, p, entry);
	struct worker *w = worker_new(l, pid, p->has_task ? p->client_id : -1,
	                              p->tasks, p->log);
	w->gpu_slot = p->gpu_slot;
	w->forked = 1;
	TAILQ_INSERT_TAIL(&l->workers, w, entry);
	l->stats.spawned++;
	l->spawn_fails = 0;
	log_debug("launcher: fork server made worker %ld (request %llu)",
	          (long)pid, (unsigned long long)fork_id);
	if (p->has_task)
		worker_assign(w, p->task_id);
	free_pending(p);
	evtimer_del(fs->timer);
	send_pending(fs);
	for (unsigned i = 0; i < fs->nparked; i++)
		if (fs->parked[i].pid == pid) {
			int fd = fs->parked[i].fd;
			fs->parked[i] = fs->parked[--fs->nparked];
			worker_attach(w, fd);
			break;
		}
	/* Stopped meanwhile: it goes at once, reaped like any other. */
	if (l->stopping)
		worker_kill(w);
}

/* The server reaped its child pid. */
static void
on_exited(struct forkserver *fs, pid_t pid, int status)
{
	struct worker *w;
	TAILQ_FOREACH(w, &fs->l->workers, entry)
	if (w->pid == pid && w->forked && w->proc != PROC_EXITED) {
		worker_exited(w, status);
		return;
	}
	/* A child not known (its forked frame lost with a protocol error):
	 * nothing waits for it. */
}

static void
on_hello(struct forkserver *fs, const struct msg_hello *h)
{
	const char *bad = NULL;
	if (strcmp(h->token, fs->l->opt.token) != 0)
		bad = "hello carries a wrong token";
	else if (h->pid != fs->pid)
		bad = "hello pid differs from the connection's peer pid";
	else if (!h->fork_server)
		bad = "launcher.mode is fork-server but the worker program "
		      "said hello as a worker: it does not run as a fork "
		      "server (the built-in worker and the Python package "
		      "cohort do)";
	if (bad != NULL) {
		fs_fail(fs, bad);
		return;
	}
	fs->hello_seen = 1;
	fs->state = FS_READY;
	evtimer_del(fs->timer);
	log_debug("launcher: fork server %ld ready", (long)fs->pid);
	send_pending(fs);
}

static void
on_message(struct forkserver *fs, const struct msg *m)
{
	char what[700];
	if (!fs->hello_seen && m->type != MSG_HELLO && m->type != MSG_ERROR) {
		snprintf(what, sizeof what, "expected hello, got %s",
		         msg_type_name(m->type));
		fs_fail(fs, what);
		return;
	}
	switch (m->type) {
	case MSG_HELLO:
		if (fs->hello_seen)
			fs_fail(fs, "a second hello");
		else
			on_hello(fs, &m->u.hello);
		return;
	case MSG_FORKED:
		on_forked(fs, m->u.forked.fork_id, m->u.forked.pid);
		return;
	case MSG_EXITED:
		on_exited(fs, m->u.exited.pid, m->u.exited.status);
		return;
	case MSG_ERROR:
		snprintf(what, sizeof what, "the fork server failed: %s: %s",
		         m->u.error.code, m->u.error.message);
		fs_fail(fs, what);
		return;
	default:
		snprintf(what, sizeof what,
		         "unexpected %s frame from the "
		         "fork server",
		         msg_type_name(m->type));
		fs_fail(fs, what);
	}
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct forkserver *fs = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	while (fs->bev != NULL && evbuffer_get_length(in) > 0) {
		size_t len = evbuffer_get_length(in);
		const uint8_t *data = evbuffer_pullup(in, (ssize_t)len);
		size_t used;
		struct ipc_error err;
		int rc =
		    frame_decoder_feed(&fs->decoder, data, len, &used, &err);
		if (rc == 0) {
			evbuffer_drain(in, used);
			return;
		}
		struct msg m;
		if (rc > 0) {
			size_t plen;
			const uint8_t *p =
			    frame_decoder_payload(&fs->decoder, &plen);
			rc = msg_decode(p, plen, &m, &err);
		}
		if (rc < 0) {
			char *why =
			    xasprintf("protocol error: %s", err.message);
			fs_fail(fs, why);
			free(why);
			return;
		}
		evbuffer_drain(in, used);
		on_message(fs, &m);
		msg_free(&m);
	}
}

static void maybe_finish(struct forkserver *fs);

static void
close_conn(struct forkserver *fs)
{
	if (fs->bev == NULL)
		return;
	bufferevent_free(fs->bev);
	fs->bev = NULL;
	frame_decoder_free(&fs->decoder);
	frame_decoder_init(&fs->decoder, FS_FRAME_MAX);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct forkserver *fs = arg;
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		fs_fail(fs,
		        fs->exited ? fs->exit_why : "closed its connection");
}

/* Give up on this server: forks not answered go back to the queue, the
 * socket closes, the process is killed (its children die with it:
 * PR_SET_PDEATHSIG, and come to us to be reaped). */
static void
fs_fail(struct forkserver *fs, const char *reason)
{
	if (fs->state == FS_OFF)
		return;
	fs_note(fs, reason);
	if (fs->state != FS_CLOSING)
		log_debug("launcher: fork server %ld: %s", (long)fs->pid,
		          fs->reason);
	fs->state = FS_CLOSING;
	close_conn(fs);
	/* Its children die with it (PR_SET_PDEATHSIG): say why. */
	struct worker *w;
	TAILQ_FOREACH(w, &fs->l->workers, entry)
	if (w->forked && w->proc != PROC_EXITED && w->has_task)
		worker_note(w, "its fork server died");
	if (!fs->exited) {
		kill(-fs->pid, SIGKILL);
		kill(fs->pid, SIGKILL);
	}
	int unborn = !TAILQ_EMPTY(&fs->pending);
	drop_pending(fs);
	evtimer_del(fs->timer);
	/* A server that never got as far as forking is a worker that could
	 * not be started: the launcher's retries and backoff apply. */
	if (!fs->l->stopping && (unborn || !fs->hello_seen)) {
		char last[200];
		files_last_line(fs->log, last, sizeof last);
		snprintf(fs->l->spawn_reason, sizeof fs->l->spawn_reason,
		         "fork server %.200s%s%.150s%s (log %.200s)",
		         fs->reason, last[0] ? "; its log ends \"" : "", last,
		         last[0] ? "\"" : "", fs->log);
		launcher_spawn_failed(fs->l);
	}
	maybe_finish(fs);
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct forkserver *fs = arg;
	struct launcher *l = fs->l;
	(void)fd;
	(void)what;
	char why[160];
	if (fs->exited)
		snprintf(why, sizeof why, "%s", fs->exit_why);
	else if (fs->state == FS_STARTING)
		snprintf(why, sizeof why,
		         "did not say hello within %g s (task_timeout_s)",
		         l->opt.task_timeout_s);
	else if (fs->state == FS_READY && !TAILQ_EMPTY(&fs->pending))
		snprintf(why, sizeof why,
		         "did not answer a fork request within %g s",
		         l->opt.task_timeout_s);
	else
		snprintf(why, sizeof why, "did not exit when told to");
	fs_fail(fs, why);
}

/* Closed and reaped: children it reaped whose exited frame never came
 * are gone with their status; the rest are ours now (subreaper). */
static void
finish_cb(evutil_socket_t fd, short what, void *arg)
{
	struct forkserver *fs = arg;
	struct launcher *l = fs->l;
	(void)fd;
	(void)what;
	struct worker *w, *next;
	for (w = TAILQ_FIRST(&l->workers); w != NULL; w = next) {
		next = TAILQ_NEXT(w, entry);
		siginfo_t info;
		if (!w->forked || w->proc == PROC_EXITED ||
		    waitid(P_PID, (id_t)w->pid, &info,
		           WEXITED | WNOHANG | WNOWAIT) == 0)
			continue;
		worker_note(w, "its fork server died");
		worker_exited(w, SIGKILL);
	}
	for (unsigned i = 0; i < fs->nparked; i++)
		close(fs->parked[i].fd);
	fs->nparked = 0;
	pid_t pid = fs->pid;
	fs->state = FS_OFF;
	fs->pid = 0;
	fs->exited = 0;
	fs->hello_seen = 0;
	fs->reason[0] = '\0';
	fs->exit_why[0] = '\0';
	if (l->hooks.exited != NULL)
		l->hooks.exited(l->hooks.arg, pid);
	launcher_schedule(l);
}

static void
maybe_finish(struct forkserver *fs)
{
	if (fs->state == FS_CLOSING && fs->bev == NULL && fs->exited)
		event_active(fs->finish, EV_TIMEOUT, 0);
}

struct forkserver *
fs_new(struct launcher *l)
{
	struct forkserver *fs = xcalloc(1, sizeof *fs);
	fs->l = l;
	TAILQ_INIT(&fs->pending);
	frame_decoder_init(&fs->decoder, FS_FRAME_MAX);
	fs->timer = evtimer_new(l->base, timer_cb, fs);
	fs->finish = evtimer_new(l->base, finish_cb, fs);
	if (fs->timer == NULL || fs->finish == NULL)
		fatal("cannot create the fork server's timers");
	fs->log = xasprintf("%s/fork-server.log", l->opt.log_dir);
	/* A child its server leaves behind comes to us, not to init: we
	 * reap it with its real status. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
		log_warn("launcher: cannot become a child subreaper: %s",
		         strerror(errno));
	return fs;
}

int
fs_request(struct launcher *l, int64_t client_id, int has_task,
           uint64_t task_id, unsigned tasks, int logfd, const char *log,
           int slot)
{
	struct forkserver *fs = l->fs;
	if (fs->state == FS_CLOSING) {
		/* The last one is still going: ask again once it is gone. */
		snprintf(l->spawn_reason, sizeof l->spawn_reason,
		         "the fork server is restarting");
		close(logfd);
		return 1;
	}
	if (fs->state == FS_OFF) {
		pid_t pid;
		if (launcher_spawn_process(l, fs->log, -1, 0, -1, 1, &pid) !=
		    0) {
			close(logfd);
			return -1;
		}
		fs->pid = pid;
		fs->state = FS_STARTING;
		fs_arm(fs, l->opt.task_timeout_s);
		log_debug("launcher: fork server %ld started, log %s",
		          (long)pid, fs->log);
	}
	struct pending_fork *p = xcalloc(1, sizeof *p);
	p->fork_id = ++fs->next_fork_id;
	p->client_id = client_id;
	p->has_task = has_task;
	p->task_id = task_id;
	p->tasks = tasks;
	p->gpu_slot = slot;
	p->logfd = logfd;
	p->log = xstrdup(log);
	TAILQ_INSERT_TAIL(&fs->pending, p, entry);
	if (fs->state == FS_READY)
		send_pending(fs);
	return 0;
}

int
fs_is(const struct launcher *l, pid_t pid)
{
	return l->fs != NULL && l->fs->state != FS_OFF && l->fs->pid == pid;
}

int
fs_alive(const struct launcher *l)
{
	return l->fs != NULL && l->fs->state != FS_OFF;
}

/* The parent pid in /proc/PID/stat ("pid (comm) state ppid ..."; comm may
 * hold spaces and parentheses, so the fields after the last ')'). */
static pid_t
parent_of(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	long ppid;
	char state;
	if (p == NULL || sscanf(p + 1, " %c %ld", &state, &ppid) != 2)
		return -1;
	return (pid_t)ppid;
}

int
fs_accept(struct launcher *l, int fd, pid_t pid)
{
	struct forkserver *fs = l->fs;
	if (fs == NULL)
		return 0;
	if (fs->state == FS_STARTING && pid == fs->pid && fs->bev == NULL) {
		fs->bev =
		    bufferevent_socket_new(l->base, fd, BEV_OPT_CLOSE_ON_FREE);
		if (fs->bev == NULL)
			fatal("cannot create a bufferevent");
		bufferevent_setcb(fs->bev, read_cb, NULL, event_cb, fs);
		bufferevent_enable(fs->bev, EV_READ | EV_WRITE);
		return 1;
	}
	/* A child of the server whose forked frame is still in the server's
	 * socket: kept until it is read. */
	if (fs->state != FS_READY || TAILQ_EMPTY(&fs->pending) ||
	    parent_of(pid) != fs->pid)
		return 0;
	double now = now_seconds();
	for (unsigned i = 0; i < fs->nparked;)
		if (fs->parked[i].until < now) {
			close(fs->parked[i].fd);
			fs->parked[i] = fs->parked[--fs->nparked];
		} else {
			i++;
		}
	if (fs->nparked == FS_PARKED_MAX)
		return 0;
	fs->parked[fs->nparked++] =
	    (struct parked){.fd = fd, .pid = pid, .until = now + FS_PARK_S};
	return 1;
}

int
fs_reap(struct launcher *l, pid_t pid, int status)
{
	struct forkserver *fs = l->fs;
	if (!fs_is(l, pid))
		return 0;
	fs->exited = 1;
	fs->status = status;
	if (WIFSIGNALED(status))
		snprintf(fs->exit_why, sizeof fs->exit_why,
		         "was killed by signal %d", WTERMSIG(status));
	else
		snprintf(fs->exit_why, sizeof fs->exit_why,
		         "exited with status %d", WEXITSTATUS(status));
	/* What it said before it went (an error frame) is read first: the
	 * end of its socket fails it, with that reason. */
	if (fs->bev != NULL && fs->state != FS_CLOSING) {
		fs_arm(fs, l->opt.kill_grace_s + 1.0);
		return 1;
	}
	if (fs->state != FS_CLOSING && !l->stopping)
		fs_fail(fs, fs->exit_why);
	else {
		fs->state = FS_CLOSING;
		drop_pending(fs);
		maybe_finish(fs);
	}
	return 1;
}

void
fs_stop(struct launcher *l)
{
	struct forkserver *fs = l->fs;
	if (fs == NULL || fs->state == FS_OFF || fs->state == FS_CLOSING)
		return;
	/* It exits at the end of its socket. */
	fs->state = FS_CLOSING;
	close_conn(fs);
	drop_pending(fs);
	fs_arm(fs, l->opt.kill_grace_s + 1.0);
	maybe_finish(fs);
}

void
fs_free(struct launcher *l)
{
	struct forkserver *fs = l->fs;
	if (fs == NULL)
		return;
	if (fs->state != FS_OFF && !fs->exited) {
		kill(-fs->pid, SIGKILL);
		kill(fs->pid, SIGKILL);
		while (waitpid(fs->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	close_conn(fs);
	frame_decoder_free(&fs->decoder);
	struct pending_fork *p;
	while ((p = TAILQ_FIRST(&fs->pending)) != NULL) {
		TAILQ_REMOVE(&fs->pending, p, entry);
		free_pending(p);
	}
	for (unsigned i = 0; i < fs->nparked; i++)
		close(fs->parked[i].fd);
	event_free(fs->timer);
	event_free(fs->finish);
	free(fs->log);
	free(fs);
	l->fs = NULL;
}
