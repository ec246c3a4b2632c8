/* partials.c: pool workers' partial sums, per worker process. */
#include "partials.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void
partials_init(struct partials *p, size_t numel, int on, unsigned flush_every,
              const char *jobkey)
{
	memset(p, 0, sizeof *p);
	p->numel = numel;
	p->on = on;
	p->flush_every = flush_every;
	p->next_id = 1;
	p->jobkey = jobkey;
}

/* The index of pid's record, or -1. */
static long
find(const struct partials *p, pid_t pid)
{
	for (unsigned i = 0; i < p->n; i++)
		if (p->w[i]->pid == pid)
			return i;
	return -1;
}

/* Give w a new, empty segment with the next id. */
static int
make_segment(struct partials *p, struct worker_partial *w,
             struct ipc_error *err)
{
	char label[96];
	w->id = p->next_id++;
	snprintf(label, sizeof label, "cohort.%s.p%llu", p->jobkey,
	         (unsigned long long)w->id);
	return shm_segment_create_empty(&w->seg, label,
	                                p->numel * sizeof(double), err);
}

struct worker_partial *
partials_get(struct partials *p, pid_t pid, int make, struct ipc_error *err)
{
	long i = find(p, pid);
	struct worker_partial *w = i >= 0 ? p->w[i] : NULL;
	if (!make || !p->on)
		return w;
	if (w == NULL) {
		if (p->n == p->cap) {
			p->cap = p->cap ? 2 * p->cap : 8;
			p->w = xreallocarray(p->w, p->cap, sizeof *p->w);
		}
		w = xcalloc(1, sizeof *w);
		w->pid = pid;
		w->seg.fd = -1;
		p->w[p->n++] = w;
	}
	if (w->seg.fd < 0 && make_segment(p, w, err) < 0) {
		w->seg.fd = -1;
		return NULL;
	}
	return w;
}

void
partials_note(struct worker_partial *w, uint64_t task_id, double weight,
              const struct msg_result *r)
{
	if (w->n == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 64;
		w->fits = xreallocarray(w->fits, w->cap, sizeof *w->fits);
	}
	struct partial_fit *f = &w->fits[w->n++];
	memset(f, 0, sizeof *f);
	f->task_id = task_id;
	f->weight = weight;
	f->num_examples = r->num_examples;
	for (size_t i = 0; i < r->metrics.count; i++)
		if (r->metrics.entries[i].type == KV_NUM)
			kv_set_num(&f->metrics, r->metrics.entries[i].key,
			           r->metrics.entries[i].num);
	w->weight += weight;
}

void
partials_refuse(struct worker_partial *w, uint64_t task_id, const char *why)
{
	if (w->refused[0] == '\0')
		snprintf(w->refused, sizeof w->refused,
		         "its partial sum also holds task %llu, refused: %s",
		         (unsigned long long)task_id, why);
}

int
partials_match(const struct worker_partial *w, const struct msg_partial *m,
               struct ipc_error *err)
{
	if (w->seg.fd < 0 || m->id != w->id)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "partial sum %llu is not the one the "
		                     "worker holds (%llu)",
		                     (unsigned long long)m->id,
		                     (unsigned long long)w->id);
	if (m->ntasks != w->n)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "partial sum %llu lists %zu tasks; %zu "
		                     "were reported folded into it",
		                     (unsigned long long)m->id, m->ntasks,
		                     w->n);
	for (size_t i = 0; i < w->n; i++)
		if (m->tasks[i] != w->fits[i].task_id)
			return ipc_error_set(
			    err, IPC_E_BAD_VALUE,
			    "partial sum %llu lists task %llu where task %llu "
			    "was reported folded",
			    (unsigned long long)m->id,
			    (unsigned long long)m->tasks[i],
			    (unsigned long long)w->fits[i].task_id);
	/* The same weights added in the same order: equal to the bit. */
	if (m->weight != w->weight)
		return ipc_error_set(
		    err, IPC_E_BAD_VALUE,
		    "partial sum %llu says its weight is %.17g; "
		    "its fits' weights add up to %.17g",
		    (unsigned long long)m->id, m->weight, w->weight);
	return 0;
}

const double *
partials_open(struct partials *p, struct worker_partial *w,
              struct ipc_error *err)
{
	size_t size = p->numel * sizeof(double);
	if (shm_segment_seal_write(&w->seg, err) < 0)
		return NULL;
	char name[sizeof w->seg.name];
	snprintf(name, sizeof name, "%s", w->seg.name);
	int fd = w->seg.fd;
	w->seg.fd = -1;
	if (shm_segment_map(&w->seg, name, fd, size, SHM_READ, err) < 0)
		return NULL;
	return w->seg.addr;
}

struct partial_fit *
partials_take(struct worker_partial *w, struct closer *c, size_t *n)
{
	struct partial_fit *fits = w->fits;
	*n = w->n;
	w->fits = NULL;
	w->n = w->cap = 0;
	w->weight = 0;
	w->refused[0] = '\0';
	closer_close(c, &w->seg);
	w->seg.fd = -1;
	w->id = 0;
	return fits;
}

struct partial_fit *
partials_gone(struct partials *p, pid_t pid, struct closer *c, size_t *n)
{
	long i = find(p, pid);
	*n = 0;
	if (i < 0)
		return NULL;
	struct worker_partial *w = p->w[i];
	struct partial_fit *fits = partials_take(w, c, n);
	free(w);
	p->w[i] = p->w[--p->n];
	return fits;
}

void
partials_fits_free(struct partial_fit *fits, size_t n)
{
	for (size_t i = 0; i < n; i++)
		kv_free(&fits[i].metrics);
	free(fits);
}

void
partials_free(struct partials *p, struct closer *c)
{
	while (p->n > 0) {
		size_t n;
		struct partial_fit *f = partials_gone(p, p->w[0]->pid, c, &n);
		partials_fits_free(f, n);
	}
	free(p->w);
	p->w = NULL;
	p->cap = 0;
}
