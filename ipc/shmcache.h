/* shmcache.h: mappings of small segments kept across uses. Mapping a 400 KB
 * update (its page table filled at once) and unmapping it again cost the
 * orchestrator as much as checking and folding it, once per task; a pool
 * worker paid the same for the global model and its update. Segments come
 * back: the global model under each round's name (FedAvg renames it), spare
 * update segments under each task's name (spares.h). A cache finds a mapping
 * again by the segment's identity (device and inode), whatever its name. */
#ifndef COHORT_SHMCACHE_H
#define COHORT_SHMCACHE_H

#include <stdint.h>
#include <sys/types.h>

#include "shm.h"

struct shm_cache_entry {
	dev_t dev;
	ino_t ino;
	size_t size;
	int writable;
	void *addr;
	uint64_t used; /* clock of the last use, for eviction */
};

struct shm_cache {
	struct shm_cache_entry *e;
	unsigned n, max;
	uint64_t clock;
};

/* A cache of at most max mappings (0: every open maps anew). */
void shm_cache_init(struct shm_cache *c, unsigned max);
/* shm_segment_open through the cache: a small segment (at most
 * SHM_POPULATE_MAX bytes) mapped before with the same access comes back
 * without a new mapping; a new one is mapped and kept (the least recently
 * used mapping is dropped when the cache is full). s->cached is set for
 * kept mappings: shm_segment_close leaves them mapped. Larger segments are
 * opened as shm_segment_open does (SHM_LAZY matters only for them: a small
 * segment is mapped with its pages either way). */
int shm_cache_open(struct shm_cache *c, struct shm_segment *s, const char *name,
                   int flags, size_t min_size, struct ipc_error *err);
/* Hand a segment this process created (shm_segment_create*) to the cache,
 * so that a later open of it finds its mapping; a no-op for large ones. */
void shm_cache_adopt(struct shm_cache *c, struct shm_segment *s);
/* Unmap everything. */
void shm_cache_free(struct shm_cache *c);

#endif
