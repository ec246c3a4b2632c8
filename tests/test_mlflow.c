/* test_mlflow.c: MLflow tracking against cohort-test-mlflow-server on a real
 * libevent loop: the calls of a whole job, retries and backoff, an outage
 * recovered by cohort-mlflow-sync, validation limits, authentication. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <jansson.h>

#include "files.h"
#include "harness.h"
#include "tracking.h"
#include "util.h"

/* A test server child process. */
struct server {
	pid_t pid;
	int port;
	char log[512];
	char uri[64];
};

/* Start cohort-test-mlflow-server with extra arguments (NULL-terminated);
 * 0 on success. */
static int
server_start(struct server *s, const char *name, const char *const *extra)
{
	snprintf(s->log, sizeof s->log, "%s/%s.jsonl", harness_tmpdir(), name);
	const char *argv[32];
	int n = 0;
	argv[n++] = harness_build_path("tests/cohort-test-mlflow-server");
	argv[n++] = "--log";
	argv[n++] = s->log;
	argv[n++] = "--idle-timeout";
	argv[n++] = "60";
	for (; extra && *extra && n < 30; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	int fds[2];
	if (pipe(fds) < 0)
		return -1;
	char path[1024];
	snprintf(path, sizeof path, "%s", argv[0]);
	s->pid = fork();
	if (s->pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execv(path, (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	char buf[32] = "";
	ssize_t got = read(fds[0], buf, sizeof buf - 1);
	close(fds[0]);
	s->port = got > 0 ? atoi(buf) : 0;
	snprintf(s->uri, sizeof s->uri, "http://127.0.0.1:%d", s->port);
	return s->port > 0 ? 0 : -1;
}

/* Stop the server (SIGTERM) and reap it. */
static void
server_stop(struct server *s)
{
	if (s->pid <= 0)
		return;
	kill(s->pid, SIGTERM);
	waitpid(s->pid, NULL, 0);
	s->pid = 0;
}

/* The server's request log as a JSON array. */
static json_t *
server_requests(const struct server *s)
{
	json_t *all = json_array();
	FILE *f = fopen(s->log, "r");
	char *line = NULL;
	size_t cap = 0;
	while (f && getline(&line, &cap, f) > 0)
		json_array_append_new(all, json_loads(line, 0, NULL));
	free(line);
	if (f)
		fclose(f);
	return all;
}

/* Requests whose path ends with suffix (and, if set, method matches). */
static json_t *
requests_to(const json_t *all, const char *method, const char *suffix)
{
	json_t *out = json_array();
	size_t i;
	json_t *r;
	json_array_foreach(all, i, r)
	{
		const char *p = json_string_value(json_object_get(r, "path"));
		const char *m = json_string_value(json_object_get(r, "method"));
		size_t lp = strlen(p), ls = strlen(suffix);
		if (lp >= ls && strcmp(p + lp - ls, suffix) == 0 &&
		    (method == NULL || strcmp(m, method) == 0))
			json_array_append(out, r);
	}
	return out;
}

/* The JSON body of a logged request. */
static json_t *
body_of(const json_t *req)
{
	return json_loads(json_string_value(json_object_get(req, "body")), 0,
	                  NULL);
}

/* A fresh workspace directory with metrics/ and results/. */
static char *
make_workspace(const char *name)
{
	char *ws = xasprintf("%s/%s", harness_tmpdir(), name);
	char *m = xasprintf("%s/metrics", ws);
	char *r = xasprintf("%s/results", ws);
	mkdir(ws, 0755);
	mkdir(m, 0755);
	mkdir(r, 0755);
	free(m);
	free(r);
	return ws;
}

/* Append a line to the workspace's metrics.jsonl the way metrics.c does. */
static void
put_line(const char *ws, const char *line)
{
	char *p = xasprintf("%s/metrics/metrics.jsonl", ws);
	FILE *f = fopen(p, "a");
	fprintf(f, "%s\n", line);
	fclose(f);
	free(p);
}

/* Time stamp of a synthetic line: fixed, so payloads can be checked. */
static double
line_time(unsigned round, unsigned k)
{
	return 1700000000.0 + round * 10 + k * 0.001;
}

/* Write a round: six round-level metrics and two clients' task metrics. */
static void
put_round(const char *ws, unsigned r)
{
	static const char *keys[] = {"train_loss",    "test_loss",
	                             "test_accuracy", "fit_ok",
	                             "fit_failed",    "round_seconds"};
	double vals[] = {1.0 / r, 1.5 / r, 0.5 + 0.1 * r, 2, 0, 1.25};
	char line[512];
	for (unsigned c = 0; c < 2; c++) {
		snprintf(line, sizeof line,
		         "{\"round\":%u,\"client\":%u,\"task\":%u,\"key\":"
		         "\"loss\",\"value\":%.17g,\"time\":%.3f}",
		         r, c, r * 2 + c, 0.9 / r + c, line_time(r, 10 + c));
		put_line(ws, line);
	}
	for (unsigned k = 0; k < 2; k++) { /* progress: two a round */
		snprintf(line, sizeof line,
		         "{\"round\":%u,\"client\":0,\"task\":%u,\"key\":"
		         "\"step_loss\",\"value\":%.17g,\"time\":%.3f}",
		         r, r * 2, 2.0 / r - k * 0.1, line_time(r, 8 + k));
		put_line(ws, line);
	}
	for (unsigned k = 0; k < 6; k++) {
		snprintf(line, sizeof line,
		         "{\"round\":%u,\"key\":\"%s\",\"value\":%.17g,"
		         "\"time\":%.3f}",
		         r, keys[k], vals[k], line_time(r, k));
		put_line(ws, line);
	}
}

/* Collect a response body. */
static size_t
collect(char *data, size_t size, size_t n, void *userp)
{
	char **buf = userp;
	size_t have = *buf ? strlen(*buf) : 0;
	*buf = xrealloc(*buf, have + size * n + 1);
	memcpy(*buf + have, data, size * n);
	(*buf)[have + size * n] = '\0';
	return size * n;
}

/* GET path from the server and parse the JSON answer. */
static json_t *
server_get(const struct server *s, const char *path)
{
	char *url = xasprintf("%s%s", s->uri, path);
	char *body = NULL;
	CURL *c = curl_easy_init();
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
	curl_easy_perform(c);
	curl_easy_cleanup(c);
	json_t *j = body ? json_loads(body, 0, NULL) : NULL;
	free(body);
	free(url);
	return j;
}

/* Points of a metric in a run (metrics/get-history). */
static json_t *
history(const struct server *s, const char *run, const char *key)
{
	char *path = xasprintf("/api/2.0/mlflow/metrics/get-history?run_id=%s"
	                       "&metric_key=%s",
	                       run, key);
	json_t *j = server_get(s, path);
	free(path);
	json_t *m = json_incref(json_object_get(j, "metrics"));
	json_decref(j);
	return m ? m : json_array();
}

/* The stored run (runs/get answer's "run"), a new reference. */
static json_t *
run_get(const struct server *s, const char *run)
{
	char *path = xasprintf("/api/2.0/mlflow/runs/get?run_id=%s", run);
	json_t *j = server_get(s, path);
	free(path);
	json_t *r = json_incref(json_object_get(j, "run"));
	json_decref(j);
	return r ? r : json_object();
}

/* Member of a stored run's info as an integer (start_time, end_time). */
static int64_t
run_time(const json_t *run, const char *key)
{
	return json_integer_value(
	    json_object_get(json_object_get(run, "info"), key));
}

/* A stored run's status. */
static const char *
run_status(const json_t *run)
{
	const char *st = json_string_value(
	    json_object_get(json_object_get(run, "info"), "status"));
	return st ? st : "";
}

/* Number of params a stored run has. */
static size_t
run_params(const json_t *run)
{
	return json_array_size(
	    json_object_get(json_object_get(run, "data"), "params"));
}

/* Write text to a file under the workspace. */
static void
put_file(const char *ws, const char *rel, const char *text)
{
	char *p = xasprintf("%s/%s", ws, rel);
	FILE *f = fopen(p, "w");
	fputs(text, f);
	fclose(f);
	free(p);
}

/* Log lines the code under test wrote while captured (one per line). */
static char captured[16384];

/* log writer: append the line to captured. */
static void
capture_line(enum log_level level, const char *msg, void *arg)
{
	(void)level;
	(void)arg;
	size_t n = strlen(captured);
	snprintf(captured + n, sizeof captured - n, "%s\n", msg);
}

/* Milliseconds since the epoch. */
static int64_t
wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The state file of a workspace. */
static json_t *
state_of(const char *ws)
{
	char *p = xasprintf("%s/metrics/mlflow.json", ws);
	json_t *j = json_load_file(p, 0, NULL);
	free(p);
	return j ? j : json_object();
}

/* Size of a workspace's metrics.jsonl. */
static long
metrics_size(const char *ws)
{
	char *p = xasprintf("%s/metrics/metrics.jsonl", ws);
	struct stat st;
	long n = stat(p, &st) == 0 ? (long)st.st_size : -1;
	free(p);
	return n;
}

/* Run the loop until the state file acknowledges offset, or seconds pass. */
static int
loop_until_acked(struct event_base *base, const char *ws, long offset,
                 double seconds)
{
	double end = now_seconds() + seconds;
	struct timeval tick = {0, 20000};
	while (now_seconds() < end) {
		event_base_loopexit(base, &tick);
		event_base_dispatch(base);
		json_t *st = state_of(ws);
		long acked = (long)json_integer_value(
		    json_object_get(st, "acked_offset"));
		json_decref(st);
		if (acked == offset)
			return 1;
	}
	return 0;
}

/* The resolved config of the synthetic job. */
static json_t *
job_config(void)
{
	return json_pack("{s:{s:s,s:i},s:{s:i,s:i},s:{s:s},s:{s:f,s:[i,i]}}",
	                 "job", "name", "demo", "seed", 7, "federation",
	                 "clients", 2, "rounds", 3, "strategy", "name",
	                 "fedavg", "train", "lr", 0.05, "layers", 128, 10);
}

static const struct tracking_tags demo_tags = {"0.1.0", "7", "fedavg",
                                               "abc123"};

/* Open tracking with MLflow at uri for a workspace. */
static struct tracking *
open_tracking(struct event_base *base, const char *ws, const char *uri,
              const json_t *cfg, int child_runs)
{
	struct tracking_config tc = {
	    .mlflow_uri = uri,
	    .experiment = "cohort-test",
	    .run_name = "demo-job",
	    .child_runs = child_runs,
	    .retry_base_s = 0.02,
	};
	struct ipc_error err;
	struct tracking *t =
	    tracking_open(base, ws, &tc, cfg, &demo_tags, &err);
	if (t == NULL)
		fprintf(stderr, "tracking_open: %s\n", err.message);
	return t;
}

/* Value of the tag key in a runs/create body. */
static const char *
tag_value(const json_t *body, const char *key)
{
	size_t i;
	json_t *t;
	json_array_foreach(json_object_get(body, "tags"), i, t)
	{
		if (strcmp(json_string_value(json_object_get(t, "key")), key) ==
		    0)
			return json_string_value(json_object_get(t, "value"));
	}
	return NULL;
}

/* A whole small job: the exact sequence of calls and their payloads. */
static void
test_whole_job(void)
{
	struct server s = {0};
	CHECK(server_start(&s, "job", NULL) == 0);
	char *ws = make_workspace("job");
	char *model = xasprintf("%s/results/global_model.safetensors", ws);
	FILE *f = fopen(model, "w");
	fputs("not really safetensors", f);
	fclose(f);
	put_file(ws, "config.json",
	         "{\"job\": {\"name\": \"demo\"}, \"tracking\": "
	         "{\"mlflow_uri\": \"http://ann:pa55@mlflow.example\"}}\n");
	put_file(ws, "results/summary.json", "{\"rounds\": 3}\n");
	struct event_base *base = event_base_new();
	json_t *cfg = job_config();
	int64_t opened = wall_ms();
	struct tracking *t = open_tracking(base, ws, s.uri, cfg, 1);
	CHECK(t != NULL);
	for (unsigned r = 1; r <= 3; r++) {
		put_round(ws, r);
		tracking_round(t, r);
	}
	CHECK_EQ_INT(tracking_finish(t, "FINISHED", 10), 1);
	tracking_free(t);

	json_t *all = server_requests(&s);
	const char *expect[][2] = {
	    {"GET", "/api/2.0/mlflow/experiments/get-by-name"},
	    {"POST", "/api/2.0/mlflow/experiments/create"},
	    {"POST", "/api/2.0/mlflow/runs/create"},
	    {"POST", "/api/2.0/mlflow/runs/log-batch"},
	};
	for (size_t i = 0; i < ARRAY_LEN(expect); i++) {
		json_t *r = json_array_get(all, i);
		CHECK_STR_CONTAINS(
		    json_string_value(json_object_get(r, "method")),
		    expect[i][0]);
		CHECK_STR_CONTAINS(
		    json_string_value(json_object_get(r, "path")),
		    expect[i][1]);
	}
	json_t *last = json_array_get(all, json_array_size(all) - 1);
	CHECK_STR_CONTAINS(json_string_value(json_object_get(last, "path")),
	                   "runs/update");
	json_t *upd = body_of(last);
	CHECK_STR_CONTAINS(json_string_value(json_object_get(upd, "status")),
	                   "FINISHED");
	CHECK(json_integer_value(json_object_get(upd, "end_time")) > 0);
	CHECK_STR_CONTAINS(
	    json_string_value(json_object_get(json_array_get(all, 0), "query")),
	    "experiment_name=cohort-test");

	json_t *creates = requests_to(all, "POST", "runs/create");
	CHECK_EQ_INT(json_array_size(creates), 3); /* parent + 2 clients */
	json_t *parent = body_of(json_array_get(creates, 0));
	CHECK_STR_CONTAINS(
	    json_string_value(json_object_get(parent, "run_name")), "demo-job");
	CHECK_STR_CONTAINS(tag_value(parent, "mlflow.source.type"), "LOCAL");
	CHECK(tag_value(parent, "mlflow.user") != NULL);
	CHECK_STR_CONTAINS(tag_value(parent, "mlflow.source.name"), "cohort");
	CHECK_STR_CONTAINS(tag_value(parent, "cohort.version"), "0.1.0");
	CHECK_STR_CONTAINS(tag_value(parent, "cohort.seed"), "7");
	CHECK_STR_CONTAINS(tag_value(parent, "cohort.strategy"), "fedavg");
	CHECK_STR_CONTAINS(tag_value(parent, "mlflow.source.git.commit"),
	                   "abc123");
	json_t *st = state_of(ws);
	const char *run = json_string_value(json_object_get(st, "run_id"));
	CHECK(run != NULL);
	json_t *child = body_of(json_array_get(creates, 1));
	CHECK_STR_CONTAINS(tag_value(child, "mlflow.parentRunId"), run);
	CHECK_STR_CONTAINS(
	    json_string_value(json_object_get(child, "run_name")),
	    "demo-job/client-0");

	/* params first, flattened; then one metric batch per round */
	json_t *batches = requests_to(all, "POST", "runs/log-batch");
	json_t *pb = body_of(json_array_get(batches, 0));
	json_t *params = json_object_get(pb, "params");
	CHECK_EQ_INT(json_array_size(params), 7);
	int saw_lr = 0, saw_layers = 0;
	size_t i;
	json_t *p;
	json_array_foreach(params, i, p)
	{
		const char *k = json_string_value(json_object_get(p, "key"));
		const char *v = json_string_value(json_object_get(p, "value"));
		saw_lr |= strcmp(k, "train.lr") == 0 && strcmp(v, "0.05") == 0;
		saw_layers |= strcmp(k, "train.layers") == 0 &&
		              strcmp(v, "[128,10]") == 0;
	}
	CHECK(saw_lr && saw_layers);
	unsigned parent_batches = 0;
	json_t *b;
	json_array_foreach(batches, i, b)
	{
		json_t *body = body_of(b);
		const char *rid =
		    json_string_value(json_object_get(body, "run_id"));
		json_t *ms = json_object_get(body, "metrics");
		if (strcmp(rid, run) == 0 && json_array_size(ms) > 0) {
			parent_batches++;
			CHECK_EQ_INT(json_array_size(ms), 6);
			json_t *m0 = json_array_get(ms, 0);
			CHECK_STR_CONTAINS(
			    json_string_value(json_object_get(m0, "key")),
			    "train_loss");
			CHECK_EQ_INT(
			    json_integer_value(json_object_get(m0, "step")),
			    parent_batches);
			CHECK_EQ_INT(
			    json_integer_value(
			        json_object_get(m0, "timestamp")),
			    llround(line_time(parent_batches, 0) * 1000));
			CHECK_NEAR(
			    json_number_value(json_object_get(m0, "value")),
			    1.0 / parent_batches, 1e-12);
		}
		json_decref(body);
	}
	CHECK_EQ_INT(parent_batches, 3);

	json_t *acc = history(&s, run, "test_accuracy");
	CHECK_EQ_INT(json_array_size(acc), 3);
	CHECK_NEAR(
	    json_number_value(json_object_get(json_array_get(acc, 2), "value")),
	    0.8, 1e-12);
	const char *c1 = json_string_value(
	    json_object_get(json_object_get(st, "children"), "1"));
	json_t *closs = history(&s, c1, "client_loss");
	CHECK_EQ_INT(json_array_size(closs), 3);
	CHECK_EQ_INT(json_integer_value(
	                 json_object_get(json_array_get(closs, 1), "step")),
	             2);
	CHECK_EQ_INT(json_integer_value(json_object_get(st, "acked_offset")),
	             metrics_size(ws));
	CHECK_STR_CONTAINS(json_string_value(json_object_get(st, "status")),
	                   "FINISHED");

	/* every file a user wants next to the run, each once */
	const char *arts[] = {"config.json", "summary.json", "metrics.jsonl",
	                      "global_model.safetensors"};
	for (size_t k = 0; k < ARRAY_LEN(arts); k++) {
		json_t *put = requests_to(all, "PUT", arts[k]);
		CHECK_EQ_INT(json_array_size(put), 1);
		json_decref(put);
	}
	/* the uploaded config.json has the URI without its password */
	json_t *cput = requests_to(all, "PUT", "config.json");
	const char *cbody =
	    json_string_value(json_object_get(json_array_get(cput, 0), "body"));
	CHECK(cbody != NULL && strstr(cbody, "pa55") == NULL);
	CHECK_STR_CONTAINS(cbody ? cbody : "", "http://mlflow.example");
	json_decref(cput);

	/* the run starts when tracking opened and ends when it finished;
	 * each child run has the job's params and ends with the parent */
	json_t *prun = run_get(&s, run);
	int64_t start = run_time(prun, "start_time"),
	        end = run_time(prun, "end_time");
	CHECK(start >= opened - 1000 && start <= opened + 5000);
	CHECK_EQ_INT(start,
	             json_integer_value(json_object_get(st, "start_time")));
	CHECK(end >= start && end <= wall_ms());
	CHECK_EQ_INT(run_params(prun), 7);
	const char *clients[] = {"0", "1"};
	for (size_t k = 0; k < ARRAY_LEN(clients); k++) {
		const char *cid = json_string_value(json_object_get(
		    json_object_get(st, "children"), clients[k]));
		json_t *crun = run_get(&s, cid ? cid : "");
		CHECK_STR_CONTAINS(run_status(crun), "FINISHED");
		CHECK_EQ_INT(run_time(crun, "end_time"), end);
		CHECK_EQ_INT(run_params(crun), 7);
		/* the client's own value, never "loss" as the parent's keys */
		json_t *plain = history(&s, cid ? cid : "", "loss");
		CHECK_EQ_INT(json_array_size(plain), 0);
		json_decref(plain);
		json_decref(crun);
	}
	/* progress points (two a round) each at a step of their own */
	const char *c0 = json_string_value(
	    json_object_get(json_object_get(st, "children"), "0"));
	json_t *prog = history(&s, c0 ? c0 : "", "client_step_loss");
	CHECK_EQ_INT(json_array_size(prog), 6);
	for (size_t k = 0; k < json_array_size(prog); k++)
		CHECK_EQ_INT(json_integer_value(json_object_get(
		                 json_array_get(prog, k), "step")),
		             k + 1);
	json_decref(prog);
	json_decref(prun);

	json_t *puts = requests_to(all, "PUT", "global_model.safetensors");
	CHECK_EQ_INT(json_array_size(puts), 1);
	char *art_path = xasprintf("/api/2.0/mlflow-artifacts/artifacts/1/%s/"
	                           "artifacts/global_model.safetensors",
	                           run);
	CHECK_STR_CONTAINS(
	    json_string_value(json_object_get(json_array_get(puts, 0), "path")),
	    art_path);
	free(art_path);

	json_decref(closs);
	json_decref(acc);
	json_decref(batches);
	json_decref(pb);
	json_decref(child);
	json_decref(st);
	json_decref(parent);
	json_decref(creates);
	json_decref(upd);
	json_decref(puts);
	json_decref(all);
	json_decref(cfg);
	event_base_free(base);
	server_stop(&s);
	free(model);
	free(ws);
}

/* Seconds between the first tries of the first call in the log. */
static double
gap(const json_t *all, size_t i)
{
	return json_number_value(
	           json_object_get(json_array_get(all, i + 1), "time")) -
	       json_number_value(
	           json_object_get(json_array_get(all, i), "time"));
}

/* Run a one-round job against s and return the run id (malloc'd). */
static char *
run_small_job(const struct server *s, const char *name)
{
	char *ws = make_workspace(name);
	struct event_base *base = event_base_new();
	struct tracking *t = open_tracking(base, ws, s->uri, NULL, 0);
	put_round(ws, 1);
	tracking_round(t, 1);
	CHECK_EQ_INT(tracking_finish(t, "FINISHED", 15), 1);
	tracking_free(t);
	event_base_free(base);
	json_t *st = state_of(ws);
	const char *id = json_string_value(json_object_get(st, "run_id"));
	char *run = id ? xstrdup(id) : NULL;
	json_decref(st);
	free(ws);
	return run;
}

/* 429 with Retry-After, then 500s: retried with backoff, stored once. */
static void
test_retries(void)
{
	const char *busy[] = {"--fail-first",
	                      "2",
	                      "--fail-status",
	                      "429",
	                      "--retry-after",
	                      "1",
	                      NULL};
	struct server s = {0};
	CHECK(server_start(&s, "busy", busy) == 0);
	char *run = run_small_job(&s, "busy");
	json_t *all = server_requests(&s);
	/* Retry-After: 1 wins over the 0.02 s backoff */
	CHECK(gap(all, 0) >= 0.9);
	CHECK(gap(all, 1) >= 0.9);
	json_t *acc = history(&s, run, "test_accuracy");
	CHECK_EQ_INT(json_array_size(acc), 1);
	json_decref(acc);
	json_decref(all);
	server_stop(&s);
	free(run);

	const char *broken[] = {"--fail-first", "4", "--fail-status", "500",
	                        NULL};
	CHECK(server_start(&s, "broken", broken) == 0);
	run = run_small_job(&s, "broken");
	all = server_requests(&s);
	/* 0.02, 0.04, 0.08, 0.16 s: each wait doubles. Only lower bounds are
	 * checked: a loaded machine stretches a wait, never shortens it. The
	 * times are the server's, taken when it reads a request, so a request
	 * it read late shortens the gap after it by that lateness: each gap
	 * may fall 10 ms short, their sum (0.30 s) 10%. The last wait, 8x the
	 * first, shows the doubling. */
	double waited = 0;
	for (size_t i = 0; i < 4; i++) {
		double want = 0.02 * (double)(1u << i);
		CHECK(gap(all, i) >= want - 0.01);
		waited += gap(all, i);
	}
	CHECK(waited >= 0.30 * 0.9);
	CHECK(gap(all, 3) >= 0.16 * 0.9);
	json_t *batches = requests_to(all, "POST", "runs/log-batch");
	CHECK_EQ_INT(json_array_size(batches), 1); /* no params: metrics */
	json_t *loss = history(&s, run, "train_loss");
	CHECK_EQ_INT(json_array_size(loss), 1);
	json_decref(loss);
	json_decref(batches);
	json_decref(all);
	server_stop(&s);
	free(run);
}

/* Run cohort-mlflow-sync on a workspace; its exit status. */
static int
run_sync(const char *ws)
{
	pid_t pid = fork();
	if (pid == 0) {
		execl(harness_build_path("orchestrator/cohort-mlflow-sync"),
		      "cohort-mlflow-sync", ws, (char *)NULL);
		_exit(127);
	}
	int status;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Server down in the middle of a job: the job finishes fast, the state
 * file holds what was acknowledged, cohort-mlflow-sync sends the rest once
 * and a second sync sends nothing. */
static void
test_outage(void)
{
	char *db = xasprintf("%s/outage-db.json", harness_tmpdir());
	const char *args[] = {"--db", db, NULL};
	struct server s = {0};
	CHECK(server_start(&s, "outage", args) == 0);
	char *ws = make_workspace("outage");
	struct event_base *base = event_base_new();
	json_t *cfg = job_config();
	struct tracking *t = open_tracking(base, ws, s.uri, cfg, 1);
	put_round(ws, 1);
	tracking_round(t, 1);
	long round1 = metrics_size(ws);
	CHECK(loop_until_acked(base, ws, round1, 10));
	server_stop(&s);

	double start = now_seconds();
	put_round(ws, 2);
	tracking_round(t, 2);
	put_round(ws, 3);
	tracking_round(t, 3);
	CHECK_EQ_INT(tracking_finish(t, "FINISHED", 2), 0);
	/* Finishing gives up after the 2 s drain instead of waiting out the
	 * 120 s HTTP timeout; the slack keeps a loaded machine from failing
	 * this, while a hang still would. */
	CHECK(now_seconds() - start < 30);
	tracking_free(t);
	event_base_free(base);
	json_t *st = state_of(ws);
	CHECK_EQ_INT(json_integer_value(json_object_get(st, "acked_offset")),
	             round1);
	CHECK(json_object_get(st, "status") == NULL);
	char *run = xstrdup(json_string_value(json_object_get(st, "run_id")));
	json_decref(st);

	char *summary = xasprintf("%s/results/summary.json", ws);
	FILE *f = fopen(summary, "w");
	fputs("{\"rounds\": 3}\n", f);
	fclose(f);
	char port[16];
	snprintf(port, sizeof port, "%d", s.port);
	const char *again[] = {"--db", db, "--port", port, NULL};
	CHECK(server_start(&s, "outage-again", again) == 0);
	CHECK_EQ_INT(run_sync(ws), 0);
	const char *keys[] = {"test_accuracy", "train_loss", "round_seconds"};
	for (size_t k = 0; k < ARRAY_LEN(keys); k++) {
		json_t *h = history(&s, run, keys[k]);
		CHECK_EQ_INT(json_array_size(h), 3);
		for (size_t i = 0; i < json_array_size(h); i++)
			CHECK_EQ_INT(json_integer_value(json_object_get(
			                 json_array_get(h, i), "step")),
			             i + 1);
		json_decref(h);
	}
	st = state_of(ws);
	const char *c0 = json_string_value(
	    json_object_get(json_object_get(st, "children"), "0"));
	json_t *h = history(&s, c0, "client_loss");
	CHECK_EQ_INT(json_array_size(h), 3);
	json_decref(h);
	CHECK_EQ_INT(json_integer_value(json_object_get(st, "acked_offset")),
	             metrics_size(ws));
	CHECK_STR_CONTAINS(json_string_value(json_object_get(st, "status")),
	                   "FINISHED");
	json_decref(st);
	char *path = xasprintf("/api/2.0/mlflow/runs/get?run_id=%s", run);
	json_t *got = server_get(&s, path);
	CHECK_STR_CONTAINS(
	    json_string_value(json_object_get(
	        json_object_get(json_object_get(got, "run"), "info"),
	        "status")),
	    "FINISHED");
	json_decref(got);

	json_t *before = server_requests(&s);
	CHECK_EQ_INT(run_sync(ws), 0);
	json_t *after = server_requests(&s);
	CHECK_EQ_INT(json_array_size(after), json_array_size(before));
	json_decref(before);
	json_decref(after);

	/* a job that never reached the server: sync creates its run */
	char *ws2 = make_workspace("never");
	put_file(ws2, "config.json", "{}\n");
	put_round(ws2, 1);
	put_round(ws2, 2);
	setenv("MLFLOW_TRACKING_URI", s.uri, 1);
	CHECK_EQ_INT(run_sync(ws2), 0);
	unsetenv("MLFLOW_TRACKING_URI");
	st = state_of(ws2);
	const char *run2 = json_string_value(json_object_get(st, "run_id"));
	CHECK(run2 != NULL && strcmp(run2, run) != 0);
	h = history(&s, run2 ? run2 : "", "test_loss");
	CHECK_EQ_INT(json_array_size(h), 2);
	json_decref(h);
	json_decref(st);

	server_stop(&s);
	free(path);
	free(summary);
	free(run);
	free(ws);
	free(ws2);
	free(db);
	json_decref(cfg);
}

/* NaN as "NaN", long params cut to 500 bytes, 1500 metrics in 2 batches,
 * 150 params in 2 batches. */
static void
test_validation(void)
{
	struct server s = {0};
	CHECK(server_start(&s, "valid", NULL) == 0);
	char *ws = make_workspace("valid");
	json_t *cfg = json_object();
	json_t *many = json_object();
	for (int i = 0; i < 149; i++) {
		char k[16];
		snprintf(k, sizeof k, "k%03d", i);
		json_object_set_new(many, k, json_integer(i));
	}
	json_object_set_new(cfg, "many", many);
	char longv[701];
	memset(longv, 'x', 700);
	longv[700] = '\0';
	json_object_set_new(cfg, "data", json_pack("{s:s}", "dir", longv));

	char line[256];
	for (int i = 0; i < 1500; i++) {
		snprintf(line, sizeof line,
		         "{\"round\":1,\"key\":\"m%04d\",\"value\":%d,"
		         "\"time\":1700000000.5}",
		         i, i);
		put_line(ws, line);
	}
	put_line(ws, "{\"round\":1,\"key\":\"test_loss\",\"value\":null,"
	             "\"time\":1700000001}");
	put_line(ws, "{\"round\":1,\"key\":\"grad_norm\",\"value\":"
	             "\"-Infinity\",\"time\":1700000001}");
	put_line(ws, "not json at all");
	struct event_base *base = event_base_new();
	struct tracking *t = open_tracking(base, ws, s.uri, cfg, 0);
	tracking_round(t, 1);
	CHECK_EQ_INT(tracking_finish(t, "FINISHED", 10), 1);
	tracking_free(t);
	event_base_free(base);

	json_t *st = state_of(ws);
	const char *run = json_string_value(json_object_get(st, "run_id"));
	json_t *all = server_requests(&s);
	json_t *batches = requests_to(all, "POST", "runs/log-batch");
	CHECK_EQ_INT(json_array_size(batches), 4); /* 100+50 params, 1000+502 */
	json_t *nan = history(&s, run, "test_loss");
	CHECK_EQ_INT(json_array_size(nan), 1);
	CHECK_STR_CONTAINS(
	    json_string_value(json_object_get(json_array_get(nan, 0), "value")),
	    "NaN");
	json_t *inf = history(&s, run, "grad_norm");
	CHECK_STR_CONTAINS(
	    json_string_value(json_object_get(json_array_get(inf, 0), "value")),
	    "-Infinity");
	json_t *first = history(&s, run, "m0000"),
	       *last = history(&s, run, "m1499");
	CHECK_EQ_INT(json_array_size(first), 1);
	CHECK_EQ_INT(json_array_size(last), 1);
	char *path = xasprintf("/api/2.0/mlflow/runs/get?run_id=%s", run);
	json_t *got = server_get(&s, path);
	json_t *params = json_object_get(
	    json_object_get(json_object_get(got, "run"), "data"), "params");
	CHECK_EQ_INT(json_array_size(params), 150);
	size_t i;
	json_t *p;
	json_array_foreach(params, i, p)
	{
		if (strcmp(json_string_value(json_object_get(p, "key")),
		           "data.dir") == 0)
			CHECK_EQ_INT(strlen(json_string_value(
			                 json_object_get(p, "value"))),
			             500);
	}
	CHECK_EQ_INT(json_integer_value(json_object_get(st, "acked_offset")),
	             metrics_size(ws));
	json_decref(got);
	free(path);
	json_decref(first);
	json_decref(last);
	json_decref(nan);
	json_decref(inf);
	json_decref(batches);
	json_decref(all);
	json_decref(st);
	json_decref(cfg);
	server_stop(&s);
	free(ws);
}

/* Basic auth from username/password wins over a token; a token alone is
 * sent as Bearer. */
static void
test_auth(void)
{
	struct server s = {0};
	CHECK(server_start(&s, "auth", NULL) == 0);
	setenv("MLFLOW_TRACKING_USERNAME", "user", 1);
	setenv("MLFLOW_TRACKING_PASSWORD", "secret", 1);
	setenv("MLFLOW_TRACKING_TOKEN", "tok", 1);
	free(run_small_job(&s, "auth-basic"));
	unsetenv("MLFLOW_TRACKING_USERNAME");
	unsetenv("MLFLOW_TRACKING_PASSWORD");
	json_t *basic = server_requests(&s);
	free(run_small_job(&s, "auth-bearer"));
	unsetenv("MLFLOW_TRACKING_TOKEN");
	json_t *all = server_requests(&s);
	size_t nb = json_array_size(basic);
	CHECK(nb >= 4 && json_array_size(all) > nb);
	for (size_t i = 0; i < json_array_size(all); i++)
		CHECK_STR_CONTAINS(
		    json_string_value(
		        json_object_get(json_array_get(all, i), "auth")),
		    i < nb ? "Basic dXNlcjpzZWNyZXQ=" : "Bearer tok");
	json_decref(basic);
	json_decref(all);
	server_stop(&s);
}

/* A job killed after round 1 and resumed: the first session ends the run
 * and its child runs KILLED, the resumed one sets the run RUNNING again
 * (keeping its start time) and ends everything FINISHED. */
static void
test_resume(void)
{
	struct server s = {0};
	CHECK(server_start(&s, "resume", NULL) == 0);
	char *ws = make_workspace("resume");
	struct event_base *base = event_base_new();
	json_t *cfg = job_config();
	struct tracking *t = open_tracking(base, ws, s.uri, cfg, 1);
	put_round(ws, 1);
	tracking_round(t, 1);
	CHECK_EQ_INT(tracking_finish(t, "KILLED", 10), 1);
	tracking_free(t);
	json_t *st = state_of(ws);
	char *run = xstrdup(json_string_value(json_object_get(st, "run_id")));
	char *c1 = xstrdup(json_string_value(
	    json_object_get(json_object_get(st, "children"), "1")));
	json_decref(st);
	json_t *r = run_get(&s, run), *c = run_get(&s, c1);
	CHECK_STR_CONTAINS(run_status(r), "KILLED");
	CHECK_STR_CONTAINS(run_status(c), "KILLED");
	CHECK(run_time(c, "end_time") > 0);
	int64_t start = run_time(r, "start_time"),
	        killed = run_time(r, "end_time");
	json_decref(r);
	json_decref(c);

	struct timespec pause = {0, 50 * 1000 * 1000};
	nanosleep(&pause, NULL); /* the resumed end is measurably later */
	t = open_tracking(base, ws, s.uri, cfg, 1);
	tracking_round(t, 1);
	CHECK(loop_until_acked(base, ws, metrics_size(ws), 10));
	r = run_get(&s, run);
	CHECK_STR_CONTAINS(run_status(r), "RUNNING");
	json_decref(r);
	put_round(ws, 2);
	tracking_round(t, 2);
	CHECK_EQ_INT(tracking_finish(t, "FINISHED", 10), 1);
	tracking_free(t);
	r = run_get(&s, run);
	c = run_get(&s, c1);
	CHECK_STR_CONTAINS(run_status(r), "FINISHED");
	CHECK_STR_CONTAINS(run_status(c), "FINISHED");
	CHECK_EQ_INT(run_time(r, "start_time"), start);
	CHECK(run_time(r, "end_time") > killed);
	CHECK_EQ_INT(run_time(c, "end_time"), run_time(r, "end_time"));
	json_t *all = server_requests(&s);
	json_t *creates = requests_to(all, "POST", "runs/create");
	CHECK_EQ_INT(json_array_size(creates), 3); /* one run, two children */
	json_decref(creates);
	json_decref(all);
	json_decref(r);
	json_decref(c);
	json_decref(cfg);
	event_base_free(base);
	server_stop(&s);
	free(run);
	free(c1);
	free(ws);
}

/* A job whose server was down from its start: cohort-mlflow-sync with no
 * URI given finds the server in the workspace, and the run gets the job's
 * own start and end times, not the sync's. */
static void
test_down_from_start(void)
{
	char *db = xasprintf("%s/down-db.json", harness_tmpdir());
	const char *args[] = {"--db", db, NULL};
	struct server s = {0};
	CHECK(server_start(&s, "down", args) == 0);
	server_stop(&s); /* its port is now one nothing listens on */
	char *ws = make_workspace("down");
	char *conf =
	    xasprintf("{\"tracking\": {\"mlflow_uri\": \"%s\"}}\n", s.uri);
	put_file(ws, "config.json", conf);
	struct event_base *base = event_base_new();
	int64_t opened = wall_ms();
	struct tracking *t = open_tracking(base, ws, s.uri, NULL, 0);
	put_round(ws, 1);
	tracking_round(t, 1);
	put_round(ws, 2);
	tracking_round(t, 2);
	CHECK_EQ_INT(tracking_finish(t, "FINISHED", 1), 0);
	int64_t finished = wall_ms();
	tracking_free(t);
	event_base_free(base);
	put_file(ws, "results/summary.json", "{\"rounds\": 2}\n");

	struct timespec pause = {1, 0};
	nanosleep(&pause, NULL); /* the sync is a second after the job */
	char port[16];
	snprintf(port, sizeof port, "%d", s.port);
	const char *again[] = {"--db", db, "--port", port, NULL};
	CHECK(server_start(&s, "down-again", again) == 0);
	int64_t synced = wall_ms();
	unsetenv("MLFLOW_TRACKING_URI");
	CHECK_EQ_INT(run_sync(ws), 0);
	json_t *st = state_of(ws);
	const char *id = json_string_value(json_object_get(st, "run_id"));
	json_t *r = run_get(&s, id ? id : "");
	CHECK_STR_CONTAINS(run_status(r), "FINISHED");
	CHECK(run_time(r, "start_time") >= opened - 1000 &&
	      run_time(r, "start_time") <= opened + 1000);
	CHECK(run_time(r, "end_time") >= finished - 3000 &&
	      run_time(r, "end_time") <= finished + 100);
	CHECK(run_time(r, "end_time") < synced);
	json_t *h = history(&s, id ? id : "", "test_loss");
	CHECK_EQ_INT(json_array_size(h), 2);
	json_decref(h);
	json_decref(r);
	json_decref(st);
	server_stop(&s);
	free(conf);
	free(ws);
	free(db);
}

/* True when the file contains needle. */
static int
file_contains(const char *path, const char *needle)
{
	char *text = NULL;
	size_t len = 0;
	struct ipc_error err;
	if (files_read_all(path, &text, &len, &err) < 0)
		return 0;
	int found = strstr(text, needle) != NULL;
	free(text);
	return found;
}

/* A URI with user:password@ authenticates, and the password appears in no
 * param, state file or log line (also when the server goes away). */
static void
test_secrets(void)
{
	struct server s = {0};
	CHECK(server_start(&s, "secret", NULL) == 0);
	char uri[128];
	snprintf(uri, sizeof uri, "http://alice:s3cr3t@127.0.0.1:%d", s.port);
	char *ws = make_workspace("secret");
	json_t *cfg = json_pack("{s:{s:s},s:{s:i}}", "tracking", "mlflow_uri",
	                        uri, "job", "seed", 1);
	captured[0] = '\0';
	log_set_writer(capture_line, NULL);
	struct event_base *base = event_base_new();
	struct tracking *t = open_tracking(base, ws, uri, cfg, 0);
	put_round(ws, 1);
	tracking_round(t, 1);
	CHECK(loop_until_acked(base, ws, metrics_size(ws), 10));
	server_stop(&s);
	put_round(ws, 2);
	tracking_round(t, 2);
	CHECK_EQ_INT(tracking_finish(t, "FINISHED", 1), 0);
	tracking_free(t);
	event_base_free(base);
	log_set_writer(NULL, NULL);

	json_t *all = server_requests(&s);
	CHECK(json_array_size(all) >= 3);
	for (size_t i = 0; i < json_array_size(all); i++) {
		json_t *q = json_array_get(all, i);
		CHECK_STR_CONTAINS(
		    json_string_value(json_object_get(q, "auth")),
		    "Basic YWxpY2U6czNjcjN0"); /* alice:s3cr3t */
		const char *body =
		    json_string_value(json_object_get(q, "body"));
		CHECK(body == NULL || strstr(body, "s3cr3t") == NULL);
	}
	json_t *batches = requests_to(all, "POST", "runs/log-batch");
	json_t *first = body_of(json_array_get(batches, 0));
	char *pb = json_dumps(first, 0);
	json_decref(first);
	char *shown = xasprintf("http://127.0.0.1:%d", s.port);
	CHECK_STR_CONTAINS(pb, shown); /* the param, without the password */
	char *state = xasprintf("%s/metrics/mlflow.json", ws);
	CHECK(!file_contains(state, "s3cr3t"));
	CHECK(file_contains(state, shown));
	CHECK_STR_CONTAINS(captured, "unreachable");
	CHECK(strstr(captured, "s3cr3t") == NULL);
	free(state);
	free(shown);
	free(pb);
	json_decref(batches);
	json_decref(all);
	json_decref(cfg);
	free(ws);
}

/* A server whose artifact root is a plain path: nothing is uploaded, and
 * the log says so, naming where the files stay. */
static void
test_local_artifacts(void)
{
	const char *args[] = {"--artifact-root", "/srv/mlruns", NULL};
	struct server s = {0};
	CHECK(server_start(&s, "local-art", args) == 0);
	char *ws = make_workspace("local-art");
	put_file(ws, "results/global_model.safetensors", "x");
	captured[0] = '\0';
	log_set_writer(capture_line, NULL);
	free(run_small_job(&s, "local-art"));
	log_set_writer(NULL, NULL);
	json_t *all = server_requests(&s);
	json_t *puts = requests_to(all, "PUT", "");
	CHECK_EQ_INT(json_array_size(puts), 0);
	CHECK_STR_CONTAINS(captured, "/srv/mlruns/1/");
	CHECK_STR_CONTAINS(captured, "does not serve");
	CHECK_STR_CONTAINS(captured, "--serve-artifacts");
	json_decref(puts);
	json_decref(all);
	server_stop(&s);
	free(ws);
}

int
main(void)
{
	setenv("NO_PROXY", "127.0.0.1", 1);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	RUN(test_whole_job);
	RUN(test_retries);
	RUN(test_outage);
	RUN(test_validation);
	RUN(test_auth);
	RUN(test_resume);
	RUN(test_down_from_start);
	RUN(test_secrets);
	RUN(test_local_artifacts);
	curl_global_cleanup();
	return harness_finish();
}
