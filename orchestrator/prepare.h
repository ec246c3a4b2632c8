/* prepare.h: the once-per-job preparation before round 1: running
 * `cohort-worker --prepare WORKSPACE` (data cache, partition, initial model)
 * and reading the data/prepared.json it leaves. */
#ifndef COHORT_PREPARE_RUN_H
#define COHORT_PREPARE_RUN_H

#include <jansson.h>

#include "error.h"

/* Run the worker's --prepare synchronously, its output in log_path; on
 * failure the error carries the worker's last stderr line. */
int prepare_run(const char *worker, const char *workspace, const char *log_path,
                struct ipc_error *err);
/* Load and check WORKSPACE/data/prepared.json. */
int prepare_load(const char *workspace, json_t **prepared,
                 struct ipc_error *err);

#endif
