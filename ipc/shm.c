/* shm.c: creating, sealing, mapping and removing shared-memory segments. */
#define _GNU_SOURCE /* renameat2, memfd_create, F_ADD_SEALS */
#include "shm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U /* Linux 6.3 */
#endif

/* A memfd's label is at most this long (the kernel's limit is 249). */
#define LABEL_MAX 240

/* Whether a (checked) segment name is a file path rather than a memfd's
 * label. */
static int
is_path(const char *name)
{
	return name[0] == '/';
}

/* Check a segment name: a label of 1..LABEL_MAX bytes without '/', or an
 * absolute file path of at most 255 bytes. */
static int
check_name(const char *name, struct ipc_error *err)
{
	size_t len = name ? strnlen(name, 256) : 0;
	int ok = len > 0 && len <= 255 &&
	         (is_path(name) ? len >= 2 && name[len - 1] != '/'
	                        : len <= LABEL_MAX && !strchr(name, '/'));
	if (!ok)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "segment name '%.64s' is invalid: it must "
		                     "be a label of 1 to %d characters without "
		                     "'/' or an absolute file path",
		                     name ? name : "(null)", LABEL_MAX);
	return 0;
}

/* A new segment's descriptor: an exclusive file, or a sealable memfd. */
static int
open_new(const char *name)
{
	if (is_path(name))
		return open(name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
	unsigned flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
	int fd = memfd_create(name, flags | MFD_NOEXEC_SEAL);
	if (fd < 0 && errno == EINVAL)
		fd = memfd_create(name, flags);
	return fd;
}

/* Remove a new segment that failed: its file, if it is one. */
static void
discard(const char *name, int fd)
{
	close(fd);
	if (is_path(name))
		unlink(name);
}

/* Fill err with a "no room for the segment" message naming the size and
 * the fix. */
static int
nospace_error(const char *name, size_t size, int errnum, struct ipc_error *err)
{
	if (is_path(name))
		return ipc_error_set(err, IPC_E_SHM_NOSPACE,
		                     "cannot reserve %zu bytes for %s (%s): "
		                     "free space on its file system",
		                     size, name, strerror(errnum));
	return ipc_error_set(err, IPC_E_SHM_NOSPACE,
	                     "cannot reserve %zu bytes of shared memory for "
	                     "%s (%s): free memory, or run fewer workers at "
	                     "once (launcher.max_concurrent)",
	                     size, name, strerror(errnum));
}

/* Segments are mapped with their pages in place: one call instead of a
 * fault per page (a third of the orchestrator's CPU with 1,000 small clients
 * per round; most of a GPT-2-large round). A lazy mapping of a large segment
 * is left unfaulted so that its reader can bring in and drop windows. */
static int
populate(int flags, size_t size)
{
	return (flags & SHM_LAZY) && size > SHM_POPULATE_MAX ? 0 : MAP_POPULATE;
}

/* Write size bytes of src at the start of fd, in pieces. */
int
shm_fd_fill(int fd, const char *name, const void *src, size_t size,
            struct ipc_error *err)
{
	const size_t piece = 8u << 20;
	for (size_t off = 0; off < size;) {
		size_t len = size - off < piece ? size - off : piece;
		ssize_t w =
		    pwrite(fd, (const char *)src + off, len, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = w < 0 ? errno : EIO;
			if (e == ENOSPC)
				return nospace_error(name, size, e, err);
			return ipc_error_set(err, IPC_E_IO,
			                     "writing %zu bytes into %s: %s",
			                     size, name, strerror(e));
		}
		off += (size_t)w;
	}
	return 0;
}

/* How create() prepares a new segment's pages. */
enum fill { FILL_RESERVE, FILL_COPY, FILL_NONE };

/* Create a new segment: size it, seal its size (memfd), reserve its pages
 * or fill them from src, and map it (unless fill is FILL_NONE). */
static int
create(struct shm_segment *s, const char *name, size_t size, const void *src,
       enum fill fill, struct ipc_error *err)
{
	memset(s, 0, sizeof *s);
	s->fd = -1;
	if (check_name(name, err) != 0)
		return -1;
	if (size == 0)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "shared-memory segment %s: size 0 is not "
		                     "allowed",
		                     name);
	if (size > (size_t)INT64_MAX)
		return nospace_error(name, size, EFBIG, err);
	int fd = open_new(name);
	if (fd < 0) {
		if (errno == EEXIST)
			return ipc_error_set(err, IPC_E_SHM_EXISTS,
			                     "%s already exists (a stale job? "
			                     "remove it)",
			                     name);
		if (errno == ENOMEM || errno == EMFILE || errno == ENFILE)
			return nospace_error(name, size, errno, err);
		return ipc_error_set(err, IPC_E_IO, "creating %s: %s", name,
		                     strerror(errno));
	}
	int rc;
	if (ftruncate(fd, (off_t)size) != 0) {
		int e = errno;
		if (e == EFBIG || e == ENOSPC || e == ENOMEM)
			nospace_error(name, size, e, err);
		else
			ipc_error_set(err, IPC_E_IO, "ftruncate %s to %zu: %s",
			              name, size, strerror(e));
		goto fail;
	}
	if (!is_path(name) &&
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) {
		ipc_error_set(err, IPC_E_IO, "sealing %s: %s", name,
		              strerror(errno));
		goto fail;
	}
	if (fill == FILL_RESERVE &&
	    (rc = posix_fallocate(fd, 0, (off_t)size)) != 0) {
		if (rc == ENOSPC || rc == EFBIG || rc == ENOMEM)
			nospace_error(name, size, rc, err);
		else
			ipc_error_set(err, IPC_E_IO,
			              "posix_fallocate %s (%zu bytes): %s",
			              name, size, strerror(rc));
		goto fail;
	}
	if (fill == FILL_COPY && shm_fd_fill(fd, name, src, size, err) != 0)
		goto fail;
	if (fill == FILL_NONE) {
		snprintf(s->name, sizeof s->name, "%s", name);
		s->fd = fd;
		s->size = size;
		return 0;
	}
	if (shm_segment_map(s, name, fd, size, SHM_WRITE, err) != 0) {
		if (is_path(name))
			unlink(name); /* fd is closed */
		return -1;
	}
	return 0;

fail:
	discard(name, fd);
	return -1;
}

int
shm_segment_create(struct shm_segment *s, const char *name, size_t size,
                   struct ipc_error *err)
{
	return create(s, name, size, NULL, FILL_RESERVE, err);
}

int
shm_segment_create_copy(struct shm_segment *s, const char *name, size_t size,
                        const void *src, struct ipc_error *err)
{
	return create(s, name, size, src, FILL_COPY, err);
}

int
shm_segment_create_empty(struct shm_segment *s, const char *name, size_t size,
                         struct ipc_error *err)
{
	if (name != NULL && is_path(name))
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "%s: an empty segment is a memfd, not a "
		                     "file",
		                     name);
	return create(s, name, size, NULL, FILL_NONE, err);
}

/* Add seals to s's memfd. */
static int
add_seals(struct shm_segment *s, int seals, const char *what,
          struct ipc_error *err)
{
	if (s->fd < 0 || is_path(s->name))
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "%s: only an open memfd can be sealed",
		                     s->name);
	if (fcntl(s->fd, F_ADD_SEALS, seals) == 0)
		return 0;
	if (errno == EBUSY)
		return ipc_error_set(
		    err, IPC_E_SHM_SEALS,
		    "%s cannot be sealed %s: a process still "
		    "maps it writable (a worker must unmap its "
		    "update before it sends its result)",
		    s->name, what);
	return ipc_error_set(err, IPC_E_IO, "sealing %s %s: %s", s->name, what,
	                     strerror(errno));
}

int
shm_segment_seal_readonly(struct shm_segment *s, struct ipc_error *err)
{
	return add_seals(s, F_SEAL_FUTURE_WRITE, "read-only", err);
}

int
shm_segment_seal_write(struct shm_segment *s, struct ipc_error *err)
{
	return add_seals(s, F_SEAL_WRITE, "against writes", err);
}

int
shm_fd_check(int fd, const char *name, int want, size_t min_size,
             struct stat *st, struct ipc_error *err)
{
	int seals = fcntl(fd, F_GET_SEALS);
	int need = F_SEAL_SHRINK | F_SEAL_GROW;
	if (fstat(fd, st) != 0) {
		ipc_error_set(err, IPC_E_IO, "fstat %s: %s", name,
		              strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st->st_mode) || seals < 0 || (seals & need) != need) {
		ipc_error_set(err, IPC_E_SHM_SEALS,
		              "%s is not a memfd sealed against resizing "
		              "(seals %#x)",
		              name, seals < 0 ? 0 : seals);
		goto fail;
	}
	if ((want & SHM_SEALED_READONLY) &&
	    !(seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE))) {
		ipc_error_set(err, IPC_E_SHM_SEALS,
		              "%s is not sealed against writes (seals %#x)",
		              name, seals);
		goto fail;
	}
	if (st->st_size <= 0 || (uint64_t)st->st_size < min_size) {
		ipc_error_set(err, IPC_E_SHM_SIZE,
		              "shared-memory segment %s holds %jd bytes but "
		              "at least %zu are expected",
		              name, (intmax_t)st->st_size,
		              min_size ? min_size : 1);
		goto fail;
	}
	return 0;
fail:
	close(fd);
	return -1;
}

/* Map an open segment into s. */
int
shm_segment_map(struct shm_segment *s, const char *name, int fd, size_t size,
                int flags, struct ipc_error *err)
{
	int writable = (flags & SHM_WRITE) != 0;
	int prot = writable ? PROT_READ | PROT_WRITE : PROT_READ;
	int pop = populate(flags, size);
	void *addr = mmap(NULL, size, prot, MAP_SHARED | pop, fd, 0);
	if (addr == MAP_FAILED) {
		ipc_error_set(err, IPC_E_IO, "mmap %s (%zu bytes): %s", name,
		              size, strerror(errno));
		close(fd);
		return -1;
	}
	memset(s, 0, sizeof *s);
	snprintf(s->name, sizeof s->name, "%s", name);
	s->fd = fd;
	s->addr = addr;
	s->size = size;
	s->writable = writable;
	s->lazy = pop == 0;
	return 0;
}

int
shm_segment_from_fd(struct shm_segment *s, int fd, const char *name, int want,
                    int flags, size_t min_size, struct ipc_error *err)
{
	memset(s, 0, sizeof *s);
	s->fd = -1;
	struct stat st;
	if (shm_fd_check(fd, name, want, min_size, &st, err) != 0)
		return -1;
	return shm_segment_map(s, name, fd, (size_t)st.st_size, flags, err);
}

void
shm_segment_unmap(struct shm_segment *s)
{
	if (s->addr != NULL && !s->cached)
		munmap(s->addr, s->size);
	s->addr = NULL;
	s->cached = 0;
	s->writable = 0;
	s->lazy = 0;
}

/* Unmap and close. */
void
shm_segment_close(struct shm_segment *s)
{
	shm_segment_unmap(s);
	if (s->fd >= 0)
		close(s->fd);
	s->size = 0;
	s->fd = -1;
}

/* Remove a file segment's file. */
int
shm_segment_unlink(const char *name, struct ipc_error *err)
{
	if (check_name(name, err) != 0)
		return -1;
	if (is_path(name) && unlink(name) != 0 && errno != ENOENT)
		return ipc_error_set(err, IPC_E_IO, "unlink %s: %s", name,
		                     strerror(errno));
	return 0;
}

/* Rename a file segment; RENAME_NOREPLACE keeps "to must not exist"
 * atomic. A memfd only takes the new label. */
int
shm_segment_rename(struct shm_segment *s, const char *to, struct ipc_error *err)
{
	if (check_name(s->name, err) != 0 || check_name(to, err) != 0)
		return -1;
	if (is_path(s->name) != is_path(to))
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "cannot rename %s to %s: one is a file, "
		                     "the other a memfd",
		                     s->name, to);
	if (is_path(to) &&
	    renameat2(AT_FDCWD, s->name, AT_FDCWD, to, RENAME_NOREPLACE) != 0) {
		if (errno == ENOENT)
			return ipc_error_set(err, IPC_E_SHM_NOENT,
			                     "%s does not exist", s->name);
		if (errno == EEXIST)
			return ipc_error_set(err, IPC_E_SHM_EXISTS,
			                     "%s already exists", to);
		return ipc_error_set(err, IPC_E_IO, "rename %s to %s: %s",
		                     s->name, to, strerror(errno));
	}
	snprintf(s->name, sizeof s->name, "%s", to);
	return 0;
}

/* Unlink every file of a directory whose name starts with a prefix. */
int
shm_remove_prefix(const char *prefix, unsigned *removed, struct ipc_error *err)
{
	if (removed != NULL)
		*removed = 0;
	const char *slash =
	    prefix != NULL && prefix[0] == '/' ? strrchr(prefix, '/') : NULL;
	if (slash == NULL || slash[1] == '\0' || strlen(prefix) > 255)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "file prefix '%.64s' is invalid: it must "
		                     "be an absolute path not ending in '/'",
		                     prefix ? prefix : "(null)");
	char dirpath[256];
	const char *base = slash + 1;
	size_t plen = strlen(base);
	snprintf(dirpath, sizeof dirpath, "%.*s",
	         slash == prefix ? 1 : (int)(slash - prefix), prefix);
	DIR *dir = opendir(dirpath);
	if (dir == NULL)
		return ipc_error_set(err, IPC_E_IO, "opendir %s: %s", dirpath,
		                     strerror(errno));
	int rc = 0;
	struct dirent *de;
	while ((de = readdir(dir)) != NULL) {
		if (strncmp(de->d_name, base, plen) != 0)
			continue;
		char name[sizeof dirpath + NAME_MAX + 2];
		snprintf(name, sizeof name, "%s/%s", dirpath, de->d_name);
		if (unlink(name) == 0) {
			if (removed != NULL)
				(*removed)++;
		} else if (errno != ENOENT && rc == 0) {
			rc = ipc_error_set(err, IPC_E_IO, "unlink %s: %s", name,
			                   strerror(errno));
		}
	}
	closedir(dir);
	return rc;
}

/* Drop resident pages of the whole pages inside [offset, offset + len). */
void
shm_segment_release(struct shm_segment *s, size_t offset, size_t len)
{
	if (s->addr == NULL || offset >= s->size)
		return;
	if (len > s->size - offset)
		len = s->size - offset;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t begin = (offset + page - 1) / page * page;
	size_t end = (offset + len) / page * page;
	if (begin < end)
		madvise((char *)s->addr + begin, end - begin, MADV_DONTNEED);
}

/* Fault in the pages of [offset, offset + len) in one call. */
void
shm_segment_prefetch(struct shm_segment *s, size_t offset, size_t len)
{
#ifdef MADV_POPULATE_READ
	if (s->addr == NULL || offset >= s->size)
		return;
	if (len > s->size - offset)
		len = s->size - offset;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t begin = offset / page * page;
	madvise((char *)s->addr + begin, offset + len - begin,
	        MADV_POPULATE_READ);
#else
	(void)s;
	(void)offset;
	(void)len;
#endif
}
