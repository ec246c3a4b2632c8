/* shmcache.h: mappings of small segments kept across uses. Mapping a 400 KB
 * model (its page table filled at once) and unmapping it again cost as much
 * as reading it; a pool worker gets the same global model with every task
 * of a round (a new descriptor of the same memfd each time, and the same
 * memfd again next round where FedAvg recycles it). A cache finds a mapping
 * again by the segment's identity (device and inode). */
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
/* shm_segment_from_fd through the cache (fd is owned from here on): a
 * small segment (at most SHM_POPULATE_MAX bytes) mapped before with the same
 * access comes back without a new mapping; a new one is mapped and kept
 * (the least recently used mapping is dropped when the cache is full).
 * s->cached is set for kept mappings: shm_segment_close leaves them mapped.
 * Larger segments are mapped as shm_segment_from_fd does (SHM_LAZY matters
 * only for them: a small segment is mapped with its pages either way). */
int shm_cache_open(struct shm_cache *c, struct shm_segment *s, int fd,
                   const char *name, int want, int flags, size_t min_size,
                   struct ipc_error *err);
/* Unmap everything. */
void shm_cache_free(struct shm_cache *c);

#endif
