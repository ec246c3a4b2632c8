/* taskconf.c: the task config table and its checks. */
#include "taskconf.h"

#include <math.h>

#include "models.h"
#include "util.h"

#define BOTH (TASKCONF_FIT | TASKCONF_EVALUATE)
#define ALL (BOTH | TASKCONF_INIT)

const struct taskconf_spec taskconf_keys[TK_COUNT] = {
    [TK_MODEL] = {"model", KV_STR, ALL, 0, 0},
    [TK_TRAIN_DATA] = {"train_data", KV_STR, ALL, 0, 0},
    [TK_TEST_DATA] = {"test_data", KV_STR, ALL, 0, 0},
    [TK_PARTITION] = {"partition", KV_STR, ALL, 0, 0},
    [TK_SPLIT] = {"split", KV_STR, BOTH, 0, 0},
    [TK_BATCH_SIZE] = {"batch_size", KV_NUM, BOTH, 1, 1e6},
    [TK_SEED] = {"seed", KV_NUM, ALL, 0, 9007199254740992.0},
    [TK_CLIENTS] = {"clients", KV_NUM, ALL, 1, 1e7},
    [TK_JOB_SEED] = {"job_seed", KV_NUM, ALL, 0, 9.3e18},
    [TK_EPOCHS] = {"epochs", KV_NUM, TASKCONF_FIT, 0, 1e6},
    [TK_LR] = {"lr", KV_NUM, TASKCONF_FIT, 0, 1e6},
    [TK_MOMENTUM] = {"momentum", KV_NUM, TASKCONF_FIT, 0, 1},
    [TK_WEIGHT_DECAY] = {"weight_decay", KV_NUM, TASKCONF_FIT, 0, 1e6},
    [TK_OPTIMIZER] = {"optimizer", KV_STR, TASKCONF_FIT, 0, 0},
    [TK_MU] = {"mu", KV_NUM, TASKCONF_FIT, 0, 1e6},
    [TK_PROGRESS_EVERY] = {"progress_every", KV_NUM, TASKCONF_FIT, 0, 1e12},
    [TK_CHUNK_BYTES] = {"chunk_bytes", KV_NUM, TASKCONF_STREAM | TASKCONF_INIT,
                        1, (64 << 20) - 4096},
    [TK_WEIGHTING] = {"weighting", KV_STR, TASKCONF_PARTIAL, 0, 0},
    [TK_FLUSH_EVERY] = {"flush_every", KV_NUM, TASKCONF_PARTIAL, 0, 1e6},
    [TK_N_HEAD] = {"n_head", KV_NUM, TASKCONF_TEXT, 1, 1e4},
    [TK_SEQ_LEN] = {"seq_len", KV_NUM, TASKCONF_TEXT, 1, 1e6},
    [TK_GRAD_ACCUM] = {"grad_accum", KV_NUM, TASKCONF_TEXT_FIT, 1, 1e6},
    [TK_WARMUP_STEPS] = {"warmup_steps", KV_NUM, TASKCONF_TEXT_FIT, 0, 1e9},
    [TK_LR_SCHEDULE] = {"lr_schedule", KV_STR, TASKCONF_TEXT_FIT, 0, 0},
    [TK_MIN_LR] = {"min_lr", KV_NUM, TASKCONF_TEXT_FIT, 0, 1e6},
    [TK_MAX_GRAD_NORM] = {"max_grad_norm", KV_NUM, TASKCONF_TEXT_FIT, 0, 1e9},
    [TK_MAX_TOKENS] = {"max_tokens", KV_NUM, TASKCONF_TEXT_EVAL, 0, 1e12},
};

/* The TASKCONF_* conditions task t meets. */
static unsigned
task_needs(const struct msg_task *t)
{
	unsigned n = 0;
	if (t->kind == TASK_FIT)
		n |= TASKCONF_FIT;
	if (t->kind == TASK_EVALUATE)
		n |= TASKCONF_EVALUATE;
	if (t->params.where == PARAMS_STREAM)
		n |= TASKCONF_STREAM;
	if (t->kind == TASK_INIT)
		n |= TASKCONF_INIT;
	if (t->partial_fd >= 0)
		n |= TASKCONF_PARTIAL;
	/* A text model's keys: its name is checked like any key, later. */
	const struct kv_entry *model = kv_find(&t->config, "model");
	const struct model_info *mi = model != NULL && model->type == KV_STR
	                                  ? models_find(model->str)
	                                  : NULL;
	if (mi != NULL && mi->text && (n & (TASKCONF_FIT | TASKCONF_EVALUATE)))
		n |= TASKCONF_TEXT | (n & TASKCONF_FIT ? TASKCONF_TEXT_FIT
		                                       : TASKCONF_TEXT_EVAL);
	return n;
}

int
taskconf_check(const struct msg_task *t, struct ipc_error *err)
{
	unsigned needs = task_needs(t);
	for (unsigned k = 0; k < TK_COUNT; k++) {
		const struct taskconf_spec *s = &taskconf_keys[k];
		const struct kv_entry *e = kv_find(&t->config, s->name);
		if (e == NULL) {
			if (s->required & needs)
				return ipc_error_set(
				    err, IPC_E_MISSING_KEY,
				    "task %llu: config.%s is missing "
				    "(docs/protocol.md, \"Task config\")",
				    (unsigned long long)t->task_id, s->name);
			continue;
		}
		if (e->type != s->type)
			return ipc_error_set(
			    err, IPC_E_WRONG_TYPE,
			    "task %llu: config.%s: expected a "
			    "%s",
			    (unsigned long long)t->task_id, s->name,
			    s->type == KV_NUM ? "number" : "string");
		if (s->type == KV_NUM &&
		    !(isfinite(e->num) && e->num >= s->min && e->num <= s->max))
			return ipc_error_set(
			    err, IPC_E_BAD_VALUE,
			    "task %llu: config.%s: %g is outside [%g, %g]",
			    (unsigned long long)t->task_id, s->name, e->num,
			    s->min, s->max);
	}
	return 0;
}

/* Key k of t, which taskconf_check accepted. */
static const struct kv_entry *
entry(const struct msg_task *t, enum taskconf_key k, enum kv_type type)
{
	const struct taskconf_spec *s = &taskconf_keys[k];
	const struct kv_entry *e = kv_find(&t->config, s->name);
	if (e == NULL || e->type != type)
		fatal("task %llu: config.%s read but not checked present",
		      (unsigned long long)t->task_id, s->name);
	return e;
}

double
taskconf_num(const struct msg_task *t, enum taskconf_key k)
{
	return entry(t, k, KV_NUM)->num;
}

const char *
taskconf_str(const struct msg_task *t, enum taskconf_key k)
{
	return entry(t, k, KV_STR)->str;
}

void
taskconf_set_num(struct kv_list *config, enum taskconf_key k, double v)
{
	kv_set_num(config, taskconf_keys[k].name, v);
}

void
taskconf_set_str(struct kv_list *config, enum taskconf_key k, const char *v)
{
	kv_set_str(config, taskconf_keys[k].name, v);
}
