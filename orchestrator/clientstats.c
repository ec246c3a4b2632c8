/* clientstats.c: per-round summaries of per-client metrics. */
#include "clientstats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int
clientstats_add(struct clientstats *s, const char *key, double value)
{
	struct clientstats_key *k = NULL;
	for (size_t i = 0; i < s->n && k == NULL; i++)
		if (strcmp(s->keys[i].key, key) == 0)
			k = &s->keys[i];
	if (k == NULL) {
		if (s->n == CLIENTSTATS_MAX_KEYS)
			return -1;
		if (s->n == s->cap) {
			s->cap = s->cap ? 2 * s->cap : 8;
			s->keys =
			    xreallocarray(s->keys, s->cap, sizeof *s->keys);
		}
		k = &s->keys[s->n++];
		*k = (struct clientstats_key){.key = xstrdup(key)};
	}
	if (!isfinite(value))
		return 0;
	if (k->n == k->cap) {
		k->cap = k->cap ? 2 * k->cap : 64;
		k->v = xreallocarray(k->v, k->cap, sizeof *k->v);
	}
	k->v[k->n++] = value;
	return 0;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double
clientstats_quantile(const double *sorted, size_t n, double q)
{
	if (n == 0)
		return NAN;
	double pos = q * (double)(n - 1);
	size_t lo = (size_t)pos;
	if (lo + 1 >= n)
		return sorted[n - 1];
	double frac = pos - (double)lo;
	return sorted[lo] + frac * (sorted[lo + 1] - sorted[lo]);
}

/* One round metric client_KEY_STAT. */
static void
put(struct metrics *m, unsigned round, const char *key, const char *stat,
    double v)
{
	char *name = xasprintf("client_%s_%s", key, stat);
	metrics_round(m, round, name, v);
	free(name);
}

void
clientstats_write(struct clientstats *s, struct metrics *m, unsigned round)
{
	for (size_t i = 0; i < s->n; i++) {
		struct clientstats_key *k = &s->keys[i];
		if (k->n == 0)
			continue;
		qsort(k->v, k->n, sizeof *k->v, cmp_double);
		double sum = 0;
		for (size_t e = 0; e < k->n; e++)
			sum += k->v[e];
		put(m, round, k->key, "mean", sum / (double)k->n);
		put(m, round, k->key, "sum", sum);
		put(m, round, k->key, "min", k->v[0]);
		put(m, round, k->key, "p10",
		    clientstats_quantile(k->v, k->n, 0.1));
		put(m, round, k->key, "p50",
		    clientstats_quantile(k->v, k->n, 0.5));
		put(m, round, k->key, "p90",
		    clientstats_quantile(k->v, k->n, 0.9));
		put(m, round, k->key, "max", k->v[k->n - 1]);
	}
	clientstats_clear(s);
}

void
clientstats_clear(struct clientstats *s)
{
	for (size_t i = 0; i < s->n; i++)
		s->keys[i].n = 0;
}

void
clientstats_free(struct clientstats *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->keys[i].key);
		free(s->keys[i].v);
	}
	free(s->keys);
	*s = (struct clientstats){0};
}
