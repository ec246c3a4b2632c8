/* metrics.h: metrics/metrics.jsonl, one JSON object per emitted metric
 * (round-level, or per task with client and task ids); the source of truth
 * other sinks are fed from. */
#ifndef COHORT_METRICS_H
#define COHORT_METRICS_H

#include <stdint.h>
#include <stdio.h>

#include "error.h"

struct metrics {
	FILE *f;
	char *path;
};

/* Open for appending. keep_round >= 0 first drops every line of a round
 * after keep_round (a resumed job must not repeat rounds). */
int metrics_open(struct metrics *m, const char *path, long keep_round,
                 struct ipc_error *err);
/* {"round", "key", "value", "time"}; a non-finite value is written null. */
void metrics_round(struct metrics *m, unsigned round, const char *key,
                   double value);
/* {"round", "client", "task", "key", "value", "time"}. */
void metrics_task(struct metrics *m, unsigned round, int64_t client,
                  uint64_t task, const char *key, double value);
/* Write out what is buffered and fsync it; -1 naming the file when any
 * write since the last flush failed (a full disk): the lines since then
 * may be lost or cut, so the round they belong to must not be
 * checkpointed. */
int metrics_flush(struct metrics *m, struct ipc_error *err);
/* Flush and close; -1 as metrics_flush, or when close fails. */
int metrics_close(struct metrics *m, struct ipc_error *err);

#endif
