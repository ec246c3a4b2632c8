/* strategy-fedopt.c: the adaptive server optimisers of Reddi et al. 2021,
 * "Adaptive Federated Optimization", on the pseudo-gradient
 * delta = mean(updates) - global, in float64:
 *   m = beta1 m + (1 - beta1) delta
 *   FedAdam:    v = beta2 v + (1 - beta2) delta^2
 *   FedYogi:    v = v - (1 - beta2) delta^2 sign(v - delta^2)
 *   FedAdagrad: v = v + delta^2
 *   global += eta m / (sqrt(v) + tau)
 * with m = 0 and v = tau^2 before the first round and no bias correction
 * (as in the paper). Both moments are checkpointed each round. */
#include "strategy.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum fedopt_rule { RULE_ADAM, RULE_YOGI, RULE_ADAGRAD };

struct fedopt {
	enum fedopt_rule rule;
	double eta;
	double *m, *v;
	double *x; /* scratch: the global model */
};

/* The server learning rate: strategy.eta, or the rule's default. */
static double
default_eta(const struct strategy *s, enum fedopt_rule rule)
{
	if (s->cfg->strategy.eta > 0)
		return s->cfg->strategy.eta;
	return rule == RULE_YOGI ? 0.01 : 0.1;
}

/* m = 0, v = tau^2. */
static int
fedopt_init(struct strategy *s, struct ipc_error *err)
{
	(void)err;
	struct fedopt *f = xcalloc(1, sizeof *f);
	const char *name = s->ops->name;
	f->rule = strcmp(name, "fedyogi") == 0      ? RULE_YOGI
	          : strcmp(name, "fedadagrad") == 0 ? RULE_ADAGRAD
	                                            : RULE_ADAM;
	f->eta = default_eta(s, f->rule);
	size_t n = s->numel ? s->numel : 1;
	f->m = xcalloc(n, sizeof *f->m);
	f->v = xcalloc(n, sizeof *f->v);
	f->x = xcalloc(n, sizeof *f->x);
	double tau = s->cfg->strategy.tau;
	for (size_t k = 0; k < s->numel; k++)
		f->v[k] = tau * tau;
	s->priv = f;
	return 0;
}

/* -1, 0 or 1. */
static double
sign(double x)
{
	return (x > 0) - (x < 0);
}

/* Update the moments with this round's pseudo-gradient and step. */
static int
fedopt_finish(struct strategy *s, const void *global, void *out,
              struct ipc_error *err)
{
	(void)err;
	struct fedopt *f = s->priv;
	double b1 = s->cfg->strategy.beta1, b2 = s->cfg->strategy.beta2;
	double tau = s->cfg->strategy.tau;
	strategy_load_flat(s, global, f->x);
	for (size_t k = 0; k < s->numel; k++) {
		double d = s->acc.acc[k] / s->acc.weight - f->x[k];
		double d2 = d * d;
		f->m[k] = b1 * f->m[k] + (1 - b1) * d;
		switch (f->rule) {
		case RULE_ADAM:
			f->v[k] = b2 * f->v[k] + (1 - b2) * d2;
			break;
		case RULE_YOGI:
			f->v[k] -= (1 - b2) * d2 * sign(f->v[k] - d2);
			break;
		case RULE_ADAGRAD:
			f->v[k] += d2;
			break;
		}
		f->x[k] += f->eta * f->m[k] / (sqrt(f->v[k]) + tau);
	}
	strategy_store(s, f->x, out);
	return 0;
}

static const char *const names[] = {"m", "v"};

/* Checkpoint both moments. */
static int
fedopt_save(struct strategy *s, unsigned round, json_t *obj,
            struct ipc_error *err)
{
	struct fedopt *f = s->priv;
	double *vecs[] = {f->m, f->v};
	return strategy_save_vectors(s, round, obj, names, vecs, 2, err);
}

/* Restore both moments. */
static int
fedopt_load(struct strategy *s, const json_t *obj, struct ipc_error *err)
{
	struct fedopt *f = s->priv;
	double *vecs[] = {f->m, f->v};
	return strategy_load_vectors(s, obj, names, vecs, 2, err);
}

/* Release the moments. */
static void
fedopt_free(struct strategy *s)
{
	struct fedopt *f = s->priv;
	if (f == NULL)
		return;
	free(f->m);
	free(f->v);
	free(f->x);
	free(f);
	s->priv = NULL;
}

#define FEDOPT(var, label)                                                     \
	const struct strategy_ops var = {                                      \
	    .name = label,                                                     \
	    .kind = STRATEGY_STREAM,                                           \
	    .reads_global = 1,                                                 \
	    .init = fedopt_init,                                               \
	    .fold = strategy_fold_mean,                                        \
	    .finish = fedopt_finish,                                           \
	    .save = fedopt_save,                                               \
	    .load = fedopt_load,                                               \
	    .free = fedopt_free,                                               \
	}

FEDOPT(strategy_fedadam, "fedadam");
FEDOPT(strategy_fedyogi, "fedyogi");
FEDOPT(strategy_fedadagrad, "fedadagrad");
