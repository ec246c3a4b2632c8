/* shm.h: POSIX shared-memory segments that carry tensor regions between the
 * orchestrator and its workers (/cohort.<job>.g<round>, /cohort.<job>.u<task>).
 * Creation reserves every page up front so a full /dev/shm is an error at
 * creation, never a SIGBUS later, and maps them all at once: the creator
 * writes the whole segment, and a page fault per 4 KiB page costs more than
 * the copy itself on the virtual machines cohort runs on.
 *
 * A name with a second '/' is an absolute file path instead, and the same
 * calls make, map, rename and remove that file: the stream transport keeps
 * the global model in the job's workspace, off /dev/shm. Names that come
 * from the wire are checked to be POSIX names before they get here
 * (message.c). */
#ifndef COHORT_SHM_H
#define COHORT_SHM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "error.h"

/* Segments up to this size count as small: a lazy mapping of one is
 * pre-faulted all the same, and a shm_cache keeps their mappings. */
#define SHM_POPULATE_MAX (16u << 20)

struct shm_segment {
	char name[256]; /* "/cohort.<job>.g3" */
	int fd;         /* -1 when closed */
	void *addr;     /* mapping of the whole segment; NULL when closed */
	size_t size;    /* bytes mapped (the segment's size) */
	int writable;   /* mapped PROT_READ|PROT_WRITE */
	int lazy;       /* mapped without its pages (SHM_LAZY, large) */
	int cached;     /* the mapping belongs to a shm_cache (shmcache.h):
	                 * close leaves it mapped */
};

/* Create a new segment of size bytes (exclusive; IPC_E_SHM_EXISTS if the name
 * is taken), reserve its pages (IPC_E_SHM_NOSPACE when /dev/shm is too small)
 * and map it read-write. On failure nothing is left behind. */
int shm_segment_create(struct shm_segment *s, const char *name, size_t size,
                       struct ipc_error *err);
/* shm_segment_create, the segment's bytes copied from src (size bytes) with
 * write() before it is mapped: fresh tmpfs pages filled that way are never
 * zeroed first, so this costs one copy where create + memcpy costs a page
 * clearing and a copy. */
int shm_segment_create_copy(struct shm_segment *s, const char *name,
                            size_t size, const void *src,
                            struct ipc_error *err);

/* shm_segment_open flags. */
enum {
	SHM_READ = 0,  /* map read-only, every page in place */
	SHM_WRITE = 1, /* map read-write */
	SHM_LAZY = 2,  /* leave large mappings unfaulted: the reader brings
	                * windows in (shm_segment_prefetch) and drops them
	                * (shm_segment_release) as it goes */
};

/* Map an existing segment (flags: SHM_READ or SHM_WRITE, | SHM_LAZY);
 * IPC_E_SHM_NOENT if it does not exist, IPC_E_SHM_SIZE if it is smaller than
 * min_size. */
int shm_segment_open(struct shm_segment *s, const char *name, int flags,
                     size_t min_size, struct ipc_error *err);
/* Open segment name (read-write or read-only) and check it holds at least
 * min_size bytes: *fd and *st on success (what shm_segment_open and
 * shm_cache_open map). */
int shm_open_checked(const char *name, int writable, size_t min_size, int *fd,
                     struct stat *st, struct ipc_error *err);
/* Map fd, segment name of size bytes opened as flags say, into s (what
 * shm_segment_open does once the segment is open); fd is closed on
 * failure. */
int shm_segment_map(struct shm_segment *s, const char *name, int fd,
                    size_t size, int flags, struct ipc_error *err);
/* Unmap and close; idempotent and safe on a zeroed struct. */
void shm_segment_close(struct shm_segment *s);
/* Remove a segment's name; a segment that is already gone is not an error. */
int shm_segment_unlink(const char *name, struct ipc_error *err);
/* Give segment from the name to (atomically; to must not exist):
 * IPC_E_SHM_NOENT when from is gone (somebody else took it). */
int shm_segment_rename(const char *from, const char *to, struct ipc_error *err);
/* The update segment of a task, "/cohort.<job>.u<task_id>", into buf. */
void shm_update_name(char *buf, size_t size, const char *job, uint64_t task_id);
/* Whether segment name exists: 1 with its size in *size, else 0. */
int shm_segment_size(const char *name, uint64_t *size);
/* Unlink every segment whose name starts with prefix ("cohort.<job>." or
 * "/cohort.<job>.", or a file path prefix "/dir/global.g": the files of
 * /dir starting with "global.g"); *removed (may be NULL) gets the count. */
int shm_remove_prefix(const char *prefix, unsigned *removed,
                      struct ipc_error *err);
/* Bytes available to unprivileged users in /dev/shm. */
int shm_free_bytes(uint64_t *free_bytes, struct ipc_error *err);
/* Drop this process's resident pages for the whole pages inside
 * [offset, offset + len) of a mapping it no longer needs; the segment's
 * contents are kept. */
void shm_segment_release(struct shm_segment *s, size_t offset, size_t len);
/* Fault in [offset, offset + len) of a mapping in one call, before reading
 * it (a no-op where the kernel lacks MADV_POPULATE_READ). */
void shm_segment_prefetch(struct shm_segment *s, size_t offset, size_t len);

#endif
