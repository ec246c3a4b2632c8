/* mapfile.c: mapping whole files read-only. */
#include "mapfile.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int
mapfile_open(const char *path, size_t min_size, const char *fix, void **map,
             size_t *size, struct ipc_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ipc_error_set(err, IPC_E_IO, "%s: %s", path,
		                     strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0) {
		ipc_error_set(err, IPC_E_IO, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	size_t n = (size_t)st.st_size;
	if (n < min_size || n == 0) {
		close(fd);
		return ipc_error_set(err, IPC_E_TRUNCATED,
		                     "%s: %zu bytes, too short: %s", path, n,
		                     fix);
	}
	void *m = mmap(NULL, n, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return ipc_error_set(err, IPC_E_IO, "%s: mmap: %s", path,
		                     strerror(errno));
	*map = m;
	*size = n;
	return 0;
}
