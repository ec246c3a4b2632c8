/* files.c: small filesystem helpers both sides use. */
#define _GNU_SOURCE /* nftw */
#include "files.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

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

void
files_last_line(const char *path, char *buf, size_t size)
{
	buf[0] = '\0';
	FILE *f = fopen(path, "r");
	if (f == NULL || size == 0) {
		if (f != NULL)
			fclose(f);
		return;
	}
	/* The tail is enough: a log may be long. */
	char tail[4096];
	long at = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : 0;
	at = at > (long)sizeof tail - 1 ? at - ((long)sizeof tail - 1) : 0;
	size_t n = fseek(f, at, SEEK_SET) == 0
	               ? fread(tail, 1, sizeof tail - 1, f)
	               : 0;
	fclose(f);
	while (n > 0 && (tail[n - 1] == '\n' || tail[n - 1] == '\r' ||
	                 tail[n - 1] == ' '))
		n--;
	tail[n] = '\0';
	char *line = strrchr(tail, '\n');
	line = line != NULL ? line + 1 : tail;
	size_t len = strlen(line) < size - 1 ? strlen(line) : size - 1;
	memcpy(buf, line, len);
	buf[len] = '\0';
}

/* Bytes removed by the files_remove_tree in progress (nftw has no
 * argument for its callback). */
static unsigned long long removed_bytes;

/* nftw callback: remove one entry, children first. */
static int
remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	if (type == FTW_F && S_ISREG(st->st_mode))
		removed_bytes += (unsigned long long)st->st_size;
	if (remove(path) < 0 && errno != ENOENT)
		log_warn("cannot remove %s: %s", path, strerror(errno));
	return 0;
}

unsigned long long
files_remove_tree(const char *path)
{
	removed_bytes = 0;
	nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	return removed_bytes;
}
