/* test_shmcache.c: a shm_cache hands back the mapping of a small segment it
 * has mapped before (found by inode, whichever descriptor of it comes),
 * keeps separate mappings for other segments and other access, drops the
 * least recently used one when full, leaves large segments alone, refuses
 * a segment without the seals asked for (closing its descriptor), and
 * unmaps everything when freed. */
#include "harness.h"
#include "shmcache.h"
#include "shmtest.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define TAG "shmcachetest"
#define RO (SHM_SEALED_SIZE | SHM_SEALED_READONLY)

/* Lines of /proc/self/maps that map memfd label: this process's mappings
 * of it. */
static int
maps_lines(const char *label)
{
	char line[1024];
	FILE *f = fopen("/proc/self/maps", "r");
	if (f == NULL)
		return -1;
	int n = 0;
	while (fgets(line, sizeof line, f) != NULL)
		n += shmtest_names_memfd(line, label);
	fclose(f);
	return n;
}

/* Open fd through the cache, read-only with the read-only seals. */
static int
open_ro(struct shm_cache *c, struct shm_segment *s, int fd, const char *label)
{
	struct ipc_error err;
	return shm_cache_open(c, s, fd, label, RO, SHM_READ, 1, &err);
}

static void
test_max_zero_maps_anew(void)
{
	const char *label = shmtest_label(TAG, "zero");
	int fd = shmtest_memfd_readonly(label, 4096, 7);
	struct shm_cache c;
	shm_cache_init(&c, 0);
	struct shm_segment a, b;
	CHECK_EQ_INT(open_ro(&c, &a, dup(fd), label), 0);
	CHECK_EQ_INT(open_ro(&c, &b, dup(fd), label), 0);
	CHECK(!a.cached && !b.cached && a.addr != b.addr);
	CHECK_EQ_INT(((unsigned char *)a.addr)[10], 7);
	shm_segment_close(&a);
	shm_segment_close(&b);
	CHECK_EQ_INT(maps_lines(label), 0);
	shm_cache_free(&c);
	close(fd);
}

/* Every task frame brings a new descriptor of the same global model: the
 * cache maps it once. */
static void
test_same_memfd_same_mapping(void)
{
	const char *label = shmtest_label(TAG, "same");
	int fd = shmtest_memfd_readonly(label, 8192, 3);
	struct shm_cache c;
	shm_cache_init(&c, 4);
	struct shm_segment a, b;
	int d1 = dup(fd), d2 = dup(fd);
	CHECK_EQ_INT(open_ro(&c, &a, d1, label), 0);
	CHECK_EQ_INT(open_ro(&c, &b, d2, label), 0);
	CHECK(a.cached && b.cached);
	CHECK(a.addr == b.addr);
	CHECK_EQ_INT(maps_lines(label), 1);
	/* close leaves the mapping but closes the descriptor it was given */
	shm_segment_close(&a);
	shm_segment_close(&b);
	CHECK(shmtest_fd_closed(d1) && shmtest_fd_closed(d2));
	CHECK_EQ_INT(maps_lines(label), 1);
	shm_cache_free(&c);
	CHECK_EQ_INT(maps_lines(label), 0);
	close(fd);
}

/* Another memfd, or the same one writable, is another mapping. */
static void
test_separate_entries(void)
{
	const char *la = shmtest_label(TAG, "sa"),
	           *lb = shmtest_label(TAG, "sb");
	int fa = shmtest_memfd_readonly(la, 4096, 1);
	int fb = shmtest_memfd(lb, 4096, 2);
	struct shm_cache c;
	shm_cache_init(&c, 4);
	struct shm_segment a, b, w;
	struct ipc_error err;
	CHECK_EQ_INT(open_ro(&c, &a, dup(fa), la), 0);
	CHECK_EQ_INT(shm_cache_open(&c, &b, dup(fb), lb, SHM_SEALED_SIZE,
	                            SHM_READ, 1, &err),
	             0);
	CHECK_EQ_INT(shm_cache_open(&c, &w, dup(fb), lb, SHM_SEALED_SIZE,
	                            SHM_WRITE, 1, &err),
	             0);
	CHECK(a.addr != b.addr && b.addr != w.addr);
	CHECK_EQ_INT(((unsigned char *)a.addr)[0], 1);
	CHECK_EQ_INT(((unsigned char *)b.addr)[0], 2);
	((unsigned char *)w.addr)[0] = 9;
	CHECK_EQ_INT(((unsigned char *)b.addr)[0], 9);
	CHECK_EQ_INT(c.n, 3);
	shm_segment_close(&a);
	shm_segment_close(&b);
	shm_segment_close(&w);
	shm_cache_free(&c);
	close(fa);
	close(fb);
}

/* A full cache drops the mapping used least recently. */
static void
test_evicts_least_recently_used(void)
{
	struct shm_cache c;
	shm_cache_init(&c, 2);
	const char *l[3] = {shmtest_label(TAG, "e0"), shmtest_label(TAG, "e1"),
	                    shmtest_label(TAG, "e2")};
	int fd[3];
	struct shm_segment s;
	for (int i = 0; i < 3; i++)
		fd[i] = shmtest_memfd_readonly(l[i], 4096, (unsigned char)i);
	CHECK_EQ_INT(open_ro(&c, &s, dup(fd[0]), l[0]), 0);
	shm_segment_close(&s);
	CHECK_EQ_INT(open_ro(&c, &s, dup(fd[1]), l[1]), 0);
	shm_segment_close(&s);
	CHECK_EQ_INT(open_ro(&c, &s, dup(fd[0]), l[0]), 0); /* 0 used again */
	shm_segment_close(&s);
	CHECK_EQ_INT(open_ro(&c, &s, dup(fd[2]), l[2]), 0); /* evicts 1 */
	shm_segment_close(&s);
	CHECK_EQ_INT(maps_lines(l[0]), 1);
	CHECK_EQ_INT(maps_lines(l[1]), 0);
	CHECK_EQ_INT(maps_lines(l[2]), 1);
	shm_cache_free(&c);
	for (int i = 0; i < 3; i++)
		close(fd[i]);
}

/* Segments over SHM_POPULATE_MAX are mapped per open and unmapped at
 * close. */
static void
test_large_not_cached(void)
{
	const char *label = shmtest_label(TAG, "large");
	size_t size = SHM_POPULATE_MAX + 4096;
	int fd = shmtest_memfd_readonly(label, size, 0);
	struct shm_cache c;
	shm_cache_init(&c, 4);
	struct shm_segment s;
	struct ipc_error err;
	CHECK_EQ_INT(shm_cache_open(&c, &s, dup(fd), label, RO,
	                            SHM_READ | SHM_LAZY, 1, &err),
	             0);
	CHECK(!s.cached && s.lazy && s.size == size);
	CHECK_EQ_INT(c.n, 0);
	shm_segment_close(&s);
	CHECK_EQ_INT(maps_lines(label), 0);
	shm_cache_free(&c);
	close(fd);
}

/* A segment without the seals asked for, too small, or not a memfd is
 * refused, its descriptor closed, nothing cached. */
static void
test_errors_cache_nothing(void)
{
	struct shm_cache c;
	shm_cache_init(&c, 4);
	struct shm_segment s;
	struct ipc_error err;
	const char *label = shmtest_label(TAG, "bad");
	int writable = shmtest_memfd(label, 4096, 0);
	int d = dup(writable);
	CHECK_EQ_INT(shm_cache_open(&c, &s, d, label, RO, SHM_READ, 1, &err),
	             -1);
	CHECK_EQ_INT(err.code, IPC_E_SHM_SEALS);
	CHECK(shmtest_fd_closed(d));
	d = dup(writable);
	CHECK_EQ_INT(shm_cache_open(&c, &s, d, label, SHM_SEALED_SIZE, SHM_READ,
	                            8192, &err),
	             -1);
	CHECK_EQ_INT(err.code, IPC_E_SHM_SIZE);
	CHECK(shmtest_fd_closed(d));
	int p[2];
	CHECK_EQ_INT(pipe(p), 0);
	CHECK_EQ_INT(shm_cache_open(&c, &s, p[0], "a pipe", SHM_SEALED_SIZE,
	                            SHM_READ, 1, &err),
	             -1);
	CHECK_EQ_INT(err.code, IPC_E_SHM_SEALS);
	CHECK(shmtest_fd_closed(p[0]));
	close(p[1]);
	CHECK_EQ_INT(c.n, 0);
	CHECK_EQ_INT(maps_lines(label), 0);
	shm_cache_free(&c);
	close(writable);
}

/* Freeing the cache unmaps every mapping it kept. */
static void
test_free_unmaps_all(void)
{
	struct shm_cache c;
	shm_cache_init(&c, 4);
	const char *la = shmtest_label(TAG, "fa"),
	           *lb = shmtest_label(TAG, "fb");
	int fa = shmtest_memfd_readonly(la, 4096, 0);
	int fb = shmtest_memfd_readonly(lb, 4096, 0);
	struct shm_segment s;
	CHECK_EQ_INT(open_ro(&c, &s, dup(fa), la), 0);
	shm_segment_close(&s);
	CHECK_EQ_INT(open_ro(&c, &s, dup(fb), lb), 0);
	shm_segment_close(&s);
	CHECK_EQ_INT(maps_lines(la) + maps_lines(lb), 2);
	close(fa);
	close(fb);
	/* the cached mappings alone keep both memfds alive */
	CHECK_EQ_INT(maps_lines(la) + maps_lines(lb), 2);
	shm_cache_free(&c);
	CHECK_EQ_INT(maps_lines(la) + maps_lines(lb), 0);
}

int
main(void)
{
	RUN(test_max_zero_maps_anew);
	RUN(test_same_memfd_same_mapping);
	RUN(test_separate_entries);
	RUN(test_evicts_least_recently_used);
	RUN(test_large_not_cached);
	RUN(test_errors_cache_nothing);
	RUN(test_free_unmaps_all);
	return harness_finish();
}
