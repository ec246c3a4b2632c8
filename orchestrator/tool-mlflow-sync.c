/* tool-mlflow-sync.c: cohort-mlflow-sync WORKSPACE: send MLflow whatever of
 * the workspace's metrics it has not acknowledged (after an outage, or for a
 * job that never reached the server), into the same run, then set the run's
 * final status from results/summary.json. Safe to run any number of times. */
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "mlflow.h"
#include "tracking.h"
#include "util.h"

/* A whole day: the drain ends earlier when the server stops answering. */
#define SYNC_DRAIN_SECONDS 86400.0

/* Print usage to stderr and return the usage exit status. */
static int
usage(void)
{
	fprintf(stderr,
	        "usage: cohort-mlflow-sync [--uri URI] [--experiment NAME] "
	        "[--child-runs] WORKSPACE\n"
	        "  URI: --uri, else MLFLOW_TRACKING_URI, else the job's "
	        "tracking.mlflow_uri (WORKSPACE/config.json), else the one in "
	        "WORKSPACE/metrics/mlflow.json\n");
	return 2;
}

/* Member path a.b of a JSON object as text (numbers printed), or NULL. */
static char *
config_text(const json_t *cfg, const char *section, const char *key)
{
	json_t *v = json_object_get(json_object_get(cfg, section), key);
	if (json_is_string(v))
		return xstrdup(json_string_value(v));
	if (json_is_integer(v))
		return xasprintf("%lld", (long long)json_integer_value(v));
	return NULL;
}

/* The final status of the job from results/summary.json ("status" if it
 * has one, else FINISHED), or NULL when the job has not finished. */
static char *
final_status(const char *workspace)
{
	char *path = xasprintf("%s/results/summary.json", workspace);
	json_t *sum = json_load_file(path, 0, NULL);
	free(path);
	if (sum == NULL)
		return NULL;
	const char *s = json_string_value(json_object_get(sum, "status"));
	char *status = xstrdup(s ? s : "FINISHED");
	json_decref(sum);
	return status;
}

int
main(int argc, char **argv)
{
	if (version_requested(argc, argv, "cohort-mlflow-sync"))
		return 0;
	const char *uri = NULL, *experiment = NULL, *workspace = NULL;
	int child_runs = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--uri") == 0 && i + 1 < argc)
			uri = argv[++i];
		else if (strcmp(argv[i], "--experiment") == 0 && i + 1 < argc)
			experiment = argv[++i];
		else if (strcmp(argv[i], "--child-runs") == 0)
			child_runs = 1;
		else if (argv[i][0] == '-' || workspace != NULL)
			return usage();
		else
			workspace = argv[i];
	}
	if (workspace == NULL)
		return usage();
	log_init("cohort-mlflow-sync", LOG_INFO);

	char *state_path = xasprintf("%s/metrics/mlflow.json", workspace);
	json_t *state = json_load_file(state_path, 0, NULL);
	free(state_path);
	char *cfg_path = xasprintf("%s/config.json", workspace);
	json_t *cfg = json_load_file(cfg_path, 0, NULL);
	if (cfg == NULL && state == NULL) {
		fprintf(stderr,
		        "cohort-mlflow-sync: %s is not a cohort workspace (no "
		        "config.json, no metrics/mlflow.json)\n",
		        workspace);
		free(cfg_path);
		return 2;
	}
	free(cfg_path);
	if (uri == NULL)
		uri = getenv("MLFLOW_TRACKING_URI");
	if (uri == NULL || *uri == '\0')
		uri = json_string_value(json_object_get(
		    json_object_get(cfg, "tracking"), "mlflow_uri"));
	if (uri == NULL || *uri == '\0')
		uri = json_string_value(json_object_get(state, "tracking_uri"));
	if (uri == NULL || *uri == '\0') {
		fprintf(stderr,
		        "cohort-mlflow-sync: no tracking server: the job had "
		        "none; pass --uri or set MLFLOW_TRACKING_URI\n");
		json_decref(cfg);
		json_decref(state);
		return 2;
	}
	if (experiment == NULL && getenv("MLFLOW_EXPERIMENT_NAME") == NULL)
		experiment =
		    json_string_value(json_object_get(state, "experiment"));
	if (json_object_size(json_object_get(state, "children")) > 0 ||
	    json_is_true(json_object_get(json_object_get(cfg, "tracking"),
	                                 "child_runs")))
		child_runs = 1;

	char *seed = config_text(cfg, "job", "seed");
	char *strategy = config_text(cfg, "strategy", "name");
	struct tracking_tags tags = {COHORT_VERSION, seed, strategy, NULL};
	char *ws_copy = xstrdup(workspace);
	struct tracking_config tc = {
	    .mlflow_uri = uri,
	    .experiment = experiment,
	    .run_name = basename(ws_copy),
	    .child_runs = child_runs,
	    .replay = 1,
	};
	struct event_base *base = event_base_new();
	struct ipc_error err;
	struct tracking *t =
	    tracking_open(base, workspace, &tc, cfg, &tags, &err);
	int rc = 1;
	if (t == NULL) {
		fprintf(stderr, "cohort-mlflow-sync: %s\n", err.message);
	} else {
		char *status = final_status(workspace);
		rc = tracking_finish(t, status, SYNC_DRAIN_SECONDS) ? 0 : 1;
		free(status);
		tracking_free(t);
	}
	if (rc == 0) {
		char *shown = mlflow_redact_uri(uri);
		printf(
		    "cohort-mlflow-sync: %s: everything is in MLflow at %s\n",
		    workspace, shown);
		free(shown);
	}
	event_base_free(base);
	json_decref(cfg);
	json_decref(state);
	free(seed);
	free(strategy);
	free(ws_copy);
	return rc;
}
