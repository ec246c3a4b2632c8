/* atomicfile.h: files replaced all at once. The content goes to a temporary
 * file beside the target, is fsync'd, renamed over the target and the
 * directory fsync'd, so a reader (or a crash) sees the old file or the new
 * one, never a mix; on any failure the old file is left untouched. */
#ifndef COHORT_ATOMICFILE_H
#define COHORT_ATOMICFILE_H

#include <stddef.h>

#include "error.h"

/* fill writes the content through fd; on failure it fills err and
 * returns -1. The file ends with mode 0644. */
typedef int (*atomicfile_fill_fn)(int fd, const void *arg,
                                  struct ipc_error *err);

/* Replace path with what fill writes. Errors are prefixed with path. */
int atomicfile_write(const char *path, atomicfile_fill_fn fill, const void *arg,
                     struct ipc_error *err);
/* Replace path with len bytes of data. */
int atomicfile_write_buffer(const char *path, const void *data, size_t len,
                            struct ipc_error *err);

#endif
