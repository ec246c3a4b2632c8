/* train.c: the local training loop (shuffle, batch, step, optimise) and
 * evaluation, with every buffer allocated once per call. */
#include "train.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "rng.h"

/* The defaults a user gets when a job config says nothing. */
void
train_config_defaults(struct train_config *c)
{
	memset(c, 0, sizeof *c);
	c->epochs = 1;
	c->batch_size = 32;
	c->lr = 0.01f;
	c->momentum = 0.9f;
	c->optimizer = OPT_SGD;
	c->beta1 = 0.9f;
	c->beta2 = 0.999f;
	c->eps = 1e-8f;
	c->seed = 1;
}

int
train_set_threads(struct ipc_error *err)
{
	const char *s = getenv("COHORT_THREADS");
	long n = 1;
	if (s != NULL && *s != '\0') {
		char *end;
		errno = 0;
		n = strtol(s, &end, 10);
		if (errno != 0 || *end != '\0' || n < 1 || n > 1024)
			return ipc_error_set(err, IPC_E_BAD_VALUE,
			                     "COHORT_THREADS=\"%s\" is not a "
			                     "thread count (use 1 to 1024)",
			                     s);
	}
	openblas_set_num_threads((int)n);
	return 0;
}

/* The dataset fits the model and the sample list is non-empty and in range;
 * *n becomes ds->count when idx is NULL. */
static int
check_data(const struct model *m, const struct dataset *ds, const uint32_t *idx,
           size_t *n, struct ipc_error *err)
{
	const struct model_shape *s = model_input_shape(m);
	if ((int)ds->channels != s->channels || (int)ds->height != s->height ||
	    (int)ds->width != s->width || (int)ds->classes > s->classes)
		return ipc_error_set(err, IPC_E_MISMATCH,
		                     "dataset is %ux%ux%u with %u classes but "
		                     "model %s was built for %dx%dx%d with %d "
		                     "classes",
		                     ds->channels, ds->height, ds->width,
		                     ds->classes, model_name(m), s->channels,
		                     s->height, s->width, s->classes);
	if (idx == NULL)
		*n = ds->count;
	if (*n == 0)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "no samples to train or evaluate on (the "
		                     "client's partition is empty)");
	if (idx != NULL)
		for (size_t i = 0; i < *n; i++)
			if (idx[i] >= ds->count)
				return ipc_error_set(
				    err, IPC_E_BOUNDS,
				    "sample index %u (position %zu) is out "
				    "of range for a dataset of %u samples",
				    idx[i], i, ds->count);
	return 0;
}

/* Hyperparameters a user may have mistyped, with the field that is wrong. */
static int
check_config(const struct train_config *c, struct ipc_error *err)
{
	const char *bad = NULL;
	if (c->batch_size == 0)
		bad = "batch_size must be at least 1";
	else if (!(c->lr >= 0.0f) || !isfinite(c->lr))
		bad = "lr must be a finite number >= 0";
	else if (!(c->momentum >= 0.0f && c->momentum < 1.0f))
		bad = "momentum must be in [0, 1)";
	else if (!(c->weight_decay >= 0.0f) || !isfinite(c->weight_decay))
		bad = "weight_decay must be a finite number >= 0";
	else if (!(c->prox_mu >= 0.0f) || !isfinite(c->prox_mu))
		bad = "prox_mu must be a finite number >= 0";
	else if (c->optimizer != OPT_SGD &&
	         !(c->beta1 >= 0.0f && c->beta1 < 1.0f && c->beta2 >= 0.0f &&
	           c->beta2 < 1.0f))
		bad = "adam betas must be in [0, 1)";
	else if (c->optimizer != OPT_SGD && !(c->eps > 0.0f))
		bad = "adam eps must be > 0";
	if (bad != NULL)
		return ipc_error_set(err, IPC_E_BAD_VALUE, "train config: %s",
		                     bad);
	return 0;
}

/* The sample order: a copy of idx, or 0..n-1. */
static uint32_t *
make_order(const uint32_t *idx, size_t n)
{
	uint32_t *order = xmalloc(n * sizeof *order);
	for (size_t i = 0; i < n; i++)
		order[i] = idx != NULL ? idx[i] : (uint32_t)i;
	return order;
}

struct train_session {
	struct model *m;
	float *params;
	const float *global;
	const struct dataset *ds;
	size_t n;
	struct train_config cfg;
	uint32_t batch;
	uint32_t *order;
	int32_t *y;
	float *grads;
	struct model_workspace *ws;
	struct optim *opt;
	uint32_t epoch; /* epochs done */
	uint64_t step;  /* steps done */
};

/* Check the inputs and allocate every buffer of the run once. */
struct train_session *
train_begin(struct model *m, float *params, const float *global,
            const struct dataset *ds, const uint32_t *idx, size_t n,
            const struct train_config *cfg, struct ipc_error *err)
{
	if (check_config(cfg, err) != 0 || check_data(m, ds, idx, &n, err) != 0)
		return NULL;
	if (cfg->epochs == 0) {
		ipc_error_set(err, IPC_E_BAD_VALUE,
		              "train: a session needs epochs >= 1");
		return NULL;
	}
	if (train_set_threads(err) != 0)
		return NULL;
	const struct tensor_manifest *mf = model_manifest(m);
	struct train_session *s = xcalloc(1, sizeof *s);
	s->m = m;
	s->params = params;
	s->global = global;
	s->ds = ds;
	s->n = n;
	s->cfg = *cfg;
	s->batch = cfg->batch_size < n ? cfg->batch_size : (uint32_t)n;
	s->order = make_order(idx, n);
	s->y = xmalloc(s->batch * sizeof *s->y);
	s->grads = xcalloc(mf->total_size / sizeof(float), sizeof(float));
	s->ws = model_workspace_create(m, s->batch);
	struct optim_config oc = {cfg->optimizer,    cfg->lr,     cfg->momentum,
	                          cfg->weight_decay, cfg->beta1,  cfg->beta2,
	                          cfg->eps,          cfg->prox_mu};
	s->opt = optim_create(&oc, mf);
	return s;
}

/* One shuffled pass over the samples (or up to max_steps). */
int
train_epoch(struct train_session *s, struct train_stats *stats,
            train_progress_fn progress, void *ctx, struct ipc_error *err)
{
	const struct tensor_manifest *mf = model_manifest(s->m);
	const struct train_config *cfg = &s->cfg;
	uint32_t B = s->batch, epoch = s->epoch++;
	float *x = model_workspace_input(s->ws);
	struct rng r;
	rng_seed(&r, rng_derive(cfg->seed, "shuffle", epoch), 0);
	rng_shuffle_u32(&r, s->order, s->n);

	memset(stats, 0, sizeof *stats);
	stats->num_examples = s->n;
	double t0 = now_seconds(), loss_sum = 0.0;
	uint64_t seen = 0, correct_sum = 0;
	int rc = 0;
	for (size_t start = 0; start < s->n; start += B) {
		if (cfg->max_steps != 0 && s->step >= cfg->max_steps)
			break;
		uint32_t nb = s->n - start < B ? (uint32_t)(s->n - start) : B;
		uint32_t correct = 0;
		dataset_batch(s->ds, s->order + start, nb, x, s->y);
		memset(s->grads, 0, mf->total_size);
		double loss =
		    model_step(s->m, s->ws, s->params, s->grads, s->y, nb,
		               dropout_key(cfg->seed, s->step), &correct);
		if (!isfinite(loss)) {
			rc = ipc_error_set(err, IPC_E_NONFINITE,
			                   "training diverged: loss is %g at "
			                   "step %llu of epoch %u (lower lr, "
			                   "now %g)",
			                   loss, (unsigned long long)s->step,
			                   epoch + 1, (double)cfg->lr);
			break;
		}
		optim_step(s->opt, s->params, s->grads, s->global);
		s->step++;
		loss_sum += loss * nb;
		seen += nb;
		correct_sum += correct;
		if (progress != NULL)
			progress(ctx, epoch, s->step, loss);
	}
	stats->seconds = now_seconds() - t0;
	stats->steps = s->step;
	if (seen > 0) {
		stats->loss = loss_sum / (double)seen;
		stats->accuracy = (double)correct_sum / (double)seen;
	}
	if (stats->seconds > 0.0)
		stats->gflops = (double)model_flops_per_sample(s->m) *
		                (double)seen / stats->seconds / 1e9;
	if (rc == 0 && tensor_region_check_finite(mf, s->params, err) != 0) {
		ipc_error_prefix(err,
		                 "training diverged in epoch %u: ", epoch + 1);
		rc = -1;
	}
	return rc;
}

/* Free a session's buffers (NULL is fine). */
void
train_end(struct train_session *s)
{
	if (s == NULL)
		return;
	optim_free(s->opt);
	model_workspace_free(s->ws);
	free(s->grads);
	free(s->y);
	free(s->order);
	free(s);
}

/* Train in place for cfg->epochs epochs; see train.h. */
int
train_local(struct model *m, float *params, const float *global,
            const struct dataset *ds, const uint32_t *idx, size_t n,
            const struct train_config *cfg, struct train_stats *stats,
            train_progress_fn progress, void *ctx, struct ipc_error *err)
{
	memset(stats, 0, sizeof *stats);
	if (cfg->epochs == 0) {
		if (check_config(cfg, err) != 0 ||
		    check_data(m, ds, idx, &n, err) != 0)
			return -1;
		stats->num_examples = n;
		return 0;
	}
	struct train_session *s =
	    train_begin(m, params, global, ds, idx, n, cfg, err);
	if (s == NULL)
		return -1;
	int rc = 0;
	double seconds = 0.0, flops = 0.0;
	for (uint32_t e = 0; e < cfg->epochs && rc == 0; e++) {
		if (cfg->max_steps != 0 && s->step >= cfg->max_steps)
			break;
		rc = train_epoch(s, stats, progress, ctx, err);
		seconds += stats->seconds;
		flops += stats->gflops * stats->seconds;
	}
	stats->seconds = seconds;
	stats->gflops = seconds > 0.0 ? flops / seconds : 0.0;
	train_end(s);
	return rc;
}

/* Loss and accuracy over a sample list, forward only. */
int
model_evaluate(struct model *m, const float *params, const struct dataset *ds,
               const uint32_t *idx, size_t n, uint32_t batch_size, double *loss,
               double *accuracy, struct ipc_error *err)
{
	if (batch_size == 0)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "evaluate: batch_size must be at least 1");
	if (check_data(m, ds, idx, &n, err) != 0 || train_set_threads(err) != 0)
		return -1;
	uint32_t B = batch_size < n ? batch_size : (uint32_t)n;
	struct model_workspace *ws = model_workspace_create(m, B);
	float *x = model_workspace_input(ws);
	int32_t *y = xmalloc(B * sizeof *y);
	uint32_t *chunk = xmalloc(B * sizeof *chunk);
	double loss_sum = 0.0;
	uint32_t correct = 0;
	for (size_t start = 0; start < n; start += B) {
		uint32_t nb = n - start < B ? (uint32_t)(n - start) : B;
		const uint32_t *ids = idx != NULL ? idx + start : chunk;
		if (idx == NULL)
			for (uint32_t i = 0; i < nb; i++)
				chunk[i] = (uint32_t)(start + i);
		dataset_batch(ds, ids, nb, x, y);
		loss_sum +=
		    model_step(m, ws, params, NULL, y, nb, 0, &correct) * nb;
	}
	*loss = loss_sum / (double)n;
	*accuracy = (double)correct / (double)n;
	model_workspace_free(ws);
	free(y);
	free(chunk);
	return 0;
}
