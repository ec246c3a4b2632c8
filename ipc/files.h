/* files.h: small filesystem helpers both sides use: directory creation,
 * whole-file reads, existence (atomic writes are atomicfile.h's). */
#ifndef COHORT_FILES_H
#define COHORT_FILES_H

#include <stddef.h>
#include <sys/types.h>

#include "error.h"

/* mkdir -p with the given mode for the directories it creates. */
int files_mkdirs(const char *path, mode_t mode, struct ipc_error *err);
/* Read a whole file into a NUL-terminated malloc'd buffer. */
int files_read_all(const char *path, char **data, size_t *len,
                   struct ipc_error *err);
/* True when path exists. */
int files_exist(const char *path);
/* The last non-empty line of a file (a log: what a program that failed
 * printed last), at most size - 1 bytes of it; "" when there is none. */
void files_last_line(const char *path, char *buf, size_t size);
/* rm -r path (not following symbolic links); the bytes of the regular files
 * removed. A missing path removes nothing. */
unsigned long long files_remove_tree(const char *path);

#endif
