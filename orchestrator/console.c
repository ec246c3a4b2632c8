/* console.c: stdout/stderr output mirrored into the orchestrator's log; the
 * writer of every log_msg line while the log is open. */
#include "console.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "util.h"

static FILE *log_file;
static int progress_on;
static int progress_shown;

static void console_writer(enum log_level level, const char *msg, void *arg);

int
console_open_log(const char *path, struct ipc_error *err)
{
	log_file = fopen(path, "a");
	if (log_file == NULL)
		return ipc_error_set(err, IPC_E_IO, "%s: cannot open: %s", path,
		                     strerror(errno));
	log_set_writer(console_writer, NULL);
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
	log_set_writer(NULL, NULL);
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

/* log_msg's lines: on stderr as console_err's, level named unless info,
 * and in the log. */
static void
console_writer(enum log_level level, const char *msg, void *arg)
{
	(void)arg;
	if (level == LOG_INFO)
		console_err("%s", msg);
	else
		console_err("%s: %s", log_level_name(level), msg);
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
