/* shm.c: creating, mapping and removing POSIX shared-memory segments. */
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

/* Mappings up to this size are pre-faulted (populate_flag). */
#define SHM_POPULATE_MAX (16u << 20)

#define SHM_DIR "/dev/shm"

/* Check a segment name: "/" then 1..254 bytes without another '/'. */
static int
check_name(const char *name, struct ipc_error *err)
{
	size_t len = name ? strnlen(name, 256) : 0;
	if (len < 2 || len > 255 || name[0] != '/' ||
	    strchr(name + 1, '/') != NULL)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "shared-memory name '%.64s' is invalid: "
		                     "it must be '/' followed by 1 to 254 "
		                     "characters without another '/'",
		                     name ? name : "(null)");
	return 0;
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

/* Small segments (a model of a few MB, mapped once per task) are mapped
 * with their pages in place: one call instead of a fault per page, which was
 * a third of the orchestrator's CPU with 1,000 small clients per round.
 * Large ones fault lazily so that a reader can release pages as it goes. */
static int
populate_flag(size_t size)
{
	return size <= SHM_POPULATE_MAX ? MAP_POPULATE : 0;
}

/* Create, reserve and map a new segment. */
int
shm_segment_create(struct shm_segment *s, const char *name, size_t size,
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

	int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			return ipc_error_set(err, IPC_E_SHM_EXISTS,
			                     "shared-memory segment %s already "
			                     "exists (a stale job? remove it "
			                     "from %s)",
			                     name, SHM_DIR);
		return ipc_error_set(err, IPC_E_IO, "shm_open %s: %s", name,
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
	void *addr = mmap(NULL, size, PROT_READ | PROT_WRITE,
	                  MAP_SHARED | populate_flag(size), fd, 0);
	if (addr == MAP_FAILED) {
		ipc_error_set(err, IPC_E_IO, "mmap %s (%zu bytes): %s", name,
		              size, strerror(errno));
		goto fail;
	}
	snprintf(s->name, sizeof s->name, "%s", name);
	s->fd = fd;
	s->addr = addr;
	s->size = size;
	s->writable = 1;
	return 0;

fail:
	close(fd);
	shm_unlink(name);
	return -1;
}

/* Map an existing segment. */
int
shm_segment_open(struct shm_segment *s, const char *name, int writable,
                 size_t min_size, struct ipc_error *err)
{
	memset(s, 0, sizeof *s);
	s->fd = -1;
	if (check_name(name, err) != 0)
		return -1;
	int fd = shm_open(name, writable ? O_RDWR : O_RDONLY, 0);
	if (fd < 0) {
		if (errno == ENOENT)
			return ipc_error_set(err, IPC_E_SHM_NOENT,
			                     "shared-memory segment %s does "
			                     "not exist",
			                     name);
		return ipc_error_set(err, IPC_E_IO, "shm_open %s: %s", name,
		                     strerror(errno));
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		ipc_error_set(err, IPC_E_IO, "fstat %s: %s", name,
		              strerror(errno));
		goto fail;
	}
	if (st.st_size <= 0 || (uint64_t)st.st_size < min_size) {
		ipc_error_set(err, IPC_E_SHM_SIZE,
		              "shared-memory segment %s holds %jd bytes but "
		              "at least %zu are expected",
		              name, (intmax_t)st.st_size,
		              min_size ? min_size : 1);
		goto fail;
	}
	size_t size = (size_t)st.st_size;
	int prot = writable ? PROT_READ | PROT_WRITE : PROT_READ;
	void *addr =
	    mmap(NULL, size, prot, MAP_SHARED | populate_flag(size), fd, 0);
	if (addr == MAP_FAILED) {
		ipc_error_set(err, IPC_E_IO, "mmap %s (%zu bytes): %s", name,
		              size, strerror(errno));
		goto fail;
	}
	snprintf(s->name, sizeof s->name, "%s", name);
	s->fd = fd;
	s->addr = addr;
	s->size = size;
	s->writable = writable != 0;
	return 0;

fail:
	close(fd);
	return -1;
}

/* Unmap and close. A zeroed struct has addr NULL and is left alone, so fd 0
 * is never closed by mistake. */
void
shm_segment_close(struct shm_segment *s)
{
	if (s->addr != NULL) {
		munmap(s->addr, s->size);
		if (s->fd >= 0)
			close(s->fd);
	}
	s->addr = NULL;
	s->size = 0;
	s->fd = -1;
	s->writable = 0;
}

/* Remove a segment's name. */
int
shm_segment_unlink(const char *name, struct ipc_error *err)
{
	if (check_name(name, err) != 0)
		return -1;
	if (shm_unlink(name) != 0 && errno != ENOENT)
		return ipc_error_set(err, IPC_E_IO, "shm_unlink %s: %s", name,
		                     strerror(errno));
	return 0;
}

/* Unlink every segment whose name starts with prefix. */
int
shm_remove_prefix(const char *prefix, unsigned *removed, struct ipc_error *err)
{
	if (removed != NULL)
		*removed = 0;
	if (prefix != NULL && prefix[0] == '/')
		prefix++;
	size_t plen = prefix ? strlen(prefix) : 0;
	if (plen == 0 || plen > 254 || strchr(prefix, '/') != NULL)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "shared-memory prefix '%.64s' is invalid: "
		                     "it must be non-empty and contain no '/' "
		                     "after the first character",
		                     prefix ? prefix : "(null)");
	DIR *dir = opendir(SHM_DIR);
	if (dir == NULL)
		return ipc_error_set(err, IPC_E_IO, "opendir %s: %s", SHM_DIR,
		                     strerror(errno));
	int rc = 0;
	struct dirent *de;
	while ((de = readdir(dir)) != NULL) {
		if (strncmp(de->d_name, prefix, plen) != 0)
			continue;
		char name[NAME_MAX + 2];
		snprintf(name, sizeof name, "/%s", de->d_name);
		if (shm_unlink(name) == 0) {
			if (removed != NULL)
				(*removed)++;
		} else if (errno != ENOENT && rc == 0) {
			rc = ipc_error_set(err, IPC_E_IO, "shm_unlink %s: %s",
			                   name, strerror(errno));
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
