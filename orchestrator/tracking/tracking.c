/* tracking.c: turns the tracking config into the sinks it enables and feeds
 * them what metrics.jsonl gained since the last round. */
#include "tracking.h"

#include <stdlib.h>
#include <string.h>

#include "metricslog.h"
#include "mlflow.h"
#include "report.h"
#include "tensorboard.h"

struct tracking {
	char *workspace, *run_name, *metrics_path;
	struct mlflow *mlflow;
	struct tensorboard *tb;
	long tb_offset;
	int report;
};

/* Add obj's leaves to out as "prefix.key" -> string (strings as they are,
 * other values as JSON text). */
static void
flatten(json_t *out, const char *prefix, const json_t *obj)
{
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)obj, key, v)
	{
		char *name =
		    *prefix ? xasprintf("%s.%s", prefix, key) : xstrdup(key);
		if (json_is_object(v)) {
			flatten(out, name, v);
		} else if (json_is_string(v)) {
			json_object_set(out, name, v);
		} else {
			char *text =
			    json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT |
			                      JSON_REAL_PRECISION(10));
			json_object_set_new(out, name,
			                    json_string(text ? text : ""));
			free(text);
		}
		free(name);
	}
}

/* Run tags from the job's identity. */
static json_t *
run_tags(const struct tracking_tags *tags)
{
	json_t *o = json_object();
	if (tags == NULL)
		return o;
	if (tags->version)
		json_object_set_new(o, "cohort.version",
		                    json_string(tags->version));
	if (tags->seed)
		json_object_set_new(o, "cohort.seed", json_string(tags->seed));
	if (tags->strategy)
		json_object_set_new(o, "cohort.strategy",
		                    json_string(tags->strategy));
	if (tags->git_revision)
		json_object_set_new(o, "mlflow.source.git.commit",
		                    json_string(tags->git_revision));
	return o;
}

/* The MLflow server to use, or NULL when MLflow is off. */
static const char *
mlflow_uri(const struct tracking_config *cfg)
{
	const char *uri = cfg->mlflow_uri;
	if (uri == NULL || *uri == '\0')
		uri = getenv("MLFLOW_TRACKING_URI");
	if (uri == NULL || *uri == '\0')
		return NULL;
	if (strncmp(uri, "http://", 7) != 0 &&
	    strncmp(uri, "https://", 8) != 0) {
		log_warn("mlflow: tracking URI %s is not http(s)://; cohort "
		         "talks to MLflow servers only, MLflow is off",
		         uri);
		return NULL;
	}
	return uri;
}

struct tracking *
tracking_open(struct event_base *base, const char *workspace,
              const struct tracking_config *cfg, const json_t *resolved_config,
              const struct tracking_tags *tags, struct ipc_error *err)
{
	struct tracking *t = xcalloc(1, sizeof *t);
	t->workspace = xstrdup(workspace);
	t->run_name = cfg->run_name ? xstrdup(cfg->run_name) : NULL;
	t->metrics_path = xasprintf("%s/metrics/metrics.jsonl", workspace);
	t->report = cfg->report;
	const char *uri = mlflow_uri(cfg);
	if (uri != NULL) {
		const char *exp = cfg->experiment;
		if (exp == NULL || *exp == '\0')
			exp = getenv("MLFLOW_EXPERIMENT_NAME");
		json_t *params = json_object();
		if (json_is_object(resolved_config))
			flatten(params, "", resolved_config);
		const char *given = json_string_value(
		    json_object_get(params, "tracking.mlflow_uri"));
		if (given != NULL) { /* never a password in a param */
			char *shown = mlflow_redact_uri(given);
			json_object_set_new(params, "tracking.mlflow_uri",
			                    json_string(shown));
			free(shown);
		}
		json_t *tag_obj = run_tags(tags);
		const char *run_id = getenv("MLFLOW_RUN_ID");
		struct mlflow_options o = {
		    .uri = uri,
		    .experiment = exp && *exp ? exp : "cohort",
		    .run_name = cfg->run_name,
		    .run_id = run_id && *run_id ? run_id : NULL,
		    .child_runs = cfg->child_runs,
		    .params = params,
		    .tags = tag_obj,
		    .backoff_base_s = cfg->retry_base_s,
		    .replay = cfg->replay,
		};
		t->mlflow = mlflow_open(base, workspace, &o, err);
		json_decref(params);
		json_decref(tag_obj);
		if (t->mlflow == NULL) {
			tracking_free(t);
			return NULL;
		}
	}
	if (cfg->tensorboard) {
		char *dir = xasprintf("%s/tensorboard", workspace);
		t->tb = tensorboard_open(dir, err);
		free(dir);
		if (t->tb == NULL) {
			tracking_free(t);
			return NULL;
		}
		/* a resumed job's earlier rounds are in an earlier file */
		long end = 0;
		FILE *f = fopen(t->metrics_path, "r");
		if (f != NULL && fseek(f, 0, SEEK_END) == 0)
			end = ftell(f);
		if (f != NULL)
			fclose(f);
		t->tb_offset = end > 0 ? end : 0;
	}
	return t;
}

/* metricslog callback: round-level metrics become TensorBoard scalars. */
static void
tb_line(void *arg, const struct metricslog_line *l)
{
	struct tracking *t = arg;
	if (l->client < 0)
		tensorboard_scalar(t->tb, l->key, l->round, (float)l->value,
		                   l->time);
}

void
tracking_round(struct tracking *t, unsigned round)
{
	log_debug("tracking: shipping up to round %u", round);
	if (t->mlflow)
		mlflow_ship(t->mlflow);
	if (t->tb) {
		struct ipc_error err;
		if (metricslog_read(t->metrics_path, &t->tb_offset,
		                    METRICSLOG_ROUNDS, tb_line, t, &err) < 0)
			log_warn("tensorboard: %s", err.message);
		tensorboard_flush(t->tb);
	}
}

int
tracking_finish(struct tracking *t, const char *status, double drain_seconds)
{
	tracking_round(t, 0);
	if (t->report) {
		struct ipc_error err;
		if (report_write(t->workspace, t->run_name, &err) < 0)
			log_warn("report: %s", err.message);
	}
	if (t->mlflow == NULL)
		return 1;
	if (status != NULL)
		mlflow_finish(t->mlflow, status);
	return mlflow_drain(t->mlflow, drain_seconds);
}

void
tracking_free(struct tracking *t)
{
	if (t == NULL)
		return;
	mlflow_free(t->mlflow);
	tensorboard_close(t->tb);
	free(t->workspace);
	free(t->run_name);
	free(t->metrics_path);
	free(t);
}
