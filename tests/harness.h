/* harness.h: the tiny test framework every tests/test_*.c uses.
 *
 *   static void test_something(void) { CHECK(x == 1); CHECK_EQ_INT(a, b); }
 *   int main(void) { RUN(test_something); return harness_finish(); }
 *
 * harness_finish() prints "N passed, N failed" and returns the exit status
 * (HARNESS_SKIPPED when every test was skipped). */
#ifndef COHORT_HARNESS_H
#define COHORT_HARNESS_H

#include <stdio.h>
#include <string.h>

/* Exit status of a test program whose every test was skipped. */
#define HARNESS_SKIPPED 77

extern int harness_checks_failed;

void harness_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void harness_run(const char *name, void (*fn)(void));
int harness_finish(void);
/* Skip the rest of the current test with a reason (counted as skipped). */
void harness_skip(const char *reason);
/* Path to a fresh temporary directory, removed by harness_finish(). */
const char *harness_tmpdir(void);
/* Descriptors open in this process (entries of /proc/self/fd, counting
 * the one that reads it), to check none leak. */
int harness_open_fds(void);
/* Build-tree path of a binary (COHORT_BUILD_DIR/<rel>); static buffer. */
const char *harness_build_path(const char *rel);

#define RUN(fn) harness_run(#fn, fn)
#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			harness_fail(__FILE__, __LINE__, "%s", #cond);         \
	} while (0)
#define CHECK_EQ_INT(a, b)                                                     \
	do {                                                                   \
		long long va_ = (long long)(a), vb_ = (long long)(b);          \
		if (va_ != vb_)                                                \
			harness_fail(__FILE__, __LINE__,                       \
			             "%s == %s (%lld vs %lld)", #a, #b, va_,   \
			             vb_);                                     \
	} while (0)
#define CHECK_NEAR(a, b, tol)                                                  \
	do {                                                                   \
		double va_ = (double)(a), vb_ = (double)(b);                   \
		if (!(va_ - vb_ <= (tol) && vb_ - va_ <= (tol)))               \
			harness_fail(__FILE__, __LINE__,                       \
			             "%s ~ %s (%.9g vs %.9g)", #a, #b, va_,    \
			             vb_);                                     \
	} while (0)
#define CHECK_STR_CONTAINS(hay, needle)                                        \
	do {                                                                   \
		const char *h_ = (hay), *n_ = (needle);                        \
		if (h_ == NULL || strstr(h_, n_) == NULL)                      \
			harness_fail(__FILE__, __LINE__,                       \
			             "\"%s\" contains \"%s\"",                 \
			             h_ ? h_ : "(null)", n_);                  \
	} while (0)

#endif
