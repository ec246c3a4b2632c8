/* metrics.c: the JSON-lines metric log of a job. */
#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "atomicfile.h"
#include "files.h"

/* Rewrite path keeping only lines of rounds up to keep_round. */
static int
drop_later_rounds(const char *path, long keep_round, struct ipc_error *err)
{
	if (!files_exist(path))
		return 0;
	char *text;
	size_t len;
	if (files_read_all(path, &text, &len, err) < 0)
		return -1;
	char *out = xmalloc(len + 1);
	size_t have = 0;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		json_t *j = json_loads(line, 0, NULL);
		json_t *r = j ? json_object_get(j, "round") : NULL;
		int keep = r != NULL && json_is_integer(r) &&
		           json_integer_value(r) <= keep_round;
		json_decref(j);
		if (!keep)
			continue;
		size_t n = strlen(line);
		memcpy(out + have, line, n);
		out[have + n] = '\n';
		have += n + 1;
	}
	int rc = atomicfile_write_buffer(path, out, have, err);
	free(out);
	free(text);
	return rc;
}

int
metrics_open(struct metrics *m, const char *path, long keep_round,
             struct ipc_error *err)
{
	if (keep_round >= 0 && drop_later_rounds(path, keep_round, err) < 0)
		return -1;
	m->f = fopen(path, "a");
	if (m->f == NULL)
		return ipc_error_set(err, IPC_E_IO, "%s: cannot open: %s", path,
		                     strerror(errno));
	m->path = xstrdup(path);
	return 0;
}

/* Wall-clock time in seconds since the epoch. */
static double
wall_time(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Write value as JSON (null when not finite). */
static void
put_value(FILE *f, double value)
{
	if (isfinite(value))
		fprintf(f, "%.17g", value);
	else
		fputs("null", f);
}

/* Write key as a JSON string: as it is when no byte needs escaping (every
 * key cohort writes itself), through jansson otherwise (a worker's). */
static void
put_key(FILE *f, const char *key)
{
	const unsigned char *k = (const unsigned char *)key;
	while (*k >= 0x20 && *k < 0x7f && *k != '"' && *k != '\\')
		k++;
	if (*k == '\0') {
		fprintf(f, "\"%s\"", key);
		return;
	}
	json_t *s = json_string(key);
	char *quoted = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
	json_decref(s);
	fputs(quoted ? quoted : "\"?\"", f);
	free(quoted);
}

void
metrics_round(struct metrics *m, unsigned round, const char *key, double value)
{
	fprintf(m->f, "{\"round\":%u,\"key\":", round);
	put_key(m->f, key);
	fputs(",\"value\":", m->f);
	put_value(m->f, value);
	fprintf(m->f, ",\"time\":%.3f}\n", wall_time());
}

void
metrics_task(struct metrics *m, unsigned round, int64_t client, uint64_t task,
             const char *key, double value)
{
	fprintf(m->f,
	        "{\"round\":%u,\"client\":%lld,\"task\":%llu,\"key\":", round,
	        (long long)client, (unsigned long long)task);
	put_key(m->f, key);
	fputs(",\"value\":", m->f);
	put_value(m->f, value);
	fprintf(m->f, ",\"time\":%.3f}\n", wall_time());
}

int
metrics_flush(struct metrics *m, struct ipc_error *err)
{
	if (m->f == NULL)
		return 0;
	/* A write stdio made on its own when its buffer filled may have
	 * failed already: the stream's error flag remembers it. */
	errno = 0;
	int failed = fflush(m->f) != 0 || ferror(m->f);
	if (!failed && fsync(fileno(m->f)) != 0 && errno != EINVAL)
		failed = 1;
	if (!failed)
		return 0;
	if (errno == 0)
		return ipc_error_set(err, IPC_E_IO,
		                     "%s: a write failed (is the disk full?)",
		                     m->path);
	return ipc_error_set(err, IPC_E_IO, "%s: cannot write: %s", m->path,
	                     strerror(errno));
}

int
metrics_close(struct metrics *m, struct ipc_error *err)
{
	int rc = metrics_flush(m, err);
	if (m->f != NULL && fclose(m->f) != 0 && rc == 0)
		rc = ipc_error_set(err, IPC_E_IO, "%s: cannot write: %s",
		                   m->path, strerror(errno));
	m->f = NULL;
	free(m->path);
	m->path = NULL;
	return rc;
}
