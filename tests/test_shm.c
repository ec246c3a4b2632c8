/* test_shm.c: segments are created exclusively with their pages reserved,
 * read-only mappings really are read-only, a full /dev/shm is an error at
 * creation, a job's segments can be swept by prefix, a segment can be
 * created as a copy of a buffer and renamed, and a lazy mapping is brought
 * in and dropped in windows without losing the segment's bytes. */
#include "harness.h"
#include "shmtest.h"
#include "shm.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#define TAG "shmtest"

static void
test_create_open_share(void)
{
	struct shm_segment w, r;
	struct ipc_error err;
	const char *name = shmtest_name(TAG, "g1");
	CHECK_EQ_INT(shm_segment_create(&w, name, 10000, &err), 0);
	CHECK(w.addr != NULL);
	CHECK_EQ_INT(w.size, 10000);
	CHECK_EQ_INT(w.writable, 1);
	CHECK(shmtest_exists(name));
	memset(w.addr, 0x5a, 10000);
	CHECK_EQ_INT(shm_segment_open(&r, name, 0, 10000, &err), 0);
	CHECK_EQ_INT(r.size, 10000);
	CHECK_EQ_INT(r.writable, 0);
	CHECK_EQ_INT(((unsigned char *)r.addr)[9999], 0x5a);
	((unsigned char *)w.addr)[42] = 7;
	CHECK_EQ_INT(((unsigned char *)r.addr)[42], 7);
	shm_segment_close(&r);
	shm_segment_close(&r);
	CHECK(r.addr == NULL);
	shm_segment_close(&w);
	CHECK_EQ_INT(shm_segment_unlink(name, &err), 0);
	CHECK(!shmtest_exists(name));
	CHECK_EQ_INT(shm_segment_unlink(name, &err), 0);

	struct shm_segment zero;
	memset(&zero, 0, sizeof zero);
	shm_segment_close(&zero);
	CHECK(zero.addr == NULL);
	shmtest_cleanup(TAG);
}

static void
test_read_only_mapping_faults(void)
{
	struct shm_segment w, r;
	struct ipc_error err;
	const char *name = shmtest_name(TAG, "g2");
	CHECK_EQ_INT(shm_segment_create(&w, name, 4096, &err), 0);
	CHECK_EQ_INT(shm_segment_open(&r, name, 0, 0, &err), 0);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		/* the default action, not a sanitizer's report, is under test
		 */
		signal(SIGSEGV, SIG_DFL);
		signal(SIGBUS, SIG_DFL);
		volatile unsigned char *p = r.addr;
		p[0] = 1;
		_exit(0);
	}
	int status = 0;
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECK(WIFSIGNALED(status));
	CHECK_EQ_INT(WIFSIGNALED(status) ? WTERMSIG(status) : 0, SIGSEGV);
	CHECK_EQ_INT(((unsigned char *)w.addr)[0], 0);
	shm_segment_close(&r);
	shm_segment_close(&w);
	shmtest_cleanup(TAG);
}

static void
test_errors(void)
{
	struct shm_segment a, b;
	struct ipc_error err;
	const char *name = shmtest_name(TAG, "u7");
	CHECK_EQ_INT(shm_segment_create(&a, name, 100, &err), 0);
	CHECK_EQ_INT(shm_segment_create(&b, name, 100, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_SHM_EXISTS);
	CHECK_STR_CONTAINS(err.message, name);
	CHECK(b.addr == NULL);
	CHECK_EQ_INT(shm_segment_open(&b, name, 1, 101, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_SHM_SIZE);
	CHECK_STR_CONTAINS(err.message, "holds 100 bytes but at least 101");
	CHECK_EQ_INT(
	    shm_segment_open(&b, shmtest_name(TAG, "missing"), 0, 0, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_SHM_NOENT);
	CHECK_STR_CONTAINS(err.message, "missing");
	CHECK_EQ_INT(shm_segment_create(&b, shmtest_name(TAG, "zero"), 0, &err),
	             -1);
	CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
	CHECK(!shmtest_exists(shmtest_name(TAG, "zero")));
	const char *bad[] = {"noslash", "/", "/a/", "rel/a", ""};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		CHECK_EQ_INT(shm_segment_create(&b, bad[i], 10, &err), -1);
		CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
	}
	char longname[300];
	longname[0] = '/';
	memset(longname + 1, 'x', 255);
	longname[256] = '\0';
	CHECK_EQ_INT(shm_segment_open(&b, longname, 0, 0, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
	shm_segment_close(&a);
	shmtest_cleanup(TAG);
}

static void
test_remove_prefix(void)
{
	struct shm_segment s;
	struct ipc_error err;
	char job[64], other[64], names[4][128];
	snprintf(job, sizeof job, "/cohort.shmtest%d.job.", (int)getpid());
	snprintf(other, sizeof other, "/cohort.shmtest%d.jobx.g1",
	         (int)getpid());
	snprintf(names[0], 128, "%sg1", job);
	snprintf(names[1], 128, "%su12", job);
	snprintf(names[2], 128, "%s", other);
	snprintf(names[3], 128, "/cohort.shmtest%d.job", (int)getpid());
	for (int i = 0; i < 4; i++) {
		CHECK_EQ_INT(shm_segment_create(&s, names[i], 64, &err), 0);
		shm_segment_close(&s);
	}
	unsigned removed = 99;
	CHECK_EQ_INT(shm_remove_prefix(job + 1, &removed, &err), 0);
	CHECK_EQ_INT(removed, 2);
	CHECK(!shmtest_exists(names[0]));
	CHECK(!shmtest_exists(names[1]));
	CHECK(shmtest_exists(names[2]));
	CHECK(shmtest_exists(names[3]));
	/* with the leading '/', and nothing left to remove */
	CHECK_EQ_INT(shm_remove_prefix(job, &removed, &err), 0);
	CHECK_EQ_INT(removed, 0);
	CHECK_EQ_INT(shm_remove_prefix("", &removed, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
	CHECK_EQ_INT(shm_remove_prefix("/", &removed, &err), -1);
	CHECK_EQ_INT(shm_remove_prefix("a/b", &removed, &err), -1);
	shmtest_cleanup(TAG);
	CHECK(!shmtest_exists(names[2]));
	CHECK(!shmtest_exists(names[3]));
}

static void
test_full_dev_shm(void)
{
	struct shm_segment s;
	struct ipc_error err;
	struct statvfs st;
	uint64_t avail = 0;
	CHECK_EQ_INT(shm_free_bytes(&avail, &err), 0);
	CHECK(statvfs("/dev/shm", &st) == 0);
	/* Larger than the whole file system, not merely than what is free, so
	 * the kernel refuses at once instead of filling memory first. */
	uint64_t total = (uint64_t)st.f_blocks * st.f_frsize;
	uint64_t want = (total > avail ? total : avail) + (1u << 20);
	if (st.f_blocks == 0)
		harness_skip("/dev/shm has no size limit");
	const char *name = shmtest_name(TAG, "big");
	double t0 = now_seconds();
	CHECK_EQ_INT(shm_segment_create(&s, name, (size_t)want, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_SHM_NOSPACE);
	CHECK_STR_CONTAINS(err.message, "mount -o remount,size=");
	char num[32];
	snprintf(num, sizeof num, "%zu bytes", (size_t)want);
	CHECK_STR_CONTAINS(err.message, num);
	CHECK(s.addr == NULL);
	CHECK(!shmtest_exists(name));
	CHECK(now_seconds() - t0 < 5);
	shmtest_cleanup(TAG);
}

/* Resident pages of this process (second field of /proc/self/statm). */
static long
resident_pages(void)
{
	long size = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f == NULL)
		return -1;
	if (fscanf(f, "%ld %ld", &size, &res) != 2)
		res = -1;
	fclose(f);
	return res;
}

static void
test_release_drops_pages(void)
{
	struct shm_segment s;
	struct ipc_error err;
	const size_t size = 32u << 20;
	const char *name = shmtest_name(TAG, "u1");
	CHECK_EQ_INT(shm_segment_create(&s, name, size, &err), 0);
	memset(s.addr, 3, size);
	long before = resident_pages();
	/* an unaligned span: the whole pages inside it go (allow for the
	 * few pages other allocations touch meanwhile) */
	shm_segment_release(&s, 100, size - 200);
	long after = resident_pages();
	long page = sysconf(_SC_PAGESIZE);
	CHECK(before - after >= (long)(size / (size_t)page) * 9 / 10);
	unsigned char *p = s.addr;
	CHECK_EQ_INT(p[0], 3);
	CHECK_EQ_INT(p[size / 2], 3);
	CHECK_EQ_INT(p[size - 1], 3);
	shm_segment_release(&s, size, 10);
	shm_segment_close(&s);
	shm_segment_release(&s, 0, 10);
	shmtest_cleanup(TAG);
}

/* A byte pattern that repeats neither every page nor every 8 MiB piece. */
static unsigned char *
pattern(size_t size, unsigned seed)
{
	unsigned char *p = malloc(size);
	CHECK(p != NULL);
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; p != NULL && i < size; i++) {
		x = x * 1664525u + 1013904223u;
		p[i] = (unsigned char)(x >> 24);
	}
	return p;
}

/* Whether segment name holds exactly size bytes equal to want. */
static int
seg_holds(const char *name, const void *want, size_t size)
{
	struct shm_segment r;
	struct ipc_error err;
	if (shm_segment_open(&r, name, SHM_READ, 0, &err) != 0)
		return 0;
	int same = r.size == size && memcmp(r.addr, want, size) == 0;
	shm_segment_close(&r);
	return same;
}

static void
test_create_copy(void)
{
	struct shm_segment s, t;
	struct ipc_error err;
	const size_t size = (9u << 20) + 123;
	unsigned char *src = pattern(size, 1), *other = pattern(size, 2);
	const char *name = shmtest_name(TAG, "u3");
	CHECK_EQ_INT(shm_segment_create_copy(&s, name, size, src, &err), 0);
	CHECK(s.addr != NULL);
	CHECK_EQ_INT(s.size, size);
	CHECK_EQ_INT(s.writable, 1);
	CHECK(memcmp(s.addr, src, size) == 0);
	CHECK(seg_holds(name, src, size));
	/* mapped read-write: a write shows in the segment */
	((unsigned char *)s.addr)[size - 1] ^= 0xff;
	src[size - 1] ^= 0xff;
	CHECK(seg_holds(name, src, size));

	CHECK_EQ_INT(shm_segment_create_copy(&t, name, size, other, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_SHM_EXISTS);
	CHECK_STR_CONTAINS(err.message, name);
	CHECK(t.addr == NULL);
	CHECK(seg_holds(name, src, size));
	CHECK(memcmp(s.addr, src, size) == 0);

	shm_segment_close(&s);
	CHECK_EQ_INT(shm_segment_unlink(name, &err), 0);
	CHECK(!shmtest_exists(name));
	free(src);
	free(other);
	shmtest_cleanup(TAG);
}

static void
test_rename(void)
{
	struct shm_segment s, r;
	struct ipc_error err;
	char a[128], b[128], c[128];
	snprintf(a, sizeof a, "%s", shmtest_name(TAG, "s0"));
	snprintf(b, sizeof b, "%s", shmtest_name(TAG, "u5"));
	snprintf(c, sizeof c, "%s", shmtest_name(TAG, "u6"));
	unsigned char *pa = pattern(5000, 3), *pc = pattern(7000, 4);
	CHECK_EQ_INT(shm_segment_create_copy(&s, a, 5000, pa, &err), 0);
	shm_segment_close(&s);

	CHECK_EQ_INT(shm_segment_rename(a, b, &err), 0);
	CHECK(!shmtest_exists(a));
	CHECK(shmtest_exists(b));
	CHECK(seg_holds(b, pa, 5000));
	CHECK_EQ_INT(shm_segment_open(&r, a, SHM_READ, 0, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_SHM_NOENT);

	/* the source is gone (somebody else took it) */
	CHECK_EQ_INT(shm_segment_rename(a, c, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_SHM_NOENT);
	CHECK_STR_CONTAINS(err.message, a);
	CHECK(!shmtest_exists(c));

	/* the target exists: neither segment changes */
	CHECK_EQ_INT(shm_segment_create_copy(&s, c, 7000, pc, &err), 0);
	shm_segment_close(&s);
	CHECK_EQ_INT(shm_segment_rename(b, c, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_SHM_EXISTS);
	CHECK_STR_CONTAINS(err.message, c);
	CHECK(seg_holds(b, pa, 5000));
	CHECK(seg_holds(c, pc, 7000));

	const char *bad[] = {"noslash", "/", "/a/", "rel/a", ""};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		CHECK_EQ_INT(shm_segment_rename(bad[i], a, &err), -1);
		CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
		CHECK_EQ_INT(shm_segment_rename(b, bad[i], &err), -1);
		CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
	}
	CHECK_EQ_INT(shm_segment_rename(NULL, a, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
	CHECK(seg_holds(b, pa, 5000));
	CHECK(!shmtest_exists(a));

	CHECK_EQ_INT(shm_segment_unlink(b, &err), 0);
	CHECK_EQ_INT(shm_segment_unlink(c, &err), 0);
	CHECK(!shmtest_exists(b));
	CHECK(!shmtest_exists(c));
	free(pa);
	free(pc);
	shmtest_cleanup(TAG);
}

/* A name with a second '/' is a file: created, opened, sized, renamed and
 * removed like a segment, outside /dev/shm. */
static void
test_file_segments(void)
{
	struct shm_segment s, r;
	struct ipc_error err;
	char a[512], b[512], c[512];
	snprintf(a, sizeof a, "%s/global.g1", harness_tmpdir());
	snprintf(b, sizeof b, "%s/global.g2", harness_tmpdir());
	snprintf(c, sizeof c, "%s/no-such-dir/global.g1", harness_tmpdir());
	unsigned char *pa = pattern(9000, 5);
	CHECK_EQ_INT(shm_segment_create_copy(&s, a, 9000, pa, &err), 0);
	CHECK(memcmp(s.addr, pa, 9000) == 0);
	shm_segment_close(&s);
	uint64_t size = 0;
	CHECK(shm_segment_size(a, &size) && size == 9000);
	CHECK(access(a, F_OK) == 0);
	CHECK_EQ_INT(shm_segment_rename(a, b, &err), 0);
	CHECK(access(a, F_OK) != 0 && access(b, F_OK) == 0);
	CHECK_EQ_INT(shm_segment_open(&r, b, SHM_READ, 9000, &err), 0);
	CHECK(memcmp(r.addr, pa, 9000) == 0);
	shm_segment_close(&r);
	CHECK_EQ_INT(shm_segment_create(&s, b, 10, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_SHM_EXISTS);
	CHECK_EQ_INT(shm_segment_create(&s, c, 10, &err), -1);
	CHECK_STR_CONTAINS(err.message, c);
	CHECK_EQ_INT(shm_segment_unlink(b, &err), 0);
	CHECK(access(b, F_OK) != 0);
	CHECK(!shm_segment_size(b, &size));

	/* a path prefix removes the matching files of its directory only */
	char keep[512], prefix[512];
	snprintf(keep, sizeof keep, "%s/other.g1", harness_tmpdir());
	snprintf(prefix, sizeof prefix, "%s/global.g", harness_tmpdir());
	CHECK_EQ_INT(shm_segment_create_copy(&s, a, 9000, pa, &err), 0);
	shm_segment_close(&s);
	CHECK_EQ_INT(shm_segment_create_copy(&s, b, 9000, pa, &err), 0);
	shm_segment_close(&s);
	CHECK_EQ_INT(shm_segment_create_copy(&s, keep, 9000, pa, &err), 0);
	shm_segment_close(&s);
	unsigned removed = 0;
	CHECK_EQ_INT(shm_remove_prefix(prefix, &removed, &err), 0);
	CHECK_EQ_INT(removed, 2);
	CHECK(access(a, F_OK) != 0 && access(b, F_OK) != 0);
	CHECK(access(keep, F_OK) == 0);
	CHECK_EQ_INT(shm_segment_unlink(keep, &err), 0);
	free(pa);
}

/* Whether this kernel faults pages in on MADV_POPULATE_READ. */
static int
populate_read_works(void)
{
#ifdef MADV_POPULATE_READ
	long page = sysconf(_SC_PAGESIZE);
	void *p = mmap(NULL, (size_t)page, PROT_READ,
	               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 0;
	int ok = madvise(p, (size_t)page, MADV_POPULATE_READ) == 0;
	munmap(p, (size_t)page);
	return ok;
#else
	return 0;
#endif
}

static void
test_lazy_prefetch_release(void)
{
	struct shm_segment w, r;
	struct ipc_error err;
	const size_t size = (24u << 20) + 4567;
	const size_t off = (5u << 20) + 99, len = 8u << 20;
	const long page = sysconf(_SC_PAGESIZE);
	const long span = (long)(len / (size_t)page);
	unsigned char *src = pattern(size, 5);
	const char *name = shmtest_name(TAG, "g9");
	CHECK_EQ_INT(shm_segment_create_copy(&w, name, size, src, &err), 0);
	shm_segment_close(&w);

	/* a plain read-only mapping comes with its pages in place */
	long before = resident_pages();
	CHECK_EQ_INT(shm_segment_open(&r, name, SHM_READ, size, &err), 0);
	CHECK(resident_pages() - before >=
	      (long)(size / (size_t)page) * 9 / 10);
	shm_segment_close(&r);

	before = resident_pages();
	CHECK_EQ_INT(
	    shm_segment_open(&r, name, SHM_READ | SHM_LAZY, size, &err), 0);
	CHECK_EQ_INT(r.size, size);
	CHECK_EQ_INT(r.writable, 0);
	CHECK(resident_pages() - before < span / 10);

	shm_segment_prefetch(&r, off, len);
	if (populate_read_works())
		CHECK(resident_pages() - before >= span * 9 / 10);
	CHECK(memcmp((char *)r.addr + off, src + off, len) == 0);

	long faulted = resident_pages();
	shm_segment_release(&r, off, len);
	CHECK(faulted - resident_pages() >= span * 9 / 10);
	/* only this process's pages went: the bytes read back the same */
	CHECK(memcmp(r.addr, src, size) == 0);
	shm_segment_close(&r);
	CHECK(seg_holds(name, src, size));

	/* out of range and closed mappings are left alone */
	CHECK_EQ_INT(shm_segment_open(&r, name, SHM_READ | SHM_LAZY, 0, &err),
	             0);
	shm_segment_prefetch(&r, size, 10);
	shm_segment_prefetch(&r, size - 10, 1000);
	CHECK(memcmp((char *)r.addr + size - 10, src + size - 10, 10) == 0);
	shm_segment_close(&r);
	shm_segment_prefetch(&r, 0, 10);

	CHECK_EQ_INT(shm_segment_unlink(name, &err), 0);
	CHECK(!shmtest_exists(name));
	free(src);
	shmtest_cleanup(TAG);
}

int
main(void)
{
	RUN(test_create_open_share);
	RUN(test_read_only_mapping_faults);
	RUN(test_errors);
	RUN(test_remove_prefix);
	RUN(test_full_dev_shm);
	RUN(test_release_drops_pages);
	RUN(test_create_copy);
	RUN(test_rename);
	RUN(test_file_segments);
	RUN(test_lazy_prefetch_release);
	shmtest_cleanup(TAG);
	return harness_finish();
}
