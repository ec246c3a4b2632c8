/* strategy.c: the strategy registry and what every strategy shares: the
 * check of strategy.* keys, mapping and validating updates, keeping them for
 * strategies that need a whole round, weights, and checkpointed vectors. */
#include "strategy.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dp.h"
#include "safetensors.h"
#include "util.h"
#include "wsum.h"

static const struct strategy_ops *const registry[] = {
    &strategy_fedavg,  &strategy_fedprox, &strategy_fedavgm,
    &strategy_fedadam, &strategy_fedyogi, &strategy_fedadagrad,
    &strategy_median,  &strategy_trimmed, &strategy_krum,
    &strategy_cyclic,
};

const char *
strategy_registry_name(size_t i)
{
	return i < ARRAY_LEN(registry) ? registry[i]->name : NULL;
}

static const struct strategy_ops *
strategy_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_LEN(registry); i++)
		if (strcmp(registry[i]->name, name) == 0)
			return registry[i];
	return NULL;
}

/* Check strategy.cyclic_clients: comma-separated ids below clients. */
static int
check_cyclic_clients(const struct config *c, struct ipc_error *err)
{
	const char *p = c->strategy.cyclic_clients;
	if (*p == '\0')
		return 0;
	while (*p) {
		char *end;
		long long id = strtoll(p, &end, 10);
		if (end == p || id < 0 || id >= c->federation.clients ||
		    (*end != ',' && *end != '\0'))
			return ipc_error_set(
			    err, IPC_E_BAD_VALUE,
			    "strategy.cyclic_clients: expected client ids "
			    "in [0, %lld) separated by commas, e.g. "
			    "\"0,2,1\", got \"%s\"",
			    (long long)c->federation.clients,
			    c->strategy.cyclic_clients);
		p = *end == ',' ? end + 1 : end;
	}
	return 0;
}

int
strategy_check_config(const struct config *c, struct ipc_error *err)
{
	const char *name = c->strategy.name;
	if (strcmp(name, "fedprox") == 0 && !(c->train.mu > 0))
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "strategy.name \"fedprox\" needs train.mu "
		                     "above 0 (e.g. --set train.mu=0.01)");
	if (strcmp(name, "krum") == 0) {
		int64_t n = c->federation.fit_clients, f = c->strategy.krum_f;
		if (n < 2 * f + 3)
			return ipc_error_set(
			    err, IPC_E_BAD_VALUE,
			    "strategy.krum_f %lld needs federation.fit_clients "
			    "of at least 2 * krum_f + 3 = %lld (got %lld)",
			    (long long)f, (long long)(2 * f + 3), (long long)n);
		if (c->strategy.krum_m > n - f)
			return ipc_error_set(
			    err, IPC_E_BAD_VALUE,
			    "strategy.krum_m %lld is more than "
			    "federation.fit_clients - strategy.krum_f = %lld",
			    (long long)c->strategy.krum_m, (long long)(n - f));
	}
	if (dp_check_config(c, err) < 0)
		return -1;
	return check_cyclic_clients(c, err);
}

/* Check that memory can hold every update of a round at once. */
static int
check_shm_room(const struct strategy *s, struct ipc_error *err)
{
	uint64_t free_bytes = mem_available_bytes();
	uint64_t need =
	    (uint64_t)s->cfg->federation.fit_clients * s->model->total_size;
	if (need > free_bytes)
		return ipc_error_set(
		    err, IPC_E_SHM_NOSPACE,
		    "strategy.name \"%s\" keeps every update of a round in "
		    "shared memory: federation.fit_clients %lld x %.1f MiB = "
		    "%.1f MiB, but only %.1f MiB of memory is available; "
		    "sample fewer clients",
		    s->ops->name, (long long)s->cfg->federation.fit_clients,
		    (double)s->model->total_size / 1048576.0,
		    (double)need / 1048576.0, (double)free_bytes / 1048576.0);
	return 0;
}

int
strategy_init(struct strategy *s, const struct strategy_env *env,
              struct ipc_error *err)
{
	memset(s, 0, sizeof *s);
	const struct strategy_ops *ops = strategy_find(env->cfg->strategy.name);
	if (ops == NULL)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "strategy.name: unknown strategy \"%s\"",
		                     env->cfg->strategy.name);
	s->ops = ops;
	s->cfg = env->cfg;
	s->model = env->model;
	s->jobkey = xstrdup(env->jobkey ? env->jobkey : "");
	s->ckpt_dir = env->ckpt_dir ? xstrdup(env->ckpt_dir) : NULL;
	if ((ops->kind == STRATEGY_ALL && check_shm_room(s, err) < 0) ||
	    fedavg_init(&s->acc, env->model, err) < 0)
		return -1;
	s->dp = dp_new(env->cfg);
	s->nspans = env->model->count;
	s->spans = xcalloc(s->nspans ? s->nspans : 1, sizeof *s->spans);
	for (size_t i = 0; i < s->nspans; i++) {
		s->spans[i].at = env->model->tensors[i].offset / sizeof(float);
		s->spans[i].n = env->model->tensors[i].nbytes / sizeof(float);
		s->numel += s->spans[i].n;
	}
	return ops->init ? ops->init(s, err) : 0;
}

/* Unmap the updates kept for the round. */
static void
release_kept(struct strategy *s)
{
	for (unsigned i = 0; i < s->nkept; i++)
		shm_segment_close(&s->kept[i]);
	s->nkept = 0;
}

void
strategy_free(struct strategy *s)
{
	if (s->ops != NULL && s->ops->free != NULL)
		s->ops->free(s);
	release_kept(s);
	free(s->kept);
	free(s->kept_weight);
	dp_free(s->dp);
	fedavg_free(&s->acc);
	free(s->spans);
	free(s->jobkey);
	free(s->ckpt_dir);
	memset(s, 0, sizeof *s);
}

unsigned
strategy_configure(struct strategy *s, unsigned round, unsigned attempt,
                   const uint32_t *sampled, unsigned nsampled,
                   const uint32_t *available, unsigned navailable,
                   const void *global, uint32_t *order)
{
	fedavg_reset(&s->acc);
	release_kept(s);
	if (s->dp != NULL)
		dp_configure(s->dp, global);
	if (s->ops->configure != NULL)
		return s->ops->configure(s, round, attempt, sampled, nsampled,
		                         available, navailable, global, order);
	memcpy(order, sampled, nsampled * sizeof *order);
	return nsampled;
}

double
strategy_weight(const struct strategy *s, const struct msg_result *r,
                struct ipc_error *err)
{
	double w;
	if (wsum_weight(s->cfg->strategy.weighting, r->num_examples,
	                kv_get_num(&r->metrics, "steps", NAN), &w, err) < 0)
		return -1;
	return w;
}

int
strategy_fold(struct strategy *s, const struct params_ref *p,
              struct shm_segment *seg, double weight, struct ipc_error *err)
{
	if (p->where != PARAMS_FD || seg->addr == NULL)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "result carries no update in shared "
		                     "memory");
	if (tensor_manifest_equal(s->model, &p->manifest, err) < 0) {
		ipc_error_prefix(err, "update layout differs from the model: ");
		return -1;
	}
	if (seg->size < s->model->total_size)
		return ipc_error_set(
		    err, IPC_E_SHM_SIZE,
		    "update segment holds %zu bytes, the model "
		    "%zu",
		    seg->size, s->model->total_size);
	if (tensor_region_check_finite(s->model, seg->addr, err) < 0 ||
	    s->ops->fold(s, seg->addr, weight, err) < 0)
		return -1;
	if (s->ops->kind != STRATEGY_ALL)
		return 0;
	if (s->nkept == s->capkept) {
		s->capkept = s->capkept ? 2 * s->capkept : 8;
		s->kept = xreallocarray(s->kept, s->capkept, sizeof *s->kept);
		s->kept_weight = xreallocarray(s->kept_weight, s->capkept,
		                               sizeof *s->kept_weight);
	}
	s->kept_weight[s->nkept] = weight;
	s->kept[s->nkept++] = *seg;
	memset(seg, 0, sizeof *seg);
	seg->fd = -1;
	return 0;
}

/* Say why an aggregate is refused and what to do; returns -1. */
static int
aggregate_refused(const struct strategy *s, struct ipc_error *err)
{
	char why[sizeof err->message];
	snprintf(why, sizeof why, "%s", err->message);
	return ipc_error_set(err, IPC_E_BAD_VALUE,
	                     "the aggregate is refused, not published: %s "
	                     "(strategy.max_weight is %g); some client sent "
	                     "an absurd update: a robust strategy (median, "
	                     "trimmed, krum) leaves such updates out",
	                     why, s->cfg->strategy.max_weight);
}

int
strategy_finish(struct strategy *s, const void *global, void *out,
                struct ipc_error *err)
{
	int rc = s->ops->fold == strategy_fold_mean
	             ? strategy_release_mean(s, err)
	             : 0;
	if (rc == 0)
		rc = s->ops->finish(s, global, out, err);
	release_kept(s);
	/* The mean checks what it writes as it writes it. */
	if (rc == 0 && s->ops->finish != strategy_finish_mean &&
	    tensor_region_check_bounded(s->model, out,
	                                s->cfg->strategy.max_weight, err) < 0)
		rc = aggregate_refused(s, err);
	return rc;
}

int
strategy_is_relay(const struct strategy *s)
{
	return s->ops->kind == STRATEGY_RELAY;
}

void
strategy_store(const struct strategy *s, const double *flat, void *out)
{
	for (size_t i = 0; i < s->nspans; i++) {
		float *o = (float *)out + s->spans[i].at;
		for (size_t k = 0; k < s->spans[i].n; k++)
			o[k] = (float)*flat++;
	}
}

void
strategy_load_flat(const struct strategy *s, const void *region, double *flat)
{
	for (size_t i = 0; i < s->nspans; i++) {
		const float *r = (const float *)region + s->spans[i].at;
		for (size_t k = 0; k < s->spans[i].n; k++)
			*flat++ = (double)r[k];
	}
}

json_t *
strategy_save(struct strategy *s, unsigned round, struct ipc_error *err)
{
	json_t *obj = json_object();
	json_object_set_new(obj, "name", json_string(s->ops->name));
	if (s->dp != NULL)
		json_object_set_new(obj, "dp", dp_save(s->dp));
	if (s->ops->save != NULL && s->ops->save(s, round, obj, err) < 0) {
		json_decref(obj);
		return NULL;
	}
	/* The checkpoint two rounds back goes with its model file. */
	if (s->ckpt_dir != NULL && round > 2) {
		char *old = xasprintf("%s/strategy-%04u.safetensors",
		                      s->ckpt_dir, round - 2);
		unlink(old);
		free(old);
	}
	return obj;
}

int
strategy_load(struct strategy *s, const json_t *obj, struct ipc_error *err)
{
	const char *name = json_string_value(json_object_get(obj, "name"));
	if (obj != NULL && name != NULL && strcmp(name, s->ops->name) != 0)
		return ipc_error_set(
		    err, IPC_E_BAD_VALUE,
		    "checkpoint was written by strategy \"%s\", "
		    "the job runs \"%s\"; resume with --set "
		    "strategy.name=%s",
		    name, s->ops->name, name);
	if (s->dp != NULL &&
	    dp_load(s->dp, json_object_get(obj, "dp"), err) < 0)
		return -1;
	return s->ops->load ? s->ops->load(s, obj, err) : 0;
}

int
strategy_save_vectors(struct strategy *s, unsigned round, json_t *obj,
                      const char *const *names, double *const *vecs,
                      size_t count, struct ipc_error *err)
{
	if (s->ckpt_dir == NULL)
		return 0;
	struct tensor_manifest m;
	tensor_manifest_init(&m);
	uint64_t shape[1] = {s->numel};
	for (size_t i = 0; i < count; i++)
		if (tensor_manifest_add(&m, names[i], DTYPE_F64, 1, shape,
		                        err) < 0) {
			tensor_manifest_free(&m);
			return -1;
		}
	char *region = xcalloc(1, m.total_size ? m.total_size : 1);
	for (size_t i = 0; i < count; i++)
		memcpy(region + m.tensors[i].offset, vecs[i],
		       s->numel * sizeof(double));
	char *file = xasprintf("strategy-%04u.safetensors", round);
	char *path = xasprintf("%s/%s", s->ckpt_dir, file);
	int rc = safetensors_write(path, &m, region, NULL, err);
	if (rc == 0)
		json_object_set_new(obj, "file", json_string(file));
	free(path);
	free(file);
	free(region);
	tensor_manifest_free(&m);
	return rc;
}

int
strategy_load_vectors(struct strategy *s, const json_t *obj,
                      const char *const *names, double *const *vecs,
                      size_t count, struct ipc_error *err)
{
	if (obj == NULL)
		return 0;
	const char *file = json_string_value(json_object_get(obj, "file"));
	if (s->ckpt_dir == NULL || file == NULL || strchr(file, '/') != NULL)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "state.json: strategy.file: expected the "
		                     "name of the strategy's checkpoint file");
	char *path = xasprintf("%s/%s", s->ckpt_dir, file);
	struct tensor_manifest m;
	void *region = NULL;
	tensor_manifest_init(&m);
	int rc = safetensors_read(path, &m, &region, NULL, err);
	for (size_t i = 0; rc == 0 && i < count; i++) {
		const struct tensor_desc *t =
		    tensor_manifest_find(&m, names[i]);
		if (t == NULL || t->dtype != DTYPE_F64 ||
		    t->nbytes != s->numel * sizeof(double))
			rc = ipc_error_set(err, IPC_E_MISMATCH,
			                   "%s: expected tensor %s of %zu F64 "
			                   "values",
			                   path, names[i], s->numel);
		else
			memcpy(vecs[i], (char *)region + t->offset, t->nbytes);
	}
	free(region);
	tensor_manifest_free(&m);
	free(path);
	return rc;
}

int
strategy_fold_mean(struct strategy *s, const void *update, double weight,
                   struct ipc_error *err)
{
	(void)err;
	if (s->dp != NULL)
		dp_fold(s->dp, &s->acc, s->model, update);
	else
		fedavg_add(&s->acc, update, weight);
	return 0;
}

int
strategy_release_mean(struct strategy *s, struct ipc_error *err)
{
	return s->dp != NULL ? dp_release(s->dp, &s->acc, s->model, err) : 0;
}

void
strategy_released(struct strategy *s)
{
	if (s->dp != NULL)
		dp_account(s->dp);
}

int
strategy_dp_info(const struct strategy *s, struct dp_round_info *info)
{
	if (s->dp == NULL)
		return 0;
	dp_info(s->dp, info);
	return 1;
}

int
strategy_folds_sums(const struct strategy *s)
{
	return s->ops->fold == strategy_fold_mean && s->dp == NULL;
}

int
strategy_fold_sum(struct strategy *s, const double *sum, double weight,
                  unsigned count, struct ipc_error *err)
{
	if (!strategy_folds_sums(s))
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "strategy %s needs every update; it takes "
		                     "no partial sums",
		                     s->ops->name);
	for (size_t k = 0; k < s->acc.numel; k++)
		if (!isfinite(sum[k]))
			return ipc_error_set(err, IPC_E_BAD_VALUE,
			                     "the partial sum has a value that "
			                     "is not finite at element %zu",
			                     k);
	fedavg_add_sum(&s->acc, sum, weight, count);
	return 0;
}

int
strategy_finish_mean(struct strategy *s, const void *global, void *out,
                     struct ipc_error *err)
{
	(void)global;
	return strategy_check_peak(s, fedavg_finish(&s->acc, out), err);
}

int
strategy_check_peak(const struct strategy *s, double peak,
                    struct ipc_error *err)
{
	if (peak <= s->cfg->strategy.max_weight)
		return 0;
	ipc_error_set(err, IPC_E_BAD_VALUE,
	              "a weight is %s (largest magnitude %g)",
	              isfinite(peak) ? "too large" : "not finite", peak);
	return aggregate_refused(s, err);
}

int
strategy_keep_update(struct strategy *s, const void *update, double weight,
                     struct ipc_error *err)
{
	(void)s;
	(void)update;
	(void)weight;
	(void)err;
	return 0;
}

/* Ascending order for floats. */
static int
cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return (x > y) - (x < y);
}

void
strategy_reduce_sorted(struct strategy *s, void *out,
                       float (*reduce)(const float *sorted, unsigned n,
                                       const void *ctx),
                       const void *ctx)
{
	unsigned n = s->nkept;
	float *col = xcalloc(n, sizeof *col);
	for (size_t i = 0; i < s->nspans; i++) {
		float *o = (float *)out + s->spans[i].at;
		for (size_t k = 0; k < s->spans[i].n; k++) {
			for (unsigned c = 0; c < n; c++)
				col[c] = ((const float *)s->kept[c].addr +
				          s->spans[i].at)[k];
			qsort(col, n, sizeof *col, cmp_float);
			o[k] = reduce(col, n, ctx);
		}
	}
	free(col);
}
