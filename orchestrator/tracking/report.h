/* report.h: results/report.html, a self-contained page with SVG charts of a
 * job drawn from metrics/metrics.jsonl (and results/summary.json). */
#ifndef COHORT_REPORT_H
#define COHORT_REPORT_H

#include "error.h"

/* Write workspace/results/report.html atomically; job names the job in the
 * title (NULL: the workspace directory name). */
int report_write(const char *workspace, const char *job, struct ipc_error *err);

#endif
