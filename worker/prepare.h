/* prepare.h: the once-per-job data and model preparation a job runs before
 * its first round (cohort-worker --prepare WORKSPACE). */
#ifndef COHORT_PREPARE_H
#define COHORT_PREPARE_H

#include "error.h"

/* Read WORKSPACE/config.json; decode the dataset into its cache; write
 * data/partition.bin, checkpoints/initial.safetensors and data/prepared.json.
 */
int prepare_workspace(const char *workspace, struct ipc_error *err);

/* The default dataset cache: $XDG_CACHE_HOME/cohort or ~/.cache/cohort
 * (/tmp/cohort-cache when neither is set). Returns a static buffer. */
const char *prepare_default_cache_dir(void);

#endif
