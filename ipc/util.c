/* util.c: allocation wrappers, fatal(), logging and small I/O helpers. */
#include "util.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

static const char *log_prefix = "cohort";
static enum log_level log_min = LOG_INFO;
static log_writer log_fn;
static void *log_arg;
static const char *const log_names[] = {"debug", "info", "warning", "error"};

void *
xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);
	if (p == NULL)
		fatal("out of memory allocating %zu bytes", size);
	return p;
}

void *
xcalloc(size_t count, size_t size)
{
	void *p = calloc(count ? count : 1, size ? size : 1);
	if (p == NULL)
		fatal("out of memory allocating %zu x %zu bytes", count, size);
	return p;
}

void *
xrealloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size ? size : 1);
	if (p == NULL)
		fatal("out of memory reallocating %zu bytes", size);
	return p;
}

void *
xreallocarray(void *ptr, size_t count, size_t size)
{
	if (size != 0 && count > SIZE_MAX / size)
		fatal("allocation of %zu x %zu bytes overflows", count, size);
	return xrealloc(ptr, count * size);
}

char *
xstrdup(const char *s)
{
	char *p = strdup(s);
	if (p == NULL)
		fatal("out of memory duplicating a string");
	return p;
}

void *
big_map(size_t size)
{
	size_t bytes = size ? size : 1;
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		fatal("out of memory for a %zu-byte buffer", bytes);
#ifdef MADV_HUGEPAGE
	madvise(p, bytes, MADV_HUGEPAGE);
#endif
	return p;
}

void *
big_alloc(size_t size)
{
	void *p = big_map(size);
	big_populate(p, size);
	return p;
}

void
big_populate(void *p, size_t size)
{
#ifdef MADV_POPULATE_WRITE
	if (size > 0)
		madvise(p, size,
		        MADV_POPULATE_WRITE); /* older kernels: faults */
#else
	(void)p;
	(void)size;
#endif
}

void
big_free(void *p, size_t size)
{
	if (p != NULL)
		munmap(p, size ? size : 1);
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap, ap2;
	va_start(ap, fmt);
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		fatal("bad format string \"%s\"", fmt);
	char *s = xmalloc((size_t)n + 1);
	vsnprintf(s, (size_t)n + 1, fmt, ap2);
	va_end(ap2);
	return s;
}

void
fatal(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: fatal: ", log_prefix);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(70);
}

int
version_requested(int argc, char **argv, const char *name)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--version") == 0) {
			printf("%s %s\n", name, COHORT_VERSION);
			return 1;
		}
	}
	return 0;
}

void
die_with_parent(void)
{
	pid_t parent = getppid();
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
		return;
	/* The parent may have died before the request: then this process
	 * was handed to another (init or a subreaper) already. */
	if (getppid() != parent)
		_exit(1);
}

void
keep_private(void)
{
	const char *keep = getenv("COHORT_DUMPABLE");
	if (keep == NULL || strcmp(keep, "1") != 0)
		prctl(PR_SET_DUMPABLE, 0);
}

uint64_t
mem_available_bytes(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	unsigned long long kb = 0;
	char line[256];
	while (f != NULL && fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			break;
	if (f != NULL)
		fclose(f);
	return (uint64_t)kb * 1024;
}

void
log_init(const char *prefix, enum log_level level)
{
	log_prefix = prefix;
	log_min = level;
	const char *env = getenv("COHORT_LOG");
	if (env == NULL || *env == '\0')
		return;
	for (size_t i = 0; i < ARRAY_LEN(log_names); i++)
		if (strcmp(env, log_names[i]) == 0) {
			log_min = (enum log_level)i;
			return;
		}
	log_warn("COHORT_LOG=%s: not a level (debug, info, warning or "
	         "error); logging at %s",
	         env, log_names[log_min]);
}

void
log_set_level(enum log_level level)
{
	log_min = level;
}

int
log_enabled(enum log_level level)
{
	return level >= log_min;
}

void
log_set_writer(log_writer fn, void *arg)
{
	log_fn = fn;
	log_arg = arg;
}

const char *
log_level_name(enum log_level level)
{
	return log_names[level];
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	if (level < log_min)
		return;
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (log_fn != NULL) {
		log_fn(level, msg, log_arg);
		return;
	}
	char line[2200];
	int off = snprintf(line, sizeof line - 1, "%s: %s%s%s\n", log_prefix,
	                   level != LOG_INFO ? log_names[level] : "",
	                   level != LOG_INFO ? ": " : "", msg);
	size_t len = off < (int)sizeof line - 1 ? (size_t)off : sizeof line - 2;
	if (line[len - 1] != '\n')
		line[len++] = '\n';
	/* One write per line so concurrent processes never interleave a
	 * line. */
	(void)!write(STDERR_FILENO, line, len);
}

double
now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

long
read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, p + got, len - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			if (got == 0)
				return 0;
			errno = EIO;
			return -1;
		}
		got += (size_t)n;
	}
	return (long)got;
}
