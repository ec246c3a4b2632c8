/* console.c: stdout/stderr output mirrored into the orchestrator's log. */
#include "console.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "error.h"

static FILE *log_file;
static int progress_on;
static int progress_shown;

int
console_open_log(const char *path, struct ipc_error *err)
{
	log_file = fopen(path, "a");
	if (log_file == NULL)
		return ipc_error_set(err, IPC_E_IO, "%s: cannot open: %s", path,
		                     strerror(errno));
	return 0;
}

void
console_set_progress(int enabled)
{
	progress_on = enabled;
}

void
console_close_log(void)
{
	if (log_file != NULL)
		fclose(log_file);
	log_file = NULL;
}

/* Append one timestamped line to the log. */
static void
to_log(const char *tag, const char *line)
{
	if (log_file == NULL)
		return;
	char stamp[32];
	time_t t = time(NULL);
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
	fprintf(log_file, "%s %s%s\n", stamp, tag, line);
	fflush(log_file);
}

/* Erase the progress line before a normal line is printed. */
static void
clear_progress(void)
{
	if (progress_shown) {
		fputs("\r\033[K", stdout);
		progress_shown = 0;
	}
}

void
console_out(const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	clear_progress();
	printf("%s\n", line);
	fflush(stdout);
	to_log("", line);
}

void
console_err(const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	clear_progress();
	fflush(stdout);
	fprintf(stderr, "cohort-orchestrator: %s\n", line);
	to_log("", line);
}

void
console_log(const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	to_log("", line);
}

void
console_progress(const char *fmt, ...)
{
	if (!progress_on)
		return;
	char line[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	printf("\r\033[K%s", line);
	fflush(stdout);
	progress_shown = 1;
}
