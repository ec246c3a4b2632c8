/* test_report.c: results/report.html from a synthetic metrics.jsonl: the
 * charts by id with the right number of points and bars, escaping, no
 * external resources, the heat strip for many clients, a histogram for a
 * million, the note of a summary-only job, the job's settings from its
 * config.json (escaped), the federated-evaluation chart and the note that
 * replaces the accuracy chart when central evaluation was off, the
 * round-lines-only reader, cohort-report, and (when chromium is installed)
 * a headless screenshot of the page. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "files.h"
#include "harness.h"
#include "metricslog.h"
#include "report.h"
#include "util.h"

/* Make workspace/{metrics,results} and a config.json naming nclients,
 * with output.client_metrics when client_metrics is not NULL. */
static char *
make_workspace_with(const char *name, int nclients, const char *client_metrics)
{
	char *ws = xasprintf("%s/%s", harness_tmpdir(), name);
	char *m = xasprintf("%s/metrics", ws);
	char *cfg = xasprintf("%s/config.json", ws);
	mkdir(ws, 0755);
	mkdir(m, 0755);
	FILE *f = fopen(cfg, "w");
	fprintf(f, "{\"federation\": {\"clients\": %d}", nclients);
	if (client_metrics != NULL)
		fprintf(f, ", \"output\": {\"client_metrics\": \"%s\"}",
		        client_metrics);
	fputs("}\n", f);
	fclose(f);
	free(m);
	free(cfg);
	return ws;
}

static char *
make_workspace(const char *name, int nclients)
{
	return make_workspace_with(name, nclients, NULL);
}

/* Write rounds of metrics: client c trains in round r when (c + r) % 3 is
 * not 0 and c < trainers; round 3 has two failures. */
static void
write_metrics(const char *ws, unsigned rounds, int trainers)
{
	char *p = xasprintf("%s/metrics/metrics.jsonl", ws);
	FILE *f = fopen(p, "w");
	double t = 1700000000;
	for (unsigned r = 1; r <= rounds; r++) {
		int ok = 0;
		for (int c = 0; c < trainers; c++) {
			if ((c + (int)r) % 3 == 0)
				continue;
			ok++;
			fprintf(
			    f,
			    "{\"round\":%u,\"client\":%d,\"task\":%d,"
			    "\"key\":\"loss\",\"value\":0.5,\"time\":%.3f}\n"
			    "{\"round\":%u,\"client\":%d,\"task\":%d,"
			    "\"key\":\"num_examples\",\"value\":60,"
			    "\"time\":%.3f}\n",
			    r, c, c, t, r, c, c, t);
		}
		int failed = r == 3 ? 2 : 0;
		if (failed)
			fprintf(f,
			        "{\"round\":3,\"client\":0,\"task\":99,\"key\":"
			        "\"failed\",\"value\":1,\"time\":%.3f}\n",
			        t);
		t += 2.5 + r * 0.1;
		fprintf(f,
		        "{\"round\":%u,\"key\":\"train_loss\",\"value\":%g,"
		        "\"time\":%.3f}\n"
		        "{\"round\":%u,\"key\":\"test_loss\",\"value\":%g,"
		        "\"time\":%.3f}\n"
		        "{\"round\":%u,\"key\":\"test_accuracy\",\"value\":%g,"
		        "\"time\":%.3f}\n"
		        "{\"round\":%u,\"key\":\"fit_ok\",\"value\":%d,"
		        "\"time\":%.3f}\n"
		        "{\"round\":%u,\"key\":\"fit_failed\",\"value\":%d,"
		        "\"time\":%.3f}\n"
		        "{\"round\":%u,\"key\":\"round_seconds\",\"value\":%g,"
		        "\"time\":%.3f}\n",
		        r, 2.0 / (r + 1), t, r, 2.2 / (r + 1), t, r,
		        0.55 + 0.3 * (1 - 1.0 / r), t, r, ok, t, r, failed, t,
		        r, 2.5 + r * 0.1, t);
	}
	fclose(f);
	free(p);
}

/* Read results/report.html. */
static char *
read_report(const char *ws)
{
	char *p = xasprintf("%s/results/report.html", ws);
	char *html = NULL;
	size_t len;
	struct ipc_error err;
	if (files_read_all(p, &html, &len, &err) < 0)
		harness_fail(__FILE__, __LINE__, "%s", err.message);
	free(p);
	return html;
}

/* Write the report of ws (job name NULL: the directory's) and read it. */
static char *
render(const char *ws)
{
	struct ipc_error err;
	if (report_write(ws, NULL, &err) != 0)
		harness_fail(__FILE__, __LINE__, "%s", err.message);
	return read_report(ws);
}

/* Occurrences of needle inside the <svg id="id"> element of html. Not
 * inlined: gcc 12 at -O3 then mistakes the scan for a use after free(). */
static __attribute__((noinline)) int
count_in_chart(const char *html, const char *id, const char *needle)
{
	char *open = xasprintf("<svg id=\"%s\"", id);
	const char *start = strstr(html, open);
	int n = -1;
	if (start != NULL) {
		const char *end = strstr(start, "</svg>");
		n = 0;
		for (const char *p = strstr(start, needle); p && p < end;
		     p = strstr(p + 1, needle))
			n++;
	}
	free(open);
	return n;
}

/* Occurrences of needle in html (not inlined, as above). */
static __attribute__((noinline)) int
count(const char *html, const char *needle)
{
	int n = 0;
	for (const char *p = strstr(html, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

/* The charts of a 6-round, 10-client job (8 of them train). */
static void
test_charts(void)
{
	char *ws = make_workspace("small", 10);
	write_metrics(ws, 6, 8);
	struct ipc_error err;
	CHECK(report_write(ws, "<b>&'job\"", &err) == 0);
	char *html = read_report(ws);
	CHECK(html != NULL);
	if (html == NULL)
		return;
	CHECK_EQ_INT(count_in_chart(html, "chart-accuracy", "class=\"pt\""), 6);
	CHECK_EQ_INT(count_in_chart(html, "chart-loss", "class=\"pt\""), 12);
	CHECK_EQ_INT(count_in_chart(html, "chart-loss", "class=\"line\""), 2);
	CHECK_EQ_INT(count_in_chart(html, "chart-round-time", "class=\"pt\""),
	             6);
	CHECK_EQ_INT(count_in_chart(html, "chart-clients", " ok</title>"), 6);
	CHECK_EQ_INT(
	    count_in_chart(html, "chart-clients", "failed</title></rect>"), 1);
	CHECK_EQ_INT(
	    count_in_chart(html, "chart-participation", "class=\"bar-client\""),
	    10);
	/* client 0 trains in rounds 1, 2, 4, 5; clients 8 and 9 never */
	CHECK_STR_CONTAINS(html, "client 0: 4 rounds");
	CHECK_STR_CONTAINS(html, "client 9: 0 rounds");
	CHECK_STR_CONTAINS(html, "round 6: 5 ok");
	/* every chart has a title and axis ticks */
	const char *ids[] = {"chart-accuracy", "chart-loss", "chart-round-time",
	                     "chart-clients", "chart-participation"};
	for (size_t i = 0; i < ARRAY_LEN(ids); i++) {
		CHECK(count_in_chart(html, ids[i], "class=\"title\"") == 1);
		CHECK(count_in_chart(html, ids[i], "class=\"tick\"") >= 3);
	}
	/* the summary table and escaping of the job name */
	CHECK_STR_CONTAINS(html, "&lt;b&gt;&amp;&#39;job&quot;");
	CHECK(strstr(html, "<b>&'job") == NULL);
	CHECK_STR_CONTAINS(html, "<th>final test accuracy</th><td>0.8000");
	CHECK_STR_CONTAINS(html, "<th>rounds</th><td>6</td>");
	/* self-contained: nothing fetched from anywhere */
	CHECK(strstr(html, "<script") == NULL);
	CHECK(strstr(html, "src=") == NULL);
	CHECK(strstr(html, "href=") == NULL);
	CHECK(strstr(html, "url(") == NULL);
	CHECK_EQ_INT(count(html, "http"), 5); /* the five SVG xmlns */
	free(html);
	free(ws);
}

/* Hundreds of clients: a heat strip with a cell per client. */
static void
test_heat_strip(void)
{
	char *ws = make_workspace("many", 300);
	write_metrics(ws, 4, 300);
	char *html = render(ws);
	if (html == NULL)
		return;
	CHECK_EQ_INT(count_in_chart(html, "chart-participation",
	                            "class=\"cell-client\""),
	             300);
	CHECK_EQ_INT(count(html, "class=\"bar-client\""), 0);
	CHECK_STR_CONTAINS(html, "cohort report: many");
	free(html);
	free(ws);
}

/* A federation of a million, 6,000 of them training: a histogram of
 * clients by rounds trained (the page stays small), not a cell each. */
static void
test_histogram(void)
{
	char *ws = make_workspace("million", 1000000);
	write_metrics(ws, 4, 6000);
	char *html = render(ws);
	if (html == NULL)
		return;
	CHECK_EQ_INT(count(html, "class=\"cell-client\""), 0);
	CHECK_STR_CONTAINS(html, "Clients by rounds trained (1000000 clients)");
	/* c % 3 == 2 skips rounds 1 and 4, the others round 2 or 3 only */
	CHECK_STR_CONTAINS(html, "<title>0 rounds: 994000 clients</title>");
	CHECK_STR_CONTAINS(html, "<title>2 rounds: 2000 clients</title>");
	CHECK_STR_CONTAINS(html, "<title>3 rounds: 4000 clients</title>");
	CHECK(strlen(html) < 100000);
	free(html);
	free(ws);
}

/* output.client_metrics summary: no per-client lines, and the page says
 * why there is no participation chart. */
static void
test_summary_only(void)
{
	char *ws = make_workspace_with("summary", 50, "summary");
	write_metrics(ws, 2, 0);
	char *html = render(ws);
	CHECK_STR_CONTAINS(html, "Per-client participation is not recorded");
	CHECK_EQ_INT(count(html, "id=\"chart-participation\""), 0);
	CHECK_STR_CONTAINS(html, "id=\"chart-accuracy\"");
	free(html);
	free(ws);
}

/* Save the defaults with the "key=value" overrides as ws/config.json, the
 * way the orchestrator saves a job's resolved configuration. */
static void
save_config(const char *ws, const char *const *sets, size_t n)
{
	struct config c;
	struct ipc_error err;
	config_defaults(&c);
	for (size_t i = 0; i < n; i++)
		if (config_set(&c, sets[i], &err) != 0)
			harness_fail(__FILE__, __LINE__, "%s", err.message);
	char *path = xasprintf("%s/config.json", ws);
	if (config_save(&c, path, &err) != 0)
		harness_fail(__FILE__, __LINE__, "%s", err.message);
	free(path);
	config_free(&c);
}

/* The settings table shows the job as configured, every value escaped: a
 * job name that is a script stays text. */
static void
test_settings(void)
{
	char *ws = make_workspace("settings", 10);
	const char *sets[] = {
	    "job.name=<script>alert(1)</script>",
	    "job.seed=42",
	    "federation.clients=10",
	    "federation.fit_clients=4",
	    "federation.min_clients=3",
	    "federation.rounds=6",
	    "strategy.name=fedadam",
	    "strategy.eta=0.05",
	    "model.name=cnn",
	    "data.dataset=cifar10",
	    "data.partition=shards",
	    "data.shards_per_client=3",
	    "train.epochs=2",
	    "train.lr=0.02",
	    "train.batch_size=64",
	    "launcher.mode=fork-server",
	    "launcher.tasks_per_worker=5",
	};
	save_config(ws, sets, ARRAY_LEN(sets));
	write_metrics(ws, 6, 8);
	char *html = render(ws);
	CHECK_STR_CONTAINS(html, "<table id=\"settings\"");
	CHECK_STR_CONTAINS(html, "<th>job name</th><td>&lt;script&gt;alert(1)"
	                         "&lt;/script&gt;</td>");
	CHECK(strstr(html, "<script") == NULL);
	CHECK_STR_CONTAINS(html, "<th>strategy</th><td>fedadam (eta 0.05, "
	                         "beta1 0.9, beta2 0.99, tau 0.001, weighting "
	                         "examples)</td>");
	CHECK_STR_CONTAINS(html, "<th>model</th><td>cnn</td>");
	CHECK_STR_CONTAINS(html, "<th>dataset</th><td>cifar10</td>");
	CHECK_STR_CONTAINS(html,
	                   "<th>partition</th><td>shards (3 per client)</td>");
	CHECK_STR_CONTAINS(html, "<th>clients</th><td>10</td>");
	/* min_fit 0: min_clients capped at fit_clients */
	CHECK_STR_CONTAINS(html, "<th>clients per round</th><td>fit 4, min_fit "
	                         "3, min_clients 3</td>");
	CHECK_STR_CONTAINS(html, "<th>local epochs</th><td>2</td>");
	CHECK_STR_CONTAINS(html, "<th>learning rate</th><td>0.02 (sgd, "
	                         "momentum 0.9)</td>");
	CHECK_STR_CONTAINS(html, "<th>batch size</th><td>64</td>");
	CHECK_STR_CONTAINS(html, "<th>launcher</th><td>fork-server, 5 tasks "
	                         "per worker</td>");
	CHECK_STR_CONTAINS(html, "<th>seed</th><td>42</td>");
	/* near the top: before the first chart */
	CHECK(strstr(html, "id=\"settings\"") < strstr(html, "<svg"));
	free(html);
	free(ws);
}

/* Rounds of a job with central evaluation off (test_* values null, as the
 * orchestrator writes them) and federated evaluation on: clients 0-3
 * train, clients 4 and 5 only evaluate, with accuracies 0.1 r and 0.1 r +
 * 0.2 around a round-level mean of 0.1 r + 0.1. */
static void
write_fed_metrics(const char *ws, unsigned rounds)
{
	char *p = xasprintf("%s/metrics/metrics.jsonl", ws);
	FILE *f = fopen(p, "w");
	for (unsigned r = 1; r <= rounds; r++) {
		for (int c = 0; c < 4; c++)
			fprintf(f,
			        "{\"round\":%u,\"client\":%d,\"task\":%d,"
			        "\"key\":\"loss\",\"value\":0.5,\"time\":1}\n",
			        r, c, c);
		for (int c = 4; c < 6; c++)
			fprintf(
			    f,
			    "{\"round\":%u,\"client\":%d,\"task\":%d,\"key\":"
			    "\"fed_eval_examples\",\"value\":10,\"time\":1}\n"
			    "{\"round\":%u,\"client\":%d,\"task\":%d,\"key\":"
			    "\"fed_eval_loss\",\"value\":1.5,\"time\":1}\n"
			    "{\"round\":%u,\"client\":%d,\"task\":%d,\"key\":"
			    "\"fed_eval_accuracy\",\"value\":%g,\"time\":1}\n",
			    r, c, c, r, c, c, r, c, c,
			    0.1 * r + (c == 5 ? 0.2 : 0));
		fprintf(
		    f,
		    "{\"round\":%u,\"key\":\"train_loss\",\"value\":0.4,"
		    "\"time\":2}\n"
		    "{\"round\":%u,\"key\":\"test_loss\",\"value\":null,"
		    "\"time\":2}\n"
		    "{\"round\":%u,\"key\":\"test_accuracy\",\"value\":null,"
		    "\"time\":2}\n"
		    "{\"round\":%u,\"key\":\"fit_ok\",\"value\":4,\"time\":2}\n"
		    "{\"round\":%u,\"key\":\"fit_failed\",\"value\":0,"
		    "\"time\":2}\n"
		    "{\"round\":%u,\"key\":\"fed_eval_loss\",\"value\":1.5,"
		    "\"time\":2}\n"
		    "{\"round\":%u,\"key\":\"fed_eval_accuracy\",\"value\":%g,"
		    "\"time\":2}\n"
		    "{\"round\":%u,\"key\":\"round_seconds\",\"value\":1,"
		    "\"time\":2}\n",
		    r, r, r, r, r, r, r, 0.1 * r + 0.1, r);
	}
	fclose(f);
	free(p);
}

/* Central evaluation off, federated evaluation on: no accuracy chart but a
 * line saying why, a federated-evaluation chart with the round means and
 * the clients' range, the loss chart without an empty test-loss line, and
 * clients that only evaluated have trained in no round. */
static void
test_fed_eval(void)
{
	char *ws = make_workspace("fedeval", 6);
	const char *sets[] = {
	    "federation.clients=6",   "federation.fit_clients=4",
	    "evaluate.central=false", "evaluate.fraction=0.3",
	    "data.holdout=0.1",
	};
	save_config(ws, sets, ARRAY_LEN(sets));
	write_fed_metrics(ws, 4);
	char *html = render(ws);
	CHECK_EQ_INT(count(html, "id=\"chart-accuracy\""), 0);
	CHECK_STR_CONTAINS(html, "Central evaluation was off");
	CHECK_EQ_INT(count_in_chart(html, "chart-fed-eval", "class=\"pt\""), 4);
	CHECK_EQ_INT(count_in_chart(html, "chart-fed-eval", "class=\"range\""),
	             4);
	CHECK_STR_CONTAINS(html, "round 3: clients 0.3 to 0.5");
	CHECK(count_in_chart(html, "chart-fed-eval", "class=\"tick\"") >= 3);
	/* train loss and federated loss; no test loss */
	CHECK_EQ_INT(count_in_chart(html, "chart-loss", "class=\"line\""), 2);
	CHECK_EQ_INT(count_in_chart(html, "chart-loss", "test loss"), 0);
	CHECK_STR_CONTAINS(html, "<th>final federated accuracy</th><td>0.5000 "
	                         "(round 4)");
	CHECK_STR_CONTAINS(html, "<th>evaluation</th><td>central off, "
	                         "federated 0.3 of the clients</td>");
	CHECK_STR_CONTAINS(html, "client 0: 4 rounds");
	CHECK_STR_CONTAINS(html, "client 4: 0 rounds");
	CHECK_STR_CONTAINS(html, "client 5: 0 rounds");
	free(html);
	free(ws);
}

/* A summary-only job (output.client_metrics summary) charts the clients'
 * range from the round's client_fed_eval_accuracy_min and _max. */
static void
test_fed_eval_summary(void)
{
	char *ws = make_workspace_with("fedsum", 6, "summary");
	char *p = xasprintf("%s/metrics/metrics.jsonl", ws);
	FILE *f = fopen(p, "w");
	fputs("{\"round\":1,\"key\":\"fed_eval_accuracy\",\"value\":0.4,"
	      "\"time\":1}\n"
	      "{\"round\":1,\"key\":\"client_fed_eval_accuracy_min\","
	      "\"value\":0.25,\"time\":1}\n"
	      "{\"round\":1,\"key\":\"client_fed_eval_accuracy_max\","
	      "\"value\":0.75,\"time\":1}\n",
	      f);
	fclose(f);
	char *html = render(ws);
	CHECK_STR_CONTAINS(html, "round 1: clients 0.25 to 0.75");
	CHECK_EQ_INT(count_in_chart(html, "chart-fed-eval", "class=\"pt\""), 1);
	free(html);
	free(p);
	free(ws);
}

static void
count_line(void *arg, const struct metricslog_line *l)
{
	(void)l;
	(*(int *)arg)++;
}

/* metricslog_read with METRICSLOG_ROUNDS hands over round-level lines
 * only, also when a worker's key looks like a client line. */
static void
round_line(void *arg, const struct metricslog_line *l)
{
	int *n = arg;
	CHECK(l->client < 0);
	(*n)++;
}

static void
test_rounds_only(void)
{
	char *ws = make_workspace("rounds", 2);
	write_metrics(ws, 3, 2);
	char *p = xasprintf("%s/metrics/metrics.jsonl", ws);
	FILE *f = fopen(p, "a");
	fputs("{\"round\":4,\"key\":\",\\\"client\\\":1\",\"value\":1,"
	      "\"time\":1}\n",
	      f);
	fclose(f);
	int n = 0;
	long offset = 0;
	struct ipc_error err;
	CHECK_EQ_INT(metricslog_read(p, &offset, METRICSLOG_ROUNDS, round_line,
	                             &n, &err),
	             0);
	int all = 0;
	long from = 0;
	CHECK_EQ_INT(metricslog_read(p, &from, 0, count_line, &all, &err), 0);
	CHECK_EQ_INT(offset, from);
	CHECK(n > 0 && all > n);
	free(p);
	free(ws);
}

/* No finished round: a page that says so. */
static void
test_empty(void)
{
	char *ws = make_workspace("empty", 2);
	struct ipc_error err;
	CHECK(report_write(ws, "empty", &err) == 0);
	char *html = read_report(ws);
	CHECK_STR_CONTAINS(html, "No round has finished yet");
	free(html);
	free(ws);
}

/* cohort-report WORKSPACE regenerates the page; a usage error exits 2. */
static void
test_tool(void)
{
	char *ws = make_workspace("tool", 4);
	write_metrics(ws, 2, 4);
	char *cmd =
	    xasprintf("%s '%s' >/dev/null",
	              harness_build_path("orchestrator/cohort-report"), ws);
	CHECK_EQ_INT(WEXITSTATUS(system(cmd)), 0);
	char *html = read_report(ws);
	CHECK_STR_CONTAINS(html, "cohort report: tool");
	char *bad = xasprintf("%s 2>/dev/null",
	                      harness_build_path("orchestrator/cohort-report"));
	CHECK_EQ_INT(WEXITSTATUS(system(bad)), 2);
	free(bad);
	free(html);
	free(cmd);
	free(ws);
}

/* Render the page in headless chromium and check a real PNG came out. */
static void
test_screenshot(void)
{
	if (access("/usr/bin/chromium", X_OK) != 0)
		harness_skip("/usr/bin/chromium not installed "
		             "(tools/install-deps.sh installs it)");
	char *ws = make_workspace("shot", 12);
	write_metrics(ws, 10, 12);
	struct ipc_error err;
	CHECK(report_write(ws, "screenshot job", &err) == 0);
	char *profile = xasprintf("%s/chromium-profile", harness_tmpdir());
	char *png = xasprintf("%s/shot.png", harness_tmpdir());
	char *cmd = xasprintf(
	    "timeout 60 /usr/bin/chromium --headless --no-sandbox "
	    "--disable-gpu "
	    "--disable-quic --no-first-run --disable-background-networking "
	    "--disable-component-update --disable-sync --user-data-dir='%s' "
	    "--screenshot='%s' --window-size=1200,1600 "
	    "'file://%s/results/report.html' >/dev/null 2>&1",
	    profile, png, ws);
	int rc = system(cmd);
	struct stat st;
	int have = stat(png, &st) == 0;
	if (rc != 0 && !have) {
		free(cmd);
		free(png);
		free(profile);
		free(ws);
		harness_skip("chromium could not render here (exit status "
		             "non-zero, no screenshot)");
	}
	CHECK(have && st.st_size > 20000);
	FILE *f = fopen(png, "rb");
	unsigned char sig[8] = {0};
	CHECK(f != NULL && fread(sig, 1, 8, f) == 8);
	if (f)
		fclose(f);
	CHECK(memcmp(sig, "\x89PNG\r\n\x1a\n", 8) == 0);
	const char *keep = getenv("COHORT_REPORT_SHOT");
	if (keep != NULL) {
		char *cp = xasprintf("cp '%s' '%s'", png, keep);
		CHECK_EQ_INT(system(cp), 0);
		free(cp);
	}
	free(cmd);
	free(png);
	free(profile);
	free(ws);
}

int
main(void)
{
	RUN(test_charts);
	RUN(test_heat_strip);
	RUN(test_histogram);
	RUN(test_summary_only);
	RUN(test_settings);
	RUN(test_fed_eval);
	RUN(test_fed_eval_summary);
	RUN(test_rounds_only);
	RUN(test_empty);
	RUN(test_tool);
	RUN(test_screenshot);
	return harness_finish();
}
