/* strategy-fedavgm.c: FedAvg with server momentum (Hsu et al. 2019). With
 * the pseudo-gradient delta = mean(updates) - global:
 *   v = server_momentum * v + delta;   global += server_lr * v
 * (v = 0 before the first round), in float64, checkpointed each round. */
#include "strategy.h"

#include <stdlib.h>

struct fedavgm {
	double *v; /* momentum, one per model element */
	double *x; /* scratch: the global model */
};

/* Zero momentum. */
static int
fedavgm_init(struct strategy *s, struct ipc_error *err)
{
	(void)err;
	struct fedavgm *f = xcalloc(1, sizeof *f);
	f->v = xcalloc(s->numel ? s->numel : 1, sizeof *f->v);
	f->x = xcalloc(s->numel ? s->numel : 1, sizeof *f->x);
	s->priv = f;
	return 0;
}

/* Step the momentum with this round's pseudo-gradient and apply it. */
static int
fedavgm_finish(struct strategy *s, const void *global, void *out,
               struct ipc_error *err)
{
	(void)err;
	struct fedavgm *f = s->priv;
	double lr = s->cfg->strategy.server_lr;
	double beta = s->cfg->strategy.server_momentum;
	strategy_load_flat(s, global, f->x);
	for (size_t k = 0; k < s->numel; k++) {
		double delta = s->acc.acc[k] / s->acc.weight - f->x[k];
		f->v[k] = beta * f->v[k] + delta;
		f->x[k] += lr * f->v[k];
	}
	strategy_store(s, f->x, out);
	return 0;
}

static const char *const names[] = {"momentum"};

/* Checkpoint the momentum. */
static int
fedavgm_save(struct strategy *s, unsigned round, json_t *obj,
             struct ipc_error *err)
{
	struct fedavgm *f = s->priv;
	double *vecs[] = {f->v};
	return strategy_save_vectors(s, round, obj, names, vecs, 1, err);
}

/* Restore the momentum. */
static int
fedavgm_load(struct strategy *s, const json_t *obj, struct ipc_error *err)
{
	struct fedavgm *f = s->priv;
	double *vecs[] = {f->v};
	return strategy_load_vectors(s, obj, names, vecs, 1, err);
}

/* Release the momentum. */
static void
fedavgm_free(struct strategy *s)
{
	struct fedavgm *f = s->priv;
	if (f == NULL)
		return;
	free(f->v);
	free(f->x);
	free(f);
	s->priv = NULL;
}

const struct strategy_ops strategy_fedavgm = {
    .name = "fedavgm",
    .kind = STRATEGY_STREAM,
    .reads_global = 1,
    .init = fedavgm_init,
    .fold = strategy_fold_mean,
    .finish = fedavgm_finish,
    .save = fedavgm_save,
    .load = fedavgm_load,
    .free = fedavgm_free,
};
