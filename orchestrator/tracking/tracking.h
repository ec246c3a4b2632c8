/* tracking.h: the experiment-tracking sinks of a job (MLflow, TensorBoard,
 * the HTML report), all fed from metrics/metrics.jsonl. */
#ifndef COHORT_TRACKING_H
#define COHORT_TRACKING_H

#include <event2/event.h>
#include <jansson.h>

#include "error.h"

struct tracking_config {
	const char *mlflow_uri; /* NULL/"": MLFLOW_TRACKING_URI, unset = off */
	const char *experiment; /* NULL: MLFLOW_EXPERIMENT_NAME or "cohort" */
	const char *run_name;   /* the job/workspace name */
	int child_runs;         /* per-client child runs with task metrics */
	int tensorboard;        /* write WORKSPACE/tensorboard/ event files */
	int report;             /* write WORKSPACE/results/report.html */
	double retry_base_s;    /* first MLflow retry delay; 0 = 1 s */
	int replay; /* cohort-mlflow-sync: the times the job recorded */
};

/* Run tags; any field may be NULL. */
struct tracking_tags {
	const char *version;
	const char *seed;
	const char *strategy;
	const char *git_revision;
};

struct tracking;

/* Start the enabled sinks. resolved_config is flattened into MLflow params
 * ("section.key" = value). An unreachable MLflow server is not an error.
 * base may be NULL when MLflow is off. */
struct tracking *tracking_open(struct event_base *base, const char *workspace,
                               const struct tracking_config *cfg,
                               const json_t *resolved_config,
                               const struct tracking_tags *tags,
                               struct ipc_error *err);
/* The round's lines are flushed to metrics.jsonl: ship everything new since
 * the last call. Never blocks. */
void tracking_round(struct tracking *t, unsigned round);
/* Ship the rest, write the report, upload artifacts, set the MLflow status
 * ("FINISHED", "FAILED", "KILLED"; NULL leaves it), running the loop up to
 * drain_seconds for the server; what is left is sent later by
 * cohort-mlflow-sync. Returns 1 when MLflow (if on) acknowledged all. */
int tracking_finish(struct tracking *t, const char *status,
                    double drain_seconds);
void tracking_free(struct tracking *t);

#endif
