/* updates.c: per-worker update segments. */
#include "updates.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void
updates_init(struct updates *u, size_t size, int on)
{
	memset(u, 0, sizeof *u);
	u->size = size;
	u->on = on;
}

/* The entry of worker pid, or NULL. */
static struct worker_updates *
find(struct updates *u, pid_t pid)
{
	for (unsigned i = 0; i < u->n; i++)
		if (u->w[i].pid == pid)
			return &u->w[i];
	return NULL;
}

/* The entry of worker pid, made if it has none. */
static struct worker_updates *
get_or_add(struct updates *u, pid_t pid)
{
	struct worker_updates *e = find(u, pid);
	if (e != NULL)
		return e;
	if (u->n == u->cap) {
		u->cap = u->cap ? 2 * u->cap : 8;
		u->w = xreallocarray(u->w, u->cap, sizeof *u->w);
	}
	e = &u->w[u->n++];
	memset(e, 0, sizeof *e);
	e->pid = pid;
	for (int i = 0; i < UPDATES_PER_WORKER; i++)
		e->seg[i].fd = -1;
	return e;
}

struct shm_segment *
updates_take(struct updates *u, pid_t pid, int *slot, struct ipc_error *err)
{
	if (!u->on)
		return NULL;
	struct worker_updates *e = get_or_add(u, pid);
	for (int i = 0; i < UPDATES_PER_WORKER; i++) {
		if (e->busy[i])
			continue;
		if (e->seg[i].fd < 0) {
			char label[64];
			snprintf(label, sizeof label, "cohort.w%ld.u%d",
			         (long)pid, i);
			if (shm_segment_create_empty(&e->seg[i], label, u->size,
			                             err) < 0)
				return NULL;
		}
		e->busy[i] = 1;
		*slot = i;
		return &e->seg[i];
	}
	return NULL;
}

struct shm_segment *
updates_get(struct updates *u, pid_t pid, int slot)
{
	struct worker_updates *e = find(u, pid);
	if (e == NULL || slot < 0 || slot >= UPDATES_PER_WORKER ||
	    e->seg[slot].fd < 0)
		return NULL;
	return &e->seg[slot];
}

void
updates_put(struct updates *u, pid_t pid, int slot)
{
	struct worker_updates *e = find(u, pid);
	if (e != NULL && slot >= 0 && slot < UPDATES_PER_WORKER)
		e->busy[slot] = 0;
}

void
updates_worker_gone(struct updates *u, pid_t pid, struct closer *c)
{
	struct worker_updates *e = find(u, pid);
	if (e == NULL)
		return;
	for (int i = 0; i < UPDATES_PER_WORKER; i++)
		closer_close(c, &e->seg[i]);
	*e = u->w[--u->n];
}

void
updates_free(struct updates *u, struct closer *c)
{
	while (u->n > 0)
		updates_worker_gone(u, u->w[0].pid, c);
	free(u->w);
	memset(u, 0, sizeof *u);
}
