/* clientstats.h: per-client numbers of a round folded into per-round
 * summaries (output.client_metrics = summary): for each key the clients
 * reported, its mean, sum, min, max and the 10th, 50th and 90th
 * percentiles become round-level metrics client_KEY_STAT, in place of one
 * metrics.jsonl line per client and key. */
#ifndef COHORT_CLIENTSTATS_H
#define COHORT_CLIENTSTATS_H

#include <stddef.h>

#include "metrics.h"

/* The values one key took this round, in the order they came. */
struct clientstats_key {
	char *key;
	double *v;
	size_t n, cap;
};

/* Keys a job may summarise: a worker inventing a new key per task cannot
 * make the table grow without bound. */
enum { CLIENTSTATS_MAX_KEYS = 64 };

struct clientstats {
	struct clientstats_key *keys;
	size_t n, cap;
};

/* Note one client's value of key (non-finite values are not counted); -1
 * when key is new and CLIENTSTATS_MAX_KEYS are known already (dropped). */
int clientstats_add(struct clientstats *s, const char *key, double value);
/* Write the summaries of every key seen (in the order keys first came) as
 * round metrics of round, then forget the values (keys stay known). */
void clientstats_write(struct clientstats *s, struct metrics *m,
                       unsigned round);
/* Forget the values (a retried round starts again). */
void clientstats_clear(struct clientstats *s);
void clientstats_free(struct clientstats *s);

/* The q-quantile (0 <= q <= 1) of n sorted values, interpolated linearly
 * between the two nearest ranks (numpy's default); NaN when n is 0. */
double clientstats_quantile(const double *sorted, size_t n, double q);

#endif
