/* taskconf.h: the keys of a task frame's config map (docs/protocol.md,
 * "Task config"), one table both sides use: the orchestrator writes every
 * key a task needs by name from it, the worker checks a task against it
 * once when it arrives (a key missing, of another type or out of range is
 * an error naming the key) and then reads values typed, with no fallback
 * defaults of its own. The defaults live in the orchestrator's config
 * schema (orchestrator/config.c) alone. */
#ifndef COHORT_TASKCONF_H
#define COHORT_TASKCONF_H

#include "error.h"
#include "message.h"

enum taskconf_key {
	TK_MODEL,          /* str: the model's name (model.name) */
	TK_TRAIN_DATA,     /* str: the training set's cache file */
	TK_TEST_DATA,      /* str: the test set's cache file */
	TK_PARTITION,      /* str: data/partition.bin */
	TK_SPLIT,          /* str: train, holdout or test */
	TK_BATCH_SIZE,     /* num: examples per step */
	TK_SEED,           /* num: the task's seed (53 bits) */
	TK_CLIENTS,        /* num: the federation's size (federation.clients) */
	TK_JOB_SEED,       /* num: the job's seed (job.seed) */
	TK_EPOCHS,         /* num, fit: passes over the client's slice */
	TK_LR,             /* num, fit: learning rate */
	TK_MOMENTUM,       /* num, fit */
	TK_WEIGHT_DECAY,   /* num, fit */
	TK_OPTIMIZER,      /* str, fit: sgd or adam */
	TK_MU,             /* num, fit: FedProx's proximal weight (0: none) */
	TK_PROGRESS_EVERY, /* num, fit: steps between progress frames */
	TK_CHUNK_BYTES,    /* num, stream transport: bytes per chunk frame */
	TK_WEIGHTING,      /* str, partial: a fit's weight (wsum_weight) */
	TK_FLUSH_EVERY,    /* num, partial: folded fits per partial (0: any) */
	TK_N_HEAD,         /* num, text: attention heads (model.n_head) */
	TK_SEQ_LEN,        /* num, text: tokens per sequence */
	TK_GRAD_ACCUM,     /* num, text fit: micro-batches per step */
	TK_WARMUP_STEPS,   /* num, text fit: steps of linear warmup */
	TK_LR_SCHEDULE,    /* str, text fit: constant or cosine */
	TK_MIN_LR,         /* num, text fit: the cosine's last rate */
	TK_MAX_GRAD_NORM,  /* num, text fit: clipping norm (0: none) */
	TK_MAX_TOKENS,     /* num, text evaluate: tokens scored (0: all) */
	TK_COUNT,
};

/* When a key is required. */
enum {
	TASKCONF_FIT = 1,       /* in fit tasks */
	TASKCONF_EVALUATE = 2,  /* in evaluate tasks */
	TASKCONF_STREAM = 4,    /* in tasks whose params are streamed */
	TASKCONF_INIT = 8,      /* in init tasks */
	TASKCONF_PARTIAL = 16,  /* in fit tasks that carry a partial sum */
	TASKCONF_TEXT = 32,     /* in fit and evaluate tasks of a text model */
	TASKCONF_TEXT_FIT = 64, /* in fit tasks of a text model */
	TASKCONF_TEXT_EVAL = 128, /* in evaluate tasks of a text model */
};

struct taskconf_spec {
	const char *name;
	enum kv_type type;
	unsigned required; /* TASKCONF_* */
	double min, max;   /* numbers: the range allowed */
};

extern const struct taskconf_spec taskconf_keys[TK_COUNT];

/* Check task t's config: every key its kind and transport require is
 * there, with its type and in range; 0, or -1 naming the key. */
int taskconf_check(const struct msg_task *t, struct ipc_error *err);
/* The value of key k of a task taskconf_check accepted; a key its kind
 * does not require and it lacks is a bug (fatal). */
double taskconf_num(const struct msg_task *t, enum taskconf_key k);
const char *taskconf_str(const struct msg_task *t, enum taskconf_key k);
/* Write key k into a task's config. */
void taskconf_set_num(struct kv_list *config, enum taskconf_key k, double v);
void taskconf_set_str(struct kv_list *config, enum taskconf_key k,
                      const char *v);

#endif
