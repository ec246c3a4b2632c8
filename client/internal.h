/* internal.h: what the built-in worker reads of a task beyond the public
 * header (client/cohort/client.h): the decoded frame, its manifest and the
 * failure of an ipc_error. Not installed, and not exported by the shared
 * library (cohort-client.map exports cohort_*; these are cohortx_*). */
#ifndef COHORT_CLIENT_INTERNAL_H
#define COHORT_CLIENT_INTERNAL_H

#include "cohort/client.h"
#include "error.h"
#include "message.h"

/* The task frame as decoded (its config for taskconf_*, its manifest). */
const struct msg_task *cohortx_task_msg(const struct cohort_task *t);
/* The global model's region: its bytes, size in *size (NULL for init). */
const void *cohortx_task_global(const struct cohort_task *t, size_t *size);
/* The last failure of cl as an ipc_error (its code and message). */
void cohortx_client_error(const struct cohort_client *cl,
                          struct ipc_error *err);
/* cohort_fail with err's code and message. */
int cohortx_fail_error(struct cohort_task *t, const struct ipc_error *err);

#endif
