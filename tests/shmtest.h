/* shmtest.h: helpers shared by the shared-memory tests. Segments are memfds
 * (labels, no names anyone can open) or files; these make memfd segments,
 * name files in the test's temporary directory, and look in /proc and
 * /dev/shm for what a test's segments left behind.
 *
 *   shmtest_label(tag, suffix)      "cohort.<tag><pid>.<suffix>"
 *   shmtest_memfd(label, size, b)   descriptor of a memfd sealed against
 *                                   resizing, every byte b, unmapped
 *   shmtest_memfd_readonly(...)     the same, also sealed against new
 *                                   writers (as the global model is)
 *   shmtest_path(name)              "<harness_tmpdir()>/<name>"
 *   shmtest_cleanup(base)           remove the temporary directory's files
 *                                   whose names start with base
 *   shmtest_fd_closed(fd)           fd is not open (EBADF)
 *   shmtest_memfd_fds(label)        this process's descriptors of it
 *   shmtest_memfd_maps(label, p)    its mappings (permissions p or any)
 *   shmtest_in_dev_shm(label)       some /dev/shm entry has it in its name
 */
#ifndef COHORT_SHMTEST_H
#define COHORT_SHMTEST_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "shm.h"

/* "cohort.<tag><pid>.<suffix>" in a static buffer (one of four, so a few
 * labels can be used in one call). */
static inline const char *
shmtest_label(const char *tag, const char *suffix)
{
	static char buf[4][128];
	static int which;
	which = (which + 1) % 4;
	snprintf(buf[which], sizeof buf[which], "cohort.%s%d.%s", tag,
	         (int)getpid(), suffix);
	return buf[which];
}

/* A memfd segment of size bytes, every byte fill, sealed against resizing
 * (and with readonly against new writers, F_SEAL_FUTURE_WRITE) and not
 * mapped: its descriptor (the caller's to close), or -1. */
static inline int
shmtest_memfd_sealed(const char *label, size_t size, unsigned char fill,
                     int readonly)
{
	struct shm_segment s;
	struct ipc_error err;
	if (shm_segment_create(&s, label, size, &err) != 0) {
		harness_fail(__FILE__, __LINE__, "creating %s: %s", label,
		             err.message);
		return -1;
	}
	memset(s.addr, fill, size);
	if (readonly && shm_segment_seal_readonly(&s, &err) != 0) {
		harness_fail(__FILE__, __LINE__, "sealing %s: %s", label,
		             err.message);
		shm_segment_close(&s);
		return -1;
	}
	shm_segment_unmap(&s);
	return s.fd;
}

/* shmtest_memfd_sealed against resizing only. */
static inline int
shmtest_memfd(const char *label, size_t size, unsigned char fill)
{
	return shmtest_memfd_sealed(label, size, fill, 0);
}

/* shmtest_memfd_sealed, also against new writers. */
static inline int
shmtest_memfd_readonly(const char *label, size_t size, unsigned char fill)
{
	return shmtest_memfd_sealed(label, size, fill, 1);
}

/* "<harness_tmpdir()>/<name>" in a static buffer (one of four). */
static inline const char *
shmtest_path(const char *name)
{
	static char buf[4][512];
	static int which;
	which = (which + 1) % 4;
	snprintf(buf[which], sizeof buf[which], "%s/%s", harness_tmpdir(),
	         name);
	return buf[which];
}

/* Remove the files of the temporary directory whose names start with base;
 * the count removed. */
static inline unsigned
shmtest_cleanup(const char *base)
{
	unsigned removed = 0;
	struct ipc_error err;
	shm_remove_prefix(shmtest_path(base), &removed, &err);
	return removed;
}

/* Whether descriptor fd is closed. */
static inline int
shmtest_fd_closed(int fd)
{
	errno = 0;
	return fcntl(fd, F_GETFD) == -1 && errno == EBADF;
}

/* Whether text (a /proc link or maps line) names memfd label: "memfd:"
 * followed by the label, then the end, a blank or a newline. */
static inline int
shmtest_names_memfd(const char *text, const char *label)
{
	size_t len = strlen(label);
	for (const char *p = text; (p = strstr(p, "memfd:")) != NULL; p++) {
		const char *q = p + 6;
		if (strncmp(q, label, len) == 0 &&
		    (q[len] == '\0' || q[len] == ' ' || q[len] == '\n'))
			return 1;
	}
	return 0;
}

/* How many of this process's descriptors are memfd label (-1 without
 * /proc). */
static inline int
shmtest_memfd_fds(const char *label)
{
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		return -1;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		char path[300], link[512];
		snprintf(path, sizeof path, "/proc/self/fd/%s", de->d_name);
		ssize_t len = readlink(path, link, sizeof link - 1);
		if (len <= 0)
			continue;
		link[len] = '\0';
		n += shmtest_names_memfd(link, label);
	}
	closedir(d);
	return n;
}

/* How many of this process's mappings are of memfd label, with
 * permissions perms ("r--s", "rw-s") or any when perms is NULL (-1 without
 * /proc). */
static inline int
shmtest_memfd_maps(const char *label, const char *perms)
{
	FILE *f = fopen("/proc/self/maps", "r");
	if (f == NULL)
		return -1;
	char line[1024];
	int n = 0;
	while (fgets(line, sizeof line, f) != NULL) {
		if (!shmtest_names_memfd(line, label))
			continue;
		char mode[8] = "";
		if (perms != NULL && (sscanf(line, "%*s %7s", mode) != 1 ||
		                      strcmp(mode, perms) != 0))
			continue;
		n++;
	}
	fclose(f);
	return n;
}

/* Whether an entry of /dev/shm has label in its name. */
static inline int
shmtest_in_dev_shm(const char *label)
{
	DIR *d = opendir("/dev/shm");
	if (d == NULL)
		return 0;
	int found = 0;
	struct dirent *de;
	while (!found && (de = readdir(d)) != NULL)
		found = strstr(de->d_name, label) != NULL;
	closedir(d);
	return found;
}

#endif
