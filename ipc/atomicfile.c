/* atomicfile.c: write-to-temporary, fsync, rename. */
#include "atomicfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* fsync the directory holding path so the rename in it is durable. */
static int
sync_parent(const char *path, struct ipc_error *err)
{
	char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash != NULL)
		*slash = '\0';
	const char *d = slash ? dir : ".";
	int fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;
	if (fd < 0 || fsync(fd) != 0)
		rc = ipc_error_set(err, IPC_E_IO, "fsync directory %s: %s", d,
		                   strerror(errno));
	if (fd >= 0)
		close(fd);
	free(dir);
	return rc;
}

/* The process's umask, read without changing it (umask(2) can only set
 * it, and setting it twice races other threads creating files). */
static mode_t
current_umask(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[128];
	unsigned mask = 022;
	while (f != NULL && fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "Umask: %o", &mask) == 1)
			break;
	if (f != NULL)
		fclose(f);
	return (mode_t)mask;
}

int
atomicfile_write(const char *path, atomicfile_fill_fn fill, const void *arg,
                 struct ipc_error *err)
{
	char *tmp = xasprintf("%s.tmp.XXXXXX", path);
	int fd = mkstemp(tmp);
	if (fd >= 0)
		(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	if (fd < 0) {
		ipc_error_set(err, IPC_E_IO, "cannot create %s: %s", tmp,
		              strerror(errno));
		free(tmp);
		ipc_error_prefix(err, "%s: ", path);
		return -1;
	}
	int rc = fill(fd, arg, err);
	/* mkstemp made it 0600: give it the mode a plain creat would. */
	if (rc == 0 &&
	    (fchmod(fd, 0666 & ~current_umask()) != 0 || fsync(fd) != 0))
		rc = ipc_error_set(err, IPC_E_IO, "cannot write %s: %s", tmp,
		                   strerror(errno));
	if (close(fd) != 0 && rc == 0)
		rc = ipc_error_set(err, IPC_E_IO, "cannot write %s: %s", tmp,
		                   strerror(errno));
	if (rc == 0 && rename(tmp, path) != 0)
		rc =
		    ipc_error_set(err, IPC_E_IO, "cannot rename %s over it: %s",
		                  tmp, strerror(errno));
	if (rc != 0)
		unlink(tmp);
	else
		rc = sync_parent(path, err);
	free(tmp);
	if (rc != 0)
		ipc_error_prefix(err, "%s: ", path);
	return rc;
}

struct buffer {
	const void *data;
	size_t len;
};

/* Write a buffer to fd. */
static int
fill_buffer(int fd, const void *arg, struct ipc_error *err)
{
	const struct buffer *b = arg;
	if (write_all(fd, b->data, b->len) != 0)
		return ipc_error_set(err, IPC_E_IO, "write: %s",
		                     strerror(errno));
	return 0;
}

int
atomicfile_write_buffer(const char *path, const void *data, size_t len,
                        struct ipc_error *err)
{
	struct buffer b = {data, len};
	return atomicfile_write(path, fill_buffer, &b, err);
}
