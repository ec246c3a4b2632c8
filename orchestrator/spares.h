/* spares.h: update segments kept for reuse. A fresh segment of a large model
 * costs more to fill than the copy itself (new tmpfs pages are zeroed, and on
 * a virtual machine that hands freed memory back to its host each new page is
 * a host fault), so once an update is folded its segment is renamed to a
 * spare, /cohort.<job>.s<n>, and the next fit task is told to take it
 * (task config "spare_shm") by renaming it to its own /cohort.<job>.u<task>.
 * A worker that ignores the hint creates its own segment as before. */
#ifndef COHORT_SPARES_H
#define COHORT_SPARES_H

#include <stddef.h>
#include <stdint.h>

#define SPARE_NAME_MAX 96 /* "/cohort.<job>.s<n>" */

struct spares {
	char jobkey[64];
	size_t size;  /* bytes of every spare (the model's) */
	unsigned max; /* spares kept at most; 0 turns reuse off */
	char (*names)[SPARE_NAME_MAX];
	unsigned count; /* spares not handed out */
	uint64_t next;  /* number of the next spare's name */
};

void spares_init(struct spares *s, const char *jobkey, size_t size,
                 unsigned max);
/* A folded update segment: keep it as a spare, or unlink it. */
void spares_keep(struct spares *s, const char *name);
/* Hand a spare to a task: copies its name into out (SPARE_NAME_MAX bytes) and
 * returns 1, or returns 0 when there is none. */
int spares_take(struct spares *s, char out[SPARE_NAME_MAX]);
/* The task handed spare name ended: a spare it did not take is kept. */
void spares_settle(struct spares *s, const char *name);
/* Unlink every spare. */
void spares_free(struct spares *s);

#endif
