/* init-run.c: one blocking session with the user's program before the
 * job's event loop exists: listen, spawn it, check its hello, send the
 * init task, take the model it answers with, check it and write it. */
#define _GNU_SOURCE /* struct ucred */
#include "init-run.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "files.h"
#include "safetensors.h"
#include "tensor.h"
#include "util.h"

extern char **environ;

/* Variables the program gets from us, replacing inherited ones. */
static const char *const init_env[] = {
    "COHORT_SOCKET=",    "COHORT_TOKEN=", "COHORT_CLIENT_ID=",   "COHORT_JOB=",
    "COHORT_WORKSPACE=", "COHORT_TASKS=", "COHORT_FORK_SERVER=",
};

static int
listen_on(const char *path, struct ipc_error *err)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof sun.sun_path)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "%s: socket path too long", path);
	strcpy(sun.sun_path, path);
	unlink(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof sun) != 0 ||
	    listen(fd, 4) != 0) {
		ipc_error_set(err, IPC_E_IO, "%s: cannot listen: %s", path,
		              strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int
spawn_program(const struct init_run *r, pid_t *pid, struct ipc_error *err)
{
	size_t n = 0;
	while (environ[n] != NULL)
		n++;
	char **env = xcalloc(n + ARRAY_LEN(init_env) + 1, sizeof *env);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		int ours = 0;
		for (size_t j = 0; j < ARRAY_LEN(init_env); j++)
			ours |= strncmp(environ[i], init_env[j],
			                strlen(init_env[j])) == 0;
		if (!ours)
			env[k++] = environ[i];
	}
	char *mine[ARRAY_LEN(init_env)] = {
	    xasprintf("COHORT_SOCKET=%s", r->socket_path),
	    xasprintf("COHORT_TOKEN=%s", r->token),
	    xasprintf("COHORT_CLIENT_ID=-1"),
	    xasprintf("COHORT_JOB=%s", r->jobkey),
	    xasprintf("COHORT_WORKSPACE=%s", r->workspace),
	    xasprintf("COHORT_TASKS=1"),
	    xasprintf("COHORT_FORK_SERVER=0"),
	};
	for (size_t j = 0; j < ARRAY_LEN(init_env); j++)
		env[k++] = mine[j];
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, r->log_path,
	                                 O_WRONLY | O_CREAT | O_APPEND, 0666);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	posix_spawnattr_t attr;
	posix_spawnattr_init(&attr);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
	int rc = posix_spawn(pid, r->program, &fa, &attr,
	                     (char *const *)r->argv, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	for (size_t j = 0; j < ARRAY_LEN(init_env); j++)
		free(mine[j]);
	free(env);
	if (rc != 0)
		return ipc_error_set(err, IPC_E_IO, "cannot run %s: %s",
		                     r->program, strerror(rc));
	return 0;
}

/* The program's connection within the deadline: the first one whose peer
 * is its process (anything else is refused). */
static int
accept_program(int lfd, pid_t pid, double deadline, int *reaped,
               struct ipc_error *err)
{
	for (;;) {
		double left = deadline - now_seconds();
		if (left <= 0)
			return ipc_error_set(err, IPC_E_IO,
			                     "it did not connect in time");
		struct pollfd p = {lfd, POLLIN, 0};
		/* Short waits: its exit is seen by waitpid between them. */
		int rc = poll(&p, 1, left > 0.1 ? 100 : (int)(left * 1000) + 1);
		if (rc < 0 && errno != EINTR)
			return ipc_error_set(err, IPC_E_IO, "poll: %s",
			                     strerror(errno));
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			*reaped = 1;
			return ipc_error_set(err, IPC_E_IO,
			                     "it exited with status %d before "
			                     "connecting",
			                     WIFEXITED(st)
			                         ? WEXITSTATUS(st)
			                         : 128 + WTERMSIG(st));
		}
		if (rc <= 0)
			continue;
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		struct ucred cred;
		socklen_t len = sizeof cred;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
		    cred.pid == pid)
			return fd;
		close(fd);
	}
}

/* A frame within the deadline (SO_RCVTIMEO). */
static int
recv_by(int fd, double deadline, struct msg *m, struct ipc_error *err)
{
	double left = deadline - now_seconds();
	if (left <= 0)
		left = 0.001;
	struct timeval tv = {(time_t)left,
	                     (suseconds_t)((left - (time_t)left) * 1e6)};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (msg_recv(fd, FRAME_MAX_DEFAULT, m, err) == 0)
		return 0;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		ipc_error_set(err, IPC_E_IO, "no answer in time");
	return -1;
}

/* The model of the result: its inline bytes, or its chunks. */
static int
take_model(int fd, struct msg_result *res, double deadline, void **data,
           struct ipc_error *err)
{
	struct params_ref *p = &res->params;
	if (p->where == PARAMS_INLINE) {
		*data = p->inline_data;
		p->inline_data = NULL;
		return 0;
	}
	if (p->where != PARAMS_STREAM)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "its result's params are neither inline "
		                     "nor streamed");
	uint8_t *buf = big_alloc(p->size);
	uint64_t have = 0;
	while (have < p->size) {
		struct msg m;
		if (recv_by(fd, deadline, &m, err) != 0) {
			big_free(buf, p->size);
			return -1;
		}
		int bad =
		    m.type != MSG_CHUNK || m.u.chunk.task_id != res->task_id ||
		    m.u.chunk.offset != have || m.u.chunk.len > p->size - have;
		if (!bad) {
			memcpy(buf + have, m.u.chunk.data, m.u.chunk.len);
			have += m.u.chunk.len;
		}
		msg_free(&m);
		if (bad) {
			big_free(buf, p->size);
			return ipc_error_set(
			    err, IPC_E_BAD_VALUE,
			    "expected the chunk at byte %llu of "
			    "its model",
			    (unsigned long long)have);
		}
	}
	/* safetensors_write and the checks read it like any region. */
	*data = xmalloc(p->size);
	memcpy(*data, buf, p->size);
	big_free(buf, p->size);
	return 0;
}

/* The session: hello, the init task, the model checked and written. */
static int
converse(const struct init_run *r, int fd, pid_t pid, double deadline,
         struct ipc_error *err)
{
	struct msg m;
	if (recv_by(fd, deadline, &m, err) != 0)
		return -1;
	int ok = m.type == MSG_HELLO &&
	         strcmp(m.u.hello.token, r->token) == 0 &&
	         m.u.hello.pid == pid && !m.u.hello.fork_server;
	msg_free(&m);
	if (!ok)
		return ipc_error_set(
		    err, IPC_E_BAD_VALUE,
		    "its first frame is not the hello of a "
		    "worker with this job's token and its pid");
	msg_init(&m, MSG_TASK);
	m.u.task.task_id = 0;
	m.u.task.kind = TASK_INIT;
	m.u.task.client_id = -1;
	for (size_t i = 0; i < r->config->count; i++) {
		const struct kv_entry *e = &r->config->entries[i];
		if (e->type == KV_STR)
			kv_set_str(&m.u.task.config, e->key, e->str);
		else if (e->type == KV_NUM)
			kv_set_num(&m.u.task.config, e->key, e->num);
		else
			kv_set_bool(&m.u.task.config, e->key, e->boolean);
	}
	int rc = msg_send(fd, &m, err);
	msg_free(&m);
	if (rc != 0 || recv_by(fd, deadline, &m, err) != 0)
		return -1;
	if (m.type == MSG_ERROR) {
		ipc_error_set(err, IPC_E_BAD_VALUE, "%s: %s", m.u.error.code,
		              m.u.error.message);
		msg_free(&m);
		return -1;
	}
	if (m.type != MSG_RESULT || m.u.result.params.where == PARAMS_NONE) {
		msg_free(&m);
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "it answered the init task without its "
		                     "model's tensors (cohort.send(params) of "
		                     "every tensor, by name)");
	}
	void *data = NULL;
	struct msg_result *res = &m.u.result;
	rc = take_model(fd, res, deadline, &data, err);
	if (rc == 0 && res->params.manifest.count == 0)
		rc = ipc_error_set(err, IPC_E_BAD_VALUE,
		                   "its model holds no "
		                   "tensor");
	if (rc == 0)
		rc = tensor_region_check_finite(&res->params.manifest, data,
		                                err);
	if (rc == 0) {
		struct st_metadata meta = {0};
		st_metadata_set(&meta, "format", "pt");
		st_metadata_set(&meta, "cohort.model", "custom");
		rc = safetensors_write(r->out_path, &res->params.manifest, data,
		                       &meta, err);
		st_metadata_free(&meta);
	}
	free(data);
	msg_free(&m);
	return rc;
}

int
init_run(const struct init_run *r, struct ipc_error *err)
{
	int lfd = listen_on(r->socket_path, err);
	if (lfd < 0)
		return -1;
	pid_t pid;
	if (spawn_program(r, &pid, err) != 0) {
		close(lfd);
		unlink(r->socket_path);
		return -1;
	}
	double deadline = now_seconds() + r->timeout_s;
	int reaped = 0;
	int fd = accept_program(lfd, pid, deadline, &reaped, err);
	close(lfd);
	unlink(r->socket_path);
	int rc = fd < 0 ? -1 : converse(r, fd, pid, deadline, err);
	if (fd >= 0)
		close(fd);
	/* It exits after its one task; a program that lingers is killed
	 * after a grace second. */
	int status = 0;
	for (int i = 0; !reaped && i < 100; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			reaped = 1;
			break;
		}
		usleep(10000);
	}
	if (!reaped) {
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	} else {
		kill(-pid, SIGKILL);
	}
	if (rc != 0) {
		char line[300];
		files_last_line(r->log_path, line, sizeof line);
		ipc_error_prefix(err,
		                 "the initial model from %s: ", r->program);
		size_t n = strlen(err->message);
		snprintf(err->message + n, sizeof err->message - n,
		         "%s%s%s (log %s)", line[0] ? "; its log ends \"" : "",
		         line, line[0] ? "\"" : "", r->log_path);
	}
	return rc;
}
