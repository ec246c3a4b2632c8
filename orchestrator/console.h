/* console.h: what the orchestrator prints: result lines on stdout, warnings
 * on stderr, a live progress line on terminals, and a copy of everything in
 * logs/orchestrator.log. */
#ifndef COHORT_CONSOLE_H
#define COHORT_CONSOLE_H

#include "error.h"

/* Start copying output to the log file at path (appended). */
int console_open_log(const char *path, struct ipc_error *err);
/* Show the live progress line (on a terminal, or when forced). */
void console_set_progress(int enabled);
void console_close_log(void);
/* A line on stdout (and in the log). */
void console_out(const char *fmt, ...) COHORT_PRINTF(1, 2);
/* A warning or error line on stderr (and in the log). */
void console_err(const char *fmt, ...) COHORT_PRINTF(1, 2);
/* A line in the log only. */
void console_log(const char *fmt, ...) COHORT_PRINTF(1, 2);
/* Redraw the live progress line (no-op unless progress is enabled). */
void console_progress(const char *fmt, ...) COHORT_PRINTF(1, 2);

#endif
