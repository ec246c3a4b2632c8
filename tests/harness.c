/* harness.c: counting checks and tests, temp dirs, build-tree paths. */
#include "harness.h"

#include <dirent.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int harness_checks_failed;
static int tests_passed, tests_failed, tests_skipped;
static int current_failed;
static jmp_buf skip_jump;
static char tmpdir[256];

void
harness_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "  FAIL %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	harness_checks_failed++;
	current_failed = 1;
}

void
harness_skip(const char *reason)
{
	printf("  skipped: %s\n", reason);
	longjmp(skip_jump, 1);
}

void
harness_run(const char *name, void (*fn)(void))
{
	current_failed = 0;
	printf("- %s\n", name);
	fflush(stdout);
	if (setjmp(skip_jump) == 0) {
		fn();
	} else {
		tests_skipped++;
		return;
	}
	if (current_failed)
		tests_failed++;
	else
		tests_passed++;
}

const char *
harness_tmpdir(void)
{
	if (tmpdir[0] == '\0') {
		const char *base = getenv("TMPDIR");
		snprintf(tmpdir, sizeof tmpdir, "%s/cohort-test-XXXXXX",
		         base ? base : "/tmp");
		if (mkdtemp(tmpdir) == NULL) {
			perror("mkdtemp");
			exit(2);
		}
	}
	return tmpdir;
}

const char *
harness_build_path(const char *rel)
{
	static char path[1024];
	const char *dir = getenv("COHORT_BUILD_DIR");
	snprintf(path, sizeof path, "%s/%s", dir ? dir : ".", rel);
	return path;
}

int
harness_finish(void)
{
	if (tmpdir[0] != '\0') {
		char cmd[300];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "warning: could not remove %s\n",
			        tmpdir);
	}
	if (tests_skipped)
		printf("%d passed, %d failed, %d skipped\n", tests_passed,
		       tests_failed, tests_skipped);
	else
		printf("%d passed, %d failed\n", tests_passed, tests_failed);
	if (tests_failed)
		return 1;
	/* Everything skipped: ctest reports the test as skipped, not passed. */
	return tests_passed == 0 && tests_skipped > 0 ? HARNESS_SKIPPED : 0;
}

int
harness_open_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	while (d != NULL && readdir(d) != NULL)
		n++;
	if (d != NULL)
		closedir(d);
	return n;
}
