/* metricslog.c: incremental reader of the JSON-lines metric log. */
#include "metricslog.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* Read a metric value: a number, null (a non-finite value written by
 * metrics.c) or one of MLflow's strings for non-finite values. */
static int
parse_value(const json_t *v, double *out)
{
	if (json_is_number(v)) {
		*out = json_number_value(v);
		return 0;
	}
	if (json_is_null(v)) {
		*out = NAN;
		return 0;
	}
	const char *s = json_string_value(v);
	if (s == NULL)
		return -1;
	if (strcmp(s, "NaN") == 0)
		*out = NAN;
	else if (strcmp(s, "Infinity") == 0)
		*out = INFINITY;
	else if (strcmp(s, "-Infinity") == 0)
		*out = -INFINITY;
	else
		return -1;
	return 0;
}

/* Parse one line; -1 when it is not a metric object. */
static int
parse_line(const char *text, size_t len, struct metricslog_line *l,
           json_t **holder)
{
	json_t *j = json_loadb(text, len, 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return -1;
	}
	json_t *round = json_object_get(j, "round");
	json_t *key = json_object_get(j, "key");
	json_t *client = json_object_get(j, "client");
	json_t *task = json_object_get(j, "task");
	if (!json_is_integer(round) || json_integer_value(round) < 0 ||
	    !json_is_string(key) ||
	    parse_value(json_object_get(j, "value"), &l->value) < 0 ||
	    (client != NULL && !json_is_integer(client))) {
		json_decref(j);
		return -1;
	}
	l->round = (unsigned)json_integer_value(round);
	l->key = json_string_value(key);
	l->client = client ? (int64_t)json_integer_value(client) : -1;
	l->task =
	    json_is_integer(task) ? (uint64_t)json_integer_value(task) : 0;
	l->time = json_number_value(json_object_get(j, "time"));
	*holder = j;
	return 0;
}

/* Whether text starts as metrics.c starts a per-client line. */
static int
client_line(const char *text)
{
	static const char head[] = "{\"round\":";
	if (strncmp(text, head, sizeof head - 1) != 0)
		return 0;
	text += sizeof head - 1;
	while (*text >= '0' && *text <= '9')
		text++;
	return strncmp(text, ",\"client\":", 10) == 0;
}

int
metricslog_read(const char *path, long *offset, unsigned flags,
                metricslog_fn fn, void *arg, struct ipc_error *err)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		if (errno == ENOENT)
			return 0;
		return ipc_error_set(err, IPC_E_IO, "%s: cannot open: %s", path,
		                     strerror(errno));
	}
	if (fseek(f, *offset, SEEK_SET) < 0) {
		fclose(f);
		return ipc_error_set(err, IPC_E_IO, "%s: cannot seek: %s", path,
		                     strerror(errno));
	}
	char *buf = NULL;
	size_t cap = 0;
	ssize_t n;
	long pos = *offset;
	while ((n = getline(&buf, &cap, f)) > 0) {
		if (buf[n - 1] != '\n')
			break; /* a line still being written */
		pos += n;
		if ((flags & METRICSLOG_ROUNDS) && client_line(buf)) {
			*offset = pos;
			continue;
		}
		struct metricslog_line l = {.end = pos};
		json_t *holder = NULL;
		if (parse_line(buf, (size_t)n - 1, &l, &holder) == 0) {
			fn(arg, &l);
			json_decref(holder);
		}
		*offset = pos;
	}
	free(buf);
	fclose(f);
	return 0;
}
