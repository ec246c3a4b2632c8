/* files.c: small filesystem helpers for the workspace. */
#include "files.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* fsync the directory holding path so a rename inside it is durable. */
static void
sync_parent(const char *path)
{
	char *copy = xstrdup(path);
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
	free(copy);
}

int
files_write_atomic(const char *path, const void *data, size_t len,
                   struct ipc_error *err)
{
	char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		ipc_error_set(err, IPC_E_IO, "%s: cannot create: %s", tmp,
		              strerror(errno));
		free(tmp);
		return -1;
	}
	if (write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		ipc_error_set(err, IPC_E_IO, "%s: cannot write: %s", tmp,
		              strerror(errno));
		close(fd);
		unlink(tmp);
		free(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		ipc_error_set(err, IPC_E_IO, "%s: cannot rename into place: %s",
		              path, strerror(errno));
		unlink(tmp);
		free(tmp);
		return -1;
	}
	free(tmp);
	sync_parent(path);
	return 0;
}

int
files_mkdirs(const char *path, mode_t mode, struct ipc_error *err)
{
	char *copy = xstrdup(path);
	for (char *p = copy + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		*p = '\0';
		if (mkdir(copy, mode) < 0 && errno != EEXIST) {
			ipc_error_set(err, IPC_E_IO,
			              "%s: cannot create directory: %s", copy,
			              strerror(errno));
			free(copy);
			return -1;
		}
		*p = saved;
		if (saved == '\0')
			break;
	}
	free(copy);
	return 0;
}

int
files_read_all(const char *path, char **data, size_t *len,
               struct ipc_error *err)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return ipc_error_set(err, IPC_E_IO, "%s: cannot open: %s", path,
		                     strerror(errno));
	size_t cap = 4096, have = 0;
	char *buf = xmalloc(cap);
	for (;;) {
		size_t n = fread(buf + have, 1, cap - have - 1, f);
		have += n;
		if (n == 0)
			break;
		if (cap - have - 1 == 0) {
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
	}
	int failed = ferror(f);
	fclose(f);
	if (failed) {
		free(buf);
		return ipc_error_set(err, IPC_E_IO, "%s: read error", path);
	}
	buf[have] = '\0';
	*data = buf;
	if (len != NULL)
		*len = have;
	return 0;
}

int
files_exist(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}
