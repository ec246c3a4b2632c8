/* prepare-run.h: the once-per-job preparation before round 1: running
 * `cohort-worker --prepare WORKSPACE` (data cache, partition, initial model)
 * and reading the data/prepared.json it leaves. */
#ifndef COHORT_PREPARE_RUN_H
#define COHORT_PREPARE_RUN_H

#include <jansson.h>
#include <stdint.h>

#include "error.h"

/* Run the worker's --prepare synchronously, its output in log_path; on
 * failure the error carries the worker's last stderr line. */
int prepare_run(const char *worker, const char *workspace, const char *log_path,
                struct ipc_error *err);
/* Load and check WORKSPACE/data/prepared.json. */
int prepare_load(const char *workspace, json_t **prepared,
                 struct ipc_error *err);

/* Which of a client's sets a task reports examples of. */
enum examples_set { EXAMPLES_TRAIN, EXAMPLES_HOLDOUT, EXAMPLES_TEST };
/* The most examples a result may claim for set of client (-1: none, the
 * test set): configured (max > 0), else what prepared.json says the
 * client's slice holds ("client_train", "client_holdout": per client, or
 * one number for all; else the whole "num_train" / "num_test"), else
 * 2^32 - 1. */
uint64_t prepare_examples_cap(const json_t *prepared, int64_t client,
                              enum examples_set set, int64_t max);

#endif
