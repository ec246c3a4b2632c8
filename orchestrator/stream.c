/* stream.c: staging of streamed updates and the page-releasing fold. */
#include "stream.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "console.h"
#include "job.h"
#include "shm.h"
#include "strategy.h"

void
stream_init(struct stream *s, int enabled, size_t chunk_bytes,
            const struct tensor_manifest *model)
{
	memset(s, 0, sizeof *s);
	s->enabled = enabled;
	s->chunk_bytes = chunk_bytes;
	s->model = model;
}

/* The inbox of task_id, or NULL. */
static struct stream_inbox *
find_inbox(const struct stream *s, uint64_t task_id)
{
	for (struct stream_inbox *b = s->inbox; b != NULL; b = b->next)
		if (b->task_id == task_id)
			return b;
	return NULL;
}

/* Where bytes [offset, offset + len) of task_id's streamed update of
 * total bytes go, counted as received (see stream_receive); NULL (err set)
 * otherwise. The caller writes them there before the update is folded. */
static uint8_t *
stream_reserve(struct stream *s, uint64_t task_id, uint64_t total,
               uint64_t offset, size_t len, struct ipc_error *err)
{
	uint64_t size = s->model->total_size;
	if (total != size) {
		ipc_error_set(
		    err, IPC_E_BAD_VALUE,
		    "streamed update of %llu bytes, the model has %llu",
		    (unsigned long long)total, (unsigned long long)size);
		return NULL;
	}
	struct stream_inbox *b = find_inbox(s, task_id);
	if (b == NULL) {
		b = xcalloc(1, sizeof *b);
		b->task_id = task_id;
		if (s->nidle > 0)
			b->buf = s->idle[--s->nidle];
		else
			b->buf = big_alloc(size);
		b->next = s->inbox;
		s->inbox = b;
		unsigned n = 0;
		for (struct stream_inbox *x = s->inbox; x; x = x->next)
			n++;
		if (n > s->staged_peak)
			s->staged_peak = n;
	}
	if (offset != b->have || len == 0 || len > size - b->have) {
		ipc_error_set(err, IPC_E_BAD_VALUE,
		              "chunk [%llu, +%zu) out of order: expected "
		              "offset %llu of %llu",
		              (unsigned long long)offset, len,
		              (unsigned long long)b->have,
		              (unsigned long long)size);
		return NULL;
	}
	b->have += len;
	return b->buf + offset;
}

int
stream_receive(struct stream *s, uint64_t task_id, uint64_t total,
               uint64_t offset, const uint8_t *data, size_t len,
               struct ipc_error *err)
{
	uint8_t *to = stream_reserve(s, task_id, total, offset, len, err);
	if (to == NULL)
		return -1;
	memcpy(to, data, len);
	return 0;
}

const void *
stream_staged(const struct stream *s, uint64_t task_id)
{
	const struct stream_inbox *b = find_inbox(s, task_id);
	return b != NULL && b->have == s->model->total_size ? b->buf : NULL;
}

/* Keep a dropped update's staging buffer for the next one (its pages are
 * in memory already: a fresh 3 GB buffer costs seconds to fault in), as
 * many as were ever in use at once; free the others. */
static void
keep_idle(struct stream *s, uint8_t *buf)
{
	if (s->idle_cap < s->staged_peak) {
		s->idle = xrealloc(s->idle, s->staged_peak * sizeof *s->idle);
		s->idle_cap = s->staged_peak;
	}
	if (s->nidle < s->idle_cap)
		s->idle[s->nidle++] = buf;
	else
		big_free(buf, s->model->total_size);
}

void
stream_drop(struct stream *s, uint64_t task_id)
{
	for (struct stream_inbox **p = &s->inbox; *p != NULL; p = &(*p)->next)
		if ((*p)->task_id == task_id) {
			struct stream_inbox *b = *p;
			*p = b->next;
			keep_idle(s, b->buf);
			free(b);
			return;
		}
}

void
stream_free(struct stream *s)
{
	while (s->inbox != NULL)
		stream_drop(s, s->inbox->task_id);
	for (unsigned i = 0; i < s->nidle; i++)
		big_free(s->idle[i], s->model->total_size);
	free(s->idle);
	s->idle = NULL;
	s->nidle = s->idle_cap = 0;
	free(s->copy);
	s->copy = NULL;
}

/* A lazy mapping read tensor by tensor: each tensor's pages are faulted in
 * at once before it is read and the ones already read are dropped. */
struct window {
	struct shm_segment *seg; /* NULL: plain memory or a mapping with all
	                          * its pages (small), nothing to do */
	size_t done;             /* bytes below this are released */
};

/* Bring [begin, end) in and release what lies before it. */
static void
window_next(void *arg, size_t begin, size_t end)
{
	struct window *w = arg;
	if (w->seg == NULL)
		return;
	if (begin > w->done) {
		shm_segment_release(w->seg, w->done, begin - w->done);
		size_t page = (size_t)sysconf(_SC_PAGESIZE);
		w->done = begin / page * page;
	}
	shm_segment_prefetch(w->seg, begin, end - begin);
}

/* Release whatever of the mapping is still in. */
static void
window_end(struct window *w)
{
	if (w->seg != NULL && w->done < w->seg->size)
		shm_segment_release(w->seg, w->done, w->seg->size - w->done);
	w->done = 0;
}

/* tensor_region_check_finite over a mapping read through window w. */
static int
check_finite(const struct tensor_manifest *m, const void *region,
             struct window *w, struct ipc_error *err)
{
	for (size_t i = 0; i < m->count; i++) {
		const struct tensor_desc *t = &m->tensors[i];
		window_next(w, t->offset, t->offset + t->nbytes);
		if (tensor_check_finite(t, (const char *)region + t->offset,
		                        err) != 0)
			return -1;
	}
	window_end(w);
	return 0;
}

/* Whether st's fold is the accumulator's weighted sum, which stream_fold
 * does itself tensor by tensor (windows of a lazy mapping); not with
 * privacy.dp central, whose fold clips each update first. */
static int
folds_mean(const struct strategy *st)
{
	return st->ops->fold == strategy_fold_mean && st->dp == NULL;
}

/* Seal a task's update against every writer, then map it read-only. */
static int
open_update(struct shm_segment *u, size_t size, int flags,
            struct ipc_error *err)
{
	if (u->fd < 0)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "result names shared memory the task was "
		                     "not given");
	if (shm_segment_seal_write(u, err) < 0)
		return -1;
	char name[sizeof u->name];
	snprintf(name, sizeof name, "%s", u->name);
	int fd = u->fd;
	u->fd = -1;
	return shm_segment_map(u, name, fd, size, flags, err);
}

int
stream_folds_mean(const struct strategy *st)
{
	return folds_mean(st);
}

/* Fold a worker's own (unsealed, small) update from a private copy: the
 * worker may still write its segment, but only what was copied is checked
 * and folded. */
static int
fold_copy(struct stream *s, struct strategy *st, struct shm_segment *u,
          double weight, struct ipc_error *err)
{
	size_t size = st->model->total_size;
	if (u == NULL)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "the worker's update segment is gone");
	if (u->addr == NULL) {
		/* Mapped once, read-only, for all the worker's tasks. */
		void *addr = mmap(NULL, u->size, PROT_READ,
		                  MAP_SHARED | MAP_POPULATE, u->fd, 0);
		if (addr == MAP_FAILED)
			return ipc_error_set(err, IPC_E_IO,
			                     "mmap %s (%zu bytes): %s", u->name,
			                     u->size, strerror(errno));
		u->addr = addr;
	}
	if (s->copy == NULL)
		s->copy = xmalloc(size);
	memcpy(s->copy, u->addr, size);
	if (tensor_region_check_finite(st->model, s->copy, err) < 0)
		return -1;
	return st->ops->fold(st, s->copy, weight, err);
}

int
stream_fold(struct stream *s, struct strategy *st, uint64_t task_id,
            const struct params_ref *p, struct shm_segment *update, int mine,
            double weight, struct ipc_error *err)
{
	struct fedavg *a = &st->acc;
	size_t size = st->model->total_size;
	if (p->where == PARAMS_FD && mine) {
		if (tensor_manifest_equal(a->model, &p->manifest, err) < 0) {
			ipc_error_prefix(
			    err, "update layout differs from the model: ");
			return -1;
		}
		return fold_copy(s, st, update, weight, err);
	}
	if (p->where == PARAMS_FD && !folds_mean(st))
		return open_update(update, size, SHM_READ, err) < 0
		           ? -1
		           : strategy_fold(st, p, update, weight, err);
	if (st->ops->kind != STRATEGY_STREAM)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "strategy %s keeps every update; set "
		                     "transport.mode=shm",
		                     st->ops->name);
	if (p->where != PARAMS_FD && p->where != PARAMS_STREAM)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "result carries no update in shared "
		                     "memory or a stream");
	if (tensor_manifest_equal(a->model, &p->manifest, err) < 0) {
		ipc_error_prefix(err, "update layout differs from the model: ");
		return -1;
	}
	if (p->where == PARAMS_STREAM) {
		const void *u = stream_staged(s, task_id);
		if (u == NULL)
			return ipc_error_set(err, IPC_E_TRUNCATED,
			                     "streamed update incomplete");
		if (tensor_region_check_finite(a->model, u, err) < 0)
			return -1;
		return st->ops->fold(st, u, weight, err);
	}
	if (open_update(update, size, SHM_READ | SHM_LAZY, err) < 0)
		return -1;
	struct window w = {.seg = update->lazy ? update : NULL};
	int rc = check_finite(a->model, update->addr, &w, err);
	if (rc == 0) {
		fedavg_add_each(a, update->addr, weight, window_next, &w);
		window_end(&w);
	}
	shm_segment_unmap(update);
	return rc;
}

int
stream_seal_global(struct job *j, struct shm_segment *g, struct ipc_error *err)
{
	(void)j;
	return shm_segment_seal_readonly(g, err);
}

int
stream_recycle_global(struct job *j, const char *name)
{
	return j->strategy.ops->finish == strategy_finish_mean &&
	       shm_segment_rename(&j->global, name, NULL) == 0;
}

/* The global model's mapping when it is large enough to be kept out of
 * the resident set between uses, else NULL. */
static struct shm_segment *
large_global(struct job *j)
{
	return j->global.addr != NULL && j->global.size > SHM_POPULATE_MAX
	           ? &j->global
	           : NULL;
}

int
stream_finish_global(struct job *j, struct ipc_error *err)
{
	if (strategy_release_mean(&j->strategy, err) < 0)
		return -1;
	struct window w = {.seg = large_global(j)};
	double peak = fedavg_finish_each(&j->strategy.acc, j->global.addr,
	                                 window_next, &w);
	window_end(&w);
	return strategy_check_peak(&j->strategy, peak, err);
}

void
stream_release_global(struct job *j)
{
	struct shm_segment *g = large_global(j);
	if (g != NULL)
		shm_segment_release(g, 0, g->size);
}

int
stream_task_source(void *arg, uint64_t task_id, uint64_t *size)
{
	struct job *j = arg;
	(void)task_id;
	if (!j->stream.enabled)
		return -1;
	*size = j->model.total_size;
	return j->global.fd;
}

uint8_t *
stream_on_chunk(void *arg, uint64_t task_id, uint64_t total, uint64_t offset,
                size_t len, struct ipc_error *err)
{
	struct job *j = arg;
	return stream_reserve(&j->stream, task_id, total, offset, len, err);
}

void
stream_on_abort(void *arg, uint64_t task_id)
{
	struct job *j = arg;
	stream_drop(&j->stream, task_id);
	console_log("task %llu: streamed update cut off; nothing of it was "
	            "folded",
	            (unsigned long long)task_id);
}
