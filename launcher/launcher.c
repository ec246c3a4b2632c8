/* launcher.c: the task queue, concurrency slots, spawning workers with
 * posix_spawn, reaping them on SIGCHLD, and the listening socket that
 * matches each connection to its process by SO_PEERCRED. */
/* struct ucred (SO_PEERCRED) is a GNU extension. */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shm.h"

extern char **environ;

/* Variables the launcher sets for every worker; inherited copies are dropped.
 */
static const char *const owned_env[] = {
    "COHORT_SOCKET=",        "COHORT_TOKEN=",       "COHORT_CLIENT_ID=",
    "COHORT_JOB=",           "COHORT_WORKSPACE=",   "COHORT_TASKS=",
    "OPENBLAS_NUM_THREADS=", "COHORT_FORK_SERVER=",
};

/* True when entry ("NAME=value") is a variable this launcher sets: always
 * the owned_env ones, COHORT_DEVICE when a device is configured, and
 * CUDA_VISIBLE_DEVICES only with GPU slots (a CPU job passes it on). */
static int
env_owned(const struct launcher *l, const char *entry)
{
	for (size_t j = 0; j < ARRAY_LEN(owned_env); j++)
		if (strncmp(entry, owned_env[j], strlen(owned_env[j])) == 0)
			return 1;
	if (l->opt.device != NULL && strncmp(entry, "COHORT_DEVICE=", 14) == 0)
		return 1;
	return l->gpus.nslots > 0 &&
	       strncmp(entry, "CUDA_VISIBLE_DEVICES=", 21) == 0;
}

/* Copy our environment minus the variables the launcher sets itself. */
static char **
inherit_env(const struct launcher *l)
{
	size_t n = 0;
	while (environ[n] != NULL)
		n++;
	char **env = xcalloc(n + 1, sizeof *env);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (!env_owned(l, environ[i]))
			env[k++] = xstrdup(environ[i]);
	return env;
}

/* Mark slot busy and count the workers now on its GPU. */
static void
gpu_take(struct launcher *l, int slot)
{
	l->gpu_busy[slot] = 1;
	unsigned gpu = l->gpus.slot_gpu[slot], on = 0;
	for (unsigned i = 0; i < l->gpus.nslots; i++)
		if (l->gpu_busy[i] && l->gpus.slot_gpu[i] == gpu)
			on++;
	if (on > l->stats.peak_gpu)
		l->stats.peak_gpu = on;
}

/* The worker owning pid, or NULL. */
static struct worker *
find_worker(struct launcher *l, pid_t pid)
{
	struct worker *w;
	TAILQ_FOREACH(w, &l->workers, entry)
	if (w->pid == pid)
		return w;
	return NULL;
}

int
launcher_spawn_process(struct launcher *l, const char *log, int64_t client_id,
                       unsigned tasks, int slot, int fork_server, pid_t *pid)
{
	/* The log is opened here, not by the child, so that a log that
	 * cannot be opened is told apart from a worker that cannot run. */
	int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
	if (logfd < 0) {
		snprintf(l->spawn_reason, sizeof l->spawn_reason,
		         "cannot start worker %s: its log %s: %s",
		         l->opt.worker_path, log, strerror(errno));
		return -1;
	}
	size_t n = 0;
	while (l->env[n] != NULL)
		n++;
	char **env = xcalloc(n + ARRAY_LEN(owned_env) + 3, sizeof *env);
	memcpy(env, l->env, n * sizeof *env);
	char *mine[ARRAY_LEN(owned_env) + 2] = {NULL};
	mine[0] = xasprintf("COHORT_SOCKET=%s", l->opt.socket_path);
	mine[1] = xasprintf("COHORT_TOKEN=%s", l->opt.token);
	mine[2] = xasprintf("COHORT_CLIENT_ID=%lld", (long long)client_id);
	mine[3] = xasprintf("COHORT_JOB=%s", l->opt.jobkey);
	mine[4] = xasprintf("COHORT_WORKSPACE=%s", l->opt.workspace);
	mine[5] = xasprintf("COHORT_TASKS=%u", tasks);
	mine[6] = xasprintf("OPENBLAS_NUM_THREADS=1");
	mine[7] = xasprintf("COHORT_FORK_SERVER=%d", fork_server ? 1 : 0);
	size_t k = ARRAY_LEN(owned_env);
	if (l->opt.device != NULL)
		mine[k++] = xasprintf("COHORT_DEVICE=%s", l->opt.device);
	if (slot >= 0)
		mine[k++] =
		    xasprintf("CUDA_VISIBLE_DEVICES=%s",
		              gpuslots_visible(&l->gpus, (unsigned)slot));
	for (size_t i = 0; i < k; i++)
		env[n + i] = mine[i];

	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, logfd, 1);
	posix_spawn_file_actions_adddup2(&fa, logfd, 2);
	posix_spawnattr_init(&attr);
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	/* Its own process group: a terminal's ^C reaches the orchestrator,
	 * which then stops its workers in order. */
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
	                                    POSIX_SPAWN_SETSIGDEF |
	                                    POSIX_SPAWN_SETPGROUP);
	int rc = posix_spawn(pid, l->opt.worker_path, &fa, &attr, l->argv, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(logfd);
	for (size_t i = 0; i < k; i++)
		free(mine[i]);
	free(env);
	if (rc != 0) {
		snprintf(l->spawn_reason, sizeof l->spawn_reason,
		         "cannot start worker %s (log %s): %s",
		         l->opt.worker_path, log, strerror(rc));
		return -1;
	}
	return 0;
}

/* Count one more worker alive (a process, or a fork asked for). */
static void
count_alive(struct launcher *l, int slot)
{
	if (slot >= 0)
		gpu_take(l, slot);
	l->alive++;
	if (l->alive > l->stats.peak_alive)
		l->stats.peak_alive = l->alive;
}

/* Start one worker process (or ask the fork server for one); with
 * has_task it is bound to task_id. 0 when started or asked for; 1 when
 * it cannot be now but will be (the fork server restarting); -1 when it
 * cannot be started, the reason in l->spawn_reason. */
static int
spawn_worker(struct launcher *l, int64_t client_id, int has_task,
             uint64_t task_id)
{
	unsigned tasks = has_task ? 1 : l->opt.tasks_per_worker;
	char *log;
	if (!has_task)
		log =
		    xasprintf("%s/pool-%u.log", l->opt.log_dir, ++l->pool_seq);
	else if (client_id < 0)
		log = xasprintf("%s/server-eval.log", l->opt.log_dir);
	else
		log = xasprintf("%s/client-%lld.log", l->opt.log_dir,
		                (long long)client_id);
	/* A GPU worker sees one GPU, its slot's, as device 0. */
	int slot =
	    l->gpus.nslots > 0 ? gpuslots_pick(&l->gpus, l->gpu_busy) : -1;
	if (l->fs != NULL) {
		int logfd =
		    open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
		if (logfd < 0) {
			snprintf(l->spawn_reason, sizeof l->spawn_reason,
			         "cannot start worker %s: its log %s: %s",
			         l->opt.worker_path, log, strerror(errno));
			free(log);
			return -1;
		}
		int rc = fs_request(l, client_id, has_task, task_id, tasks,
		                    logfd, log, slot);
		free(log);
		if (rc == 0)
			count_alive(l, slot);
		return rc;
	}
	pid_t pid;
	if (launcher_spawn_process(l, log, client_id, tasks, slot, 0, &pid) !=
	    0) {
		free(log);
		return -1;
	}
	l->spawn_fails = 0;
	struct worker *w =
	    worker_new(l, pid, has_task ? client_id : -1, tasks, log);
	w->gpu_slot = slot;
	TAILQ_INSERT_TAIL(&l->workers, w, entry);
	count_alive(l, slot);
	l->stats.spawned++;
	if (has_task)
		log_debug("launcher: worker %ld started for task %llu, log %s",
		          (long)pid, (unsigned long long)task_id, log);
	else
		log_debug("launcher: worker %ld started for up to %u tasks, "
		          "log %s",
		          (long)pid, tasks, log);
	free(log);
	if (has_task)
		worker_assign(w, task_id);
	return 0;
}

/* Pool workers about to take a task: starting up, or connected and idle. */
static unsigned
pool_ready(struct launcher *l)
{
	unsigned n = 0;
	struct worker *w;
	TAILQ_FOREACH(w, &l->workers, entry)
	if ((w->conn <= CONN_HELLO && !w->has_task &&
	     w->proc == PROC_RUNNING) ||
	    worker_idle(w))
		n++;
	return n;
}

/* Pop the oldest queued task. */
static struct queued_task *
pop_task(struct launcher *l)
{
	struct queued_task *q = TAILQ_FIRST(&l->queue);
	if (q != NULL) {
		TAILQ_REMOVE(&l->queue, q, entry);
		l->queued--;
	}
	return q;
}

/* Move every queued task to the failing list with reason and report them
 * from the loop. */
static void
fail_queued(struct launcher *l, const char *reason)
{
	struct queued_task *q;
	while ((q = pop_task(l)) != NULL) {
		q->reason = xstrdup(reason);
		TAILQ_INSERT_TAIL(&l->failing, q, entry);
	}
	event_active(l->report_failing, EV_TIMEOUT, 0);
}

/* report_failing: tell the owner of each task no worker could take. */
static void
report_failing_cb(evutil_socket_t fd, short what, void *arg)
{
	struct launcher *l = arg;
	(void)fd;
	(void)what;
	struct queued_task *q;
	while ((q = TAILQ_FIRST(&l->failing)) != NULL) {
		TAILQ_REMOVE(&l->failing, q, entry);
		launcher_task_failed(l, q->task_id, q->reason);
		free(q->reason);
		free(q);
	}
}

/* A worker could not be started: try again after a pause that doubles;
 * after LAUNCHER_SPAWN_TRIES in a row, fail the queued tasks unless a live
 * worker may still take them (then keep trying at the longest pause). */
void
launcher_spawn_failed(struct launcher *l)
{
	l->stats.spawn_failures++;
	unsigned n = ++l->spawn_fails;
	log_debug("launcher: %s (try %u)", l->spawn_reason, n);
	if (n >= LAUNCHER_SPAWN_TRIES && l->alive == 0) {
		char *reason = xasprintf("%s (%u tries)", l->spawn_reason, n);
		fail_queued(l, reason);
		free(reason);
		l->spawn_fails = 0;
		return;
	}
	if (n > LAUNCHER_SPAWN_TRIES)
		n = LAUNCHER_SPAWN_TRIES;
	double pause = LAUNCHER_SPAWN_BACKOFF_S * (double)(1u << (n - 1));
	struct timeval tv = {(time_t)pause,
	                     (suseconds_t)((pause - (time_t)pause) * 1e6)};
	evtimer_add(l->spawn_retry, &tv);
}

/* spawn_retry: the pause is over. */
static void
spawn_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	launcher_schedule(arg);
}

/* Hand queued tasks to idle workers and start workers in free slots (none
 * while pausing after a failed start). */
void
launcher_schedule(struct launcher *l)
{
	if (l->stopping)
		return;
	int pausing = evtimer_pending(l->spawn_retry, NULL);
	if (l->opt.tasks_per_worker > 1) {
		struct worker *w;
		TAILQ_FOREACH(w, &l->workers, entry)
		{
			if (l->queued == 0)
				break;
			if (worker_idle(w)) {
				struct queued_task *q = pop_task(l);
				worker_assign(w, q->task_id);
				free(q);
			}
		}
		while (!pausing && l->queued > pool_ready(l) &&
		       l->alive < l->opt.max_concurrent) {
			int rc = spawn_worker(l, -1, 0, 0);
			if (rc < 0)
				launcher_spawn_failed(l);
			if (rc != 0)
				break;
		}
		/* What no ready worker will take goes ahead to busy ones. */
		TAILQ_FOREACH(w, &l->workers, entry)
		{
			if (l->queued <= pool_ready(l))
				break;
			launcher_worker_busy(l, w);
		}
		return;
	}
	while (!pausing && l->queued > 0 && l->alive < l->opt.max_concurrent) {
		struct queued_task *q = TAILQ_FIRST(&l->queue);
		int rc = spawn_worker(l, q->client_id, 1, q->task_id);
		if (rc < 0)
			launcher_spawn_failed(l);
		if (rc != 0)
			break;
		free(pop_task(l));
	}
}

/* Reap w (seen exited): its group, what it left running, is killed
 * before the pid can be reused. */
static void
reap_worker(struct worker *w)
{
	kill(-w->pid, SIGKILL);
	int status;
	pid_t rc;
	do
		rc = waitpid(w->pid, &status, WNOHANG);
	while (rc < 0 && errno == EINTR);
	if (rc == w->pid)
		worker_exited(w, status);
}

/* pid has exited (not reaped yet) and is no worker: the fork server, or
 * (subreaper) an orphan of one of them, both reaped here. */
static void
reap_other(struct launcher *l, pid_t pid)
{
	kill(-pid, SIGKILL);
	int status;
	pid_t rc;
	do
		rc = waitpid(pid, &status, WNOHANG);
	while (rc < 0 && errno == EINTR);
	if (rc == pid && !fs_reap(l, pid, status))
		log_debug("launcher: reaped orphan %ld", (long)pid);
}

/* SIGCHLD: reap every worker that exited; in fork-server mode also the
 * server and the orphans that come to us as their subreaper. */
static void
sigchld_cb(evutil_socket_t fd, short what, void *arg)
{
	struct launcher *l = arg;
	(void)fd;
	(void)what;
	struct worker *w;
	TAILQ_FOREACH(w, &l->workers, entry)
	{
		if (w->proc == PROC_EXITED)
			continue;
		/* Seen exited but not reaped, its pid is still its own. */
		siginfo_t info = {0};
		if (waitid(P_PID, (id_t)w->pid, &info,
		           WEXITED | WNOHANG | WNOWAIT) != 0 ||
		    info.si_pid != w->pid)
			continue;
		reap_worker(w);
	}
	if (l->fs == NULL)
		return;
	for (;;) {
		siginfo_t info = {0};
		if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 ||
		    info.si_pid == 0)
			break;
		w = find_worker(l, info.si_pid);
		if (w != NULL && w->proc != PROC_EXITED)
			reap_worker(w);
		else
			reap_other(l, info.si_pid);
	}
}

/* A connection: find its process by peer credentials, or refuse it. */
static void
accept_cb(struct evconnlistener *listener, evutil_socket_t fd,
          struct sockaddr *sa, int socklen, void *arg)
{
	struct launcher *l = arg;
	(void)listener;
	(void)sa;
	(void)socklen;
	struct ucred cred;
	socklen_t len = sizeof cred;
	struct worker *w = NULL;
	int ours = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
	           cred.uid == getuid();
	if (ours)
		w = find_worker(l, cred.pid);
	if (ours && w == NULL && fs_accept(l, fd, cred.pid))
		return;
	if (w == NULL || w->conn != CONN_NONE || w->proc != PROC_RUNNING) {
		l->stats.refused++;
		close(fd);
		return;
	}
	worker_attach(w, fd);
}

struct launcher *
launcher_create(struct event_base *base, const struct launcher_options *opt,
                const struct launcher_hooks *hooks, struct ipc_error *err)
{
	/* A write to a worker that has just died must fail with EPIPE (the
	 * task fails), never kill the orchestrator. */
	signal(SIGPIPE, SIG_IGN);
	if (access(opt->worker_path, X_OK) != 0) {
		ipc_error_set(
		    err, IPC_E_IO,
		    "worker %s: not an executable: %s (launcher.worker "
		    "or worker.command)",
		    opt->worker_path, strerror(errno));
		return NULL;
	}
	struct sockaddr_un sun;
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(opt->socket_path) >= sizeof sun.sun_path) {
		ipc_error_set(err, IPC_E_BAD_VALUE,
		              "%s: socket path longer than %zu bytes",
		              opt->socket_path, sizeof sun.sun_path - 1);
		return NULL;
	}
	strcpy(sun.sun_path, opt->socket_path);
	unlink(opt->socket_path);

	struct launcher *l = xcalloc(1, sizeof *l);
	l->base = base;
	l->opt = *opt;
	l->opt.worker_path = xstrdup(opt->worker_path);
	l->opt.worker_args = NULL;
	size_t nargs = 0;
	while (opt->worker_args != NULL && opt->worker_args[nargs] != NULL)
		nargs++;
	l->argv = xcalloc(nargs + 2, sizeof *l->argv);
	l->argv[0] = xstrdup(opt->worker_path);
	for (size_t i = 0; i < nargs; i++)
		l->argv[i + 1] = xstrdup(opt->worker_args[i]);
	l->opt.socket_path = xstrdup(opt->socket_path);
	l->opt.jobkey = xstrdup(opt->jobkey);
	l->opt.token = xstrdup(opt->token);
	l->opt.workspace = xstrdup(opt->workspace);
	l->opt.log_dir = xstrdup(opt->log_dir);
	l->opt.device = opt->device ? xstrdup(opt->device) : NULL;
	l->opt.gpus = NULL;
	if (l->opt.max_concurrent == 0)
		l->opt.max_concurrent = 1;
	if (opt->gpus != NULL && opt->gpus->nslots > 0) {
		gpuslots_copy(&l->gpus, opt->gpus);
		l->gpu_busy = xcalloc(l->gpus.nslots, 1);
		if (l->opt.max_concurrent > l->gpus.nslots)
			l->opt.max_concurrent = l->gpus.nslots;
	}
	if (l->opt.tasks_per_worker == 0)
		l->opt.tasks_per_worker = 1;
	if (l->opt.chunk_bytes == 0)
		l->opt.chunk_bytes = 4u << 20;
	l->hooks = *hooks;
	l->env = inherit_env(l);
	TAILQ_INIT(&l->workers);
	TAILQ_INIT(&l->queue);
	TAILQ_INIT(&l->failing);
	l->listener = evconnlistener_new_bind(
	    base, accept_cb, l, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
	    1024, (struct sockaddr *)&sun, sizeof sun);
	if (l->listener == NULL) {
		ipc_error_set(err, IPC_E_IO, "%s: cannot listen: %s",
		              opt->socket_path, strerror(errno));
		launcher_free(l);
		return NULL;
	}
	l->sigchld = evsignal_new(base, SIGCHLD, sigchld_cb, l);
	if (l->sigchld == NULL || evsignal_add(l->sigchld, NULL) < 0)
		fatal("cannot watch SIGCHLD");
	l->next_inbound = evtimer_new(base, wire_next_inbound, l);
	l->spawn_retry = evtimer_new(base, spawn_retry_cb, l);
	l->report_failing = evtimer_new(base, report_failing_cb, l);
	if (l->next_inbound == NULL || l->spawn_retry == NULL ||
	    l->report_failing == NULL)
		fatal("out of memory");
	if (opt->fork_server)
		l->fs = fs_new(l);
	return l;
}

/* Queue a task at the tail (submitted) or the head (given back). */
static void
enqueue(struct launcher *l, uint64_t task_id, int64_t client_id, int head)
{
	struct queued_task *q = xcalloc(1, sizeof *q);
	q->task_id = task_id;
	q->client_id = client_id;
	if (head)
		TAILQ_INSERT_HEAD(&l->queue, q, entry);
	else
		TAILQ_INSERT_TAIL(&l->queue, q, entry);
	l->queued++;
}

void
launcher_submit(struct launcher *l, uint64_t task_id, int64_t client_id)
{
	if (l->stopping)
		return;
	enqueue(l, task_id, client_id, 0);
	launcher_schedule(l);
}

void
launcher_stop(struct launcher *l, int force)
{
	l->stopping = 1;
	struct queued_task *q;
	while ((q = pop_task(l)) != NULL)
		free(q);
	struct worker *w;
	TAILQ_FOREACH(w, &l->workers, entry)
	{
		if (force)
			worker_kill(w);
		else if (worker_idle(w))
			worker_shutdown(w);
		else if (w->conn != CONN_RETIRING)
			worker_terminate(w, "orchestrator stopping");
	}
	if (l->alive == 0 || force)
		fs_stop(l);
}

unsigned
launcher_alive(const struct launcher *l)
{
	return l->alive + (unsigned)fs_alive(l);
}

const struct launcher_stats *
launcher_stats(const struct launcher *l)
{
	return &l->stats;
}

void
launcher_worker_idle(struct launcher *l, struct worker *w)
{
	if (l->stopping) {
		worker_shutdown(w);
		return;
	}
	struct queued_task *q = pop_task(l);
	if (q == NULL)
		return;
	worker_assign(w, q->task_id);
	free(q);
}

void
launcher_worker_busy(struct launcher *l, struct worker *w)
{
	if (l->stopping || !l->opt.send_ahead || !worker_can_take_next(w))
		return;
	struct queued_task *q = pop_task(l);
	if (q == NULL)
		return;
	worker_send_next(w, q->task_id, q->client_id);
	free(q);
}

void
launcher_requeue(struct launcher *l, uint64_t task_id, int64_t client_id)
{
	if (!l->stopping)
		enqueue(l, task_id, client_id, 1);
}

void
launcher_worker_gone(struct launcher *l, struct worker *w)
{
	TAILQ_REMOVE(&l->workers, w, entry);
	/* Reaped: its GPU memory went with the process. */
	if (w->gpu_slot >= 0)
		l->gpu_busy[w->gpu_slot] = 0;
	pid_t pid = w->pid;
	log_debug("launcher: worker %ld finished after %u tasks", (long)pid,
	          w->tasks_done);
	worker_free(w);
	l->alive--;
	if (l->stopping && l->alive == 0)
		fs_stop(l);
	launcher_schedule(l);
	if (l->hooks.exited != NULL)
		l->hooks.exited(l->hooks.arg, pid);
}

void
launcher_task_failed(struct launcher *l, uint64_t task_id, const char *reason)
{
	if (l->stopping)
		return;
	log_debug("launcher: task %llu failed: %s", (unsigned long long)task_id,
	          reason);
	l->hooks.failed(l->hooks.arg, task_id, reason);
}

void
launcher_free(struct launcher *l)
{
	/* The server first: its children then come to us (subreaper) and
	 * are reaped below. */
	fs_free(l);
	struct worker *w;
	while ((w = TAILQ_FIRST(&l->workers)) != NULL) {
		if (w->proc != PROC_EXITED) {
			kill(-w->pid, SIGKILL);
			kill(w->pid, SIGKILL);
			while (waitpid(w->pid, NULL, 0) < 0 && errno == EINTR)
				;
		}
		TAILQ_REMOVE(&l->workers, w, entry);
		worker_free(w);
	}
	struct queued_task *q;
	while ((q = pop_task(l)) != NULL)
		free(q);
	while ((q = TAILQ_FIRST(&l->failing)) != NULL) {
		TAILQ_REMOVE(&l->failing, q, entry);
		free(q->reason);
		free(q);
	}
	if (l->listener != NULL)
		evconnlistener_free(l->listener);
	if (l->sigchld != NULL)
		event_free(l->sigchld);
	if (l->next_inbound != NULL)
		event_free(l->next_inbound);
	if (l->spawn_retry != NULL)
		event_free(l->spawn_retry);
	if (l->report_failing != NULL)
		event_free(l->report_failing);
	unlink(l->opt.socket_path);
	for (size_t i = 0; l->env != NULL && l->env[i] != NULL; i++)
		free(l->env[i]);
	free(l->env);
	for (size_t i = 0; l->argv != NULL && l->argv[i] != NULL; i++)
		free(l->argv[i]);
	free(l->argv);
	free((char *)l->opt.worker_path);
	free((char *)l->opt.socket_path);
	free((char *)l->opt.jobkey);
	free((char *)l->opt.token);
	free((char *)l->opt.workspace);
	free((char *)l->opt.log_dir);
	free((char *)l->opt.device);
	gpuslots_free(&l->gpus);
	free(l->gpu_busy);
	free(l);
}
