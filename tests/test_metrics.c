/* test_metrics.c: metrics.jsonl lines as written, every line of a resumed
 * job's later rounds dropped, and a write that fails (a full disk:
 * /dev/full) reported by the flush that follows it, naming the file, even
 * when stdio wrote the failing buffer on its own before; per-client
 * numbers summarised per round (clientstats: numpy's percentiles, keys in
 * the order they came, non-finite values left out, at most
 * CLIENTSTATS_MAX_KEYS keys). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clientstats.h"
#include "files.h"
#include "harness.h"
#include "metrics.h"
#include "util.h"

/* Lines of the file at path, counted. */
static int
count_lines(const char *path)
{
	char *text;
	size_t len;
	if (files_read_all(path, &text, &len, NULL) < 0)
		return -1;
	int n = 0;
	for (size_t i = 0; i < len; i++)
		n += text[i] == '\n';
	free(text);
	return n;
}

static void
test_lines_and_resume(void)
{
	char *path = xasprintf("%s/metrics.jsonl", harness_tmpdir());
	struct metrics m = {0};
	struct ipc_error err;
	CHECK_EQ_INT(metrics_open(&m, path, -1, &err), 0);
	for (unsigned r = 1; r <= 3; r++) {
		metrics_round(&m, r, "train_loss", 0.5 / r);
		metrics_task(&m, r, 7, r, "fit_seconds", 0.25);
		CHECK_EQ_INT(metrics_flush(&m, &err), 0);
	}
	CHECK_EQ_INT(metrics_close(&m, &err), 0);
	CHECK_EQ_INT(count_lines(path), 6);
	char *text;
	size_t len;
	CHECK_EQ_INT(files_read_all(path, &text, &len, NULL), 0);
	CHECK_STR_CONTAINS(text, "{\"round\":2,\"key\":\"train_loss\","
	                         "\"value\":0.25,");
	CHECK_STR_CONTAINS(text, "{\"round\":3,\"client\":7,\"task\":3,");
	free(text);
	/* A resume after round 1 keeps round 1 only. */
	CHECK_EQ_INT(metrics_open(&m, path, 1, &err), 0);
	CHECK_EQ_INT(metrics_close(&m, &err), 0);
	CHECK_EQ_INT(count_lines(path), 2);
	free(path);
}

static void
test_full_disk(void)
{
	struct metrics m = {0};
	struct ipc_error err;
	if (metrics_open(&m, "/dev/full", -1, &err) < 0) {
		harness_skip("/dev/full cannot be opened here");
		return;
	}
	metrics_round(&m, 1, "train_loss", 1.0);
	CHECK_EQ_INT(metrics_flush(&m, &err), -1);
	CHECK_STR_CONTAINS(err.message, "/dev/full");
	CHECK_STR_CONTAINS(err.message, "No space left on device");
	metrics_close(&m, NULL);

	/* More lines than stdio's buffer holds: stdio writes (and fails)
	 * before the flush is asked; the flush still reports it. */
	CHECK_EQ_INT(metrics_open(&m, "/dev/full", -1, &err), 0);
	for (int i = 0; i < 2000; i++)
		metrics_task(&m, 1, i, (uint64_t)i, "fit_seconds", 0.5);
	err.message[0] = '\0';
	CHECK_EQ_INT(metrics_flush(&m, &err), -1);
	CHECK_STR_CONTAINS(err.message, "/dev/full");
	CHECK_EQ_INT(metrics_close(&m, &err), -1);
}

static void
test_client_summary(void)
{
	/* numpy.percentile([1, 2, 3, 4], [10, 50, 90]) = 1.3, 2.5, 3.7 */
	const double v[] = {1, 2, 3, 4};
	CHECK(fabs(clientstats_quantile(v, 4, 0.1) - 1.3) < 1e-12);
	CHECK(fabs(clientstats_quantile(v, 4, 0.5) - 2.5) < 1e-12);
	CHECK(fabs(clientstats_quantile(v, 4, 0.9) - 3.7) < 1e-12);
	CHECK(clientstats_quantile(v, 1, 0.9) == 1);
	CHECK(isnan(clientstats_quantile(v, 0, 0.5)));

	char *path = xasprintf("%s/summary.jsonl", harness_tmpdir());
	struct metrics m = {0};
	struct ipc_error err;
	CHECK_EQ_INT(metrics_open(&m, path, -1, &err), 0);
	struct clientstats s = {0};
	const double loss[] = {4, 1, NAN, 3, 2}; /* NaN: not counted */
	for (size_t i = 0; i < 5; i++) {
		CHECK_EQ_INT(clientstats_add(&s, "loss", loss[i]), 0);
		CHECK_EQ_INT(clientstats_add(&s, "num_examples", 10), 0);
	}
	clientstats_write(&s, &m, 3);
	/* Written values are forgotten; a key without values writes nothing. */
	CHECK_EQ_INT(clientstats_add(&s, "num_examples", 5), 0);
	clientstats_clear(&s);
	clientstats_write(&s, &m, 4);
	/* A worker inventing keys fills the table; known keys still count. */
	char key[32];
	int refused = 0;
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof key, "k%d", i);
		refused += clientstats_add(&s, key, i) < 0;
	}
	CHECK_EQ_INT(refused, 100 - (CLIENTSTATS_MAX_KEYS - 2));
	CHECK_EQ_INT(clientstats_add(&s, "loss", 1), 0);
	clientstats_free(&s);
	CHECK_EQ_INT(metrics_close(&m, &err), 0);
	char *text;
	size_t len;
	CHECK_EQ_INT(files_read_all(path, &text, &len, NULL), 0);
	CHECK_EQ_INT(count_lines(path), 14); /* 7 statistics x 2 keys */
	CHECK_STR_CONTAINS(text, "{\"round\":3,\"key\":\"client_loss_mean\","
	                         "\"value\":2.5,");
	CHECK_STR_CONTAINS(text, "\"key\":\"client_loss_sum\",\"value\":10,");
	CHECK_STR_CONTAINS(text, "\"key\":\"client_loss_min\",\"value\":1,");
	CHECK_STR_CONTAINS(text, "\"key\":\"client_loss_p10\",\"value\":1.3");
	CHECK_STR_CONTAINS(text, "\"key\":\"client_loss_p50\",\"value\":2.5,");
	CHECK_STR_CONTAINS(text, "\"key\":\"client_loss_max\",\"value\":4,");
	CHECK_STR_CONTAINS(text, "\"key\":\"client_num_examples_sum\","
	                         "\"value\":50,");
	CHECK(strstr(text, "\"round\":4") == NULL);
	free(text);
	free(path);
}

int
main(void)
{
	RUN(test_lines_and_resume);
	RUN(test_client_summary);
	RUN(test_full_disk);
	return harness_finish();
}
