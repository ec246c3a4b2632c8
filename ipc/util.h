/* util.h: allocation wrappers that never fail, one fatal() path, logging. */
#ifndef COHORT_UTIL_H
#define COHORT_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

#define COHORT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define COHORT_NORETURN __attribute__((noreturn))
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Allocate or die: out-of-memory is a programming/system failure, not user
 * input. */
void *xmalloc(size_t size);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *ptr, size_t size);
void *xreallocarray(void *ptr, size_t count, size_t size);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) COHORT_PRINTF(1, 2);
/* A large buffer (a model, a staged update) of anonymous memory, in huge
 * pages where the kernel has them and with every page in place: one
 * madvise call instead of a fault per page when it is first written (a
 * 2 GiB buffer filled in 0.5 s against 1.5-6 s through malloc on the
 * virtual machines cohort is developed on). Page-aligned; dies when out
 * of memory. Free it with big_free and the same size. */
void *big_alloc(size_t size);
/* big_alloc without the pages: they come when first touched (or when the
 * owner populates them), so until then the memory counts as free. */
void *big_map(size_t size);
/* Bring every page of [p, p + size) of a big_map buffer in, in one call. */
void big_populate(void *p, size_t size);
void big_free(void *p, size_t size);

/* Print "cohort: fatal: ..." with the program name and exit(70). */
void fatal(const char *fmt, ...) COHORT_PRINTF(1, 2) COHORT_NORETURN;

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Set the prefix (program name) and minimum level of log lines; COHORT_LOG
 * (debug, info, warning or error) overrides the level given. Lines go to
 * stderr until a writer is set. */
void log_init(const char *prefix, enum log_level level);
void log_set_level(enum log_level level);
/* True when lines of level are written (to skip building costly ones). */
int log_enabled(enum log_level level);
/* Where log lines go instead of stderr (NULL: stderr again). msg is the
 * line without program name, level or newline. */
typedef void (*log_writer)(enum log_level level, const char *msg, void *arg);
void log_set_writer(log_writer fn, void *arg);
/* "debug", "info", "warning" or "error". */
const char *log_level_name(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) COHORT_PRINTF(2, 3);
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* --version anywhere in argv: print "NAME VERSION" on stdout and return 1
 * (main then exits 0); else 0. Every program calls it first. */
int version_requested(int argc, char **argv, const char *name);

/* Ask the kernel to SIGKILL this process when its parent (the
 * orchestrator that started it) dies, and exit at once if it already has:
 * a worker does not train on for a job that no longer exists. */
void die_with_parent(void);
/* Make this process non-dumpable (PR_SET_DUMPABLE 0): processes of the
 * same uid can then neither ptrace it nor open its descriptors through
 * /proc/PID/fd (shared memory it has not sealed yet), and it leaves no
 * core dump. COHORT_DUMPABLE=1 keeps it dumpable, for a debugger. */
void keep_private(void);
/* MemAvailable of /proc/meminfo in bytes (0 if unknown). */
uint64_t mem_available_bytes(void);

/* Monotonic clock in seconds. */
double now_seconds(void);

/* Write a whole buffer to fd, retrying on EINTR and short writes; -1 on error.
 */
int write_all(int fd, const void *buf, size_t len);
/* Read exactly len bytes; returns len, 0 on EOF before any byte, -1 on error
 * (errno set; EPIPE-like truncation is reported as errno = EIO). */
long read_full(int fd, void *buf, size_t len);

#endif
