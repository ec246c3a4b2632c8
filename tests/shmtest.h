/* shmtest.h: segment names, existence checks and clean-up shared by the
 * shared-memory tests. A test's segments are "/cohort.<tag><pid>.<suffix>"
 * so that runs never collide and one prefix sweep removes them all. */
#ifndef COHORT_SHMTEST_H
#define COHORT_SHMTEST_H

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "shm.h"

/* "<tag><pid>": the job key of this test process. */
static inline const char *
shmtest_key(const char *tag)
{
	static char buf[64];
	snprintf(buf, sizeof buf, "%s%d", tag, (int)getpid());
	return buf;
}

/* "/cohort.<tag><pid>.<suffix>" in a static buffer (one of four, so a few
 * names can be used in one call). */
static inline const char *
shmtest_name(const char *tag, const char *suffix)
{
	static char buf[4][128];
	static int which;
	which = (which + 1) % 4;
	snprintf(buf[which], sizeof buf[which], "/cohort.%s%d.%s", tag,
	         (int)getpid(), suffix);
	return buf[which];
}

/* Remove every segment of this test process. */
static inline void
shmtest_cleanup(const char *tag)
{
	char prefix[96];
	struct ipc_error err;
	snprintf(prefix, sizeof prefix, "cohort.%s%d.", tag, (int)getpid());
	shm_remove_prefix(prefix, NULL, &err);
}

/* Whether segment name ("/...") exists in /dev/shm. */
static inline int
shmtest_exists(const char *name)
{
	char path[640];
	snprintf(path, sizeof path, "/dev/shm/%s", name + 1);
	return access(path, F_OK) == 0;
}

/* Create segment name of size bytes, every byte fill, and close it. */
static inline void
shmtest_make(const char *name, size_t size, unsigned char fill)
{
	struct shm_segment s;
	struct ipc_error err;
	CHECK_EQ_INT(shm_segment_create(&s, name, size, &err), 0);
	if (s.addr != NULL)
		memset(s.addr, fill, size);
	shm_segment_close(&s);
}

#endif
