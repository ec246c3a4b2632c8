/* mlflow.h: an MLflow tracking client fed from metrics/metrics.jsonl. Calls
 * go out one at a time on the event loop (never blocking it); progress is
 * kept in metrics/mlflow.json so that nothing acknowledged is sent twice and
 * nothing unacknowledged is lost (cohort-mlflow-sync replays the rest). */
#ifndef COHORT_MLFLOW_H
#define COHORT_MLFLOW_H

#include <event2/event.h>
#include <jansson.h>

#include "error.h"

struct mlflow_options {
	const char *uri; /* tracking server, e.g. http://127.0.0.1:5000 */
	const char *experiment; /* experiment name, created when absent */
	const char *run_name;
	const char *run_id;    /* log into this existing run (MLFLOW_RUN_ID) */
	int child_runs;        /* one child run per client, task metrics */
	const json_t *params;  /* object: flat param key -> string value */
	const json_t *tags;    /* object: run tag key -> string value */
	double backoff_base_s; /* first retry delay; 0 = 1 s */
	int replay; /* cohort-mlflow-sync: the job's recorded times, no reopen
	             */
};

struct mlflow;

/* uri without its user:password@ part (for logs, params and state files);
 * malloc'd. */
char *mlflow_redact_uri(const char *uri);

/* Load the workspace's state file and prepare the client; authentication,
 * TLS, timeout and retry count come from the MLFLOW_* environment. */
struct mlflow *mlflow_open(struct event_base *base, const char *workspace,
                           const struct mlflow_options *o,
                           struct ipc_error *err);
/* Queue every metric line after the last one queued; start sending. */
void mlflow_ship(struct mlflow *m);
/* After the metrics: upload artifacts (mlflow-artifacts:/ runs only), set
 * the run's final status (FINISHED, FAILED or KILLED) and end time, then end
 * every child run the same way. */
void mlflow_finish(struct mlflow *m, const char *status);
/* Run the loop until everything queued is acknowledged (1), the server
 * stopped answering or refused the run (0), or seconds passed (0). */
int mlflow_drain(struct mlflow *m, double seconds);
void mlflow_free(struct mlflow *m);

#endif
