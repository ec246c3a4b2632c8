/* helper-mlflow-server.c: cohort-test-mlflow-server, a small MLflow tracking
 * server for tests. It speaks the REST calls cohort uses with the real
 * server's validation rules (log-batch limits, key pattern, value sizes,
 * param immutability, identical metric points stored once, JSON error bodies,
 * non-JSON bodies for unknown paths), records every request to a JSONL file
 * and injects faults on demand.
 *
 *   cohort-test-mlflow-server [--port P] [--log FILE] [--idle-timeout S]
 *       [--fail-first N --fail-status 429|500|503 [--retry-after S]]
 *       [--delay-ms MS] [--db FILE] [--artifact-root DIR]
 *
 * --db keeps experiments and runs across restarts (loaded at start, saved at
 * exit), as a real server's backend store does; artifacts are not kept.
 * --artifact-root gives experiments a plain-path artifact location, as a
 * server started without --serve-artifacts does (its runs' artifact_uri is
 * then a path the client cannot upload to). Runs keep start_time (now when
 * runs/create has none) and end_time; runs/update without end_time leaves
 * it, as the real store does.
 * It prints the port it listens on (127.0.0.1) as the first stdout line. */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

/* Limits of the real server (MLflow 2.x). */
enum {
	MAX_METRICS = 1000,
	MAX_PARAMS = 100,
	MAX_TAGS = 100,
	MAX_ENTITIES = 1000,
	MAX_KEY = 250,
	MAX_PARAM_VALUE = 500,
	MAX_TAG_VALUE = 5000,
};

/* Server state and options. */
static struct {
	struct event_base *base;
	json_t *experiments; /* [{experiment_id, name, lifecycle_stage, ...}] */
	json_t *runs;        /* run_id -> {info, params{}, tags{}, metrics[]} */
	json_t *artifacts;   /* path -> byte string (as a JSON string) */
	FILE *log;
	long fail_first, fail_status, retry_after, delay_ms;
	long requests;
	unsigned long next_id;
	double idle_timeout;
	struct event *idle;
	const char *db;
	const char *artifact_root;
} S = {.fail_status = 500};

/* An answer waiting for --delay-ms. */
struct answer {
	struct evhttp_request *req;
	int status;
	char *body;
	const char *type;
};

/* Seconds since the epoch (request times in the log). */
static double
wall(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Send an answer now. */
static void
send_now(struct answer *a)
{
	struct evbuffer *out = evbuffer_new();
	evbuffer_add(out, a->body, strlen(a->body));
	evhttp_add_header(evhttp_request_get_output_headers(a->req),
	                  "Content-Type", a->type);
	evhttp_send_reply(a->req, a->status, a->status == 200 ? "OK" : "Error",
	                  out);
	evbuffer_free(out);
	free(a->body);
	free(a);
}

/* Timer callback of a delayed answer. */
static void
send_later(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	send_now(arg);
}

/* Answer with a body (taken over), after --delay-ms if set. */
static void
reply(struct evhttp_request *req, int status, char *body, const char *type)
{
	struct answer *a = calloc(1, sizeof *a);
	a->req = req;
	a->status = status;
	a->body = body;
	a->type = type;
	if (S.delay_ms <= 0) {
		send_now(a);
		return;
	}
	struct timeval tv = {S.delay_ms / 1000, (S.delay_ms % 1000) * 1000};
	event_base_once(S.base, -1, EV_TIMEOUT, send_later, a, &tv);
}

/* Answer 200 with a JSON object (reference taken). */
static void
reply_json(struct evhttp_request *req, json_t *obj)
{
	reply(req, 200, json_dumps(obj, JSON_COMPACT), "application/json");
	json_decref(obj);
}

/* Answer an MLflow error: {"error_code", "message"}. */
static void
reply_error(struct evhttp_request *req, int status, const char *code,
            const char *msg)
{
	json_t *e = json_pack("{s:s,s:s}", "error_code", code, "message", msg);
	reply(req, status, json_dumps(e, JSON_COMPACT), "application/json");
	json_decref(e);
}

/* A fresh 32-hex-digit id. */
static char *
new_run_id(void)
{
	char *id = malloc(33);
	unsigned long a = ++S.next_id * 2654435761u ^ (unsigned long)getpid();
	snprintf(id, 33, "%016lx%016lx", a,
	         (unsigned long)time(NULL) + S.next_id);
	return id;
}

/* A metric/param/tag key: [/\w.\- ], 1..250 chars. */
static const char *
bad_key(const char *key)
{
	if (key == NULL || *key == '\0')
		return "missing key";
	if (strlen(key) > MAX_KEY)
		return "key longer than 250 characters";
	for (const char *p = key; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("_-./ ", *p))
			return "key has characters outside [/\\w.\\- ]";
	return NULL;
}

/* The experiment named name, or NULL. */
static json_t *
find_experiment(const char *name, const char *id)
{
	size_t i;
	json_t *e;
	json_array_foreach(S.experiments, i, e)
	{
		const char *n = json_string_value(json_object_get(e, "name"));
		const char *x =
		    json_string_value(json_object_get(e, "experiment_id"));
		if ((name && strcmp(n, name) == 0) ||
		    (id && strcmp(x, id) == 0))
			return e;
	}
	return NULL;
}

/* Query parameter of a request, or NULL. */
static const char *
query_get(struct evkeyvalq *q, const char *key)
{
	return evhttp_find_header(q, key);
}

/* GET experiments/get-by-name. */
static void
get_experiment(struct evhttp_request *req, struct evkeyvalq *q)
{
	const char *name = query_get(q, "experiment_name");
	json_t *e = name ? find_experiment(name, NULL) : NULL;
	if (e == NULL) {
		reply_error(req, 404, "RESOURCE_DOES_NOT_EXIST",
		            "Could not find experiment with the given name");
		return;
	}
	reply_json(req, json_pack("{s:O}", "experiment", e));
}

/* POST experiments/create. */
static void
create_experiment(struct evhttp_request *req, json_t *body)
{
	const char *name = json_string_value(json_object_get(body, "name"));
	if (name == NULL || *name == '\0') {
		reply_error(req, 400, "INVALID_PARAMETER_VALUE",
		            "Missing value for required parameter 'name'");
		return;
	}
	if (find_experiment(name, NULL)) {
		reply_error(req, 400, "RESOURCE_ALREADY_EXISTS",
		            "Experiment already exists");
		return;
	}
	char id[32];
	snprintf(id, sizeof id, "%zu", json_array_size(S.experiments) + 1);
	char loc[600];
	if (S.artifact_root)
		snprintf(loc, sizeof loc, "%s/%s", S.artifact_root, id);
	else
		snprintf(loc, sizeof loc, "mlflow-artifacts:/%s", id);
	json_array_append_new(S.experiments,
	                      json_pack("{s:s,s:s,s:s,s:s}", "experiment_id",
	                                id, "name", name, "lifecycle_stage",
	                                "active", "artifact_location", loc));
	reply_json(req, json_pack("{s:s}", "experiment_id", id));
}

/* POST runs/create. */
static void
create_run(struct evhttp_request *req, json_t *body)
{
	const char *exp =
	    json_string_value(json_object_get(body, "experiment_id"));
	if (exp == NULL || find_experiment(NULL, exp) == NULL) {
		reply_error(req, 404, "RESOURCE_DOES_NOT_EXIST",
		            "No experiment with that id");
		return;
	}
	json_t *start = json_object_get(body, "start_time");
	if (start != NULL && !json_is_integer(start)) {
		reply_error(req, 400, "INVALID_PARAMETER_VALUE",
		            "start_time is not an integer");
		return;
	}
	char *id = new_run_id();
	char uri[700];
	snprintf(uri, sizeof uri, "%s/%s/artifacts",
	         json_string_value(json_object_get(find_experiment(NULL, exp),
	                                           "artifact_location")),
	         id);
	json_t *tags = json_object();
	size_t i;
	json_t *t;
	json_array_foreach(json_object_get(body, "tags"), i, t)
	    json_object_set(tags, json_string_value(json_object_get(t, "key")),
	                    json_object_get(t, "value"));
	const char *name = json_string_value(json_object_get(body, "run_name"));
	if (name)
		json_object_set_new(tags, "mlflow.runName", json_string(name));
	json_t *info =
	    json_pack("{s:s,s:s,s:s,s:s,s:s,s:o,s:s,s:s}", "run_id", id,
	              "run_uuid", id, "experiment_id", exp, "run_name",
	              name ? name : "", "status", "RUNNING", "start_time",
	              start ? json_incref(start)
	                    : json_integer((json_int_t)(wall() * 1000)),
	              "artifact_uri", uri, "lifecycle_stage", "active");
	json_t *run =
	    json_pack("{s:o,s:o,s:o,s:o}", "info", info, "params",
	              json_object(), "tags", tags, "metrics", json_array());
	json_object_set_new(S.runs, id, run);
	free(id);
	reply_json(req, json_pack("{s:{s:O}}", "run", "info", info));
}

/* The public form of a stored run. */
static json_t *
run_view(json_t *run)
{
	json_t *params = json_array(), *tags = json_array(),
	       *latest = json_object();
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(run, "params"), k, v)
	    json_array_append_new(params,
	                          json_pack("{s:s,s:O}", "key", k, "value", v));
	json_object_foreach(json_object_get(run, "tags"), k, v)
	    json_array_append_new(tags,
	                          json_pack("{s:s,s:O}", "key", k, "value", v));
	size_t i;
	json_array_foreach(json_object_get(run, "metrics"), i, v)
	    json_object_set(latest,
	                    json_string_value(json_object_get(v, "key")), v);
	json_t *metrics = json_array();
	json_object_foreach(latest, k, v) json_array_append(metrics, v);
	json_decref(latest);
	return json_pack("{s:{s:O,s:{s:o,s:o,s:o}}}", "run", "info",
	                 json_object_get(run, "info"), "data", "metrics",
	                 metrics, "params", params, "tags", tags);
}

/* The stored run a request names by run_id, or NULL after a 404. */
static json_t *
lookup_run(struct evhttp_request *req, const char *id)
{
	json_t *run = id ? json_object_get(S.runs, id) : NULL;
	if (run == NULL)
		reply_error(req, 404, "RESOURCE_DOES_NOT_EXIST",
		            "Run not found");
	return run;
}

/* Check one metric of a log-batch; the reason when invalid. */
static const char *
bad_metric(json_t *m)
{
	const char *why = bad_key(json_string_value(json_object_get(m, "key")));
	if (why)
		return why;
	json_t *v = json_object_get(m, "value");
	if (v == NULL || json_is_null(v))
		return "Missing value for required parameter 'value'";
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		if (strcmp(s, "NaN") && strcmp(s, "Infinity") &&
		    strcmp(s, "-Infinity"))
			return "metric value string is not a number";
	} else if (!json_is_number(v)) {
		return "metric value is not a number";
	}
	if (!json_is_integer(json_object_get(m, "timestamp")))
		return "Missing value for required parameter 'timestamp'";
	json_t *step = json_object_get(m, "step");
	if (step != NULL && !json_is_integer(step))
		return "step is not an integer";
	return NULL;
}

/* Check a list of params or tags against the run; the reason if invalid. */
static const char *
bad_key_values(json_t *list, json_t *stored, size_t max_value, int immutable)
{
	size_t i;
	json_t *p;
	json_array_foreach(list, i, p)
	{
		const char *key = json_string_value(json_object_get(p, "key"));
		const char *why = bad_key(key);
		if (why)
			return why;
		const char *v = json_string_value(json_object_get(p, "value"));
		if (v == NULL)
			return "Missing value for required parameter 'value'";
		if (strlen(v) > max_value)
			return "value longer than allowed";
		const char *old =
		    json_string_value(json_object_get(stored, key));
		if (immutable && old != NULL && strcmp(old, v) != 0)
			return "Changing param values is not allowed";
	}
	return NULL;
}

/* POST runs/log-batch: validate all, then store (the batch is atomic). */
static void
log_batch(struct evhttp_request *req, json_t *body)
{
	json_t *run =
	    lookup_run(req, json_string_value(json_object_get(body, "run_id")));
	if (run == NULL)
		return;
	json_t *metrics = json_object_get(body, "metrics");
	json_t *params = json_object_get(body, "params");
	json_t *tags = json_object_get(body, "tags");
	size_t nm = json_array_size(metrics), np = json_array_size(params),
	       nt = json_array_size(tags);
	const char *why = NULL;
	if (nm > MAX_METRICS || np > MAX_PARAMS || nt > MAX_TAGS ||
	    nm + np + nt > MAX_ENTITIES)
		why = "A batch logging request can contain at most 1000 "
		      "metrics, 100 params, 100 tags and 1000 entities";
	size_t i;
	json_t *m;
	json_array_foreach(metrics, i, m) if (why == NULL) why = bad_metric(m);
	if (why == NULL)
		why = bad_key_values(params, json_object_get(run, "params"),
		                     MAX_PARAM_VALUE, 1);
	if (why == NULL)
		why = bad_key_values(tags, NULL, MAX_TAG_VALUE, 0);
	if (why != NULL) {
		reply_error(req, 400, "INVALID_PARAMETER_VALUE", why);
		return;
	}
	json_t *stored = json_object_get(run, "metrics");
	json_array_foreach(metrics, i, m)
	{
		json_t *point = json_pack(
		    "{s:O,s:O,s:O,s:I}", "key", json_object_get(m, "key"),
		    "value", json_object_get(m, "value"), "timestamp",
		    json_object_get(m, "timestamp"), "step",
		    json_integer_value(json_object_get(m, "step")));
		int dup = 0;
		size_t k;
		json_t *s;
		json_array_foreach(stored, k, s) if (json_equal(s, point)) dup =
		    1;
		if (dup)
			json_decref(point);
		else
			json_array_append_new(stored, point);
	}
	json_t *p;
	json_array_foreach(params, i, p)
	    json_object_set(json_object_get(run, "params"),
	                    json_string_value(json_object_get(p, "key")),
	                    json_object_get(p, "value"));
	json_array_foreach(tags, i, p)
	    json_object_set(json_object_get(run, "tags"),
	                    json_string_value(json_object_get(p, "key")),
	                    json_object_get(p, "value"));
	reply_json(req, json_object());
}

/* POST runs/update. */
static void
update_run(struct evhttp_request *req, json_t *body)
{
	json_t *run =
	    lookup_run(req, json_string_value(json_object_get(body, "run_id")));
	if (run == NULL)
		return;
	const char *status = json_string_value(json_object_get(body, "status"));
	if (status == NULL ||
	    (strcmp(status, "RUNNING") && strcmp(status, "FINISHED") &&
	     strcmp(status, "FAILED") && strcmp(status, "KILLED") &&
	     strcmp(status, "SCHEDULED"))) {
		reply_error(req, 400, "INVALID_PARAMETER_VALUE",
		            "Invalid run status");
		return;
	}
	json_t *end = json_object_get(body, "end_time");
	if (end != NULL && !json_is_integer(end)) {
		reply_error(req, 400, "INVALID_PARAMETER_VALUE",
		            "end_time is not an integer");
		return;
	}
	json_t *info = json_object_get(run, "info");
	json_object_set_new(info, "status", json_string(status));
	if (end)
		json_object_set(info, "end_time", end);
	reply_json(req, json_pack("{s:O}", "run_info", info));
}

/* GET metrics/get-history. */
static void
metric_history(struct evhttp_request *req, struct evkeyvalq *q)
{
	json_t *run = lookup_run(req, query_get(q, "run_id"));
	if (run == NULL)
		return;
	const char *key = query_get(q, "metric_key");
	json_t *out = json_array();
	size_t i;
	json_t *m;
	json_array_foreach(json_object_get(run, "metrics"), i, m)
	{
		if (key && strcmp(key, json_string_value(
		                           json_object_get(m, "key"))) == 0)
			json_array_append(out, m);
	}
	reply_json(req, json_pack("{s:o}", "metrics", out));
}

/* PUT/GET api/2.0/mlflow-artifacts/artifacts/<path>. */
static void
artifact(struct evhttp_request *req, const char *path, const char *data,
         size_t len, int put)
{
	if (put) {
		json_object_set_new(S.artifacts, path,
		                    json_stringn_nocheck(data, len));
		reply_json(req, json_object());
		return;
	}
	json_t *a = json_object_get(S.artifacts, path);
	if (a == NULL) {
		reply_error(req, 404, "RESOURCE_DOES_NOT_EXIST",
		            "No such artifact");
		return;
	}
	struct evbuffer *out = evbuffer_new();
	evbuffer_add(out, json_string_value(a), json_string_length(a));
	evhttp_send_reply(req, 200, "OK", out);
	evbuffer_free(out);
}

/* Append the request to the log file. */
static void
log_request(const char *method, const char *path, const char *query,
            const char *body, size_t len, const char *auth, int injected)
{
	if (S.log == NULL)
		return;
	json_t *r = json_pack("{s:f,s:s,s:s,s:s,s:s%,s:s,s:b}", "time", wall(),
	                      "method", method, "path", path, "query",
	                      query ? query : "", "body", body, len, "auth",
	                      auth ? auth : "", "injected", injected);
	if (r == NULL) /* not UTF-8 (an artifact): record its size */
		r = json_pack("{s:f,s:s,s:s,s:s,s:I,s:s,s:b}", "time", wall(),
		              "method", method, "path", path, "query", "",
		              "body_bytes", (json_int_t)len, "auth",
		              auth ? auth : "", "injected", injected);
	char *line = json_dumps(r, JSON_COMPACT);
	fprintf(S.log, "%s\n", line);
	fflush(S.log);
	free(line);
	json_decref(r);
}

/* Route one request. */
static void
handle(struct evhttp_request *req, void *arg)
{
	(void)arg;
	if (S.idle) {
		struct timeval tv = {(time_t)S.idle_timeout, 0};
		evtimer_add(S.idle, &tv);
	}
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	const char *method = cmd == EVHTTP_REQ_GET    ? "GET"
	                     : cmd == EVHTTP_REQ_POST ? "POST"
	                     : cmd == EVHTTP_REQ_PUT  ? "PUT"
	                                              : "OTHER";
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	char *path = evhttp_uridecode(evhttp_uri_get_path(uri), 0, NULL);
	const char *query = evhttp_uri_get_query(uri);
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	char *data = malloc(len + 1);
	evbuffer_copyout(in, data, len);
	data[len] = '\0';
	const char *auth = evhttp_find_header(
	    evhttp_request_get_input_headers(req), "Authorization");
	int injected = S.requests++ < S.fail_first;
	log_request(method, path, query, data, len, auth, injected);

	struct evkeyvalq q;
	evhttp_parse_query_str(query ? query : "", &q);
	json_t *body =
	    cmd == EVHTTP_REQ_POST ? json_loadb(data, len, 0, NULL) : NULL;
	const char *api = "/api/2.0/mlflow/";
	const char *art = "/api/2.0/mlflow-artifacts/artifacts/";
	const char *call =
	    strncmp(path, api, strlen(api)) == 0 ? path + strlen(api) : NULL;
	int get = cmd == EVHTTP_REQ_GET, post = cmd == EVHTTP_REQ_POST;
	if (injected) {
		if (S.retry_after > 0) {
			char v[32];
			snprintf(v, sizeof v, "%ld", S.retry_after);
			evhttp_add_header(
			    evhttp_request_get_output_headers(req),
			    "Retry-After", v);
		}
		reply_error(req, (int)S.fail_status,
		            S.fail_status == 429 ? "REQUEST_LIMIT_EXCEEDED"
		                                 : "INTERNAL_ERROR",
		            "injected failure");
	} else if (strncmp(path, art, strlen(art)) == 0 &&
	           (cmd == EVHTTP_REQ_PUT || get)) {
		artifact(req, path + strlen(art), data, len,
		         cmd == EVHTTP_REQ_PUT);
	} else if (call == NULL) {
		reply(req, 404,
		      strdup("<!doctype html><title>404 Not Found"
		             "</title><h1>Not Found</h1>"),
		      "text/html");
	} else if (post && body == NULL) {
		reply_error(req, 400, "MALFORMED_REQUEST",
		            "request body is not JSON");
	} else if (get && strcmp(call, "experiments/get-by-name") == 0) {
		get_experiment(req, &q);
	} else if (post && strcmp(call, "experiments/create") == 0) {
		create_experiment(req, body);
	} else if (post && strcmp(call, "runs/create") == 0) {
		create_run(req, body);
	} else if (post && strcmp(call, "runs/log-batch") == 0) {
		log_batch(req, body);
	} else if (post && strcmp(call, "runs/update") == 0) {
		update_run(req, body);
	} else if (get && strcmp(call, "runs/get") == 0) {
		json_t *run = lookup_run(req, query_get(&q, "run_id"));
		if (run)
			reply_json(req, run_view(run));
	} else if (get && strcmp(call, "metrics/get-history") == 0) {
		metric_history(req, &q);
	} else {
		reply(req, 404,
		      strdup("<!doctype html><title>404 Not Found"
		             "</title><h1>Not Found</h1>"),
		      "text/html");
	}
	json_decref(body);
	evhttp_clear_headers(&q);
	free(data);
	free(path);
}

/* Load --db, or start empty. */
static void
load_db(void)
{
	json_t *db = S.db ? json_load_file(S.db, 0, NULL) : NULL;
	S.experiments = json_incref(json_object_get(db, "experiments"));
	S.runs = json_incref(json_object_get(db, "runs"));
	S.next_id =
	    (unsigned long)json_integer_value(json_object_get(db, "next_id"));
	if (S.experiments == NULL)
		S.experiments = json_array();
	if (S.runs == NULL)
		S.runs = json_object();
	S.artifacts = json_object(); /* bytes, not kept across restarts */
	json_decref(db);
}

/* Save --db. */
static void
save_db(void)
{
	if (S.db == NULL)
		return;
	json_t *db =
	    json_pack("{s:O,s:O,s:I}", "experiments", S.experiments, "runs",
	              S.runs, "next_id", (json_int_t)S.next_id);
	json_dump_file(db, S.db, JSON_COMPACT);
	json_decref(db);
}

/* SIGTERM or the idle timeout: stop serving. */
static void
on_stop(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	event_base_loopexit(S.base, NULL);
}

int
main(int argc, char **argv)
{
	int port = 0;
	const char *log_path = NULL;
	S.idle_timeout = 60;
	/* Every option takes a value: step over pairs. */
	for (int i = 1; i < argc; i += 2) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (v == NULL) {
			fprintf(stderr, "%s: %s needs a value\n", argv[0], a);
			return 2;
		}
		if (strcmp(a, "--port") == 0)
			port = atoi(v);
		else if (strcmp(a, "--log") == 0)
			log_path = v;
		else if (strcmp(a, "--idle-timeout") == 0)
			S.idle_timeout = atof(v);
		else if (strcmp(a, "--fail-first") == 0)
			S.fail_first = atol(v);
		else if (strcmp(a, "--fail-status") == 0)
			S.fail_status = atol(v);
		else if (strcmp(a, "--retry-after") == 0)
			S.retry_after = atol(v);
		else if (strcmp(a, "--delay-ms") == 0)
			S.delay_ms = atol(v);
		else if (strcmp(a, "--db") == 0)
			S.db = v;
		else if (strcmp(a, "--artifact-root") == 0)
			S.artifact_root = v;
		else {
			fprintf(stderr, "%s: unknown option %s\n", argv[0], a);
			return 2;
		}
	}
	if (log_path != NULL && (S.log = fopen(log_path, "a")) == NULL) {
		fprintf(stderr, "%s: %s: %s\n", argv[0], log_path,
		        strerror(errno));
		return 1;
	}
	load_db();
	S.base = event_base_new();
	struct evhttp *http = evhttp_new(S.base);
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	                                     EVHTTP_REQ_PUT);
	evhttp_set_max_body_size(http, 256 << 20);
	evhttp_set_gencb(http, handle, NULL);
	struct evhttp_bound_socket *sock =
	    evhttp_bind_socket_with_handle(http, "127.0.0.1", (uint16_t)port);
	if (sock == NULL) {
		fprintf(stderr, "%s: cannot listen on 127.0.0.1:%d\n", argv[0],
		        port);
		return 1;
	}
	struct sockaddr_in addr;
	socklen_t alen = sizeof addr;
	getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&addr,
	            &alen);
	printf("%d\n", ntohs(addr.sin_port));
	fflush(stdout);
	struct event *term = evsignal_new(S.base, SIGTERM, on_stop, NULL);
	event_add(term, NULL);
	S.idle = evtimer_new(S.base, on_stop, NULL);
	struct timeval tv = {(time_t)S.idle_timeout, 0};
	evtimer_add(S.idle, &tv);
	event_base_dispatch(S.base);
	event_free(term);
	event_free(S.idle);
	evhttp_free(http);
	event_base_free(S.base);
	save_db();
	json_decref(S.experiments);
	json_decref(S.runs);
	json_decref(S.artifacts);
	if (S.log)
		fclose(S.log);
	return 0;
}
