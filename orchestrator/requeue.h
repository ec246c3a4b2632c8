/* requeue.h: --workspace DIR: a job at a fixed path, so that a batch job
 * started again with the same command (requeued after pre-emption)
 * continues the job instead of starting another. */
#ifndef COHORT_REQUEUE_H
#define COHORT_REQUEUE_H

#include "config.h"
#include "error.h"

/* Make dir ready for job_run(cfg, dir): a missing or empty dir becomes a new
 * workspace holding cfg as config.json; a workspace of the same job (equal
 * config apart from runtime sections) is continued after its last
 * checkpoint. Anything else, or a dir in use by a live orchestrator, is an
 * error naming the dir and the fix. *resuming says which case it was. */
int requeue_workspace(const struct config *cfg, const char *dir, int *resuming,
                      struct ipc_error *err);

#endif
