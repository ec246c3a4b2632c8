/* mlflow.c: the MLflow client as a small state machine. One call is in flight
 * at a time, in this order: experiment (get-by-name, create), run (create, or
 * get for MLFLOW_RUN_ID), RUNNING again for a resumed job's ended run,
 * params, then metric batches in file order (a client's child run is created
 * and given the params before its first batch), then at the end artifacts,
 * the status update and the end of each child run. Each answer advances the
 * state and the state file; a transient failure (after retries) pauses the
 * machine until the next mlflow_ship(), a refused batch is logged and
 * dropped. Times are the job's own: start_time when the job first opened the
 * workspace, end_time when it finished, both kept in the state file so that
 * cohort-mlflow-sync sends the same ones later. */
#include "mlflow.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "atomicfile.h"
#include "files.h"
#include "http.h"
#include "metricslog.h"

/* MLflow's log-batch limits and value sizes (2.x; 3.x allows more). */
enum {
	MAX_METRICS_PER_BATCH = 1000,
	MAX_PARAMS_PER_BATCH = 100,
	MAX_KEY_LEN = 250,
	MAX_PARAM_VALUE_LEN = 500,
	MAX_TAG_VALUE_LEN = 5000,
};

/* The call in flight. */
enum call {
	CALL_NONE,
	CALL_GET_EXPERIMENT,
	CALL_CREATE_EXPERIMENT,
	CALL_GET_RUN,
	CALL_CREATE_RUN,
	CALL_REOPEN,
	CALL_CREATE_CHILD,
	CALL_PARAMS,
	CALL_CHILD_PARAMS,
	CALL_METRICS,
	CALL_ARTIFACT,
	CALL_UPDATE,
	CALL_END_CHILD,
};

/* Workspace files uploaded at the end when the server stores artifacts,
 * each under its base name. */
static const char *const artifact_files[] = {
    "config.json",           "results/summary.json",
    "metrics/metrics.jsonl", "results/global_model.safetensors",
    "results/report.html",
};

/* A file bigger than this is not uploaded (it is read into memory whole). */
#define MAX_ARTIFACT_BYTES (512L << 20)

/* A log-batch for the parent (client -1) or a client's child run; after it,
 * acked_offset moves to end (or stays, end -1) and the acknowledged progress
 * counts become progress (when not NULL). */
struct batch {
	int64_t client;
	json_t *metrics;
	long end;
	json_t *progress;
};

struct mlflow {
	struct event_base *base;
	struct http *http;
	char *uri, *shown_uri, *api;
	char *workspace, *state_path, *metrics_path;
	char *experiment, *run_name, *user, *git_revision;
	int child_runs, replay;
	json_t *params; /* [{key, value}] ready to send */
	json_t *tags;   /* [{key, value}] */

	/* persisted in metrics/mlflow.json */
	char *experiment_id, *run_id, *artifact_uri;
	json_t *children;        /* "client" -> run id */
	json_t *children_params; /* "client" -> true: its params acknowledged */
	int params_acked;
	long acked_offset;
	json_t *progress_acked; /* "client/key" -> points, up to acked_offset */
	char *status_done;
	int64_t start_ms, end_ms;

	/* this session */
	long read_offset;
	json_t *progress; /* "client/key" -> points, up to read_offset */
	int64_t first_line_ms, last_line_ms;
	struct batch *queue;
	size_t qhead, qlen, qcap;
	size_t params_next;
	json_t *refused_children; /* "client" -> true */
	int create_experiment, experiment_tries, reopen;
	char *final_status;
	size_t artifact_next;
	int final_done, parent_done, sent_any, artifacts_said;
	json_t *ending; /* [run id] of child runs still to end */
	size_t ending_next;
	enum call call;
	int64_t call_client;
	int stalled, broken, warned;
};

/* Milliseconds since the epoch. */
static int64_t
epoch_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Integer from the environment, or def when unset or not a number >= 0. */
static long
env_long(const char *name, long def)
{
	const char *s = getenv(name);
	if (s == NULL || *s == '\0')
		return def;
	char *end;
	long v = strtol(s, &end, 10);
	return *end == '\0' && v >= 0 ? v : def;
}

/* True when an environment flag is "true" or "1". */
static int
env_flag(const char *name)
{
	const char *s = getenv(name);
	return s != NULL && (strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0);
}

/* Non-empty environment string or NULL. */
static const char *
env_str(const char *name)
{
	const char *s = getenv(name);
	return s != NULL && *s != '\0' ? s : NULL;
}

/* Copy key with characters MLflow refuses replaced by '_', cut at 250. */
static char *
clean_key(const char *key)
{
	size_t n = strlen(key);
	if (n > MAX_KEY_LEN)
		n = MAX_KEY_LEN;
	char *k = xmalloc(n + 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)key[i];
		k[i] = isalnum(c) || strchr("_-./ ", c) ? (char)c : '_';
	}
	k[n] = '\0';
	return k;
}

/* Copy s cut to at most max bytes without splitting a UTF-8 sequence. */
static char *
cut_utf8(const char *s, size_t max, int *cut)
{
	size_t n = strlen(s);
	*cut = n > max;
	if (n > max) {
		n = max;
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
	}
	char *out = xmalloc(n + 1);
	memcpy(out, s, n);
	out[n] = '\0';
	return out;
}

/* Turn a key -> string object into MLflow's [{key, value}] list. */
static json_t *
key_values(const json_t *obj, size_t max_value, const char *what)
{
	json_t *list = json_array();
	const char *key;
	json_t *v;
	int cuts = 0;
	json_object_foreach((json_t *)obj, key, v)
	{
		const char *s = json_string_value(v);
		if (s == NULL)
			continue;
		int cut;
		char *k = clean_key(key);
		char *val = cut_utf8(s, max_value, &cut);
		if (cut && cuts++ == 0)
			log_info("mlflow: %s %s is longer than %zu bytes; "
			         "sending its first %zu",
			         what, k, max_value, max_value);
		json_array_append_new(
		    list, json_pack("{s:s,s:s}", "key", k, "value", val));
		free(k);
		free(val);
	}
	return list;
}

/* Current user name for mlflow.user. */
static char *
user_name(void)
{
	struct passwd *pw = getpwuid(getuid());
	if (pw != NULL && pw->pw_name != NULL)
		return xstrdup(pw->pw_name);
	const char *u = getenv("USER");
	return xstrdup(u ? u : "unknown");
}

/* The line that ends at offset (its last byte is the '\n', not copied),
 * at most 4 KiB of its end; NULL when the file is shorter or no line ends
 * there. */
static char *
line_before(const char *path, long offset)
{
	char buf[4096];
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return NULL;
	long from = offset > (long)sizeof buf ? offset - (long)sizeof buf : 0;
	ssize_t n = pread(fd, buf, (size_t)(offset - from), from);
	close(fd);
	if (n != offset - from || n == 0 || buf[n - 1] != '\n')
		return NULL;
	ssize_t start = n - 1;
	while (start > 0 && buf[start - 1] != '\n')
		start--;
	char *line = xmalloc((size_t)(n - start));
	memcpy(line, buf + start, (size_t)(n - start - 1));
	line[n - start - 1] = '\0';
	return line;
}

char *
mlflow_redact_uri(const char *uri)
{
	/* a scheme's "://" comes before any '/', '?', '#' or '@' */
	const char *host = strstr(uri, "://");
	host =
	    host != NULL && host < uri + strcspn(uri, "/?#@") ? host + 3 : uri;
	/* the last '@' before the path ends the user information */
	const char *at = NULL;
	for (const char *p = host; *p != '\0' && !strchr("/?#", *p); p++)
		if (*p == '@')
			at = p;
	if (at == NULL)
		return xstrdup(uri);
	return xasprintf("%.*s%s", (int)(host - uri), uri, at + 1);
}

/* String member of a JSON object, copied, or NULL. */
static char *
dup_member(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));
	return s != NULL && *s != '\0' ? xstrdup(s) : NULL;
}

/* Write metrics/mlflow.json atomically. */
static void
save_state(struct mlflow *m)
{
	json_t *s = json_object();
	json_object_set_new(s, "tracking_uri", json_string(m->shown_uri));
	json_object_set_new(s, "experiment", json_string(m->experiment));
	if (m->git_revision)
		json_object_set_new(s, "git_revision",
		                    json_string(m->git_revision));
	if (m->start_ms > 0)
		json_object_set_new(s, "start_time",
		                    json_integer((json_int_t)m->start_ms));
	if (m->end_ms > 0)
		json_object_set_new(s, "end_time",
		                    json_integer((json_int_t)m->end_ms));
	if (m->experiment_id)
		json_object_set_new(s, "experiment_id",
		                    json_string(m->experiment_id));
	if (m->run_id)
		json_object_set_new(s, "run_id", json_string(m->run_id));
	if (m->artifact_uri)
		json_object_set_new(s, "artifact_uri",
		                    json_string(m->artifact_uri));
	json_object_set(s, "children", m->children);
	json_object_set(s, "children_params", m->children_params);
	json_object_set(s, "progress", m->progress_acked);
	json_object_set_new(s, "params_acked", json_boolean(m->params_acked));
	json_object_set_new(s, "acked_offset", json_integer(m->acked_offset));
	char *line = m->acked_offset > 0
	                 ? line_before(m->metrics_path, m->acked_offset)
	                 : NULL;
	if (line != NULL)
		json_object_set_new(s, "acked_line", json_string(line));
	free(line);
	if (m->status_done)
		json_object_set_new(s, "status", json_string(m->status_done));
	char *text = json_dumps(s, JSON_INDENT(2));
	struct ipc_error err;
	if (atomicfile_write_buffer(m->state_path, text, strlen(text), &err) <
	    0)
		log_warn("mlflow: %s", err.message);
	free(text);
	json_decref(s);
}

/* Read metrics/mlflow.json when present; a state whose acked line no longer
 * matches metrics.jsonl (rewritten by a resume) restarts from offset 0,
 * which is safe because MLflow stores an identical metric point once. */
static int
load_state(struct mlflow *m, struct ipc_error *err)
{
	if (!files_exist(m->state_path))
		return 0;
	json_error_t jerr;
	json_t *s = json_load_file(m->state_path, 0, &jerr);
	if (!json_is_object(s)) {
		json_decref(s);
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "%s: not a JSON object (%s); delete it to "
		                     "resend everything",
		                     m->state_path, jerr.text);
	}
	m->experiment_id = dup_member(s, "experiment_id");
	m->run_id = dup_member(s, "run_id");
	m->artifact_uri = dup_member(s, "artifact_uri");
	m->status_done = dup_member(s, "status");
	if (m->git_revision == NULL)
		m->git_revision = dup_member(s, "git_revision");
	m->start_ms = json_integer_value(json_object_get(s, "start_time"));
	m->end_ms = json_integer_value(json_object_get(s, "end_time"));
	json_t *children = json_object_get(s, "children");
	if (json_is_object(children))
		json_object_update(m->children, children);
	json_t *ready = json_object_get(s, "children_params");
	if (json_is_object(ready))
		json_object_update(m->children_params, ready);
	json_t *progress = json_object_get(s, "progress");
	if (json_is_object(progress))
		json_object_update(m->progress_acked, progress);
	m->params_acked = json_is_true(json_object_get(s, "params_acked"));
	m->acked_offset =
	    (long)json_integer_value(json_object_get(s, "acked_offset"));
	const char *want = json_string_value(json_object_get(s, "acked_line"));
	char *line = m->acked_offset > 0
	                 ? line_before(m->metrics_path, m->acked_offset)
	                 : NULL;
	int same = line != NULL && want != NULL && strcmp(line, want) == 0;
	free(line);
	if (m->acked_offset > 0 && !same) {
		log_warn("mlflow: %s no longer matches %s; resending every "
		         "metric (MLflow keeps identical points once)",
		         m->state_path, m->metrics_path);
		m->acked_offset = 0;
		json_object_clear(m->progress_acked);
	}
	json_decref(s);
	return 0;
}

/* Forget the run of the state file (MLFLOW_RUN_ID names another one). */
static void
reset_run(struct mlflow *m)
{
	free(m->run_id);
	free(m->experiment_id);
	free(m->artifact_uri);
	free(m->status_done);
	m->run_id = m->experiment_id = m->artifact_uri = m->status_done = NULL;
	json_object_clear(m->children);
	json_object_clear(m->children_params);
	json_object_clear(m->progress_acked);
	m->params_acked = 0;
	m->acked_offset = 0;
}

struct mlflow *
mlflow_open(struct event_base *base, const char *workspace,
            const struct mlflow_options *o, struct ipc_error *err)
{
	struct mlflow *m = xcalloc(1, sizeof *m);
	m->base = base;
	m->uri = xstrdup(o->uri);
	size_t n = strlen(m->uri);
	while (n > 0 && m->uri[n - 1] == '/')
		m->uri[--n] = '\0';
	m->shown_uri = mlflow_redact_uri(m->uri);
	m->api = xasprintf("%s/api/2.0/mlflow/", m->uri);
	m->workspace = xstrdup(workspace);
	m->state_path = xasprintf("%s/metrics/mlflow.json", workspace);
	m->metrics_path = xasprintf("%s/metrics/metrics.jsonl", workspace);
	m->experiment = xstrdup(o->experiment ? o->experiment : "cohort");
	m->run_name = xstrdup(o->run_name ? o->run_name : "cohort");
	m->user = user_name();
	m->child_runs = o->child_runs;
	m->replay = o->replay;
	m->children = json_object();
	m->children_params = json_object();
	m->progress_acked = json_object();
	m->refused_children = json_object();
	m->ending = json_array();
	m->params = o->params
	                ? key_values(o->params, MAX_PARAM_VALUE_LEN, "param")
	                : json_array();
	json_t *tags = json_pack("{s:s,s:s,s:s}", "mlflow.user", m->user,
	                         "mlflow.source.name", "cohort-orchestrator",
	                         "mlflow.source.type", "LOCAL");
	if (o->tags)
		json_object_update(tags, (json_t *)o->tags);
	m->git_revision = dup_member(tags, "mlflow.source.git.commit");
	if (load_state(m, err) < 0) {
		json_decref(tags);
		mlflow_free(m);
		return NULL;
	}
	if (m->git_revision != NULL)
		json_object_set_new(tags, "mlflow.source.git.commit",
		                    json_string(m->git_revision));
	m->tags = key_values(tags, MAX_TAG_VALUE_LEN, "tag");
	json_decref(tags);
	if (o->run_id != NULL &&
	    (m->run_id == NULL || strcmp(m->run_id, o->run_id) != 0)) {
		reset_run(m);
		m->run_id = xstrdup(o->run_id);
	}
	m->read_offset = m->acked_offset;
	m->progress = json_deep_copy(m->progress_acked);
	/* a resumed job's run was ended by its earlier session */
	m->reopen = !m->replay && m->run_id != NULL && m->status_done != NULL;
	if (m->start_ms == 0 && !m->replay)
		m->start_ms = epoch_ms();
	save_state(m);
	struct http_options ho = {
	    .username = env_str("MLFLOW_TRACKING_USERNAME"),
	    .password = env_str("MLFLOW_TRACKING_PASSWORD"),
	    .bearer = env_str("MLFLOW_TRACKING_TOKEN"),
	    .insecure_tls = env_flag("MLFLOW_TRACKING_INSECURE_TLS"),
	    .ca_path = env_str("MLFLOW_TRACKING_SERVER_CERT_PATH"),
	    .timeout_s = env_long("MLFLOW_HTTP_REQUEST_TIMEOUT", 120),
	    .max_retries = (int)env_long("MLFLOW_HTTP_REQUEST_MAX_RETRIES", 5),
	    .backoff_base_s = o->backoff_base_s > 0 ? o->backoff_base_s : 1.0,
	    .backoff_cap_s = 120,
	};
	m->http = http_new(base, &ho);
	return m;
}

/* "CODE: message" from an MLflow error body, or the start of a non-JSON
 * body, for log lines. */
static void
describe(const struct http_response *r, const json_t *body, char *out,
         size_t size)
{
	const char *code =
	    json_string_value(json_object_get(body, "error_code"));
	const char *msg = json_string_value(json_object_get(body, "message"));
	if (r->status == 0) {
		snprintf(out, size, "%s", r->error ? r->error : "no answer");
		return;
	}
	if (code != NULL) {
		snprintf(out, size, "HTTP %ld %s: %s", r->status, code,
		         msg ? msg : "");
		return;
	}
	int n = snprintf(out, size, "HTTP %ld: ", r->status);
	for (size_t i = 0; i < r->len && (size_t)n + 1 < size && i < 200;
	     i++, n++)
		out[n] = isprint((unsigned char)r->body[i]) ? r->body[i] : ' ';
	out[n < (int)size ? n : (int)size - 1] = '\0';
}

static void on_answer(void *arg, const struct http_response *r);

/* Send one call (path under api/2.0/mlflow/, or a full URL). */
static void
send_call(struct mlflow *m, enum call call, const char *method,
          const char *path, json_t *body)
{
	char *url = strncmp(path, "http", 4) == 0
	                ? xstrdup(path)
	                : xasprintf("%s%s", m->api, path);
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	m->call = call;
	http_request(m->http, method, url, body ? "application/json" : NULL,
	             text, text ? strlen(text) : 0, on_answer, m);
	free(text);
	free(url);
	json_decref(body);
}

/* experiments/get-by-name or experiments/create. */
static void
call_experiment(struct mlflow *m)
{
	if (m->create_experiment) {
		send_call(m, CALL_CREATE_EXPERIMENT, "POST",
		          "experiments/create",
		          json_pack("{s:s}", "name", m->experiment));
		return;
	}
	char *name = curl_easy_escape(NULL, m->experiment, 0);
	char *path =
	    xasprintf("experiments/get-by-name?experiment_name=%s", name);
	send_call(m, CALL_GET_EXPERIMENT, "GET", path, NULL);
	free(path);
	curl_free(name);
}

/* runs/create for the parent run (client -1) or a client's child run,
 * started at start_ms. */
static void
call_create_run(struct mlflow *m, int64_t client, int64_t start_ms)
{
	json_t *tags = json_deep_copy(m->tags);
	char *name;
	if (client < 0) {
		name = xstrdup(m->run_name);
	} else {
		char id[32];
		snprintf(id, sizeof id, "%lld", (long long)client);
		name = xasprintf("%s/client-%s", m->run_name, id);
		json_array_append_new(tags, json_pack("{s:s,s:s}", "key",
		                                      "mlflow.parentRunId",
		                                      "value", m->run_id));
		json_array_append_new(tags,
		                      json_pack("{s:s,s:s}", "key",
		                                "cohort.client", "value", id));
	}
	m->call_client = client;
	send_call(m, client < 0 ? CALL_CREATE_RUN : CALL_CREATE_CHILD, "POST",
	          "runs/create",
	          json_pack("{s:s,s:s,s:s,s:I,s:o}", "experiment_id",
	                    m->experiment_id, "user_id", m->user, "run_name",
	                    name, "start_time", (json_int_t)start_ms, "tags",
	                    tags));
	free(name);
}

/* The next log-batch of up to 100 params, into run (the parent's or a
 * child's: a child run holds the job's params too, so filters match it). */
static void
call_params(struct mlflow *m, enum call call, const char *run)
{
	json_t *chunk = json_array();
	size_t total = json_array_size(m->params);
	for (size_t i = m->params_next;
	     i < total && i < m->params_next + MAX_PARAMS_PER_BATCH; i++)
		json_array_append(chunk, json_array_get(m->params, i));
	m->sent_any = 1;
	send_call(m, call, "POST", "runs/log-batch",
	          json_pack("{s:s,s:o}", "run_id", run, "params", chunk));
}

/* The start time of the parent run: the job's, else (a sync of a workspace
 * from before start times were kept) its first metric line's. */
static int64_t
run_start_ms(const struct mlflow *m)
{
	if (m->start_ms > 0)
		return m->start_ms;
	return m->first_line_ms > 0 ? m->first_line_ms : epoch_ms();
}

/* Run id of a client's child run, "" when its creation was refused, NULL
 * when it does not exist yet. */
static const char *
child_run(const struct mlflow *m, int64_t client)
{
	char id[32];
	snprintf(id, sizeof id, "%lld", (long long)client);
	if (json_object_get(m->refused_children, id))
		return "";
	return json_string_value(json_object_get(m->children, id));
}

/* Retire the head batch: move acked_offset and persist it. */
static void
batch_done(struct mlflow *m)
{
	struct batch *b = &m->queue[m->qhead++];
	json_decref(b->metrics);
	if (m->qhead == m->qlen)
		m->qhead = m->qlen = 0;
	if (b->progress != NULL) {
		json_decref(m->progress_acked);
		m->progress_acked = b->progress;
	}
	if (b->end >= 0 && b->end != m->acked_offset) {
		m->acked_offset = b->end;
		save_state(m);
	}
}

/* Path of the upload URL of a results/ file, or NULL when the run's
 * artifacts are not served by the tracking server. */
static char *
artifact_url(const struct mlflow *m, const char *name)
{
	const char *prefix = "mlflow-artifacts:";
	if (m->artifact_uri == NULL ||
	    strncmp(m->artifact_uri, prefix, strlen(prefix)) != 0)
		return NULL;
	const char *p = m->artifact_uri + strlen(prefix);
	if (strncmp(p, "//", 2) == 0) { /* mlflow-artifacts://host/path */
		p = strchr(p + 2, '/');
		if (p == NULL)
			return NULL;
	}
	while (*p == '/')
		p++;
	return xasprintf("%s/api/2.0/mlflow-artifacts/artifacts/%s/%s", m->uri,
	                 p, name);
}

/* Say once that the run's artifacts cannot be uploaded and why. */
static void
no_artifacts(struct mlflow *m)
{
	if (m->artifacts_said++)
		return;
	log_warn("mlflow: run artifacts go to %s, which %s does not serve over "
	         "HTTP (start the server with --serve-artifacts and an "
	         "mlflow-artifacts:/ root to store them); nothing is uploaded, "
	         "config.json, results/ and metrics/ stay in %s",
	         m->artifact_uri ? m->artifact_uri : "(no artifact_uri)",
	         m->shown_uri, m->workspace);
}

/* config.json as uploaded: its tracking.mlflow_uri without a password
 * (the file itself keeps it, 0600, for --resume). -1 when it is not JSON. */
static int
redact_config(char **data, size_t *len)
{
	json_t *cfg = json_loadb(*data, *len, 0, NULL);
	json_t *tracking = json_object_get(cfg, "tracking");
	const char *uri =
	    json_string_value(json_object_get(tracking, "mlflow_uri"));
	if (cfg == NULL) {
		log_warn("mlflow: config.json is not JSON; not uploaded");
		free(*data);
		*data = NULL;
		return -1;
	}
	if (uri != NULL) {
		char *shown = mlflow_redact_uri(uri);
		json_object_set_new(tracking, "mlflow_uri", json_string(shown));
		free(shown);
	}
	char *text = json_dumps(cfg, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
	                                 JSON_REAL_PRECISION(17));
	json_decref(cfg);
	if (text == NULL)
		fatal("out of memory encoding config.json");
	free(*data);
	*data = text;
	*len = strlen(text);
	return 0;
}

/* Read a workspace file for upload; -1 when absent, unreadable or too
 * big (said in the log). */
static int
artifact_data(const struct mlflow *m, const char *file, char **data,
              size_t *len)
{
	char *path = xasprintf("%s/%s", m->workspace, file);
	struct stat st;
	struct ipc_error err;
	int rc = -1;
	if (stat(path, &st) < 0) {
		/* absent: e.g. no summary.json after a failed job */
	} else if (st.st_size > MAX_ARTIFACT_BYTES) {
		log_warn("mlflow: %s is %lld MiB, more than the %ld MiB "
		         "uploaded; not uploaded",
		         path, (long long)(st.st_size >> 20),
		         MAX_ARTIFACT_BYTES >> 20);
	} else if (files_read_all(path, data, len, &err) < 0) {
		log_warn("mlflow: %s", err.message);
	} else {
		rc = strcmp(file, "config.json") == 0 ? redact_config(data, len)
		                                      : 0;
	}
	free(path);
	return rc;
}

/* Upload the next existing workspace artifact; 0 when none is left. */
static int
call_artifact(struct mlflow *m)
{
	for (; m->artifact_next < ARRAY_LEN(artifact_files);
	     m->artifact_next++) {
		const char *file = artifact_files[m->artifact_next];
		const char *name = strrchr(file, '/');
		name = name ? name + 1 : file;
		char *url = artifact_url(m, name);
		if (url == NULL) {
			no_artifacts(m);
			return 0;
		}
		char *data = NULL;
		size_t len = 0;
		int rc = artifact_data(m, file, &data, &len);
		if (rc == 0) {
			m->call = CALL_ARTIFACT;
			http_request(m->http, "PUT", url,
			             "application/octet-stream", data, len,
			             on_answer, m);
		}
		free(data);
		free(url);
		if (rc == 0)
			return 1;
	}
	return 0;
}

/* runs/update of run to status; end_time unless the run is RUNNING again
 * (as MLflow's own client does when it resumes a run). */
static void
call_update(struct mlflow *m, enum call call, const char *run,
            const char *status)
{
	json_t *body = json_pack("{s:s,s:s}", "run_id", run, "status", status);
	if (strcmp(status, "RUNNING") != 0)
		json_object_set_new(body, "end_time",
		                    json_integer((json_int_t)m->end_ms));
	send_call(m, call, "POST", "runs/update", body);
}

/* Start the call the head metric batch needs: its child run's creation or
 * params, or the batch itself; 0 when the queue is empty. */
static int
pump_batch(struct mlflow *m)
{
	while (m->qlen > m->qhead) {
		struct batch *b = &m->queue[m->qhead];
		const char *run = m->run_id;
		if (b->client >= 0 && json_array_size(b->metrics) > 0) {
			run = child_run(m, b->client);
			json_t *first = json_array_get(b->metrics, 0);
			if (run == NULL) {
				call_create_run(
				    m, b->client,
				    json_integer_value(
				        json_object_get(first, "timestamp")));
				return 1;
			}
			char id[32];
			snprintf(id, sizeof id, "%lld", (long long)b->client);
			if (*run != '\0' &&
			    !json_object_get(m->children_params, id) &&
			    json_array_size(m->params) > 0) {
				m->call_client = b->client;
				call_params(m, CALL_CHILD_PARAMS, run);
				return 1;
			}
		}
		if (json_array_size(b->metrics) == 0 || *run == '\0') {
			batch_done(m);
			continue;
		}
		m->sent_any = 1;
		send_call(m, CALL_METRICS, "POST", "runs/log-batch",
		          json_pack("{s:s,s:O}", "run_id", run, "metrics",
		                    b->metrics));
		return 1;
	}
	return 0;
}

/* The calls that end the run: artifacts, the parent's status, then each
 * child run's; final_done once all are answered. */
static void
pump_final(struct mlflow *m)
{
	if (!m->parent_done) {
		if (call_artifact(m))
			return;
		call_update(m, CALL_UPDATE, m->run_id, m->final_status);
		return;
	}
	if (m->ending_next < json_array_size(m->ending)) {
		call_update(m, CALL_END_CHILD,
		            json_string_value(
		                json_array_get(m->ending, m->ending_next)),
		            m->final_status);
		return;
	}
	free(m->status_done);
	m->status_done = xstrdup(m->final_status);
	m->final_done = 1;
	save_state(m);
}

/* Start the next call the state calls for, if none is in flight. */
static void
pump(struct mlflow *m)
{
	if (m->call != CALL_NONE || m->stalled || m->broken)
		return;
	if (m->run_id == NULL) {
		if (m->experiment_id == NULL)
			call_experiment(m);
		else
			call_create_run(m, -1, run_start_ms(m));
		return;
	}
	if (m->experiment_id == NULL) {
		char *path = xasprintf("runs/get?run_id=%s", m->run_id);
		send_call(m, CALL_GET_RUN, "GET", path, NULL);
		free(path);
		return;
	}
	if (m->reopen) {
		call_update(m, CALL_REOPEN, m->run_id, "RUNNING");
		return;
	}
	if (!m->params_acked) {
		if (m->params_next < json_array_size(m->params)) {
			call_params(m, CALL_PARAMS, m->run_id);
			return;
		}
		m->params_acked = 1;
		m->params_next = 0;
		save_state(m);
	}
	if (pump_batch(m))
		return;
	if (m->final_status != NULL && !m->final_done)
		pump_final(m);
}

/* Stop until the next mlflow_ship(): the server is unreachable or busy. */
static void
went_offline(struct mlflow *m, const char *why)
{
	m->stalled = 1;
	if (m->warned)
		return;
	m->warned = 1;
	log_warn("mlflow: %s unreachable (%s); the job goes on, metrics stay "
	         "in %s; cohort-mlflow-sync %s sends what is missing",
	         m->shown_uri, why, m->metrics_path, m->workspace);
}

/* Stop for good: the server refused something nothing later can fix. */
static void
give_up(struct mlflow *m, const char *what, const char *why)
{
	m->broken = 1;
	log_error("mlflow: %s: %s; nothing more is sent to %s (metrics stay in "
	          "%s for cohort-mlflow-sync)",
	          what, why, m->shown_uri, m->metrics_path);
}

/* Handle an experiment lookup or creation answer. */
static void
experiment_answer(struct mlflow *m, enum call call,
                  const struct http_response *r, const json_t *body,
                  const char *why)
{
	const char *code =
	    json_string_value(json_object_get(body, "error_code"));
	if (++m->experiment_tries > 6) {
		give_up(m, "experiment lookup", why);
		return;
	}
	if (call == CALL_GET_EXPERIMENT && r->status == 404 && code != NULL) {
		m->create_experiment = 1;
		return;
	}
	if (call == CALL_CREATE_EXPERIMENT && code != NULL &&
	    strcmp(code, "RESOURCE_ALREADY_EXISTS") == 0) {
		m->create_experiment = 0; /* a concurrent creator won */
		return;
	}
	const json_t *exp = call == CALL_GET_EXPERIMENT
	                        ? json_object_get(body, "experiment")
	                        : body;
	char *id = r->status == 200 ? dup_member(exp, "experiment_id") : NULL;
	if (id == NULL) {
		give_up(m, "experiment", why);
		return;
	}
	const char *stage =
	    json_string_value(json_object_get(exp, "lifecycle_stage"));
	if (stage != NULL && strcmp(stage, "deleted") == 0) {
		free(id);
		give_up(m, m->experiment,
		        "the experiment is deleted (restore it, or choose "
		        "another name with MLFLOW_EXPERIMENT_NAME)");
		return;
	}
	m->experiment_id = id;
	save_state(m);
}

/* Handle a runs/create or runs/get answer. */
static void
run_answer(struct mlflow *m, enum call call, const struct http_response *r,
           const json_t *body, const char *why)
{
	const json_t *info =
	    json_object_get(json_object_get(body, "run"), "info");
	char *id = r->status == 200 ? dup_member(info, "run_id") : NULL;
	if (id == NULL) {
		if (call == CALL_CREATE_CHILD) {
			char key[32];
			snprintf(key, sizeof key, "%lld",
			         (long long)m->call_client);
			json_object_set_new(m->refused_children, key,
			                    json_true());
			log_error("mlflow: child run of client %s: %s; its "
			          "metrics are not sent",
			          key, why);
		} else {
			give_up(m,
			        call == CALL_GET_RUN ? "MLFLOW_RUN_ID run"
			                             : "runs/create",
			        why);
		}
		return;
	}
	if (call == CALL_CREATE_CHILD) {
		char key[32];
		snprintf(key, sizeof key, "%lld", (long long)m->call_client);
		json_object_set_new(m->children, key, json_string(id));
		free(id);
	} else if (call == CALL_GET_RUN) {
		m->experiment_id = dup_member(info, "experiment_id");
		free(m->artifact_uri);
		m->artifact_uri = dup_member(info, "artifact_uri");
		free(id);
		if (m->experiment_id == NULL) {
			give_up(m, "runs/get", "answer has no experiment_id");
			return;
		}
	} else {
		m->run_id = id;
		m->artifact_uri = dup_member(info, "artifact_uri");
	}
	save_state(m);
}

/* Handle a params log-batch answer (the parent's or a child's). */
static void
params_answer(struct mlflow *m, enum call call, int ok, const char *why)
{
	if (!ok)
		log_error("mlflow: params %zu-%zu refused (%s); dropped",
		          m->params_next + 1,
		          m->params_next + MAX_PARAMS_PER_BATCH, why);
	m->params_next += MAX_PARAMS_PER_BATCH;
	if (call != CALL_CHILD_PARAMS ||
	    m->params_next < json_array_size(m->params))
		return;
	char id[32];
	snprintf(id, sizeof id, "%lld", (long long)m->call_client);
	json_object_set_new(m->children_params, id, json_true());
	m->params_next = 0;
	save_state(m);
}

/* The parent run has ended: list the child runs to end the same way. */
static void
end_children(struct mlflow *m)
{
	json_array_clear(m->ending);
	m->ending_next = 0;
	const char *client;
	json_t *run;
	json_object_foreach(m->children, client, run)
	    json_array_append(m->ending, run);
}

/* An answer arrived for the call in flight: advance the state, send more. */
static void
on_answer(void *arg, const struct http_response *r)
{
	struct mlflow *m = arg;
	enum call call = m->call;
	m->call = CALL_NONE;
	json_t *body = json_loadb(r->body, r->len, 0, NULL);
	char why[320];
	describe(r, body, why, sizeof why);
	/* an artifact the server will not store (503 of a server without
	 * --serve-artifacts, a 404 page, 401) is skipped: the run's status
	 * must still be set */
	int skip_artifact = call == CALL_ARTIFACT && r->status != 0 &&
	                    (r->status < 200 || r->status >= 300);
	if (!skip_artifact &&
	    (r->status == 0 || http_status_retryable(r->status))) {
		json_decref(body);
		went_offline(m, why);
		return;
	}
	if (m->warned) {
		log_info("mlflow: %s answers again", m->shown_uri);
		m->warned = 0;
	}
	int ok = r->status >= 200 && r->status < 300;
	if (!skip_artifact && (r->status == 401 || r->status == 403 ||
	                       (r->status == 404 && body == NULL))) {
		give_up(m, "the server refused the request", why);
		json_decref(body);
		return;
	}
	switch (call) {
	case CALL_GET_EXPERIMENT:
	case CALL_CREATE_EXPERIMENT:
		experiment_answer(m, call, r, body, why);
		break;
	case CALL_CREATE_RUN:
	case CALL_CREATE_CHILD:
	case CALL_GET_RUN:
		run_answer(m, call, r, body, why);
		break;
	case CALL_REOPEN:
		if (!ok)
			log_error("mlflow: setting the resumed run RUNNING "
			          "refused (%s)",
			          why);
		m->reopen = 0;
		free(m->status_done);
		m->status_done = NULL;
		save_state(m);
		break;
	case CALL_PARAMS:
	case CALL_CHILD_PARAMS:
		params_answer(m, call, ok, why);
		break;
	case CALL_METRICS:
		if (!ok)
			log_error("mlflow: metric batch refused (%s); dropped",
			          why);
		batch_done(m);
		break;
	case CALL_ARTIFACT:
		if (!ok)
			log_error("mlflow: artifact %s refused (%s)",
			          artifact_files[m->artifact_next], why);
		m->artifact_next++;
		break;
	case CALL_UPDATE:
		if (ok) {
			m->parent_done = 1;
			end_children(m);
		} else {
			log_error("mlflow: runs/update refused (%s)", why);
			m->final_done = 1;
		}
		break;
	case CALL_END_CHILD:
		if (!ok)
			log_error("mlflow: ending child run %s refused (%s)",
			          json_string_value(json_array_get(
			              m->ending, m->ending_next)),
			          why);
		m->ending_next++;
		break;
	case CALL_NONE:
		break;
	}
	json_decref(body);
	pump(m);
}

/* Append a batch to the queue. */
static void
queue_batch(struct mlflow *m, int64_t client, json_t *metrics, long end)
{
	if (m->qlen == m->qcap) {
		m->qcap = m->qcap ? m->qcap * 2 : 16;
		m->queue = xreallocarray(m->queue, m->qcap, sizeof *m->queue);
	}
	m->queue[m->qlen++] = (struct batch){client, metrics, end, NULL};
}

/* Metrics read by one mlflow_ship(), grouped by run. */
struct collect {
	struct mlflow *m;
	json_t *runs; /* "client" or "" (parent) -> [metric] */
};

/* The MLflow step of a child run's point: the round, but for a progress
 * line (step_*, several a round) its number among the client's points of
 * that key, so that every point has a step of its own. */
static int64_t
child_step(struct mlflow *m, const char *run, const struct metricslog_line *l)
{
	if (strncmp(l->key, "step_", 5) != 0)
		return l->round;
	char *name = xasprintf("%s/%s", run, l->key);
	int64_t n = json_integer_value(json_object_get(m->progress, name)) + 1;
	json_object_set_new(m->progress, name, json_integer((json_int_t)n));
	free(name);
	return n;
}

/* metricslog callback: one MLflow metric per line. A child run's keys are
 * client_KEY: the client's own value, never taken for the parent's
 * aggregate of the same name. */
static void
collect_line(void *arg, const struct metricslog_line *l)
{
	struct collect *c = arg;
	if (l->client >= 0 && !c->m->child_runs)
		return;
	int64_t ms = llround(l->time * 1000);
	if (c->m->first_line_ms == 0)
		c->m->first_line_ms = ms;
	c->m->last_line_ms = ms;
	char run[32] = "";
	int64_t step = l->round;
	char *key;
	if (l->client >= 0) {
		snprintf(run, sizeof run, "%lld", (long long)l->client);
		step = child_step(c->m, run, l);
		char *prefixed = xasprintf("client_%s", l->key);
		key = clean_key(prefixed);
		free(prefixed);
	} else {
		key = clean_key(l->key);
	}
	json_t *list = json_object_get(c->runs, run);
	if (list == NULL) {
		list = json_array();
		json_object_set_new(c->runs, run, list);
	}
	json_t *value = isfinite(l->value) ? json_real(l->value)
	                : isnan(l->value)  ? json_string("NaN")
	                : l->value > 0     ? json_string("Infinity")
	                                   : json_string("-Infinity");
	json_array_append_new(list, json_pack("{s:s,s:o,s:I,s:I}", "key", key,
	                                      "value", value, "timestamp",
	                                      (json_int_t)ms, "step",
	                                      (json_int_t)step));
	free(key);
}

void
mlflow_ship(struct mlflow *m)
{
	struct collect c = {m, json_object()};
	struct ipc_error err;
	long before = m->read_offset;
	if (metricslog_read(m->metrics_path, &m->read_offset,
	                    m->child_runs ? 0 : METRICSLOG_ROUNDS, collect_line,
	                    &c, &err) < 0)
		log_warn("mlflow: %s", err.message);
	const char *run;
	json_t *list;
	json_object_foreach(c.runs, run, list)
	{
		int64_t client = *run ? strtoll(run, NULL, 10) : -1;
		size_t n = json_array_size(list);
		for (size_t i = 0; i < n; i += MAX_METRICS_PER_BATCH) {
			json_t *chunk = json_array();
			for (size_t k = i;
			     k < n && k < i + MAX_METRICS_PER_BATCH; k++)
				json_array_append(chunk,
				                  json_array_get(list, k));
			queue_batch(m, client, chunk, -1);
		}
	}
	json_decref(c.runs);
	if (m->read_offset != before) {
		if (!(m->qlen > 0 && m->queue[m->qlen - 1].end < 0 &&
		      m->qlen > m->qhead))
			queue_batch(m, -1, json_array(), -1);
		struct batch *last = &m->queue[m->qlen - 1];
		last->end = m->read_offset;
		last->progress = json_deep_copy(m->progress);
	}
	m->stalled = 0;
	pump(m);
}

void
mlflow_finish(struct mlflow *m, const char *status)
{
	mlflow_ship(m);
	free(m->final_status);
	m->final_status = xstrdup(status);
	m->artifact_next = 0;
	m->parent_done = 0;
	m->final_done = !m->sent_any && m->qlen == m->qhead && !m->reopen &&
	                m->call == CALL_NONE && m->status_done != NULL &&
	                strcmp(m->status_done, status) == 0;
	/* the job ends now; a sync keeps the end its job recorded */
	if (!m->replay)
		m->end_ms = epoch_ms();
	else if (m->end_ms == 0)
		m->end_ms = m->last_line_ms > 0 ? m->last_line_ms : epoch_ms();
	save_state(m);
	pump(m);
}

/* Something is left to send and sending can still succeed. */
static int
work_left(const struct mlflow *m)
{
	if (m->broken || m->stalled)
		return 0;
	if (m->call != CALL_NONE || m->run_id == NULL ||
	    m->experiment_id == NULL || m->reopen || !m->params_acked ||
	    m->qlen > m->qhead)
		return 1;
	return m->final_status != NULL && !m->final_done;
}

/* Timer callback that only wakes the loop. */
static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

int
mlflow_drain(struct mlflow *m, double seconds)
{
	double deadline = now_seconds() + seconds;
	struct event *wake = evtimer_new(m->base, on_deadline, NULL);
	while (work_left(m) && now_seconds() < deadline) {
		double left = deadline - now_seconds();
		struct timeval tv = {(time_t)left,
		                     (suseconds_t)((left - floor(left)) * 1e6)};
		evtimer_add(wake, &tv);
		event_base_loop(m->base, EVLOOP_ONCE);
	}
	event_free(wake);
	int done = !work_left(m) && !m->broken && !m->stalled;
	if (!done && !m->broken)
		log_warn("mlflow: %s: not everything was acknowledged; "
		         "cohort-mlflow-sync %s sends the rest",
		         m->shown_uri, m->workspace);
	return done;
}

void
mlflow_free(struct mlflow *m)
{
	if (m == NULL)
		return;
	http_free(m->http);
	for (size_t i = m->qhead; i < m->qlen; i++) {
		json_decref(m->queue[i].metrics);
		json_decref(m->queue[i].progress);
	}
	free(m->queue);
	json_decref(m->params);
	json_decref(m->tags);
	json_decref(m->children);
	json_decref(m->children_params);
	json_decref(m->progress_acked);
	json_decref(m->progress);
	json_decref(m->refused_children);
	json_decref(m->ending);
	free(m->uri);
	free(m->shown_uri);
	free(m->git_revision);
	free(m->api);
	free(m->workspace);
	free(m->state_path);
	free(m->metrics_path);
	free(m->experiment);
	free(m->run_name);
	free(m->user);
	free(m->experiment_id);
	free(m->run_id);
	free(m->artifact_uri);
	free(m->status_done);
	free(m->final_status);
	free(m);
}
