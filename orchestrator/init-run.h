/* init-run.h: the custom model's initial model from the user's program
 * (model.name custom, model.init empty): before round 1 the program is run
 * once and sent one task of kind init; the tensors it answers with (names,
 * dtypes, shapes and values, inline or streamed) become the job's initial
 * model (docs/protocol.md, "Init task"). */
#ifndef COHORT_INIT_RUN_H
#define COHORT_INIT_RUN_H

#include <stddef.h>

#include "error.h"
#include "message.h"

struct init_run {
	const char *program;     /* executable */
	const char *const *argv; /* argv[0] included, NULL-terminated */
	const char *socket_path; /* where to listen for it */
	const char *token, *jobkey, *workspace;
	const char *log_path;         /* its stdout and stderr */
	const char *out_path;         /* the initial model written here */
	double timeout_s;             /* start to result */
	const struct kv_list *config; /* the init task's config */
};

/* Run it; 0 once out_path holds its model. Errors name what went wrong
 * and end with the last line of its log. */
int init_run(const struct init_run *r, struct ipc_error *err);

#endif
