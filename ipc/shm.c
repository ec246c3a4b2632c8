/* shm.c: creating, mapping and removing POSIX shared-memory segments. */
#define _GNU_SOURCE /* renameat2 */
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
#include <sys/statvfs.h>
#include <unistd.h>

#define SHM_DIR "/dev/shm"

/* Whether a (checked) segment name is a file path rather than a POSIX
 * shared-memory name: it has a '/' after the first. */
static int
is_path(const char *name)
{
	return strchr(name + 1, '/') != NULL;
}

/* Check a segment name: "/" then 1..254 bytes without another '/' (POSIX
 * shared memory), or an absolute file path of at most 255 bytes. */
static int
check_name(const char *name, struct ipc_error *err)
{
	size_t len = name ? strnlen(name, 256) : 0;
	if (len < 2 || len > 255 || name[0] != '/' || name[len - 1] == '/')
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "shared-memory name '%.64s' is invalid: "
		                     "it must be '/' followed by 1 to 254 "
		                     "characters without another '/' (or "
		                     "an absolute file path)",
		                     name ? name : "(null)");
	return 0;
}

/* open(2) of a segment by its name. */
static int
open_segment(const char *name, int oflag, mode_t mode)
{
	if (is_path(name))
		return open(name, oflag | O_CLOEXEC, mode);
	return shm_open(name, oflag, mode);
}

/* unlink(2) of a segment by its name. */
static int
unlink_segment(const char *name)
{
	return is_path(name) ? unlink(name) : shm_unlink(name);
}

/* The file behind a segment name, into buf (sizeof SHM_DIR + 256). */
static void
segment_file(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s%s", is_path(name) ? "" : SHM_DIR, name);
}

/* Bytes available to unprivileged users in /dev/shm. */
int
shm_free_bytes(uint64_t *free_bytes, struct ipc_error *err)
{
	struct statvfs st;
	if (statvfs(SHM_DIR, &st) != 0)
		return ipc_error_set(err, IPC_E_IO, "statvfs %s: %s", SHM_DIR,
		                     strerror(errno));
	*free_bytes = (uint64_t)st.f_bavail * st.f_frsize;
	return 0;
}

/* Fill err with a "/dev/shm is full" message naming the sizes and the fix. */
static int
nospace_error(const char *name, size_t size, int errnum, struct ipc_error *err)
{
	uint64_t avail = 0;
	struct ipc_error ignored;
	if (is_path(name))
		return ipc_error_set(err, IPC_E_SHM_NOSPACE,
		                     "cannot reserve %zu bytes for %s (%s): "
		                     "free space on its file system",
		                     size, name, strerror(errnum));
	if (shm_free_bytes(&avail, &ignored) != 0)
		avail = 0;
	return ipc_error_set(err, IPC_E_SHM_NOSPACE,
	                     "cannot reserve %zu bytes for shared-memory "
	                     "segment %s (%s); %s has %" PRIu64
	                     " bytes free: free space in %s or raise its "
	                     "size (mount -o remount,size=...)",
	                     size, name, strerror(errnum), SHM_DIR, avail,
	                     SHM_DIR);
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
static int
fill_from(int fd, const char *name, const void *src, size_t size,
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

/* Create, reserve, fill from src (when not NULL) and map a new segment. */
static int
create(struct shm_segment *s, const char *name, size_t size, const void *src,
       struct ipc_error *err)
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

	int fd = open_segment(name, O_CREAT | O_EXCL | O_RDWR, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			return ipc_error_set(err, IPC_E_SHM_EXISTS,
			                     "shared-memory segment %s already "
			                     "exists (a stale job? remove it "
			                     "from %s)",
			                     name, SHM_DIR);
		return ipc_error_set(err, IPC_E_IO, "open %s: %s", name,
		                     strerror(errno));
	}
	int rc;
	if (ftruncate(fd, (off_t)size) != 0) {
		int e = errno;
		if (e == EFBIG || e == ENOSPC)
			nospace_error(name, size, e, err);
		else
			ipc_error_set(err, IPC_E_IO, "ftruncate %s to %zu: %s",
			              name, size, strerror(e));
		goto fail;
	}
	rc = posix_fallocate(fd, 0, (off_t)size);
	if (rc != 0) {
		if (rc == ENOSPC || rc == EFBIG || rc == ENOMEM)
			nospace_error(name, size, rc, err);
		else
			ipc_error_set(err, IPC_E_IO,
			              "posix_fallocate %s (%zu bytes): %s",
			              name, size, strerror(rc));
		goto fail;
	}
	if (src != NULL && fill_from(fd, name, src, size, err) != 0)
		goto fail;
	if (shm_segment_map(s, name, fd, size, SHM_WRITE, err) != 0) {
		unlink_segment(name); /* fd is closed */
		return -1;
	}
	return 0;

fail:
	close(fd);
	unlink_segment(name);
	return -1;
}

int
shm_segment_create(struct shm_segment *s, const char *name, size_t size,
                   struct ipc_error *err)
{
	return create(s, name, size, NULL, err);
}

int
shm_segment_create_copy(struct shm_segment *s, const char *name, size_t size,
                        const void *src, struct ipc_error *err)
{
	return create(s, name, size, src, err);
}

/* Open a segment and check its size. */
int
shm_open_checked(const char *name, int writable, size_t min_size, int *fd_out,
                 struct stat *st, struct ipc_error *err)
{
	if (check_name(name, err) != 0)
		return -1;
	int fd = open_segment(name, writable ? O_RDWR : O_RDONLY, 0);
	if (fd < 0) {
		if (errno == ENOENT)
			return ipc_error_set(err, IPC_E_SHM_NOENT,
			                     "shared-memory segment %s does "
			                     "not exist",
			                     name);
		return ipc_error_set(err, IPC_E_IO, "open %s: %s", name,
		                     strerror(errno));
	}
	if (fstat(fd, st) != 0) {
		ipc_error_set(err, IPC_E_IO, "fstat %s: %s", name,
		              strerror(errno));
		close(fd);
		return -1;
	}
	if (st->st_size <= 0 || (uint64_t)st->st_size < min_size) {
		ipc_error_set(err, IPC_E_SHM_SIZE,
		              "shared-memory segment %s holds %jd bytes but "
		              "at least %zu are expected",
		              name, (intmax_t)st->st_size,
		              min_size ? min_size : 1);
		close(fd);
		return -1;
	}
	*fd_out = fd;
	return 0;
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

/* Map an existing segment. */
int
shm_segment_open(struct shm_segment *s, const char *name, int flags,
                 size_t min_size, struct ipc_error *err)
{
	memset(s, 0, sizeof *s);
	s->fd = -1;
	int fd;
	struct stat st;
	if (shm_open_checked(name, (flags & SHM_WRITE) != 0, min_size, &fd, &st,
	                     err) != 0)
		return -1;
	return shm_segment_map(s, name, fd, (size_t)st.st_size, flags, err);
}

/* Unmap and close. A zeroed struct has addr NULL and is left alone, so fd 0
 * is never closed by mistake. */
void
shm_segment_close(struct shm_segment *s)
{
	if (s->addr != NULL) {
		if (!s->cached)
			munmap(s->addr, s->size);
		if (s->fd >= 0)
			close(s->fd);
	}
	s->cached = 0;
	s->addr = NULL;
	s->size = 0;
	s->fd = -1;
	s->writable = 0;
	s->lazy = 0;
}

/* Remove a segment's name. */
int
shm_segment_unlink(const char *name, struct ipc_error *err)
{
	if (check_name(name, err) != 0)
		return -1;
	if (unlink_segment(name) != 0 && errno != ENOENT)
		return ipc_error_set(err, IPC_E_IO, "unlink %s: %s", name,
		                     strerror(errno));
	return 0;
}

void
shm_update_name(char *buf, size_t size, const char *job, uint64_t task_id)
{
	snprintf(buf, size, "/cohort.%s.u%llu", job,
	         (unsigned long long)task_id);
}

int
shm_segment_size(const char *name, uint64_t *size)
{
	char path[sizeof SHM_DIR + 256];
	struct stat st;
	if (check_name(name, NULL) != 0)
		return 0;
	segment_file(path, sizeof path, name);
	if (stat(path, &st) != 0)
		return 0;
	*size = (uint64_t)st.st_size;
	return 1;
}

/* Rename a segment: POSIX has no call for it, but on Linux a segment is a
 * file of the tmpfs at SHM_DIR. RENAME_NOREPLACE keeps "to must not exist"
 * atomic. */
int
shm_segment_rename(const char *from, const char *to, struct ipc_error *err)
{
	if (check_name(from, err) != 0 || check_name(to, err) != 0)
		return -1;
	char a[sizeof SHM_DIR + 256], b[sizeof SHM_DIR + 256];
	segment_file(a, sizeof a, from);
	segment_file(b, sizeof b, to);
	if (renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno == ENOENT)
		return ipc_error_set(err, IPC_E_SHM_NOENT,
		                     "shared-memory segment %s does not exist",
		                     from);
	if (errno == EEXIST)
		return ipc_error_set(err, IPC_E_SHM_EXISTS,
		                     "shared-memory segment %s already exists",
		                     to);
	return ipc_error_set(err, IPC_E_IO, "rename %s to %s: %s", from, to,
	                     strerror(errno));
}

/* Unlink every segment whose name starts with prefix. */
int
shm_remove_prefix(const char *prefix, unsigned *removed, struct ipc_error *err)
{
	if (removed != NULL)
		*removed = 0;
	/* A POSIX prefix names entries of SHM_DIR; a path prefix
	 * ("/dir/base") entries of its directory. */
	char dirpath[256] = SHM_DIR;
	const char *base = prefix;
	int files = prefix != NULL && prefix[0] == '/' && is_path(prefix);
	if (files) {
		base = strrchr(prefix, '/') + 1;
		snprintf(dirpath, sizeof dirpath, "%.*s",
		         (int)(base - 1 - prefix), prefix);
	} else if (prefix != NULL && prefix[0] == '/') {
		base++;
	}
	size_t plen = base ? strlen(base) : 0;
	if (plen == 0 || plen > 254 || strchr(base, '/') != NULL)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "shared-memory prefix '%.64s' is invalid: "
		                     "it must be non-empty and not end in '/'",
		                     prefix ? prefix : "(null)");
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
		snprintf(name, sizeof name, "%s/%s", files ? dirpath : "",
		         de->d_name);
		if (unlink_segment(name) == 0) {
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
