/* gpt2-train.c: a GPT-2's fit and evaluation over a token stream: windows,
 * micro-batches, accumulation, clipping, the schedule, the optimizer. */
#include "gpt2-train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gpt2.h"
#include "rng.h"
#include "util.h"

/* Windows of T predicted tokens in a stream of ntok tokens (ntok >= 2). */
static size_t
window_count(size_t ntok, uint32_t T)
{
	return (ntok - 1 + T - 1) / T;
}

/* Targets window w counts: T, fewer for the last one. */
static uint32_t
window_tokens(size_t ntok, uint32_t T, size_t w)
{
	size_t left = ntok - 1 - w * T;
	return left < T ? (uint32_t)left : T;
}

/* Row x/y [T] from window w (w == SIZE_MAX: a padding row): inputs and
 * next tokens, padding positions input 0 with target -1 (ignored). */
static void
fill_window(int32_t *x, int32_t *y, const uint32_t *tokens, size_t ntok,
            uint32_t T, size_t w)
{
	uint32_t n = w == SIZE_MAX ? 0 : window_tokens(ntok, T, w);
	const uint32_t *s = w == SIZE_MAX ? NULL : tokens + w * T;
	for (uint32_t t = 0; t < T; t++) {
		x[t] = t < n ? (int32_t)s[t] : 0;
		y[t] = t < n ? (int32_t)s[t + 1] : -1;
	}
}

/* Counted rows of the last forward whose largest logit is the target. */
static uint64_t
count_correct(const struct gpt2 *g, const int32_t *y, size_t N, int V)
{
	const float *z = gpt2_logits(g);
	uint64_t correct = 0;
	for (size_t n = 0; n < N; n++) {
		if (y[n] < 0)
			continue;
		const float *row = z + n * (size_t)V;
		int best = 0;
		for (int v = 1; v < V; v++)
			if (row[v] > row[best])
				best = v;
		correct += best == y[n];
	}
	return correct;
}

/* Every token inside the vocabulary, and at least two of them. */
static int
check_tokens(const struct gpt2_config *c, const uint32_t *tokens, size_t ntok,
             struct ipc_error *err)
{
	if (ntok < 2)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "gpt2: %zu token(s) of text: at least 2 "
		                     "are needed to predict one",
		                     ntok);
	for (size_t i = 0; i < ntok; i++)
		if (tokens[i] >= (uint32_t)c->vocab_size)
			return ipc_error_set(
			    err, IPC_E_BOUNDS,
			    "gpt2: token %u at position %zu is outside the "
			    "model's vocabulary of %d (the model.init or "
			    "the tokenizer is another one)",
			    tokens[i], i, c->vocab_size);
	return 0;
}

/* The fit's settings are usable. */
static int
check_train_config(const struct gpt2_config *c,
                   const struct gpt2_train_config *tc, struct ipc_error *err)
{
	const char *bad = NULL;
	if (tc->batch_size == 0 || tc->grad_accum == 0)
		bad = "batch_size and grad_accum must be at least 1";
	else if (tc->seq_len == 0 || tc->seq_len > (uint32_t)c->max_seq_len)
		bad = "seq_len must be 1..the model's context (wpe's rows)";
	else if (!(tc->lr >= 0.0f) || !isfinite(tc->lr) ||
	         !(tc->min_lr >= 0.0f) || !isfinite(tc->min_lr))
		bad = "lr and min_lr must be finite numbers >= 0";
	else if (!(tc->weight_decay >= 0.0f) || !(tc->prox_mu >= 0.0f) ||
	         !(tc->max_grad_norm >= 0.0f))
		bad = "weight_decay, mu and max_grad_norm must be >= 0";
	else if (!(tc->momentum >= 0.0f && tc->momentum < 1.0f))
		bad = "momentum must be in [0, 1)";
	if (bad != NULL)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "gpt2 train config: %s", bad);
	return 0;
}

double
gpt2_train_lr(const struct gpt2_train_config *tc, uint64_t s, uint64_t total)
{
	if (s < tc->warmup_steps)
		return tc->lr * (double)(s + 1) / (double)tc->warmup_steps;
	if (!tc->cosine)
		return tc->lr;
	uint64_t span = total > tc->warmup_steps ? total - tc->warmup_steps : 1;
	double p = (double)(s - tc->warmup_steps) / (double)span;
	if (p > 1.0)
		p = 1.0;
	return tc->min_lr + (tc->lr - tc->min_lr) * 0.5 * (1.0 + cos(M_PI * p));
}

/* What one fit holds. */
struct fit {
	const struct gpt2_config *c;
	const struct gpt2_train_config *tc;
	const uint32_t *tokens;
	size_t ntok, nw; /* tokens, windows */
	uint32_t B, T;
	struct gpt2 *g;
	struct optim *opt;
	float *grads;
	size_t nfloats;
	size_t *order;  /* [nw] this epoch's window order */
	int32_t *x, *y; /* [B, T] */
	uint64_t step, total, micro;
	/* this epoch */
	double loss_sum;
	uint64_t counted, correct;
};

/* One optimizer step over windows order[first .. first + count): the
 * micro-batches' weighted gradients, clipping, the scheduled rate. */
static int
fit_step(struct fit *f, float *params, const float *global, size_t first,
         size_t count, uint32_t epoch, double *step_loss, struct ipc_error *err)
{
	uint64_t step_tokens = 0;
	for (size_t i = 0; i < count; i++)
		step_tokens +=
		    window_tokens(f->ntok, f->T, f->order[first + i]);
	memset(f->grads, 0, f->nfloats * sizeof(float));
	double loss_sum = 0.0;
	for (size_t k = 0; k < count; k += f->B) {
		uint64_t nk = 0;
		for (uint32_t b = 0; b < f->B; b++) {
			size_t w =
			    k + b < count ? f->order[first + k + b] : SIZE_MAX;
			fill_window(f->x + (size_t)b * f->T,
			            f->y + (size_t)b * f->T, f->tokens, f->ntok,
			            f->T, w);
			if (w != SIZE_MAX)
				nk += window_tokens(f->ntok, f->T, w);
		}
		double loss = gpt2_forward(f->g, params, f->x, f->y);
		if (!isfinite(loss))
			return ipc_error_set(
			    err, IPC_E_NONFINITE,
			    "training diverged: loss is %g at "
			    "step %llu of epoch %u (lower lr, "
			    "now %g)",
			    loss, (unsigned long long)f->step + 1, epoch + 1,
			    gpt2_train_lr(f->tc, f->step, f->total));
		f->correct += count_correct(f->g, f->y, (size_t)f->B * f->T,
		                            f->c->vocab_size);
		gpt2_backward_weighted(f->g, params, f->grads,
		                       (double)nk / (double)step_tokens);
		loss_sum += loss * (double)nk;
		f->micro++;
	}
	if (f->tc->max_grad_norm > 0.0f)
		optim_clip_grad_norm(f->grads, f->nfloats,
		                     f->tc->max_grad_norm);
	optim_set_lr(f->opt, (float)gpt2_train_lr(f->tc, f->step, f->total));
	optim_step(f->opt, params, f->grads, global);
	f->step++;
	f->loss_sum += loss_sum;
	f->counted += step_tokens;
	*step_loss = loss_sum / (double)step_tokens;
	return 0;
}

/* Free a fit's buffers. */
static void
fit_free(struct fit *f)
{
	gpt2_free(f->g);
	optim_free(f->opt);
	free(f->grads);
	free(f->order);
	free(f->x);
	free(f->y);
}

int
gpt2_train(const struct gpt2_config *c, float *params, const float *global,
           const uint32_t *tokens, size_t ntok,
           const struct gpt2_train_config *tc, struct train_stats *stats,
           train_progress_fn progress, void *ctx, struct ipc_error *err)
{
	memset(stats, 0, sizeof *stats);
	if (check_train_config(c, tc, err) != 0 ||
	    check_tokens(c, tokens, ntok, err) != 0 ||
	    train_set_threads(err) != 0)
		return -1;
	if (tc->epochs == 0)
		return 0;
	struct fit f = {.c = c, .tc = tc, .tokens = tokens, .ntok = ntok};
	f.T = tc->seq_len < ntok - 1 ? tc->seq_len : (uint32_t)(ntok - 1);
	f.nw = window_count(ntok, f.T);
	f.B = tc->batch_size < f.nw ? tc->batch_size : (uint32_t)f.nw;
	f.g = gpt2_create(c, (int)f.B, (int)f.T, err);
	if (f.g == NULL)
		return -1;
	const struct tensor_manifest *mf = gpt2_tensors(f.g);
	f.nfloats = mf->total_size / sizeof(float);
	f.grads = xcalloc(f.nfloats, sizeof(float));
	struct optim_config oc = {.kind = tc->optimizer,
	                          .lr = tc->lr,
	                          .momentum = tc->momentum,
	                          .weight_decay = tc->weight_decay,
	                          .beta1 = tc->beta1,
	                          .beta2 = tc->beta2,
	                          .eps = tc->eps,
	                          .prox_mu = tc->prox_mu};
	f.opt = optim_create(&oc, mf);
	f.order = xmalloc(f.nw * sizeof *f.order);
	f.x = xmalloc((size_t)f.B * f.T * sizeof *f.x);
	f.y = xmalloc((size_t)f.B * f.T * sizeof *f.y);
	size_t per_step = (size_t)f.B * tc->grad_accum;
	uint64_t steps_per_epoch = (f.nw + per_step - 1) / per_step;
	f.total = steps_per_epoch * tc->epochs;
	if (tc->max_steps != 0 && tc->max_steps < f.total)
		f.total = tc->max_steps;

	double t0 = now_seconds();
	int rc = 0;
	for (uint32_t e = 0; e < tc->epochs && rc == 0 && f.step < f.total;
	     e++) {
		struct rng r;
		rng_seed(&r, rng_derive(tc->seed, "gpt2-windows", e), 0);
		for (size_t i = 0; i < f.nw; i++)
			f.order[i] = i;
		for (size_t i = f.nw; i > 1; i--) {
			size_t j = (size_t)rng_below(&r, i);
			size_t t = f.order[i - 1];
			f.order[i - 1] = f.order[j];
			f.order[j] = t;
		}
		f.loss_sum = 0.0;
		f.counted = f.correct = 0;
		for (size_t first = 0;
		     first < f.nw && f.step < f.total && rc == 0;
		     first += per_step) {
			size_t n =
			    f.nw - first < per_step ? f.nw - first : per_step;
			double loss = 0.0;
			rc = fit_step(&f, params, global, first, n, e, &loss,
			              err);
			if (rc == 0 && progress != NULL)
				progress(ctx, e, f.step, loss);
		}
	}
	stats->seconds = now_seconds() - t0;
	stats->steps = f.step;
	if (f.counted > 0) {
		stats->loss = f.loss_sum / (double)f.counted;
		stats->accuracy = (double)f.correct / (double)f.counted;
	}
	if (stats->seconds > 0.0)
		stats->gflops = gpt2_flops_per_batch(f.g) * (double)f.micro /
		                stats->seconds / 1e9;
	if (rc == 0 && tensor_region_check_finite(mf, params, err) != 0) {
		ipc_error_prefix(err, "training diverged: ");
		rc = -1;
	}
	fit_free(&f);
	return rc;
}

int
gpt2_evaluate(const struct gpt2_config *c, const float *params,
              const uint32_t *tokens, size_t ntok, uint32_t seq_len,
              uint32_t batch_size, double *loss, double *accuracy,
              uint64_t *counted, struct ipc_error *err)
{
	if (batch_size == 0 || seq_len == 0)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "gpt2 evaluate: batch_size and seq_len "
		                     "must be at least 1");
	if (check_tokens(c, tokens, ntok, err) != 0 ||
	    train_set_threads(err) != 0)
		return -1;
	uint32_t T = seq_len < ntok - 1 ? seq_len : (uint32_t)(ntok - 1);
	size_t nw = window_count(ntok, T);
	uint32_t B = batch_size < nw ? batch_size : (uint32_t)nw;
	struct gpt2 *g = gpt2_create(c, (int)B, (int)T, err);
	if (g == NULL)
		return -1;
	int32_t *x = xmalloc((size_t)B * T * sizeof *x);
	int32_t *y = xmalloc((size_t)B * T * sizeof *y);
	double loss_sum = 0.0;
	uint64_t n = 0, correct = 0;
	for (size_t w0 = 0; w0 < nw; w0 += B) {
		uint64_t nk = 0;
		for (uint32_t b = 0; b < B; b++) {
			size_t w = w0 + b < nw ? w0 + b : SIZE_MAX;
			fill_window(x + (size_t)b * T, y + (size_t)b * T,
			            tokens, ntok, T, w);
			if (w != SIZE_MAX)
				nk += window_tokens(ntok, T, w);
		}
		loss_sum += gpt2_forward(g, params, x, y) * (double)nk;
		correct += count_correct(g, y, (size_t)B * T, c->vocab_size);
		n += nk;
	}
	*loss = loss_sum / (double)n;
	*accuracy = (double)correct / (double)n;
	*counted = n;
	free(x);
	free(y);
	gpt2_free(g);
	return 0;
}
