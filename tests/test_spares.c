/* test_spares.c: folded update segments of the model's size are renamed to
 * spares /cohort.<job>.s<n> (others, and those beyond the limit, are
 * unlinked), spares are handed out until none is left, a spare a task did
 * not take comes back, and freeing unlinks every spare kept. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "shmtest.h"
#include "shm.h"
#include "spares.h"

#define TAG "sparetest"

#define SIZE 10000

/* Segments in /dev/shm whose name starts with "cohort.<jobkey>.". */
static int
seg_count(void)
{
	char prefix[96];
	snprintf(prefix, sizeof prefix, "cohort.%s.", shmtest_key(TAG));
	DIR *dir = opendir("/dev/shm");
	if (dir == NULL)
		return -1;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(dir)) != NULL)
		n += strncmp(de->d_name, prefix, strlen(prefix)) == 0;
	closedir(dir);
	return n;
}

/* Whether segment name holds size bytes, every one fill. */
static int
seg_holds(const char *name, size_t size, unsigned char fill)
{
	struct shm_segment r;
	struct ipc_error err;
	if (shm_segment_open(&r, name, SHM_READ, 0, &err) != 0)
		return 0;
	int same = r.size == size;
	for (size_t i = 0; same && i < size; i++)
		same = ((unsigned char *)r.addr)[i] == fill;
	shm_segment_close(&r);
	return same;
}

static void
test_keep_renames_fitting_segment(void)
{
	struct spares sp;
	char out[SPARE_NAME_MAX];
	spares_init(&sp, shmtest_key(TAG), SIZE, 4);
	shmtest_make(shmtest_name(TAG, "u1"), SIZE, 0x31);
	shmtest_make(shmtest_name(TAG, "u2"), SIZE, 0x32);
	spares_keep(&sp, shmtest_name(TAG, "u1"));
	CHECK(!shmtest_exists(shmtest_name(TAG, "u1")));
	CHECK(shmtest_exists(shmtest_name(TAG, "s0")));
	CHECK(seg_holds(shmtest_name(TAG, "s0"), SIZE, 0x31));
	spares_keep(&sp, shmtest_name(TAG, "u2"));
	CHECK(!shmtest_exists(shmtest_name(TAG, "u2")));
	CHECK(seg_holds(shmtest_name(TAG, "s1"), SIZE, 0x32));
	CHECK_EQ_INT(seg_count(), 2);

	/* handed out last kept first, then none is left */
	CHECK_EQ_INT(spares_take(&sp, out), 1);
	CHECK(strcmp(out, shmtest_name(TAG, "s1")) == 0);
	CHECK_EQ_INT(spares_take(&sp, out), 1);
	CHECK(strcmp(out, shmtest_name(TAG, "s0")) == 0);
	CHECK_EQ_INT(spares_take(&sp, out), 0);
	/* taking moves nothing in /dev/shm: the task renames it */
	CHECK(seg_holds(shmtest_name(TAG, "s0"), SIZE, 0x31));
	CHECK(seg_holds(shmtest_name(TAG, "s1"), SIZE, 0x32));
	spares_free(&sp);
	shmtest_cleanup(TAG);
	CHECK_EQ_INT(seg_count(), 0);
}

static void
test_keep_wrong_size_unlinks(void)
{
	struct spares sp;
	char out[SPARE_NAME_MAX];
	spares_init(&sp, shmtest_key(TAG), SIZE, 4);
	shmtest_make(shmtest_name(TAG, "u1"), SIZE - 1, 1);
	shmtest_make(shmtest_name(TAG, "u2"), SIZE + 4096, 2);
	spares_keep(&sp, shmtest_name(TAG, "u1"));
	spares_keep(&sp, shmtest_name(TAG, "u2"));
	CHECK(!shmtest_exists(shmtest_name(TAG, "u1")));
	CHECK(!shmtest_exists(shmtest_name(TAG, "u2")));
	CHECK_EQ_INT(seg_count(), 0);
	CHECK_EQ_INT(spares_take(&sp, out), 0);
	/* a segment that is already gone is neither kept nor an error */
	spares_keep(&sp, shmtest_name(TAG, "u3"));
	CHECK_EQ_INT(spares_take(&sp, out), 0);
	CHECK_EQ_INT(seg_count(), 0);
	spares_free(&sp);
	shmtest_cleanup(TAG);
}

static void
test_keep_beyond_max_unlinks(void)
{
	struct spares sp;
	char out[SPARE_NAME_MAX];
	spares_init(&sp, shmtest_key(TAG), SIZE, 2);
	const char *u[] = {"u1", "u2", "u3"};
	for (int i = 0; i < 3; i++) {
		shmtest_make(shmtest_name(TAG, u[i]), SIZE, (unsigned char)i);
		spares_keep(&sp, shmtest_name(TAG, u[i]));
		CHECK(!shmtest_exists(shmtest_name(TAG, u[i])));
	}
	CHECK(seg_holds(shmtest_name(TAG, "s0"), SIZE, 0));
	CHECK(seg_holds(shmtest_name(TAG, "s1"), SIZE, 1));
	CHECK(!shmtest_exists(shmtest_name(TAG, "s2")));
	CHECK_EQ_INT(seg_count(), 2);
	CHECK_EQ_INT(spares_take(&sp, out), 1);
	CHECK_EQ_INT(spares_take(&sp, out), 1);
	CHECK_EQ_INT(spares_take(&sp, out), 0);

	/* handing out makes room again: the next is numbered on */
	shmtest_make(shmtest_name(TAG, "u4"), SIZE, 4);
	spares_keep(&sp, shmtest_name(TAG, "u4"));
	CHECK(!shmtest_exists(shmtest_name(TAG, "u4")));
	CHECK(seg_holds(shmtest_name(TAG, "s2"), SIZE, 4));
	CHECK_EQ_INT(spares_take(&sp, out), 1);
	CHECK(strcmp(out, shmtest_name(TAG, "s2")) == 0);
	spares_free(&sp);
	shmtest_cleanup(TAG);
}

static void
test_max_zero_keeps_nothing(void)
{
	struct spares sp;
	char out[SPARE_NAME_MAX];
	spares_init(&sp, shmtest_key(TAG), SIZE, 0);
	shmtest_make(shmtest_name(TAG, "u1"), SIZE, 7);
	spares_keep(&sp, shmtest_name(TAG, "u1"));
	CHECK(!shmtest_exists(shmtest_name(TAG, "u1")));
	CHECK(!shmtest_exists(shmtest_name(TAG, "s0")));
	CHECK_EQ_INT(seg_count(), 0);
	CHECK_EQ_INT(spares_take(&sp, out), 0);
	spares_free(&sp);
	shmtest_cleanup(TAG);
}

static void
test_settle(void)
{
	struct spares sp;
	char out[SPARE_NAME_MAX], again[SPARE_NAME_MAX];
	spares_init(&sp, shmtest_key(TAG), SIZE, 2);
	shmtest_make(shmtest_name(TAG, "u1"), SIZE, 9);
	spares_keep(&sp, shmtest_name(TAG, "u1"));

	/* the task ended without taking its spare: it is kept */
	CHECK_EQ_INT(spares_take(&sp, out), 1);
	CHECK_EQ_INT(spares_take(&sp, again), 0);
	spares_settle(&sp, out);
	CHECK(seg_holds(out, SIZE, 9));
	CHECK_EQ_INT(spares_take(&sp, again), 1);
	CHECK(strcmp(again, out) == 0);

	/* the worker took it (renamed it to its update): nothing kept, and
	 * the worker's segment is left alone */
	struct ipc_error err;
	CHECK_EQ_INT(shm_segment_rename(again, shmtest_name(TAG, "u8"), &err),
	             0);
	spares_settle(&sp, again);
	CHECK_EQ_INT(spares_take(&sp, out), 0);
	CHECK(seg_holds(shmtest_name(TAG, "u8"), SIZE, 9));

	/* a task that was handed no spare */
	spares_settle(&sp, "");
	CHECK_EQ_INT(spares_take(&sp, out), 0);
	CHECK_EQ_INT(seg_count(), 1);

	/* a spare coming back when the limit is reached again is unlinked */
	spares_free(&sp);
	spares_init(&sp, shmtest_key(TAG), SIZE, 1);
	shmtest_make(shmtest_name(TAG, "u2"), SIZE, 2);
	spares_keep(&sp, shmtest_name(TAG, "u2"));
	CHECK_EQ_INT(spares_take(&sp, out), 1);
	shmtest_make(shmtest_name(TAG, "u3"), SIZE, 3);
	spares_keep(&sp, shmtest_name(TAG, "u3"));
	spares_settle(&sp, out);
	CHECK(!shmtest_exists(out));
	CHECK_EQ_INT(spares_take(&sp, again), 1);
	CHECK(strcmp(again, out) != 0);
	CHECK(seg_holds(again, SIZE, 3));
	spares_free(&sp);
	shmtest_cleanup(TAG);
	CHECK_EQ_INT(seg_count(), 0);
}

static void
test_free_unlinks_spares(void)
{
	struct spares sp;
	spares_init(&sp, shmtest_key(TAG), SIZE, 8);
	const char *u[] = {"u1", "u2", "u3"}, *s[] = {"s0", "s1", "s2"};
	for (int i = 0; i < 3; i++) {
		shmtest_make(shmtest_name(TAG, u[i]), SIZE, (unsigned char)i);
		spares_keep(&sp, shmtest_name(TAG, u[i]));
	}
	CHECK_EQ_INT(seg_count(), 3);
	for (int i = 0; i < 3; i++)
		CHECK(shmtest_exists(shmtest_name(TAG, s[i])));
	spares_free(&sp);
	for (int i = 0; i < 3; i++)
		CHECK(!shmtest_exists(shmtest_name(TAG, s[i])));
	CHECK_EQ_INT(seg_count(), 0);
	CHECK(sp.names == NULL);
	CHECK_EQ_INT(sp.count, 0);
	/* freeing twice, or a set that never kept any, is harmless */
	spares_free(&sp);
	spares_init(&sp, shmtest_key(TAG), SIZE, 0);
	spares_free(&sp);
	shmtest_cleanup(TAG);
}

int
main(void)
{
	shmtest_cleanup(TAG);
	RUN(test_keep_renames_fitting_segment);
	RUN(test_keep_wrong_size_unlinks);
	RUN(test_keep_beyond_max_unlinks);
	RUN(test_max_zero_keeps_nothing);
	RUN(test_settle);
	RUN(test_free_unlinks_spares);
	shmtest_cleanup(TAG);
	return harness_finish();
}
