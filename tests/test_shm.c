/* test_shm.c: segments are memfds sealed against resizing (nothing in
 * /dev/shm, gone with their last descriptor), or files when named by an
 * absolute path (created exclusively, renamed without replacing, swept by
 * prefix); a read-only seal stops every new writer while the creator's
 * mapping keeps writing; a write seal is refused while anyone maps the
 * segment writable; a received descriptor is checked for its seals and
 * size; a peer cannot make a reader SIGBUS by truncating; and a lazy
 * mapping is brought in and dropped in windows without losing bytes. */
#define _GNU_SOURCE /* memfd_create, F_ADD_SEALS, fallocate */
#include "harness.h"
#include "shmtest.h"
#include "shm.h"

#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define TAG "shmtest"

#define SIZE_SEALS (F_SEAL_SHRINK | F_SEAL_GROW)

/* The seals of fd (-1 when it has none to tell). */
static int
seals_of(int fd)
{
	return fcntl(fd, F_GET_SEALS);
}

/* Whether fd carries every seal in want. */
static int
sealed(int fd, int want)
{
	int s = seals_of(fd);
	return s >= 0 && (s & want) == want;
}

/* How many descriptors this process has open. */
static int
open_fds(void)
{
	int n = 0;
	for (int fd = 0; fd < 1024; fd++)
		n += fcntl(fd, F_GETFD) != -1;
	return n;
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

/* Whether descriptor fd holds exactly size bytes equal to want (read with
 * pread, no mapping). */
static int
fd_holds(int fd, const void *want, size_t size)
{
	struct stat st;
	if (fstat(fd, &st) != 0 || (size_t)st.st_size != size)
		return 0;
	unsigned char *buf = malloc(size);
	if (buf == NULL)
		return 0;
	size_t off = 0;
	while (off < size) {
		ssize_t r = pread(fd, buf + off, size - off, (off_t)off);
		if (r <= 0)
			break;
		off += (size_t)r;
	}
	int same = off == size && memcmp(buf, want, size) == 0;
	free(buf);
	return same;
}

/* Whether the file at path holds exactly size bytes equal to want. */
static int
file_holds(const char *path, const void *want, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	int same = fd_holds(fd, want, size);
	close(fd);
	return same;
}

/* A memfd made by hand, without the API: size bytes, then seals added
 * (allow_sealing 0: made without MFD_ALLOW_SEALING). */
static int
raw_memfd(size_t size, int allow_sealing, int seals)
{
	int fd =
	    memfd_create("cohort.shmtest.raw",
	                 MFD_CLOEXEC | (allow_sealing ? MFD_ALLOW_SEALING : 0));
	CHECK(fd >= 0);
	if (fd >= 0 && size > 0)
		CHECK(ftruncate(fd, (off_t)size) == 0);
	if (fd >= 0 && seals != 0)
		CHECK(fcntl(fd, F_ADD_SEALS, seals) == 0);
	return fd;
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

/* A new segment is a memfd of its size, sealed against resizing, its pages
 * reserved and mapped read-write, nowhere in /dev/shm, and gone with its
 * last descriptor and mapping. */
static void
test_create_memfd(void)
{
	struct shm_segment w;
	struct ipc_error err;
	const char *label = shmtest_label(TAG, "g1");
	CHECK_EQ_INT(shm_segment_create(&w, label, 10000, &err), 0);
	CHECK(w.addr != NULL);
	CHECK_EQ_INT(w.size, 10000);
	CHECK_EQ_INT(w.writable, 1);
	CHECK_EQ_INT(w.lazy, 0);
	CHECK_EQ_INT(w.cached, 0);
	CHECK(strcmp(w.name, label) == 0);
	CHECK(w.fd >= 0 && !shmtest_fd_closed(w.fd));
	CHECK(!shmtest_in_dev_shm(label));
	CHECK_EQ_INT(shmtest_memfd_fds(label), 1);
	CHECK_EQ_INT(shmtest_memfd_maps(label, "rw-s"), 1);

	/* sealed against resizing only: its creator still writes it */
	int seals = seals_of(w.fd);
	CHECK(seals >= 0);
	CHECK_EQ_INT(seals & SIZE_SEALS, SIZE_SEALS);
	CHECK_EQ_INT(seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE), 0);
	errno = 0;
	CHECK_EQ_INT(ftruncate(w.fd, 5000), -1);
	CHECK_EQ_INT(errno, EPERM);
	errno = 0;
	CHECK_EQ_INT(ftruncate(w.fd, 20000), -1);
	CHECK_EQ_INT(errno, EPERM);
	errno = 0;
	CHECK_EQ_INT(ftruncate(w.fd, 0), -1);
	CHECK_EQ_INT(errno, EPERM);
	struct stat st;
	CHECK(fstat(w.fd, &st) == 0);
	CHECK_EQ_INT(st.st_size, 10000);
	/* the pages are reserved up front */
	CHECK((uint64_t)st.st_blocks * 512 >= 10000);

	/* zeroed, and a write through the mapping is the segment's */
	unsigned char zero[10000] = {0}, want[10000];
	CHECK(memcmp(w.addr, zero, sizeof zero) == 0);
	memset(w.addr, 0x5a, 10000);
	((unsigned char *)w.addr)[42] = 7;
	memset(want, 0x5a, sizeof want);
	want[42] = 7;
	CHECK(fd_holds(w.fd, want, sizeof want));

	/* a second descriptor keeps it alive after the segment is closed */
	int keep = dup(w.fd);
	CHECK(keep >= 0);
	shm_segment_close(&w);
	CHECK(w.addr == NULL);
	CHECK_EQ_INT(w.fd, -1);
	CHECK_EQ_INT(shmtest_memfd_maps(label, NULL), 0);
	CHECK_EQ_INT(shmtest_memfd_fds(label), 1);
	CHECK(fd_holds(keep, want, sizeof want));
	CHECK_EQ_INT(close(keep), 0);
	CHECK_EQ_INT(shmtest_memfd_fds(label), 0);
	CHECK(!shmtest_in_dev_shm(label));

	/* close is idempotent, also on a zeroed struct with fd -1 */
	shm_segment_close(&w);
	CHECK(w.addr == NULL);
	struct shm_segment zs;
	memset(&zs, 0, sizeof zs);
	zs.fd = -1;
	shm_segment_close(&zs);
	CHECK(zs.addr == NULL);
	CHECK_EQ_INT(zs.fd, -1);

	/* unlinking a memfd label is a no-op */
	CHECK_EQ_INT(shm_segment_unlink(label, &err), 0);
}

/* A read-only mapping faults on a write (the process dies of SIGSEGV) and
 * the segment keeps its bytes. */
static void
test_read_only_mapping_faults(void)
{
	struct shm_segment w, r;
	struct ipc_error err;
	const char *label = shmtest_label(TAG, "g2");
	CHECK_EQ_INT(shm_segment_create(&w, label, 4096, &err), 0);
	CHECK_EQ_INT(shm_segment_from_fd(&r, dup(w.fd), label, SHM_SEALED_SIZE,
	                                 SHM_READ, 4096, &err),
	             0);
	CHECK_EQ_INT(r.writable, 0);
	CHECK_EQ_INT(shmtest_memfd_maps(label, "r--s"), 1);
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
}

/* create_copy fills a new segment from a buffer (across the 8 MiB pieces
 * of the copy); labels need not be unique, each segment is its own. */
static void
test_create_copy(void)
{
	struct shm_segment s, t;
	struct ipc_error err;
	const size_t size = (9u << 20) + 123;
	unsigned char *src = pattern(size, 1), *other = pattern(size, 2);
	const char *label = shmtest_label(TAG, "u3");
	CHECK_EQ_INT(shm_segment_create_copy(&s, label, size, src, &err), 0);
	CHECK(s.addr != NULL);
	CHECK_EQ_INT(s.size, size);
	CHECK_EQ_INT(s.writable, 1);
	CHECK(sealed(s.fd, SIZE_SEALS));
	CHECK(memcmp(s.addr, src, size) == 0);
	CHECK(fd_holds(s.fd, src, size));
	errno = 0;
	CHECK_EQ_INT(ftruncate(s.fd, (off_t)size / 2), -1);
	CHECK_EQ_INT(errno, EPERM);
	/* mapped read-write: a write shows in the segment */
	((unsigned char *)s.addr)[size - 1] ^= 0xff;
	src[size - 1] ^= 0xff;
	CHECK(fd_holds(s.fd, src, size));

	/* the same label again: another memfd, the first one untouched */
	CHECK_EQ_INT(shm_segment_create_copy(&t, label, size, other, &err), 0);
	struct stat a, b;
	CHECK(fstat(s.fd, &a) == 0 && fstat(t.fd, &b) == 0);
	CHECK(a.st_ino != b.st_ino);
	CHECK(memcmp(t.addr, other, size) == 0);
	CHECK(memcmp(s.addr, src, size) == 0);
	CHECK_EQ_INT(shmtest_memfd_fds(label), 2);
	CHECK(!shmtest_in_dev_shm(label));
	shm_segment_close(&t);
	shm_segment_close(&s);
	CHECK_EQ_INT(shmtest_memfd_fds(label), 0);
	CHECK_EQ_INT(shmtest_memfd_maps(label, NULL), 0);
	free(src);
	free(other);
}

/* create_empty: a memfd sealed against resizing, with neither mapping nor
 * pages, that shm_fd_fill fills and a later mapping reads. */
static void
test_create_empty(void)
{
	struct shm_segment s, m;
	struct ipc_error err;
	const size_t size = 3 * 4096 + 17;
	const char *label = shmtest_label(TAG, "u4");
	CHECK_EQ_INT(shm_segment_create_empty(&s, label, size, &err), 0);
	CHECK(s.addr == NULL);
	CHECK(s.fd >= 0 && !shmtest_fd_closed(s.fd));
	CHECK_EQ_INT(s.size, size);
	CHECK_EQ_INT(s.writable, 0);
	CHECK(strcmp(s.name, label) == 0);
	CHECK(sealed(s.fd, SIZE_SEALS));
	CHECK_EQ_INT(seals_of(s.fd) & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE), 0);
	struct stat st;
	CHECK(fstat(s.fd, &st) == 0);
	CHECK_EQ_INT(st.st_size, size);
	CHECK_EQ_INT(st.st_blocks, 0);
	CHECK_EQ_INT(shmtest_memfd_maps(label, NULL), 0);
	CHECK(!shmtest_in_dev_shm(label));
	errno = 0;
	CHECK_EQ_INT(ftruncate(s.fd, (off_t)size + 4096), -1);
	CHECK_EQ_INT(errno, EPERM);

	unsigned char *src = pattern(size, 7);
	CHECK_EQ_INT(shm_fd_fill(s.fd, s.name, src, size, &err), 0);
	CHECK(fd_holds(s.fd, src, size));
	CHECK_EQ_INT(shm_segment_from_fd(&m, dup(s.fd), label, SHM_SEALED_SIZE,
	                                 SHM_WRITE, size, &err),
	             0);
	CHECK(memcmp(m.addr, src, size) == 0);
	shm_segment_close(&m);
	shm_segment_close(&s);
	CHECK_EQ_INT(shmtest_memfd_fds(label), 0);

	/* an empty segment is never a file */
	const char *path = shmtest_path("empty.u4");
	CHECK_EQ_INT(shm_segment_create_empty(&s, path, size, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
	CHECK_STR_CONTAINS(err.message, path);
	CHECK(access(path, F_OK) != 0);
	free(src);
}

/* Sizes of 0 and names that are neither a label nor an absolute path are
 * refused, leaving no descriptor behind. */
static void
test_errors(void)
{
	struct shm_segment b;
	struct ipc_error err;
	const char *label = shmtest_label(TAG, "zero");
	unsigned char byte = 1;
	int fds = open_fds();
	CHECK_EQ_INT(shm_segment_create(&b, label, 0, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
	CHECK_STR_CONTAINS(err.message, "size 0");
	CHECK(b.addr == NULL);
	CHECK_EQ_INT(b.fd, -1);
	CHECK_EQ_INT(shm_segment_create_copy(&b, label, 0, &byte, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
	CHECK_EQ_INT(shm_segment_create_empty(&b, label, 0, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
	CHECK_EQ_INT(b.fd, -1);
	CHECK_EQ_INT(shm_segment_create(&b, shmtest_path("zero"), 0, &err), -1);
	CHECK(access(shmtest_path("zero"), F_OK) != 0);

	char longlabel[300], okabel[300], longpath[300];
	memset(longlabel, 'x', 241);
	longlabel[241] = '\0';
	memset(okabel, 'y', 240);
	okabel[240] = '\0';
	longpath[0] = '/';
	memset(longpath + 1, 'z', 255);
	longpath[256] = '\0';
	const char *bad[] = {"",        "a/b",     "cohort.x/g1", "/",
	                     "/tmp/a/", longlabel, longpath};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		CHECK_EQ_INT(shm_segment_create(&b, bad[i], 10, &err), -1);
		CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
		CHECK_STR_CONTAINS(err.message, "invalid");
		CHECK(b.addr == NULL);
		CHECK_EQ_INT(
		    shm_segment_create_copy(&b, bad[i], 1, &byte, &err), -1);
		CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
		CHECK_EQ_INT(shm_segment_create_empty(&b, bad[i], 10, &err),
		             -1);
		CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
		CHECK_EQ_INT(shm_segment_unlink(bad[i], &err), -1);
		CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
	}
	CHECK_EQ_INT(shm_segment_create(&b, NULL, 10, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
	CHECK_EQ_INT(shm_segment_create_empty(&b, NULL, 10, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
	CHECK_EQ_INT(shm_segment_unlink(NULL, &err), -1);
	CHECK_EQ_INT(open_fds(), fds);

	/* the longest label there is works */
	CHECK_EQ_INT(shm_segment_create(&b, okabel, 10, &err), 0);
	CHECK_EQ_INT(shmtest_memfd_fds(okabel), 1);
	shm_segment_close(&b);
	CHECK_EQ_INT(open_fds(), fds);
}

/* An absolute path makes a plain file, created exclusively and removed by
 * unlink; it carries no seals. */
static void
test_file_segments(void)
{
	struct shm_segment s, t;
	struct ipc_error err;
	const char *a = shmtest_path("global.g1");
	const char *missing = shmtest_path("no-such-dir/global.g1");
	unsigned char *pa = pattern(9000, 5), *pb = pattern(9000, 6);
	CHECK_EQ_INT(shm_segment_create_copy(&s, a, 9000, pa, &err), 0);
	CHECK(strcmp(s.name, a) == 0);
	CHECK_EQ_INT(s.writable, 1);
	CHECK(memcmp(s.addr, pa, 9000) == 0);
	CHECK(file_holds(a, pa, 9000));
	CHECK(seals_of(s.fd) < 0);
	struct stat st;
	CHECK(stat(a, &st) == 0 && S_ISREG(st.st_mode));
	CHECK_EQ_INT(st.st_mode & 0777, 0600);
	/* a write through the mapping reaches the file */
	((unsigned char *)s.addr)[8999] ^= 0x55;
	pa[8999] ^= 0x55;
	CHECK(file_holds(a, pa, 9000));

	/* exclusive: a second create of the path fails and changes nothing */
	CHECK_EQ_INT(shm_segment_create(&t, a, 100, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_SHM_EXISTS);
	CHECK_STR_CONTAINS(err.message, a);
	CHECK(t.addr == NULL);
	CHECK_EQ_INT(t.fd, -1);
	CHECK_EQ_INT(shm_segment_create_copy(&t, a, 9000, pb, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_SHM_EXISTS);
	CHECK(file_holds(a, pa, 9000));
	CHECK(memcmp(s.addr, pa, 9000) == 0);

	/* a file is no sealed memfd: a reader refuses it */
	int fd = dup(s.fd);
	CHECK_EQ_INT(shm_fd_check(fd, a, SHM_SEALED_SIZE, 0, &st, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_SHM_SEALS);
	CHECK(shmtest_fd_closed(fd));
	/* nor can it be sealed */
	CHECK_EQ_INT(shm_segment_seal_readonly(&s, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
	CHECK_EQ_INT(shm_segment_seal_write(&s, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);

	shm_segment_close(&s);
	CHECK(file_holds(a, pa, 9000));
	CHECK_EQ_INT(shm_segment_unlink(a, &err), 0);
	CHECK(access(a, F_OK) != 0);
	CHECK_EQ_INT(shm_segment_unlink(a, &err), 0);

	/* no directory: an error naming the path, no file */
	CHECK_EQ_INT(shm_segment_create(&s, missing, 10, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_IO);
	CHECK_STR_CONTAINS(err.message, missing);
	CHECK(s.addr == NULL);
	free(pa);
	free(pb);
}

/* rename moves a file without replacing another (RENAME_NOREPLACE),
 * relabels a memfd, and never mixes the two. */
static void
test_rename(void)
{
	struct shm_segment s, t, m;
	struct ipc_error err;
	char a[512], b[512], c[512];
	snprintf(a, sizeof a, "%s", shmtest_path("s0"));
	snprintf(b, sizeof b, "%s", shmtest_path("u5"));
	snprintf(c, sizeof c, "%s", shmtest_path("u6"));
	unsigned char *pa = pattern(5000, 3), *pc = pattern(7000, 4);
	CHECK_EQ_INT(shm_segment_create_copy(&s, a, 5000, pa, &err), 0);

	CHECK_EQ_INT(shm_segment_rename(&s, b, &err), 0);
	CHECK(strcmp(s.name, b) == 0);
	CHECK(access(a, F_OK) != 0);
	CHECK(file_holds(b, pa, 5000));
	/* the mapping is the renamed file's */
	((unsigned char *)s.addr)[0] ^= 1;
	pa[0] ^= 1;
	CHECK(file_holds(b, pa, 5000));

	/* the target exists: neither file changes, nor the name */
	CHECK_EQ_INT(shm_segment_create_copy(&t, c, 7000, pc, &err), 0);
	CHECK_EQ_INT(shm_segment_rename(&s, c, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_SHM_EXISTS);
	CHECK_STR_CONTAINS(err.message, c);
	CHECK(strcmp(s.name, b) == 0);
	CHECK(file_holds(b, pa, 5000));
	CHECK(file_holds(c, pc, 7000));

	/* the source is gone (somebody else took it) */
	CHECK_EQ_INT(shm_segment_unlink(c, &err), 0);
	CHECK_EQ_INT(shm_segment_rename(&t, a, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_SHM_NOENT);
	CHECK_STR_CONTAINS(err.message, c);
	CHECK(strcmp(t.name, c) == 0);
	CHECK(access(a, F_OK) != 0);
	shm_segment_close(&t);

	/* a memfd is only relabelled; the kernel's label stays */
	const char *l1 = shmtest_label(TAG, "r1");
	char l2[128];
	snprintf(l2, sizeof l2, "%s", shmtest_label(TAG, "r2"));
	CHECK_EQ_INT(shm_segment_create(&m, l1, 100, &err), 0);
	int fd = m.fd;
	void *addr = m.addr;
	CHECK_EQ_INT(shm_segment_rename(&m, l2, &err), 0);
	CHECK(strcmp(m.name, l2) == 0);
	CHECK_EQ_INT(m.fd, fd);
	CHECK(m.addr == addr);
	CHECK_EQ_INT(shmtest_memfd_fds(l1), 1);
	CHECK(!shmtest_in_dev_shm(l2));

	/* file <-> memfd is an error and changes nothing */
	CHECK_EQ_INT(shm_segment_rename(&m, a, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
	CHECK(strcmp(m.name, l2) == 0);
	CHECK(access(a, F_OK) != 0);
	CHECK_EQ_INT(shm_segment_rename(&s, l1, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
	CHECK(strcmp(s.name, b) == 0);
	CHECK(file_holds(b, pa, 5000));

	/* bad names, on either side */
	const char *bad[] = {"", "a/b", "/", "/tmp/a/"};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		CHECK_EQ_INT(shm_segment_rename(&s, bad[i], &err), -1);
		CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
		CHECK_EQ_INT(shm_segment_rename(&m, bad[i], &err), -1);
		CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
	}
	CHECK_EQ_INT(shm_segment_rename(&s, NULL, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
	CHECK(strcmp(s.name, b) == 0);
	CHECK(strcmp(m.name, l2) == 0);
	CHECK(file_holds(b, pa, 5000));
	struct shm_segment z;
	memset(&z, 0, sizeof z);
	z.fd = -1;
	CHECK_EQ_INT(shm_segment_rename(&z, a, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);

	shm_segment_close(&m);
	shm_segment_close(&s);
	CHECK_EQ_INT(shm_segment_unlink(b, &err), 0);
	CHECK(access(b, F_OK) != 0);
	free(pa);
	free(pc);
}

/* A path prefix removes the matching files of its directory only, and
 * counts them; anything but "/dir/base" is refused. */
static void
test_remove_prefix(void)
{
	struct shm_segment s;
	struct ipc_error err;
	char names[5][512];
	const char *files[] = {"job.g1", "job.u12", "jobx.g1", "job",
	                       "ajob.g1"};
	for (int i = 0; i < 5; i++) {
		snprintf(names[i], sizeof names[i], "%s",
		         shmtest_path(files[i]));
		CHECK_EQ_INT(shm_segment_create(&s, names[i], 64, &err), 0);
		shm_segment_close(&s);
	}
	/* a memfd with a label like the prefix is nobody's file */
	CHECK_EQ_INT(shm_segment_create(&s, "job.g7", 64, &err), 0);
	unsigned removed = 99;
	CHECK_EQ_INT(shm_remove_prefix(shmtest_path("job."), &removed, &err),
	             0);
	CHECK_EQ_INT(removed, 2);
	CHECK(access(names[0], F_OK) != 0);
	CHECK(access(names[1], F_OK) != 0);
	for (int i = 2; i < 5; i++)
		CHECK(access(names[i], F_OK) == 0);
	shm_segment_close(&s);

	/* nothing left to remove; removed may be NULL */
	CHECK_EQ_INT(shm_remove_prefix(shmtest_path("job."), &removed, &err),
	             0);
	CHECK_EQ_INT(removed, 0);
	CHECK_EQ_INT(shm_remove_prefix(shmtest_path("jobx"), NULL, &err), 0);
	CHECK(access(names[2], F_OK) != 0);

	char slash[512], longp[300];
	snprintf(slash, sizeof slash, "%s/", harness_tmpdir());
	longp[0] = '/';
	memset(longp + 1, 'p', 255);
	longp[256] = '\0';
	const char *bad[] = {"", "job.", "cohort.shmtest.", "/", slash, longp};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		removed = 99;
		CHECK_EQ_INT(shm_remove_prefix(bad[i], &removed, &err), -1);
		CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
		CHECK_EQ_INT(removed, 0);
	}
	CHECK_EQ_INT(shm_remove_prefix(NULL, &removed, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
	CHECK(access(names[3], F_OK) == 0 && access(names[4], F_OK) == 0);

	/* a directory that does not exist is an error naming it */
	CHECK_EQ_INT(
	    shm_remove_prefix(shmtest_path("no-such-dir/job."), &removed, &err),
	    -1);
	CHECK_EQ_INT(err.code, IPC_E_IO);
	CHECK_STR_CONTAINS(err.message, "no-such-dir");

	CHECK_EQ_INT(shmtest_cleanup("job"), 1);
	CHECK_EQ_INT(shmtest_cleanup("ajob"), 1);
	CHECK(access(names[3], F_OK) != 0 && access(names[4], F_OK) != 0);
}

/* After seal_readonly the creator's mapping still writes, but write(), a
 * writable shared mapping and hole punching are refused; a read-only
 * mapping works and sees the creator's writes. */
static void
test_seal_readonly(void)
{
	struct shm_segment w, r;
	struct ipc_error err;
	const long page = sysconf(_SC_PAGESIZE);
	const size_t size = 3 * (size_t)page;
	const char *label = shmtest_label(TAG, "g5");
	CHECK_EQ_INT(shm_segment_create(&w, label, size, &err), 0);
	unsigned char *p = w.addr;
	memset(p, 0x21, size);
	CHECK_EQ_INT(shm_segment_seal_readonly(&w, &err), 0);
	CHECK(sealed(w.fd, SIZE_SEALS | F_SEAL_FUTURE_WRITE));
	CHECK_EQ_INT(seals_of(w.fd) & F_SEAL_WRITE, 0);

	/* the creator's mapping keeps writing */
	p[0] = 0x42;
	p[size - 1] = 0x43;
	unsigned char *want = malloc(size);
	CHECK(want != NULL);
	memset(want, 0x21, size);
	want[0] = 0x42;
	want[size - 1] = 0x43;
	CHECK(fd_holds(w.fd, want, size));

	/* nobody else writes */
	unsigned char junk[16] = {0};
	errno = 0;
	CHECK_EQ_INT(write(w.fd, junk, sizeof junk), -1);
	CHECK_EQ_INT(errno, EPERM);
	errno = 0;
	CHECK_EQ_INT(pwrite(w.fd, junk, sizeof junk, 100), -1);
	CHECK_EQ_INT(errno, EPERM);
	errno = 0;
	void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, w.fd, 0);
	CHECK(m == MAP_FAILED);
	CHECK_EQ_INT(errno, EPERM);
	if (m != MAP_FAILED)
		munmap(m, size);
	errno = 0;
	CHECK_EQ_INT(fallocate(w.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
	                       0, (off_t)size),
	             -1);
	CHECK_EQ_INT(errno, EPERM);
	CHECK(fd_holds(w.fd, want, size));
	CHECK_EQ_INT(shm_fd_fill(w.fd, label, junk, sizeof junk, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_IO);
	CHECK_STR_CONTAINS(err.message, label);
	CHECK(fd_holds(w.fd, want, size));

	/* through the API: a writable mapping fails (its fd closed), a
	 * read-only one works and sees the creator's writes */
	int fd = dup(w.fd);
	CHECK_EQ_INT(shm_segment_map(&r, label, fd, size, SHM_WRITE, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_IO);
	CHECK(shmtest_fd_closed(fd));
	CHECK_EQ_INT(shm_segment_from_fd(&r, dup(w.fd), label,
	                                 SHM_SEALED_SIZE | SHM_SEALED_READONLY,
	                                 SHM_READ, size, &err),
	             0);
	CHECK_EQ_INT(r.writable, 0);
	CHECK(memcmp(r.addr, want, size) == 0);
	p[page] = 0x99;
	CHECK_EQ_INT(((unsigned char *)r.addr)[page], 0x99);
	/* nor can the read-only mapping be made writable */
	CHECK(mprotect(r.addr, size, PROT_READ | PROT_WRITE) != 0);
	shm_segment_close(&r);

	/* sealing twice is fine; a closed segment cannot be sealed */
	CHECK_EQ_INT(shm_segment_seal_readonly(&w, &err), 0);
	shm_segment_close(&w);
	CHECK_EQ_INT(shm_segment_seal_readonly(&w, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
	CHECK_EQ_INT(shm_segment_seal_write(&w, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
	free(want);
}

/* shm_fd_check takes only sealed memfds of the size wanted, and closes
 * every descriptor it refuses. */
static void
test_fd_check(void)
{
	struct ipc_error err;
	struct stat st;
	const size_t size = 5000;
	const char *label = shmtest_label(TAG, "g6");
	int ro = shmtest_memfd_readonly(label, size, 0x31);
	int rw = shmtest_memfd(shmtest_label(TAG, "u6"), size, 0x32);

	/* a read-only segment passes every check */
	int fd = dup(ro);
	memset(&st, 0, sizeof st);
	CHECK_EQ_INT(shm_fd_check(fd, label,
	                          SHM_SEALED_SIZE | SHM_SEALED_READONLY, size,
	                          &st, &err),
	             0);
	CHECK_EQ_INT(st.st_size, size);
	CHECK(!shmtest_fd_closed(fd));
	close(fd);
	fd = dup(ro);
	CHECK_EQ_INT(shm_fd_check(fd, label, SHM_SEALED_READONLY, 0, &st, &err),
	             0);
	close(fd);

	/* sealed against resizing only: enough for an update, not for a
	 * region only its creator may write */
	fd = dup(rw);
	CHECK_EQ_INT(shm_fd_check(fd, "upd", SHM_SEALED_SIZE, size, &st, &err),
	             0);
	close(fd);
	fd = dup(rw);
	CHECK_EQ_INT(shm_fd_check(fd, "the global model", SHM_SEALED_READONLY,
	                          0, &st, &err),
	             -1);
	CHECK_EQ_INT(err.code, IPC_E_SHM_SEALS);
	CHECK_STR_CONTAINS(err.message, "the global model");
	CHECK_STR_CONTAINS(err.message, "not sealed against writes");
	CHECK(shmtest_fd_closed(fd));

	/* a write seal counts as read-only */
	struct shm_segment u;
	CHECK_EQ_INT(
	    shm_segment_create(&u, shmtest_label(TAG, "u7"), size, &err), 0);
	shm_segment_unmap(&u);
	CHECK_EQ_INT(shm_segment_seal_write(&u, &err), 0);
	fd = dup(u.fd);
	CHECK_EQ_INT(
	    shm_fd_check(fd, "upd", SHM_SEALED_READONLY, size, &st, &err), 0);
	close(fd);
	shm_segment_close(&u);

	/* too small */
	fd = dup(ro);
	CHECK_EQ_INT(
	    shm_fd_check(fd, label, SHM_SEALED_SIZE, size + 1, &st, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_SHM_SIZE);
	CHECK_STR_CONTAINS(err.message, "holds 5000 bytes but at least 5001");
	CHECK(shmtest_fd_closed(fd));
	/* empty, though sealed */
	fd = raw_memfd(0, 1, SIZE_SEALS);
	CHECK_EQ_INT(shm_fd_check(fd, "empty", SHM_SEALED_SIZE, 0, &st, &err),
	             -1);
	CHECK_EQ_INT(err.code, IPC_E_SHM_SIZE);
	CHECK(shmtest_fd_closed(fd));

	/* memfds without the size seals */
	int unsealed[] = {
	    raw_memfd(size, 1, 0),
	    raw_memfd(size, 1, F_SEAL_SHRINK),
	    raw_memfd(size, 1, F_SEAL_GROW),
	    raw_memfd(size, 1, F_SEAL_FUTURE_WRITE),
	    raw_memfd(size, 0, 0), /* F_SEAL_SEAL only */
	};
	for (size_t i = 0; i < ARRAY_LEN(unsealed); i++) {
		CHECK_EQ_INT(shm_fd_check(unsealed[i], "peer", SHM_SEALED_SIZE,
		                          0, &st, &err),
		             -1);
		CHECK_EQ_INT(err.code, IPC_E_SHM_SEALS);
		CHECK_STR_CONTAINS(err.message, "not a memfd sealed");
		CHECK(shmtest_fd_closed(unsealed[i]));
	}

	/* not a memfd at all: a plain file, a pipe */
	const char *path = shmtest_path("plain");
	fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	CHECK(ftruncate(fd, (off_t)size) == 0);
	CHECK_EQ_INT(shm_fd_check(fd, path, SHM_SEALED_SIZE, 0, &st, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_SHM_SEALS);
	CHECK(shmtest_fd_closed(fd));
	unlink(path);
	int pfd[2];
	CHECK(pipe(pfd) == 0);
	CHECK_EQ_INT(
	    shm_fd_check(pfd[0], "pipe", SHM_SEALED_SIZE, 0, &st, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_SHM_SEALS);
	CHECK(shmtest_fd_closed(pfd[0]));
	close(pfd[1]);

	/* shm_segment_from_fd refuses the same way, leaving s closed */
	struct shm_segment s;
	fd = dup(rw);
	CHECK_EQ_INT(shm_segment_from_fd(&s, fd, "the global model",
	                                 SHM_SEALED_READONLY, SHM_READ, 0,
	                                 &err),
	             -1);
	CHECK_EQ_INT(err.code, IPC_E_SHM_SEALS);
	CHECK(shmtest_fd_closed(fd));
	CHECK(s.addr == NULL);
	CHECK_EQ_INT(s.fd, -1);
	fd = dup(ro);
	CHECK_EQ_INT(shm_segment_from_fd(&s, fd, label, SHM_SEALED_READONLY,
	                                 SHM_READ, size + 1, &err),
	             -1);
	CHECK_EQ_INT(err.code, IPC_E_SHM_SIZE);
	CHECK(shmtest_fd_closed(fd));
	CHECK_EQ_INT(s.fd, -1);
	close(ro);
	close(rw);
}

/* seal_write is refused while a mapping is writable, by this process or
 * another; once it holds, nobody writes and a read-only mapping works. */
static void
test_seal_write(void)
{
	struct shm_segment u, r;
	struct ipc_error err;
	const long page = sysconf(_SC_PAGESIZE);
	const size_t size = 2 * (size_t)page;
	const char *label = shmtest_label(TAG, "u8");
	CHECK_EQ_INT(shm_segment_create(&u, label, size, &err), 0);
	memset(u.addr, 0x61, size);
	CHECK_EQ_INT(shm_segment_seal_write(&u, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_SHM_SEALS);
	CHECK_STR_CONTAINS(err.message, "still maps it writable");
	CHECK_STR_CONTAINS(err.message, label);
	CHECK_EQ_INT(seals_of(u.fd) & F_SEAL_WRITE, 0);
	/* still writable, then unmapped: now it seals */
	((unsigned char *)u.addr)[1] = 0x62;
	shm_segment_unmap(&u);
	CHECK(u.addr == NULL);
	CHECK(!shmtest_fd_closed(u.fd));
	CHECK_EQ_INT(shm_segment_seal_write(&u, &err), 0);
	CHECK(sealed(u.fd, SIZE_SEALS | F_SEAL_WRITE));

	unsigned char junk[8] = {0};
	errno = 0;
	CHECK_EQ_INT(pwrite(u.fd, junk, sizeof junk, 0), -1);
	CHECK_EQ_INT(errno, EPERM);
	errno = 0;
	void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, u.fd, 0);
	CHECK(m == MAP_FAILED);
	CHECK_EQ_INT(errno, EPERM);
	if (m != MAP_FAILED)
		munmap(m, size);
	errno = 0;
	CHECK_EQ_INT(fallocate(u.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
	                       0, (off_t)size),
	             -1);
	CHECK_EQ_INT(errno, EPERM);
	CHECK_EQ_INT(shm_segment_from_fd(&r, dup(u.fd), label,
	                                 SHM_SEALED_SIZE | SHM_SEALED_READONLY,
	                                 SHM_READ, size, &err),
	             0);
	unsigned char *q = r.addr;
	CHECK_EQ_INT(q[0], 0x61);
	CHECK_EQ_INT(q[1], 0x62);
	CHECK_EQ_INT(q[size - 1], 0x61);
	shm_segment_close(&r);
	shm_segment_close(&u);

	/* a child process maps it writable: refused until the child exits */
	CHECK_EQ_INT(shm_segment_create_empty(&u, label, size, &err), 0);
	int ready[2], go[2];
	CHECK(pipe(ready) == 0 && pipe(go) == 0);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		close(ready[0]);
		close(go[1]);
		unsigned char *c = mmap(NULL, size, PROT_READ | PROT_WRITE,
		                        MAP_SHARED, u.fd, 0);
		if (c == MAP_FAILED)
			_exit(2);
		c[7] = 0x77;
		char b = 'r';
		if (write(ready[1], &b, 1) != 1)
			_exit(3);
		(void)read(go[0], &b, 1);
		_exit(0);
	}
	CHECK(pid > 0);
	close(ready[1]);
	close(go[0]);
	char b = 0;
	CHECK_EQ_INT(read(ready[0], &b, 1), 1);
	CHECK_EQ_INT(shm_segment_seal_write(&u, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_SHM_SEALS);
	CHECK_STR_CONTAINS(err.message, "still maps it writable");
	CHECK_EQ_INT(seals_of(u.fd) & F_SEAL_WRITE, 0);
	CHECK_EQ_INT(write(go[1], "g", 1), 1);
	int status = -1;
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK_EQ_INT(shm_segment_seal_write(&u, &err), 0);
	unsigned char got = 0;
	CHECK_EQ_INT(pread(u.fd, &got, 1, 7), 1);
	CHECK_EQ_INT(got, 0x77);
	close(ready[0]);
	close(go[1]);
	shm_segment_close(&u);
}

static sigjmp_buf bus_jump;

/* SIGBUS while reading a mapping: leave the read. */
static void
on_sigbus(int sig)
{
	(void)sig;
	siglongjmp(bus_jump, 1);
}

/* Fork a child that tries, tries times, to truncate (and regrow) fd, and
 * read the whole mapping at p (size bytes) until it is done; whether a read
 * hit SIGBUS. *child_status gets the child's exit status: 0 when every
 * truncation failed with EPERM, 1 when one succeeded. */
static int
truncate_race(int fd, const unsigned char *p, size_t size, int tries,
              int *child_status)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		int rc = 0;
		for (int i = 0; i < tries; i++) {
			errno = 0;
			if (ftruncate(fd, 0) == 0)
				rc = 1;
			else if (errno != EPERM)
				rc = 2;
			if (ftruncate(fd, (off_t)size) != 0 && errno != EPERM)
				rc = rc ? rc : 2;
		}
		_exit(rc);
	}
	*child_status = -1;
	if (pid < 0)
		return 0;
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigbus;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &old);
	volatile int bus = 0, done = 0;
	volatile unsigned sum = 0;
	if (sigsetjmp(bus_jump, 1) != 0)
		bus = 1;
	while (!bus && !done) {
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			*child_status =
			    WIFEXITED(status) ? WEXITSTATUS(status) : -1;
			done = 1;
		}
		/* once more after the child is done */
		for (size_t i = 0; i < size; i += 512)
			sum += p[i];
	}
	sigaction(SIGBUS, &old, NULL);
	if (!done) {
		int status;
		if (waitpid(pid, &status, 0) == pid)
			*child_status =
			    WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	}
	(void)sum;
	return bus;
}

/* The attack the size seals stop: a worker truncating the segment under a
 * reader, which would die of SIGBUS. */
static void
test_truncate_attack(void)
{
	struct shm_segment s;
	struct ipc_error err;
	const size_t size = 256u << 10;
	const char *label = shmtest_label(TAG, "g7");
	CHECK_EQ_INT(shm_segment_create(&s, label, size, &err), 0);
	memset(s.addr, 0x13, size);
	CHECK_EQ_INT(shm_segment_seal_readonly(&s, &err), 0);
	struct shm_segment r;
	CHECK_EQ_INT(shm_segment_from_fd(&r, dup(s.fd), label,
	                                 SHM_SEALED_SIZE | SHM_SEALED_READONLY,
	                                 SHM_READ, size, &err),
	             0);
	int bad = 0;
	for (int rep = 0; rep < 50; rep++) {
		int status = -1;
		if (truncate_race(r.fd, r.addr, size, 200, &status) ||
		    status != 0) {
			bad++;
			harness_fail(__FILE__, __LINE__,
			             "repetition %d: SIGBUS or truncated "
			             "(child status %d)",
			             rep, status);
			break;
		}
	}
	CHECK_EQ_INT(bad, 0);
	struct stat st;
	CHECK(fstat(r.fd, &st) == 0);
	CHECK_EQ_INT(st.st_size, size);
	CHECK_EQ_INT(((unsigned char *)r.addr)[size - 1], 0x13);
	shm_segment_close(&r);
	shm_segment_close(&s);

	/* the check itself sees the attack where there is no seal */
	int fd = raw_memfd(size, 1, 0);
	unsigned char *p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED);
	if (p != MAP_FAILED) {
		int status = -1;
		int bus = truncate_race(fd, p, size, 200, &status);
		CHECK_EQ_INT(status, 1);
		/* the child may have grown it back before each read */
		(void)bus;
		CHECK(ftruncate(fd, 0) == 0);
		if (sigsetjmp(bus_jump, 1) == 0) {
			struct sigaction sa, old;
			memset(&sa, 0, sizeof sa);
			sa.sa_handler = on_sigbus;
			sigaction(SIGBUS, &sa, &old);
			volatile unsigned char c = p[0];
			(void)c;
			sigaction(SIGBUS, &old, NULL);
			CHECK(!"a read past the end of a truncated memfd "
			       "raises SIGBUS");
		} else {
			signal(SIGBUS, SIG_DFL);
		}
		munmap(p, size);
	}
	close(fd);
}

/* shm_fd_fill writes the bytes, and cannot grow a segment. */
static void
test_fd_fill(void)
{
	struct shm_segment u, m;
	struct ipc_error err;
	const size_t size = (9u << 20) + 4321;
	unsigned char *src = pattern(size + 4096, 9);
	const char *label = shmtest_label(TAG, "u9");
	CHECK_EQ_INT(shm_segment_create_empty(&u, label, size, &err), 0);
	CHECK_EQ_INT(shm_fd_fill(u.fd, label, src, size, &err), 0);
	CHECK(fd_holds(u.fd, src, size));
	CHECK_EQ_INT(shm_segment_from_fd(&m, dup(u.fd), label, SHM_SEALED_SIZE,
	                                 SHM_WRITE, size, &err),
	             0);
	CHECK(memcmp(m.addr, src, size) == 0);
	shm_segment_close(&m);

	/* a fill past the end is an error; the size stays */
	CHECK_EQ_INT(shm_fd_fill(u.fd, label, src, size + 4096, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_IO);
	CHECK_STR_CONTAINS(err.message, label);
	struct stat st;
	CHECK(fstat(u.fd, &st) == 0);
	CHECK_EQ_INT(st.st_size, size);

	/* a bad descriptor */
	CHECK_EQ_INT(shm_fd_fill(-1, "nothing", src, 10, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_IO);
	CHECK_STR_CONTAINS(err.message, "nothing");
	CHECK_EQ_INT(shm_fd_fill(u.fd, label, src, 0, &err), 0);
	shm_segment_close(&u);
	free(src);
}

/* unmap drops the mapping (so a write seal holds) and keeps the
 * descriptor for a later mapping. */
static void
test_unmap_keeps_fd(void)
{
	struct shm_segment s;
	struct ipc_error err;
	const char *label = shmtest_label(TAG, "u10");
	CHECK_EQ_INT(shm_segment_create(&s, label, 6000, &err), 0);
	memset(s.addr, 0x4d, 6000);
	int fd = s.fd;
	shm_segment_unmap(&s);
	CHECK(s.addr == NULL);
	CHECK_EQ_INT(s.writable, 0);
	CHECK_EQ_INT(s.fd, fd);
	CHECK(!shmtest_fd_closed(fd));
	CHECK_EQ_INT(s.size, 6000);
	CHECK_EQ_INT(shmtest_memfd_maps(label, NULL), 0);
	CHECK_EQ_INT(shmtest_memfd_fds(label), 1);
	shm_segment_unmap(&s);
	CHECK_EQ_INT(s.fd, fd);
	CHECK_EQ_INT(shm_segment_seal_write(&s, &err), 0);

	char name[sizeof s.name];
	snprintf(name, sizeof name, "%s", s.name);
	CHECK_EQ_INT(shm_segment_map(&s, name, fd, 6000, SHM_READ, &err), 0);
	CHECK(strcmp(s.name, label) == 0);
	CHECK_EQ_INT(s.fd, fd);
	CHECK_EQ_INT(s.size, 6000);
	CHECK_EQ_INT(((unsigned char *)s.addr)[5999], 0x4d);
	CHECK_EQ_INT(shmtest_memfd_maps(label, "r--s"), 1);
	shm_segment_close(&s);
	CHECK(shmtest_fd_closed(fd));
	CHECK_EQ_INT(shmtest_memfd_fds(label), 0);
}

static void
test_release_drops_pages(void)
{
	struct shm_segment s;
	struct ipc_error err;
	const size_t size = 8u << 20;
	CHECK_EQ_INT(
	    shm_segment_create(&s, shmtest_label(TAG, "u1"), size, &err), 0);
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
	const size_t size = SHM_POPULATE_MAX + (1u << 20) + 4567;
	const size_t off = (5u << 20) + 99, len = 4u << 20;
	const long page = sysconf(_SC_PAGESIZE);
	const long span = (long)(len / (size_t)page);
	const int want = SHM_SEALED_SIZE | SHM_SEALED_READONLY;
	unsigned char *src = pattern(size, 5);
	const char *label = shmtest_label(TAG, "g9");
	CHECK_EQ_INT(shm_segment_create_copy(&w, label, size, src, &err), 0);
	CHECK_EQ_INT(shm_segment_seal_readonly(&w, &err), 0);
	/* the creator's own mapping would count among the resident pages */
	shm_segment_unmap(&w);

	/* a plain read-only mapping comes with its pages in place */
	long before = resident_pages();
	CHECK_EQ_INT(shm_segment_from_fd(&r, dup(w.fd), label, want, SHM_READ,
	                                 size, &err),
	             0);
	CHECK_EQ_INT(r.lazy, 0);
	CHECK(resident_pages() - before >=
	      (long)(size / (size_t)page) * 9 / 10);
	shm_segment_close(&r);

	before = resident_pages();
	CHECK_EQ_INT(shm_segment_from_fd(&r, dup(w.fd), label, want,
	                                 SHM_READ | SHM_LAZY, size, &err),
	             0);
	CHECK_EQ_INT(r.size, size);
	CHECK_EQ_INT(r.writable, 0);
	CHECK_EQ_INT(r.lazy, 1);
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
	CHECK(fd_holds(w.fd, src, size));

	/* out of range and closed mappings are left alone */
	CHECK_EQ_INT(shm_segment_from_fd(&r, dup(w.fd), label, want,
	                                 SHM_READ | SHM_LAZY, 0, &err),
	             0);
	shm_segment_prefetch(&r, size, 10);
	shm_segment_prefetch(&r, size - 10, 1000);
	CHECK(memcmp((char *)r.addr + size - 10, src + size - 10, 10) == 0);
	shm_segment_close(&r);
	shm_segment_prefetch(&r, 0, 10);
	shm_segment_release(&r, 0, 10);
	shm_segment_close(&w);

	/* a small segment is mapped with its pages, lazy or not */
	int fd = shmtest_memfd_readonly(shmtest_label(TAG, "g10"), 1u << 20, 1);
	CHECK_EQ_INT(shm_segment_from_fd(&r, fd, "small", want,
	                                 SHM_READ | SHM_LAZY, 0, &err),
	             0);
	CHECK_EQ_INT(r.lazy, 0);
	shm_segment_close(&r);
	free(src);
}

int
main(void)
{
	RUN(test_create_memfd);
	RUN(test_read_only_mapping_faults);
	RUN(test_create_copy);
	RUN(test_create_empty);
	RUN(test_errors);
	RUN(test_file_segments);
	RUN(test_rename);
	RUN(test_remove_prefix);
	RUN(test_seal_readonly);
	RUN(test_fd_check);
	RUN(test_seal_write);
	RUN(test_truncate_attack);
	RUN(test_fd_fill);
	RUN(test_unmap_keeps_fd);
	RUN(test_release_drops_pages);
	RUN(test_lazy_prefetch_release);
	return harness_finish();
}
