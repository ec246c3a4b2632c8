/* dataset-impl.h: what the image caches (dataset.c) and the text caches
 * (textdata.c) share; private to worker/data. */
#ifndef COHORT_DATASET_IMPL_H
#define COHORT_DATASET_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"

#define TEXT_CACHE_MAGIC "COHTEXT\0"

/* mkdir -p of a cache directory, which must end a directory. */
int dataset_make_dirs(const char *path, struct ipc_error *err);
/* crc32 and size of a source file, from the cache directory's index when
 * the file is unchanged since it was last read. */
int dataset_source_crc(const char *cache_dir, const char *path, uint32_t *crc,
                       uint64_t *size, struct ipc_error *err);
/* Fill ds from a mapped text cache of size bytes (checked: sizes, offsets,
 * tokens inside the vocabulary, labels below the classes). On success ds
 * owns the map. */
int dataset_open_text(void *map, size_t size, const char *path,
                      struct dataset *ds, struct ipc_error *err);

#endif
