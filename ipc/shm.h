/* shm.h: the shared memory that carries tensor regions between the
 * orchestrator and its workers. A segment is a memfd: it has no name anyone
 * can open, squat or sweep, it goes with its last descriptor (nothing leaks
 * when every process is killed -9), and it is sealed against the attacks a
 * worker could otherwise make on the memory others read:
 *
 *   F_SEAL_SHRINK | F_SEAL_GROW  at creation: its size never changes, so no
 *                                mapping of it can SIGBUS;
 *   F_SEAL_FUTURE_WRITE          the global model, before any worker sees
 *                                it: only mappings that already exist (its
 *                                creator's) can write it;
 *   F_SEAL_WRITE                 an update, once its worker reported: the
 *                                kernel refuses the seal while anyone still
 *                                maps it writable, and afterwards nobody can
 *                                change it.
 *
 * Descriptors travel from the orchestrator to a worker with the task frame
 * (SCM_RIGHTS, frame.h); a reader checks the seals before mapping.
 *
 * Creation reserves the pages up front (or leaves them to a writer that
 * fills the segment with pwrite, which never zeroes them first) and maps
 * them all at once: a page fault per 4 KiB page costs more than the copy
 * itself on the virtual machines cohort runs on.
 *
 * A name that is an absolute file path ("/dir/file") makes a file instead,
 * unsealed, with the same calls: the stream transport keeps the global
 * model in the job's workspace. Any other name is the memfd's label, seen in
 * messages and in /proc/PID/fd ("memfd:cohort.<job>.g3"). */
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
	char name[256]; /* "cohort.<job>.g3", or a file path */
	int fd;         /* -1 when closed */
	void *addr;     /* mapping of the whole segment; NULL when unmapped */
	size_t size;    /* bytes of the segment */
	int writable;   /* mapped PROT_READ|PROT_WRITE */
	int lazy;       /* mapped without its pages (SHM_LAZY, large) */
	int cached;     /* the mapping belongs to a shm_cache (shmcache.h):
	                 * close leaves it mapped */
};

/* Create a new segment of size bytes sealed against resizing, reserve its
 * pages (IPC_E_SHM_NOSPACE when memory or the file system is short; a file
 * that exists is IPC_E_SHM_EXISTS) and map it read-write. On failure nothing
 * is left behind. */
int shm_segment_create(struct shm_segment *s, const char *name, size_t size,
                       struct ipc_error *err);
/* shm_segment_create, the segment's bytes copied from src (size bytes) with
 * write() before it is mapped: fresh pages filled that way are never zeroed
 * first, so this costs one copy where create + memcpy costs a page clearing
 * and a copy. */
int shm_segment_create_copy(struct shm_segment *s, const char *name,
                            size_t size, const void *src,
                            struct ipc_error *err);
/* A memfd of size bytes sealed against resizing, neither mapped nor
 * filled: an update region its worker fills (s->addr stays NULL). */
int shm_segment_create_empty(struct shm_segment *s, const char *name,
                             size_t size, struct ipc_error *err);

/* Write size bytes of src at the start of descriptor fd (of segment name)
 * with pwrite, in pieces: how a worker fills its update segment from the
 * global model without the kernel zeroing fresh pages first. */
int shm_fd_fill(int fd, const char *name, const void *src, size_t size,
                struct ipc_error *err);

/* Seal a memfd against every new writer (F_SEAL_FUTURE_WRITE): write(),
 * writable mappings and hole punching are refused from now on, while the
 * mappings that already exist keep writing. */
int shm_segment_seal_readonly(struct shm_segment *s, struct ipc_error *err);
/* Seal a memfd for good (F_SEAL_WRITE). IPC_E_SHM_SEALS when the kernel
 * refuses because some process still maps it writable. */
int shm_segment_seal_write(struct shm_segment *s, struct ipc_error *err);

/* shm_segment_map flags. */
enum {
	SHM_READ = 0,  /* map read-only, every page in place */
	SHM_WRITE = 1, /* map read-write */
	SHM_LAZY = 2,  /* leave large mappings unfaulted: the reader brings
	                * windows in (shm_segment_prefetch) and drops them
	                * (shm_segment_release) as it goes */
};

/* Seals a received segment must have: its size fixed (SHM_SEALED_SIZE), and
 * for a region only its creator writes, no new writers either. */
enum {
	SHM_SEALED_SIZE = 1,
	SHM_SEALED_READONLY = 2,
};

/* Take a descriptor received from a peer (fd is owned from here on, closed
 * on failure): check it is a memfd carrying the seals want names and at
 * least min_size bytes, and fill *st. */
int shm_fd_check(int fd, const char *name, int want, size_t min_size,
                 struct stat *st, struct ipc_error *err);
/* Map fd, segment name of size bytes, as flags say, into s; fd is owned
 * by s from here on (closed on failure). */
int shm_segment_map(struct shm_segment *s, const char *name, int fd,
                    size_t size, int flags, struct ipc_error *err);
/* shm_fd_check then shm_segment_map of the whole segment. */
int shm_segment_from_fd(struct shm_segment *s, int fd, const char *name,
                        int want, int flags, size_t min_size,
                        struct ipc_error *err);
/* Drop the mapping and keep the descriptor (idempotent). */
void shm_segment_unmap(struct shm_segment *s);
/* Unmap and close; idempotent and safe on a zeroed struct with fd -1. */
void shm_segment_close(struct shm_segment *s);

/* The file behind a file segment: remove it (gone already is no error); a
 * no-op for a memfd, which goes with its last descriptor. */
int shm_segment_unlink(const char *name, struct ipc_error *err);
/* Give segment s the name to: a file is renamed (atomically; to must not
 * exist), a memfd only relabelled. */
int shm_segment_rename(struct shm_segment *s, const char *to,
                       struct ipc_error *err);
/* Remove the files of directory dir whose names start with base, for the
 * prefix "/dir/base"; *removed (may be NULL) gets the count. */
int shm_remove_prefix(const char *prefix, unsigned *removed,
                      struct ipc_error *err);
/* Drop this process's resident pages for the whole pages inside
 * [offset, offset + len) of a mapping it no longer needs; the segment's
 * contents are kept. */
void shm_segment_release(struct shm_segment *s, size_t offset, size_t len);
/* Fault in [offset, offset + len) of a mapping in one call, before reading
 * it (a no-op where the kernel lacks MADV_POPULATE_READ). */
void shm_segment_prefetch(struct shm_segment *s, size_t offset, size_t len);

#endif
