/* backend.c: the cpu backend (train.h as is) and the cuda backend: the
 * CUDA plugin loaded with dlopen, driven by the same loop as train.c
 * (seeded shuffles, batches, dropout keys, per-epoch finite checks). */
#include "backend.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cuda/plugin.h"
#include "layers.h"
#include "rng.h"
#include "util.h"

/* train_local on the CPU. */
static int
cpu_train(struct backend *b, struct model *m, float *params,
          const float *global, const struct dataset *ds, const uint32_t *idx,
          size_t n, const struct train_config *cfg, struct train_stats *stats,
          train_progress_fn progress, void *ctx, struct ipc_error *err)
{
	(void)b;
	return train_local(m, params, global, ds, idx, n, cfg, stats, progress,
	                   ctx, err);
}

/* model_evaluate on the CPU. */
static int
cpu_evaluate(struct backend *b, struct model *m, const float *params,
             const struct dataset *ds, const uint32_t *idx, size_t n,
             uint32_t batch_size, double *loss, double *accuracy,
             struct ipc_error *err)
{
	(void)b;
	return model_evaluate(m, params, ds, idx, n, batch_size, loss, accuracy,
	                      err);
}

/* Free a backend struct whose impl needs nothing. */
static void
cpu_close(struct backend *b)
{
	free(b);
}

/* A fresh cpu backend. */
static struct backend *
cpu_open(void)
{
	struct backend *b = xcalloc(1, sizeof *b);
	b->name = "cpu";
	b->train = cpu_train;
	b->evaluate = cpu_evaluate;
	b->close = cpu_close;
	return b;
}

/* Whether CMake built libcohort-cuda.so alongside this engine. */
int
backend_cuda_built(void)
{
#ifdef COHORT_CUDA_PLUGIN_BUILT
	return 1;
#else
	return 0;
#endif
}

/* dlopen path and check the entry table; the handle is never closed (the
 * CUDA libraries do not support being unloaded and reloaded). */
static const struct cuda_plugin *
plugin_try(const char *path, char *why, size_t cap)
{
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		const char *e = dlerror();
		snprintf(why, cap, "%s", e != NULL ? e : path);
		return NULL;
	}
	cuda_plugin_entry_fn entry;
	void *sym = dlsym(h, CUDA_PLUGIN_SYMBOL);
	if (sym == NULL) {
		snprintf(why, cap, "%s has no symbol %s (not a cohort plugin)",
		         path, CUDA_PLUGIN_SYMBOL);
		dlclose(h);
		return NULL;
	}
	memcpy(&entry, &sym, sizeof entry);
	const struct cuda_plugin *p = entry();
	if (p == NULL || p->abi != CUDA_PLUGIN_ABI) {
		snprintf(why, cap,
		         "%s speaks plugin ABI %d, this worker %d (rebuild "
		         "both from one tree)",
		         path, p != NULL ? p->abi : -1, CUDA_PLUGIN_ABI);
		return NULL;
	}
	return p;
}

/* The directory of /proc/self/exe, with a trailing slash ("" if unknown). */
static void
exe_dir(char *dir, size_t cap)
{
	ssize_t len = readlink("/proc/self/exe", dir, cap - 1);
	if (len <= 0) {
		dir[0] = '\0';
		return;
	}
	dir[len] = '\0';
	char *slash = strrchr(dir, '/');
	if (slash != NULL)
		slash[1] = '\0';
	else
		dir[0] = '\0';
}

/* Load the plugin once: $COHORT_CUDA_PLUGIN, else next to the executable
 * (the build tree), else in the installed plugin directory relative to it
 * (libexec/cohort/COHORT_PLUGIN_FROM_LIBEXEC), else the loader's path. */
const struct cuda_plugin *
backend_cuda_plugin(struct ipc_error *err)
{
	static const struct cuda_plugin *loaded;
	if (loaded != NULL)
		return loaded;
	if (!backend_cuda_built()) {
		ipc_error_set(err, IPC_E_IO,
		              "CUDA plugin missing: this build has no CUDA "
		              "backend (configured with COHORT_CUDA=OFF or "
		              "without a CUDA toolkit)");
		return NULL;
	}
	char why[600];
	const char *env = getenv("COHORT_CUDA_PLUGIN");
	if (env != NULL && *env != '\0') {
		loaded = plugin_try(env, why, sizeof why);
		if (loaded == NULL)
			ipc_error_set(
			    err, IPC_E_IO,
			    "CUDA plugin missing: COHORT_CUDA_PLUGIN=%s: "
			    "%s",
			    env, why);
		return loaded;
	}
	char dir[PATH_MAX];
	exe_dir(dir, sizeof dir);
	char *paths[3] = {
	    xasprintf("%s%s", dir, CUDA_PLUGIN_FILE),
	    xasprintf("%s%s/%s", dir, COHORT_PLUGIN_FROM_LIBEXEC,
	              CUDA_PLUGIN_FILE),
	    xstrdup(CUDA_PLUGIN_FILE),
	};
	char tried[3 * 700] = "";
	for (int i = 0; i < 3 && loaded == NULL; i++) {
		loaded = plugin_try(paths[i], why, sizeof why);
		if (loaded == NULL)
			snprintf(tried + strlen(tried),
			         sizeof tried - strlen(tried), "%s%s: %s",
			         i ? "; " : "", paths[i], why);
	}
	for (int i = 0; i < 3; i++)
		free(paths[i]);
	if (loaded == NULL)
		ipc_error_set(err, IPC_E_IO, "CUDA plugin missing: %s", tried);
	return loaded;
}

struct cuda_backend {
	const struct cuda_plugin *p;
	struct cuda_ctx *ctx;
	char name[32];
};

/* The plugin's view of a built-in model: kind, shape, tensor placement. */
static void
describe_model(const struct model *m, struct cuda_model_desc *d)
{
	const struct model_shape *s = model_input_shape(m);
	const struct tensor_manifest *mf = model_manifest(m);
	memset(d, 0, sizeof *d);
	d->kind = model_id(m) == MODEL_MLP ? CUDA_MODEL_MLP : CUDA_MODEL_CNN;
	d->channels = s->channels;
	d->height = s->height;
	d->width = s->width;
	d->classes = s->classes;
	const struct model_layers *L = model_layers(m);
	d->hidden = L->hidden;
	d->k = L->k;
	d->c1 = L->c1;
	d->c2 = L->c2;
	d->f1 = L->f1;
	d->f2 = L->f2;
	d->dropout = MLP_DROPOUT;
	d->region_floats = mf->total_size / sizeof(float);
	d->tensors = (int)mf->count;
	for (size_t i = 0; i < mf->count && i < CUDA_MODEL_MAX_TENSORS; i++) {
		d->offset[i] = mf->tensors[i].offset / sizeof(float);
		d->count[i] = mf->tensors[i].nbytes / sizeof(float);
	}
}

/* A task's samples gathered into contiguous host buffers (one copy to the
 * device per task). */
struct slice {
	uint8_t *pixels;
	int32_t *labels;
	struct cuda_data_desc d;
};

/* Copy samples idx[0..n) (idx NULL: 0..n-1) of ds into s. */
static void
slice_gather(struct slice *s, const struct dataset *ds, const uint32_t *idx,
             size_t n)
{
	size_t plane = (size_t)ds->height * ds->width;
	size_t sample = plane * ds->channels;
	s->pixels = xmalloc(n * sample);
	s->labels = xmalloc(n * sizeof *s->labels);
	for (size_t i = 0; i < n; i++) {
		size_t k = idx != NULL ? idx[i] : i;
		memcpy(s->pixels + i * sample, ds->pixels + k * sample, sample);
		s->labels[i] = ds->labels[k];
	}
	s->d.pixels = s->pixels;
	s->d.labels = s->labels;
	s->d.norm = &ds->norm[0][0];
	s->d.n = n;
	s->d.channels = (int)ds->channels;
	s->d.plane = (int)plane;
}

/* Free the host copy (the device has its own). */
static void
slice_free(struct slice *s)
{
	free(s->pixels);
	free(s->labels);
}

/* One epoch on the GPU, as train_epoch: shuffle positions 0..n-1 with the
 * epoch's stream (the permutation train.c applies to its sample list), one
 * step per batch keyed by dropout_key(seed, step), stats of the epoch. */
static int
cuda_epoch(struct cuda_backend *cb, struct cuda_task *t, uint32_t *order,
           size_t n, uint32_t B, const struct train_config *cfg, uint32_t epoch,
           uint64_t *step, struct train_stats *stats, const struct model *m,
           train_progress_fn progress, void *ctx, struct ipc_error *err)
{
	struct rng r;
	rng_seed(&r, rng_derive(cfg->seed, "shuffle", epoch), 0);
	rng_shuffle_u32(&r, order, n);
	memset(stats, 0, sizeof *stats);
	stats->num_examples = n;
	double t0 = now_seconds(), loss_sum = 0.0;
	uint64_t seen = 0, correct_sum = 0;
	int rc = cb->p->task_order(t, order, err);
	for (size_t start = 0; rc == 0 && start < n; start += B) {
		if (cfg->max_steps != 0 && *step >= cfg->max_steps)
			break;
		uint32_t nb = n - start < B ? (uint32_t)(n - start) : B;
		uint32_t correct = 0;
		double loss;
		rc = cb->p->task_step(t, start, nb, 1,
		                      dropout_key(cfg->seed, *step), &loss,
		                      &correct, err);
		if (rc != 0)
			break;
		if (!isfinite(loss)) {
			rc = ipc_error_set(err, IPC_E_NONFINITE,
			                   "training diverged: loss is %g at "
			                   "step %llu of epoch %u (lower lr, "
			                   "now %g)",
			                   loss, (unsigned long long)*step,
			                   epoch + 1, (double)cfg->lr);
			break;
		}
		(*step)++;
		loss_sum += loss * nb;
		seen += nb;
		correct_sum += correct;
		if (progress != NULL)
			progress(ctx, epoch, *step, loss);
	}
	stats->seconds = now_seconds() - t0;
	stats->steps = *step;
	if (seen > 0) {
		stats->loss = loss_sum / (double)seen;
		stats->accuracy = (double)correct_sum / (double)seen;
	}
	if (stats->seconds > 0.0)
		stats->gflops = (double)model_flops_per_sample(m) *
		                (double)seen / stats->seconds / 1e9;
	return rc;
}

/* train_local on the GPU: the same checks (train_local with no epochs runs
 * them), the same sample order, masks and stats; params are copied back
 * after every epoch and checked for finite values like the CPU does. */
static int
cuda_train(struct backend *b, struct model *m, float *params,
           const float *global, const struct dataset *ds, const uint32_t *idx,
           size_t n, const struct train_config *cfg, struct train_stats *stats,
           train_progress_fn progress, void *ctx, struct ipc_error *err)
{
	struct cuda_backend *cb = b->impl;
	struct train_config probe = *cfg;
	probe.epochs = 0;
	if (train_local(m, params, global, ds, idx, n, &probe, stats, NULL,
	                NULL, err) != 0)
		return -1;
	n = stats->num_examples;
	if (cfg->epochs == 0)
		return 0;
	if (cfg->optimizer == OPT_ADAMW)
		return ipc_error_set(
		    err, IPC_E_BAD_VALUE,
		    "%s: train.optimizer adamw runs on the CPU "
		    "only so far: set worker.device cpu, or "
		    "train.optimizer adam",
		    b->name);
	uint32_t B = cfg->batch_size < n ? cfg->batch_size : (uint32_t)n;
	struct cuda_model_desc md;
	struct cuda_optim_desc od = {cfg->optimizer == OPT_ADAM,
	                             cfg->lr,
	                             cfg->momentum,
	                             cfg->weight_decay,
	                             cfg->beta1,
	                             cfg->beta2,
	                             cfg->eps,
	                             cfg->prox_mu};
	struct slice sl;
	describe_model(m, &md);
	slice_gather(&sl, ds, idx, n);
	struct cuda_task *t =
	    cb->p->task_begin(cb->ctx, &md, &sl.d, B, params, global, &od, err);
	slice_free(&sl);
	if (t == NULL) {
		ipc_error_prefix(err, "%s: ", b->name);
		return -1;
	}
	uint32_t *order = xmalloc(n * sizeof *order);
	for (size_t i = 0; i < n; i++)
		order[i] = (uint32_t)i;
	const struct tensor_manifest *mf = model_manifest(m);
	uint64_t step = 0;
	double seconds = 0.0, flops = 0.0;
	int rc = 0;
	for (uint32_t e = 0; e < cfg->epochs && rc == 0; e++) {
		if (cfg->max_steps != 0 && step >= cfg->max_steps)
			break;
		rc = cuda_epoch(cb, t, order, n, B, cfg, e, &step, stats, m,
		                progress, ctx, err);
		seconds += stats->seconds;
		flops += stats->gflops * stats->seconds;
		if (rc == 0)
			rc = cb->p->task_params(t, params, err);
		if (rc == 0 &&
		    tensor_region_check_finite(mf, params, err) != 0) {
			ipc_error_prefix(
			    err, "training diverged in epoch %u: ", e + 1);
			rc = -1;
		}
	}
	stats->seconds = seconds;
	stats->gflops = seconds > 0.0 ? flops / seconds : 0.0;
	free(order);
	cb->p->task_end(t);
	return rc;
}

/* model_evaluate on the GPU: batches in sample order, dropout off. */
static int
cuda_evaluate(struct backend *b, struct model *m, const float *params,
              const struct dataset *ds, const uint32_t *idx, size_t n,
              uint32_t batch_size, double *loss, double *accuracy,
              struct ipc_error *err)
{
	struct cuda_backend *cb = b->impl;
	struct train_config probe;
	struct train_stats st;
	if (batch_size == 0)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "evaluate: batch_size must be at least 1");
	train_config_defaults(&probe);
	probe.epochs = 0;
	if (train_local(m, (float *)params, NULL, ds, idx, n, &probe, &st, NULL,
	                NULL, err) != 0)
		return -1;
	n = st.num_examples;
	uint32_t B = batch_size < n ? batch_size : (uint32_t)n;
	struct cuda_model_desc md;
	struct slice sl;
	describe_model(m, &md);
	slice_gather(&sl, ds, idx, n);
	struct cuda_task *t =
	    cb->p->task_begin(cb->ctx, &md, &sl.d, B, params, NULL, NULL, err);
	slice_free(&sl);
	if (t == NULL) {
		ipc_error_prefix(err, "%s: ", b->name);
		return -1;
	}
	uint32_t *order = xmalloc(n * sizeof *order);
	for (size_t i = 0; i < n; i++)
		order[i] = (uint32_t)i;
	double loss_sum = 0.0;
	uint32_t correct = 0;
	int rc = cb->p->task_order(t, order, err);
	for (size_t start = 0; rc == 0 && start < n; start += B) {
		uint32_t nb = n - start < B ? (uint32_t)(n - start) : B;
		double l;
		rc = cb->p->task_step(t, start, nb, 0, 0, &l, &correct, err);
		loss_sum += l * nb;
	}
	if (rc == 0) {
		*loss = loss_sum / (double)n;
		*accuracy = (double)correct / (double)n;
	}
	free(order);
	cb->p->task_end(t);
	return rc;
}

/* Release the context (its stream, cuBLAS handle) and the backend. */
static void
cuda_close(struct backend *b)
{
	struct cuda_backend *cb = b->impl;
	cb->p->ctx_close(cb->ctx);
	free(cb);
	free(b);
}

/* Load the plugin and create device's context; err says which step failed. */
static int
cuda_open(int device, struct backend **out, struct ipc_error *err)
{
	const struct cuda_plugin *p = backend_cuda_plugin(err);
	if (p == NULL)
		return -1;
	int count;
	if (p->device_count(&count, err) != 0) {
		ipc_error_prefix(err, "no CUDA device: ");
		return -1;
	}
	struct cuda_ctx *ctx = p->ctx_open(device, err);
	if (ctx == NULL) {
		ipc_error_prefix(err, "CUDA device %d unusable: ", device);
		return -1;
	}
	struct cuda_backend *cb = xcalloc(1, sizeof *cb);
	cb->p = p;
	cb->ctx = ctx;
	snprintf(cb->name, sizeof cb->name, "cuda:%d", device);
	struct backend *b = xcalloc(1, sizeof *b);
	b->name = cb->name;
	b->train = cuda_train;
	b->evaluate = cuda_evaluate;
	b->close = cuda_close;
	b->impl = cb;
	log_debug("backend: %s is %s", b->name, p->ctx_device_name(ctx));
	*out = b;
	return 0;
}

/* Parse "cuda" or "cuda:N" into a device index; -1 if malformed. */
static int
parse_cuda(const char *device)
{
	if (strcmp(device, "cuda") == 0)
		return 0;
	if (strncmp(device, "cuda:", 5) != 0 || device[5] < '0' ||
	    device[5] > '9')
		return -1;
	char *end;
	errno = 0;
	long n = strtol(device + 5, &end, 10);
	if (errno != 0 || *end != '\0' || n > 1024)
		return -1;
	return (int)n;
}

/* See backend.h. */
int
backend_open(const char *device, struct backend **out, struct ipc_error *err)
{
	*out = NULL;
	if (device == NULL || strcmp(device, "cpu") == 0) {
		*out = cpu_open();
		return 0;
	}
	if (strcmp(device, "auto") == 0) {
		struct ipc_error why;
		/* Without the driver's device node no GPU is usable: say so
		 * without loading cuBLAS, which would cost every spawned worker
		 * tens of milliseconds on a CPU-only machine. */
		if (access("/dev/nvidiactl", F_OK) != 0)
			ipc_error_set(&why, IPC_E_IO,
			              "no NVIDIA driver "
			              "(/dev/nvidiactl is missing)");
		else if (cuda_open(0, out, &why) == 0)
			return 0;
		log_info("device auto: training on the CPU: %s", why.message);
		*out = cpu_open();
		return 0;
	}
	int n = parse_cuda(device);
	if (n < 0)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "device \"%s\" is not one of auto, cpu, "
		                     "cuda, cuda:N",
		                     device);
	if (cuda_open(n, out, err) != 0) {
		ipc_error_prefix(err, "device %s: ", device);
		return -1;
	}
	return 0;
}

/* Close through the backend's own close (NULL is fine). */
void
backend_close(struct backend *b)
{
	if (b != NULL)
		b->close(b);
}
