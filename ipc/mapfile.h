/* mapfile.h: a whole file mapped read-only, as the data files every worker
 * shares (dataset caches, partitions) are read. */
#ifndef COHORT_MAPFILE_H
#define COHORT_MAPFILE_H

#include <stddef.h>

#include "error.h"

/* Map path read-only. A file shorter than min_size is IPC_E_TRUNCATED with a
 * message naming the file, its size, and `fix` (what the user should do). */
int mapfile_open(const char *path, size_t min_size, const char *fix, void **map,
                 size_t *size, struct ipc_error *err);

#endif
