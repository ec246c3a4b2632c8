/* test_shmcache.c: a shm_cache hands back the mapping of a small segment it
 * has seen before (found by inode, so also under a new name), keeps separate
 * mappings for other segments and other access, drops the least recently
 * used one when full, leaves large segments and failed opens alone, takes
 * over segments this process created, and unmaps everything when freed. */
#include "harness.h"
#include "shmtest.h"
#include "shmcache.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define TAG "shmcachetest"

/* Lines of /proc/self/maps that map segment name (perms such as "r--s", or
 * NULL for any), i.e. this process's mappings of it. */
static int
maps_lines(const char *name, const char *perms)
{
	char path[300], line[1024];
	snprintf(path, sizeof path, "/dev/shm%s", name);
	size_t len = strlen(path);
	FILE *f = fopen("/proc/self/maps", "r");
	if (f == NULL)
		return -1;
	int n = 0;
	while (fgets(line, sizeof line, f) != NULL) {
		char *p = strstr(line, path);
		if (p == NULL ||
		    (p[len] != '\n' && p[len] != ' ' && p[len] != '\0'))
			continue;
		char mode[8] = "";
		if (perms != NULL && (sscanf(line, "%*s %7s", mode) != 1 ||
		                      strcmp(mode, perms) != 0))
			continue;
		n++;
	}
	fclose(f);
	return n;
}

/* Whether all size bytes at p equal fill. */
static int
all_bytes(const void *p, size_t size, int fill)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < size; i++)
		if (b[i] != (unsigned char)fill)
			return 0;
	return 1;
}

/* Whether file descriptor fd is open in this process. */
static int
fd_open(int fd)
{
	return fd >= 0 && fcntl(fd, F_GETFD) != -1;
}

/* A cache of no mappings opens and closes as shm_segment_open does. */
static void
test_max_zero_maps_anew(void)
{
	struct shm_cache c;
	struct shm_segment s;
	struct ipc_error err;
	const char *name = shmtest_name(TAG, "zero");
	shmtest_make(name, 5000, 0x11);
	shm_cache_init(&c, 0);
	CHECK_EQ_INT(shm_cache_open(&c, &s, name, SHM_READ, 5000, &err), 0);
	CHECK_EQ_INT(s.cached, 0);
	CHECK_EQ_INT(s.size, 5000);
	CHECK_EQ_INT(s.writable, 0);
	CHECK(all_bytes(s.addr, 5000, 0x11));
	CHECK_EQ_INT(c.n, 0);
	CHECK_EQ_INT(maps_lines(name, "r--s"), 1);
	shm_segment_close(&s);
	CHECK_EQ_INT(maps_lines(name, NULL), 0);
	shm_cache_free(&c);
	CHECK_EQ_INT(shm_segment_unlink(name, &err), 0);
	shmtest_cleanup(TAG);
}

/* A small segment opened again comes back at the same address. */
static void
test_reopen_same_mapping(void)
{
	struct shm_cache c;
	struct shm_segment s, r;
	struct ipc_error err;
	const char *name = shmtest_name(TAG, "again");
	shmtest_make(name, 8000, 0x22);
	shm_cache_init(&c, 4);

	CHECK_EQ_INT(shm_cache_open(&c, &s, name, SHM_WRITE, 8000, &err), 0);
	CHECK_EQ_INT(s.cached, 1);
	CHECK_EQ_INT(s.writable, 1);
	CHECK_EQ_INT(s.size, 8000);
	CHECK(all_bytes(s.addr, 8000, 0x22));
	void *first = s.addr;
	int fd = s.fd;
	memset(s.addr, 0x33, 8000);
	shm_segment_close(&s);
	/* the descriptor goes, the mapping stays */
	CHECK(s.addr == NULL);
	CHECK(!fd_open(fd));
	CHECK_EQ_INT(maps_lines(name, "rw-s"), 1);

	/* a plain open sees what was written through the cached mapping */
	CHECK_EQ_INT(shm_segment_open(&r, name, SHM_READ, 8000, &err), 0);
	CHECK(all_bytes(r.addr, 8000, 0x33));
	shm_segment_close(&r);

	CHECK_EQ_INT(shm_cache_open(&c, &s, name, SHM_WRITE, 0, &err), 0);
	CHECK(s.addr == first);
	CHECK_EQ_INT(s.cached, 1);
	CHECK_EQ_INT(s.size, 8000);
	CHECK_EQ_INT(c.n, 1);
	CHECK_EQ_INT(maps_lines(name, NULL), 1);
	CHECK(all_bytes(s.addr, 8000, 0x33));
	shm_segment_close(&s);

	shm_cache_free(&c);
	CHECK_EQ_INT(shm_segment_unlink(name, &err), 0);
	shmtest_cleanup(TAG);
}

/* A renamed segment is found again under its new name. */
static void
test_renamed_found_by_inode(void)
{
	struct shm_cache c;
	struct shm_segment s;
	struct ipc_error err;
	char a[128], b[128];
	snprintf(a, sizeof a, "%s", shmtest_name(TAG, "g1"));
	snprintf(b, sizeof b, "%s", shmtest_name(TAG, "g2"));
	shmtest_make(a, 6000, 0x44);
	shm_cache_init(&c, 4);
	CHECK_EQ_INT(shm_cache_open(&c, &s, a, SHM_READ, 6000, &err), 0);
	void *first = s.addr;
	shm_segment_close(&s);

	CHECK_EQ_INT(shm_segment_rename(a, b, &err), 0);
	CHECK_EQ_INT(shm_cache_open(&c, &s, b, SHM_READ, 6000, &err), 0);
	CHECK(s.addr == first);
	CHECK_EQ_INT(s.cached, 1);
	CHECK_STR_CONTAINS(s.name, b);
	CHECK_EQ_INT(c.n, 1);
	CHECK(all_bytes(s.addr, 6000, 0x44));
	/* the one mapping now shows under the new name */
	CHECK_EQ_INT(maps_lines(b, NULL), 1);
	CHECK_EQ_INT(maps_lines(a, NULL), 0);
	shm_segment_close(&s);

	/* the old name is gone, whatever the cache holds */
	CHECK_EQ_INT(shm_cache_open(&c, &s, a, SHM_READ, 0, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_SHM_NOENT);

	shm_cache_free(&c);
	CHECK_EQ_INT(shm_segment_unlink(b, &err), 0);
	shmtest_cleanup(TAG);
}

/* Other segments and other access get mappings of their own. */
static void
test_separate_entries(void)
{
	struct shm_cache c;
	struct shm_segment s;
	struct ipc_error err;
	char a[128], b[128];
	snprintf(a, sizeof a, "%s", shmtest_name(TAG, "ua"));
	snprintf(b, sizeof b, "%s", shmtest_name(TAG, "ub"));
	shmtest_make(a, 4096, 0x55);
	shmtest_make(b, 4096, 0x66);
	shm_cache_init(&c, 4);

	/* another segment of the same size is another mapping */
	CHECK_EQ_INT(shm_cache_open(&c, &s, a, SHM_READ, 0, &err), 0);
	void *ra = s.addr;
	shm_segment_close(&s);
	CHECK_EQ_INT(shm_cache_open(&c, &s, b, SHM_READ, 0, &err), 0);
	CHECK(s.addr != ra);
	CHECK_EQ_INT(s.cached, 1);
	CHECK(all_bytes(s.addr, 4096, 0x66));
	shm_segment_close(&s);
	CHECK_EQ_INT(c.n, 2);

	/* read-write and read-only are separate mappings of one segment */
	CHECK_EQ_INT(shm_cache_open(&c, &s, a, SHM_WRITE, 0, &err), 0);
	void *wa = s.addr;
	CHECK(wa != ra);
	CHECK_EQ_INT(s.cached, 1);
	CHECK_EQ_INT(s.writable, 1);
	CHECK_EQ_INT(maps_lines(a, "rw-s"), 1);
	/* not through the read-only mapping, should the cache hand that out */
	if (wa != ra)
		((unsigned char *)s.addr)[100] = 0x77;
	shm_segment_close(&s);
	CHECK_EQ_INT(c.n, 3);
	CHECK_EQ_INT(maps_lines(a, "r--s"), 1);

	/* each comes back as it was, and both show the one segment */
	CHECK_EQ_INT(shm_cache_open(&c, &s, a, SHM_READ, 0, &err), 0);
	CHECK(s.addr == ra);
	CHECK_EQ_INT(s.writable, 0);
	CHECK_EQ_INT(((unsigned char *)s.addr)[100], 0x77);
	shm_segment_close(&s);
	CHECK_EQ_INT(shm_cache_open(&c, &s, a, SHM_WRITE, 0, &err), 0);
	CHECK(s.addr == wa);
	shm_segment_close(&s);
	CHECK_EQ_INT(c.n, 3);

	shm_cache_free(&c);
	CHECK_EQ_INT(shm_segment_unlink(a, &err), 0);
	CHECK_EQ_INT(shm_segment_unlink(b, &err), 0);
	shmtest_cleanup(TAG);
}

/* A full cache unmaps the mapping used longest ago. */
static void
test_evicts_least_recently_used(void)
{
	struct shm_cache c;
	struct shm_segment s;
	struct ipc_error err;
	char n[3][128];
	for (int i = 0; i < 3; i++) {
		char suffix[8];
		snprintf(suffix, sizeof suffix, "e%d", i);
		snprintf(n[i], sizeof n[i], "%s", shmtest_name(TAG, suffix));
		shmtest_make(n[i], 4096 * (size_t)(i + 1), 0x10 + i);
	}
	shm_cache_init(&c, 2);

	for (int i = 0; i < 3; i++) {
		CHECK_EQ_INT(shm_cache_open(&c, &s, n[i], SHM_READ, 0, &err),
		             0);
		CHECK_EQ_INT(s.cached, 1);
		shm_segment_close(&s);
	}
	CHECK_EQ_INT(c.n, 2);
	CHECK_EQ_INT(maps_lines(n[0], NULL), 0);
	CHECK_EQ_INT(maps_lines(n[1], NULL), 1);
	CHECK_EQ_INT(maps_lines(n[2], NULL), 1);

	/* the first is mapped anew, and now the second is the oldest */
	CHECK_EQ_INT(shm_cache_open(&c, &s, n[0], SHM_READ, 0, &err), 0);
	CHECK_EQ_INT(s.cached, 1);
	CHECK(all_bytes(s.addr, 4096, 0x10));
	shm_segment_close(&s);
	CHECK_EQ_INT(maps_lines(n[0], NULL), 1);
	CHECK_EQ_INT(maps_lines(n[1], NULL), 0);
	CHECK_EQ_INT(maps_lines(n[2], NULL), 1);

	/* a use counts, not the order of mapping: 2 was mapped before 0
	 * but used after it, so 0 goes */
	CHECK_EQ_INT(shm_cache_open(&c, &s, n[2], SHM_READ, 0, &err), 0);
	shm_segment_close(&s);
	CHECK_EQ_INT(shm_cache_open(&c, &s, n[1], SHM_READ, 0, &err), 0);
	CHECK(all_bytes(s.addr, 2 * 4096, 0x11));
	shm_segment_close(&s);
	CHECK_EQ_INT(maps_lines(n[0], NULL), 0);
	CHECK_EQ_INT(maps_lines(n[1], NULL), 1);
	CHECK_EQ_INT(maps_lines(n[2], NULL), 1);
	CHECK_EQ_INT(c.n, 2);

	shm_cache_free(&c);
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(shm_segment_unlink(n[i], &err), 0);
	shmtest_cleanup(TAG);
}

/* Segments over SHM_POPULATE_MAX are mapped and unmapped as usual. */
static void
test_large_not_cached(void)
{
	struct shm_cache c;
	struct shm_segment s;
	struct ipc_error err;
	const size_t size = SHM_POPULATE_MAX + 4096;
	const char *name = shmtest_name(TAG, "big");
	CHECK_EQ_INT(shm_segment_create(&s, name, size, &err), 0);
	shm_segment_close(&s);
	shm_cache_init(&c, 4);
	CHECK_EQ_INT(shm_cache_open(&c, &s, name, SHM_READ, size, &err), 0);
	CHECK_EQ_INT(s.cached, 0);
	CHECK_EQ_INT(s.size, size);
	CHECK_EQ_INT(c.n, 0);
	CHECK_EQ_INT(maps_lines(name, NULL), 1);
	shm_segment_close(&s);
	CHECK_EQ_INT(maps_lines(name, NULL), 0);
	shm_cache_free(&c);
	CHECK_EQ_INT(shm_segment_unlink(name, &err), 0);
	shmtest_cleanup(TAG);
}

/* A created segment handed to the cache is found by a later open. */
static void
test_adopt(void)
{
	struct shm_cache c;
	struct shm_segment s, t;
	struct ipc_error err;
	unsigned char src[3000];
	memset(src, 0x5c, sizeof src);
	const char *name = shmtest_name(TAG, "adopt");
	shm_cache_init(&c, 4);
	CHECK_EQ_INT(shm_segment_create_copy(&s, name, sizeof src, src, &err),
	             0);
	void *made = s.addr;
	shm_cache_adopt(&c, &s);
	CHECK_EQ_INT(s.cached, 1);
	CHECK_EQ_INT(c.n, 1);
	shm_cache_adopt(&c, &s);
	CHECK_EQ_INT(c.n, 1);
	shm_segment_close(&s);
	CHECK_EQ_INT(maps_lines(name, "rw-s"), 1);

	/* found again with the access it was created with */
	CHECK_EQ_INT(shm_cache_open(&c, &s, name, SHM_WRITE, 0, &err), 0);
	CHECK(s.addr == made);
	CHECK_EQ_INT(s.cached, 1);
	CHECK(all_bytes(s.addr, sizeof src, 0x5c));
	shm_segment_close(&s);
	CHECK_EQ_INT(c.n, 1);

	/* a second mapping of a segment already held is not taken over */
	CHECK_EQ_INT(shm_segment_open(&t, name, SHM_WRITE, 0, &err), 0);
	CHECK(t.addr != made);
	shm_cache_adopt(&c, &t);
	CHECK_EQ_INT(t.cached, 0);
	CHECK_EQ_INT(c.n, 1);
	shm_segment_close(&t);
	CHECK_EQ_INT(maps_lines(name, NULL), 1);

	/* a large segment stays the caller's */
	const size_t size = SHM_POPULATE_MAX + 4096;
	const char *big = shmtest_name(TAG, "adoptbig");
	CHECK_EQ_INT(shm_segment_create(&t, big, size, &err), 0);
	shm_cache_adopt(&c, &t);
	CHECK_EQ_INT(t.cached, 0);
	CHECK_EQ_INT(c.n, 1);
	shm_segment_close(&t);
	CHECK_EQ_INT(maps_lines(big, NULL), 0);

	/* a cache of no mappings takes nothing */
	struct shm_cache none;
	shm_cache_init(&none, 0);
	CHECK_EQ_INT(shm_segment_open(&t, name, SHM_READ, 0, &err), 0);
	shm_cache_adopt(&none, &t);
	CHECK_EQ_INT(t.cached, 0);
	CHECK_EQ_INT(none.n, 0);
	shm_segment_close(&t);
	shm_cache_free(&none);

	shm_cache_free(&c);
	CHECK_EQ_INT(maps_lines(name, NULL), 0);
	CHECK_EQ_INT(shm_segment_unlink(name, &err), 0);
	CHECK_EQ_INT(shm_segment_unlink(big, &err), 0);
	shmtest_cleanup(TAG);
}

/* Failed opens report why and leave the cache as it was. */
static void
test_errors_cache_nothing(void)
{
	struct shm_cache c;
	struct shm_segment s;
	struct ipc_error err;
	const char *name = shmtest_name(TAG, "small");
	shmtest_make(name, 100, 0x01);
	shm_cache_init(&c, 4);

	CHECK_EQ_INT(shm_cache_open(&c, &s, shmtest_name(TAG, "missing"),
	                            SHM_READ, 0, &err),
	             -1);
	CHECK_EQ_INT(err.code, IPC_E_SHM_NOENT);
	CHECK_STR_CONTAINS(err.message, "missing");
	CHECK(s.addr == NULL);
	CHECK_EQ_INT(s.fd, -1);
	CHECK_EQ_INT(c.n, 0);

	CHECK_EQ_INT(shm_cache_open(&c, &s, name, SHM_WRITE, 101, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_SHM_SIZE);
	CHECK_STR_CONTAINS(err.message, "holds 100 bytes but at least 101");
	CHECK(s.addr == NULL);
	CHECK_EQ_INT(s.fd, -1);
	CHECK_EQ_INT(c.n, 0);
	CHECK_EQ_INT(maps_lines(name, NULL), 0);

	/* once cached, the size is still checked */
	CHECK_EQ_INT(shm_cache_open(&c, &s, name, SHM_READ, 100, &err), 0);
	shm_segment_close(&s);
	CHECK_EQ_INT(shm_cache_open(&c, &s, name, SHM_READ, 101, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_SHM_SIZE);
	CHECK(s.addr == NULL);
	CHECK_EQ_INT(c.n, 1);

	shm_cache_free(&c);
	CHECK_EQ_INT(shm_segment_unlink(name, &err), 0);
	shmtest_cleanup(TAG);
}

/* Freeing unmaps every kept mapping and zeroes the cache. */
static void
test_free_unmaps_all(void)
{
	struct shm_cache c, zero;
	struct shm_segment s;
	struct ipc_error err;
	char a[128], b[128];
	snprintf(a, sizeof a, "%s", shmtest_name(TAG, "fa"));
	snprintf(b, sizeof b, "%s", shmtest_name(TAG, "fb"));
	shmtest_make(a, 4096, 0x0a);
	shmtest_make(b, 9000, 0x0b);
	shm_cache_init(&c, 4);
	CHECK_EQ_INT(shm_cache_open(&c, &s, a, SHM_READ, 0, &err), 0);
	shm_segment_close(&s);
	CHECK_EQ_INT(shm_cache_open(&c, &s, a, SHM_WRITE, 0, &err), 0);
	shm_segment_close(&s);
	CHECK_EQ_INT(shm_cache_open(&c, &s, b, SHM_READ, 0, &err), 0);
	shm_segment_close(&s);
	CHECK_EQ_INT(maps_lines(a, NULL), 2);
	CHECK_EQ_INT(maps_lines(b, NULL), 1);

	shm_cache_free(&c);
	CHECK_EQ_INT(maps_lines(a, NULL), 0);
	CHECK_EQ_INT(maps_lines(b, NULL), 0);
	memset(&zero, 0, sizeof zero);
	CHECK(memcmp(&c, &zero, sizeof c) == 0);
	shm_cache_free(&c);
	CHECK(memcmp(&c, &zero, sizeof c) == 0);

	/* a freed cache keeps nothing */
	CHECK_EQ_INT(shm_cache_open(&c, &s, b, SHM_READ, 0, &err), 0);
	CHECK_EQ_INT(s.cached, 0);
	CHECK(all_bytes(s.addr, 9000, 0x0b));
	shm_segment_close(&s);
	CHECK_EQ_INT(maps_lines(b, NULL), 0);

	CHECK_EQ_INT(shm_segment_unlink(a, &err), 0);
	CHECK_EQ_INT(shm_segment_unlink(b, &err), 0);
	shmtest_cleanup(TAG);
}

int
main(void)
{
	if (access("/proc/self/maps", R_OK) != 0) {
		printf("skipped: no /proc/self/maps to check mappings in\n");
		return HARNESS_SKIPPED;
	}
	RUN(test_max_zero_maps_anew);
	RUN(test_reopen_same_mapping);
	RUN(test_renamed_found_by_inode);
	RUN(test_separate_entries);
	RUN(test_evicts_least_recently_used);
	RUN(test_large_not_cached);
	RUN(test_adopt);
	RUN(test_errors_cache_nothing);
	RUN(test_free_unmaps_all);
	shmtest_cleanup(TAG);
	return harness_finish();
}
