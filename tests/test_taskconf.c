/* test_taskconf.c: the task config table: a task with every key its kind
 * needs passes, one missing, mistyped or out of range fails naming the key,
 * streamed tasks need chunk_bytes, and docs/protocol.md lists every key. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "taskconf.h"

/* A fit task with every fit key. */
static void
fit_task(struct msg *m)
{
	msg_init(m, MSG_TASK);
	struct msg_task *t = &m->u.task;
	t->task_id = 7;
	t->kind = TASK_FIT;
	t->params.where = PARAMS_FD;
	for (unsigned k = 0; k < TK_COUNT; k++) {
		const struct taskconf_spec *s = &taskconf_keys[k];
		if (!(s->required & TASKCONF_FIT))
			continue;
		if (s->type == KV_STR)
			taskconf_set_str(&t->config, k, "x");
		else
			taskconf_set_num(&t->config, k, s->min);
	}
}

static void
test_check(void)
{
	struct msg m;
	struct ipc_error err;
	fit_task(&m);
	CHECK_EQ_INT(taskconf_check(&m.u.task, &err), 0);
	CHECK(taskconf_num(&m.u.task, TK_BATCH_SIZE) == 1);
	CHECK(strcmp(taskconf_str(&m.u.task, TK_OPTIMIZER), "x") == 0);
	/* Streamed: chunk_bytes is needed too. */
	m.u.task.params.where = PARAMS_STREAM;
	CHECK_EQ_INT(taskconf_check(&m.u.task, &err), -1);
	CHECK_STR_CONTAINS(err.message,
	                   "task 7: config.chunk_bytes is missing");
	taskconf_set_num(&m.u.task.config, TK_CHUNK_BYTES, 1 << 20);
	CHECK_EQ_INT(taskconf_check(&m.u.task, &err), 0);
	/* Out of range, and not finite. */
	taskconf_set_num(&m.u.task.config, TK_MOMENTUM, 1.5);
	CHECK_EQ_INT(taskconf_check(&m.u.task, &err), -1);
	CHECK_STR_CONTAINS(err.message, "config.momentum: 1.5 is outside");
	taskconf_set_num(&m.u.task.config, TK_MOMENTUM, 0.9);
	taskconf_set_num(&m.u.task.config, TK_LR, strtod("nan", NULL));
	CHECK_EQ_INT(taskconf_check(&m.u.task, &err), -1);
	CHECK_STR_CONTAINS(err.message, "config.lr: nan is outside");
	/* Of another type. */
	taskconf_set_str(&m.u.task.config, TK_LR, "0.1");
	CHECK_EQ_INT(taskconf_check(&m.u.task, &err), -1);
	CHECK_STR_CONTAINS(err.message, "config.lr: expected a number");
	msg_free(&m);

	/* An evaluate task needs no training keys; a fit's missing one
	 * fails. */
	msg_init(&m, MSG_TASK);
	m.u.task.kind = TASK_EVALUATE;
	for (unsigned k = 0; k < TK_COUNT; k++)
		if (taskconf_keys[k].required & TASKCONF_EVALUATE) {
			if (taskconf_keys[k].type == KV_STR)
				taskconf_set_str(&m.u.task.config, k, "x");
			else
				taskconf_set_num(&m.u.task.config, k, 1);
		}
	CHECK_EQ_INT(taskconf_check(&m.u.task, &err), 0);
	m.u.task.kind = TASK_FIT;
	CHECK_EQ_INT(taskconf_check(&m.u.task, &err), -1);
	CHECK_STR_CONTAINS(err.message, "config.epochs is missing");
	msg_free(&m);
}

/* docs/protocol.md's "Task config" table names every key of the table. */
static void
test_documented(void)
{
	const char *src = getenv("COHORT_SOURCE_DIR");
	CHECK(src != NULL);
	char path[1024];
	snprintf(path, sizeof path, "%s/docs/protocol.md", src ? src : ".");
	FILE *f = fopen(path, "r");
	CHECK(f != NULL);
	if (f == NULL)
		return;
	static char doc[1 << 17];
	size_t n = fread(doc, 1, sizeof doc - 1, f);
	doc[n] = '\0';
	fclose(f);
	for (unsigned k = 0; k < TK_COUNT; k++) {
		char row[64];
		snprintf(row, sizeof row, "\n| `%s` | %s |",
		         taskconf_keys[k].name,
		         taskconf_keys[k].type == KV_NUM ? "number" : "string");
		if (strstr(doc, row) == NULL)
			harness_fail(__FILE__, __LINE__,
			             "docs/protocol.md has no row \"%s\"",
			             row + 1);
	}
}

int
main(void)
{
	RUN(test_check);
	RUN(test_documented);
	return harness_finish();
}
