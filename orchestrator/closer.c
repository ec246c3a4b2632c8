/* closer.c: a thread that closes large segments for the event loop. */
#define _GNU_SOURCE /* pipe2 */
#include "closer.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* Close every descriptor that comes through the pipe until it closes. */
static void *
closer_main(void *arg)
{
	struct closer *c = arg;
	int fd;
	for (;;) {
		ssize_t n = read(c->pipe[0], &fd, sizeof fd);
		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof fd)
			break;
		close(fd);
	}
	return NULL;
}

int
closer_start(struct closer *c, struct ipc_error *err)
{
	memset(c, 0, sizeof *c);
	c->pipe[0] = c->pipe[1] = -1;
	if (pipe2(c->pipe, O_CLOEXEC) != 0)
		return ipc_error_set(err, IPC_E_IO, "pipe: %s",
		                     strerror(errno));
	int rc = pthread_create(&c->thread, NULL, closer_main, c);
	if (rc != 0) {
		close(c->pipe[0]);
		close(c->pipe[1]);
		c->pipe[0] = c->pipe[1] = -1;
		return ipc_error_set(err, IPC_E_IO, "pthread_create: %s",
		                     strerror(rc));
	}
	c->running = 1;
	return 0;
}

void
closer_close(struct closer *c, struct shm_segment *s)
{
	if (!c->running || s->fd < 0 || s->size <= SHM_POPULATE_MAX) {
		shm_segment_close(s);
		return;
	}
	int fd = s->fd;
	shm_segment_unmap(s);
	s->fd = -1;
	s->size = 0;
	/* A pipe write of at most PIPE_BUF bytes is whole or nothing. */
	ssize_t n;
	do
		n = write(c->pipe[1], &fd, sizeof fd);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof fd)
		close(fd);
}

void
closer_stop(struct closer *c)
{
	if (!c->running)
		return;
	close(c->pipe[1]);
	pthread_join(c->thread, NULL);
	close(c->pipe[0]);
	c->running = 0;
	c->pipe[0] = c->pipe[1] = -1;
}
