/* spares.c: keeping folded update segments for the next tasks. */
#include "spares.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shm.h"
#include "util.h"

void
spares_init(struct spares *s, const char *jobkey, size_t size, unsigned max)
{
	memset(s, 0, sizeof *s);
	snprintf(s->jobkey, sizeof s->jobkey, "%s", jobkey);
	s->size = size;
	s->max = max;
	if (max > 0)
		s->names = xcalloc(max, sizeof *s->names);
}

/* Whether segment name exists with the spares' size. */
static int
fits(const struct spares *s, const char *name)
{
	uint64_t size;
	return shm_segment_size(name, &size) && size == s->size;
}

/* Remember name as a spare not handed out. */
static void
push(struct spares *s, const char *name)
{
	snprintf(s->names[s->count++], sizeof s->names[0], "%s", name);
}

void
spares_keep(struct spares *s, const char *name)
{
	if (s->count < s->max && fits(s, name)) {
		char spare[SPARE_NAME_MAX];
		snprintf(spare, sizeof spare, "/cohort.%.40s.s%llu", s->jobkey,
		         (unsigned long long)s->next++);
		if (shm_segment_rename(name, spare, NULL) == 0) {
			push(s, spare);
			return;
		}
	}
	shm_segment_unlink(name, NULL);
}

int
spares_take(struct spares *s, char out[SPARE_NAME_MAX])
{
	if (s->count == 0)
		return 0;
	s->count--;
	snprintf(out, SPARE_NAME_MAX, "%s", s->names[s->count]);
	return 1;
}

void
spares_settle(struct spares *s, const char *name)
{
	if (name[0] == '\0' || !fits(s, name))
		return;
	if (s->count < s->max)
		push(s, name);
	else
		shm_segment_unlink(name, NULL);
}

void
spares_free(struct spares *s)
{
	for (unsigned i = 0; i < s->count; i++)
		shm_segment_unlink(s->names[i], NULL);
	free(s->names);
	memset(s, 0, sizeof *s);
}
