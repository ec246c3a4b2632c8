/* shmcache.c: keeping small segments mapped and finding them by inode. */
#include "shmcache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util.h"

void
shm_cache_init(struct shm_cache *c, unsigned max)
{
	memset(c, 0, sizeof *c);
	c->max = max;
	if (max > 0)
		c->e = xcalloc(max, sizeof *c->e);
}

/* The entry of (dev, ino, size, writable), or NULL. */
static struct shm_cache_entry *
find(struct shm_cache *c, const struct stat *st, int writable)
{
	for (unsigned i = 0; i < c->n; i++) {
		struct shm_cache_entry *e = &c->e[i];
		if (e->dev == st->st_dev && e->ino == st->st_ino &&
		    e->size == (size_t)st->st_size && e->writable == writable)
			return e;
	}
	return NULL;
}

/* A free entry: a new one, or the least recently used one unmapped. */
static struct shm_cache_entry *
make_room(struct shm_cache *c)
{
	if (c->n < c->max)
		return &c->e[c->n++];
	struct shm_cache_entry *old = &c->e[0];
	for (unsigned i = 1; i < c->n; i++)
		if (c->e[i].used < old->used)
			old = &c->e[i];
	munmap(old->addr, old->size);
	return old;
}

/* Remember a mapping. */
static void
keep(struct shm_cache *c, const struct stat *st, int writable, void *addr)
{
	struct shm_cache_entry *e = make_room(c);
	e->dev = st->st_dev;
	e->ino = st->st_ino;
	e->size = (size_t)st->st_size;
	e->writable = writable;
	e->addr = addr;
	e->used = ++c->clock;
}

int
shm_cache_open(struct shm_cache *c, struct shm_segment *s, int fd,
               const char *name, int want, int flags, size_t min_size,
               struct ipc_error *err)
{
	int writable = (flags & SHM_WRITE) != 0;
	memset(s, 0, sizeof *s);
	s->fd = -1;
	struct stat st;
	if (shm_fd_check(fd, name, want, min_size, &st, err) != 0)
		return -1;
	size_t size = (size_t)st.st_size;
	if (c->max == 0 || size > SHM_POPULATE_MAX)
		return shm_segment_map(s, name, fd, size, flags, err);
	struct shm_cache_entry *e = find(c, &st, writable);
	if (e == NULL) {
		if (shm_segment_map(s, name, fd, size, flags, err) != 0)
			return -1;
		keep(c, &st, writable, s->addr);
		s->cached = 1;
		return 0;
	}
	e->used = ++c->clock;
	snprintf(s->name, sizeof s->name, "%s", name);
	s->fd = fd;
	s->addr = e->addr;
	s->size = size;
	s->writable = writable;
	s->cached = 1;
	return 0;
}

void
shm_cache_free(struct shm_cache *c)
{
	for (unsigned i = 0; i < c->n; i++)
		munmap(c->e[i].addr, c->e[i].size);
	free(c->e);
	memset(c, 0, sizeof *c);
}
