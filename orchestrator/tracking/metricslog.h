/* metricslog.h: reading metrics/metrics.jsonl back, line by line from a byte
 * offset, for the sinks fed from it (MLflow, TensorBoard, the report). */
#ifndef COHORT_METRICSLOG_H
#define COHORT_METRICSLOG_H

#include <stdint.h>

#include "error.h"

/* One parsed metric line. */
struct metricslog_line {
	unsigned round;
	int64_t client; /* -1 for a round-level metric */
	uint64_t task;
	const char *key; /* valid during the callback only */
	double value;    /* null is read as NaN; "Infinity" strings as inf */
	double time;     /* seconds since the epoch */
	long end;        /* byte offset just after this line */
};

typedef void (*metricslog_fn)(void *arg, const struct metricslog_line *l);

enum {
	/* Only round-level lines: a per-client line, as metrics.c writes it
	 * ({"round":N,"client":...), is passed over without being parsed. */
	METRICSLOG_ROUNDS = 1,
};

/* Call fn for each complete line of path after *offset and move *offset past
 * the last complete line; a missing file reads as empty. Lines that are not
 * metric objects are skipped. */
int metricslog_read(const char *path, long *offset, unsigned flags,
                    metricslog_fn fn, void *arg, struct ipc_error *err);

#endif
