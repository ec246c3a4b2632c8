/* forkserver.c: a C worker program as a fork server (launch mode
 * fork-server, docs/protocol.md "Fork server"): started once, it forks a
 * child per fork frame; the child returns from forkserver_run and serves
 * its task as a spawned worker would, without an exec or a dynamic
 * loader's start. The server reaps its children and reports each one's
 * wait status. */
#define _GNU_SOURCE
#include "forkserver.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "message.h"
#include "util.h"

/* The frames a fork server gets are small. */
#define FORK_FRAME_MAX (64u << 10)

static int
send_or_die(int sock, const struct msg *m)
{
	struct ipc_error err;
	if (msg_send(sock, m, &err) != 0) {
		log_error("fork server: %s", err.message);
		_exit(1);
	}
	return 0;
}

/* Reap every child that has ended (its group killed first, while its pid
 * is still its own) and report each. */
static void
reap_children(int sock)
{
	for (;;) {
		siginfo_t info = {0};
		if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 ||
		    info.si_pid == 0)
			return;
		pid_t pid = info.si_pid;
		kill(-pid, SIGKILL);
		int status;
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		struct msg m;
		msg_init(&m, MSG_EXITED);
		m.u.exited.pid = (int32_t)pid;
		m.u.exited.status = status;
		send_or_die(sock, &m);
	}
}

/* In the child: the server's descriptors closed, signals as a spawned
 * worker has them, its output to its log, a process group of its own and
 * the environment the fork frame names. */
static void
become_child(int sock, int sigfd, const sigset_t *old, int logfd,
             const struct kv_list *env)
{
	close(sock);
	close(sigfd);
	signal(SIGCHLD, SIG_DFL);
	sigprocmask(SIG_SETMASK, old, NULL);
	dup2(logfd, 1);
	dup2(logfd, 2);
	close(logfd);
	setpgid(0, 0);
	for (size_t i = 0; i < env->count; i++)
		setenv(env->entries[i].key, env->entries[i].str, 1);
	unsetenv("COHORT_FORK_SERVER");
}

int
forkserver_run(const char *socket_path, const char *token)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(socket_path) >= sizeof addr.sun_path) {
		log_error("fork server: socket path too long: %s", socket_path);
		return -1;
	}
	strcpy(addr.sun_path, socket_path);
	int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0 ||
	    connect(sock, (struct sockaddr *)&addr, sizeof addr) != 0) {
		log_error("fork server: connect %s: %s", socket_path,
		          strerror(errno));
		return -1;
	}
	sigset_t chld, old;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &old);
	int sigfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sigfd < 0) {
		log_error("fork server: signalfd: %s", strerror(errno));
		return -1;
	}
	struct msg hello;
	msg_init(&hello, MSG_HELLO);
	snprintf(hello.u.hello.token, sizeof hello.u.hello.token, "%s", token);
	hello.u.hello.client_id = -1;
	hello.u.hello.pid = (int32_t)getpid();
	snprintf(hello.u.hello.device, sizeof hello.u.hello.device, "cpu");
	hello.u.hello.fork_server = 1;
	send_or_die(sock, &hello);

	struct frame_fds fds;
	frame_fds_init(&fds);
	for (;;) {
		struct pollfd p[2] = {{sock, POLLIN, 0}, {sigfd, POLLIN, 0}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("fork server: poll: %s", strerror(errno));
			_exit(1);
		}
		if (p[1].revents) {
			struct signalfd_siginfo si;
			while (read(sigfd, &si, sizeof si) == sizeof si)
				;
			reap_children(sock);
		}
		if (!p[0].revents)
			continue;
		struct msg m;
		struct ipc_error err;
		frame_fds_close(&fds);
		if (msg_recv_fds(sock, FORK_FRAME_MAX, &m, &fds, &err) != 0) {
			/* The end of the socket: the job is over. */
			if (err.code != IPC_E_CLOSED)
				log_error("fork server: %s", err.message);
			_exit(err.code == IPC_E_CLOSED ? 0 : 1);
		}
		if (m.type != MSG_FORK) {
			log_error("fork server: unexpected %s frame",
			          msg_type_name(m.type));
			_exit(1);
		}
		int logfd = frame_fds_take(&fds, 0);
		if (logfd < 0) {
			log_error("fork server: a fork frame without its log");
			_exit(1);
		}
		pid_t pid = fork();
		if (pid == 0) {
			become_child(sock, sigfd, &old, logfd, &m.u.fork.env);
			msg_free(&m);
			frame_fds_close(&fds);
			return 0;
		}
		close(logfd);
		struct msg reply;
		if (pid < 0) {
			msg_init(&reply, MSG_ERROR);
			reply.u.error.task_id = m.u.fork.fork_id;
			reply.u.error.code = xstrdup("fork");
			reply.u.error.message =
			    xasprintf("fork: %s", strerror(errno));
		} else {
			msg_init(&reply, MSG_FORKED);
			reply.u.forked.fork_id = m.u.fork.fork_id;
			reply.u.forked.pid = (int32_t)pid;
		}
		send_or_die(sock, &reply);
		msg_free(&reply);
		msg_free(&m);
	}
}
