/* optim.c: torch.optim.SGD, torch.optim.Adam and torch.optim.AdamW update
 * rules (plus the FedProx proximal gradient) over the tensors of a
 * parameter region. */
#include "optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct optim {
	struct optim_config c;
	struct tensor_manifest manifest;
	float *m;   /* SGD momentum buffer, or Adam first moment */
	float *v;   /* Adam second moment */
	uint64_t t; /* steps taken */
};

/* "sgd", "adam" or "adamw". */
int
optimizer_parse(const char *name, enum optimizer_kind *out,
                struct ipc_error *err)
{
	if (name != NULL && strcmp(name, "sgd") == 0)
		*out = OPT_SGD;
	else if (name != NULL && strcmp(name, "adam") == 0)
		*out = OPT_ADAM;
	else if (name != NULL && strcmp(name, "adamw") == 0)
		*out = OPT_ADAMW;
	else
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "optimizer: unknown optimizer \"%s\" "
		                     "(choose sgd, adam or adamw)",
		                     name != NULL ? name : "(null)");
	return 0;
}

const char *
optimizer_name(enum optimizer_kind kind)
{
	return kind == OPT_SGD ? "sgd" : kind == OPT_ADAM ? "adam" : "adamw";
}

/* Zeroed state shaped like the manifest's region. */
struct optim *
optim_create(const struct optim_config *c,
             const struct tensor_manifest *manifest)
{
	struct optim *o = xcalloc(1, sizeof *o);
	size_t n = manifest->total_size / sizeof(float);
	o->c = *c;
	tensor_manifest_copy(&o->manifest, manifest);
	o->m = xcalloc(n, sizeof(float));
	if (c->kind != OPT_SGD)
		o->v = xcalloc(n, sizeof(float));
	return o;
}

/* Release the state (NULL is fine). */
void
optim_free(struct optim *o)
{
	if (o == NULL)
		return;
	tensor_manifest_free(&o->manifest);
	free(o->m);
	free(o->v);
	free(o);
}

/* The gradient the optimiser sees: g + wd * w + mu * (w - w_global). */
static inline float
effective_grad(const struct optim_config *c, float g, float w,
               const float *global, size_t i)
{
	g += c->weight_decay * w;
	if (global != NULL)
		g += c->prox_mu * (w - global[i]);
	return g;
}

/* SGD over n elements: buf = momentum * buf + g (buf = g on the first step),
 * w -= lr * buf; plain w -= lr * g without momentum. */
static void
sgd_update(const struct optim_config *c, float *restrict w,
           const float *restrict g, const float *restrict global,
           float *restrict buf, size_t n, int first)
{
	float lr = c->lr, mom = c->momentum;
	for (size_t i = 0; i < n; i++) {
		float d = effective_grad(c, g[i], w[i], global, i);
		if (mom != 0.0f) {
			buf[i] = first ? d : mom * buf[i] + d;
			d = buf[i];
		}
		w[i] -= lr * d;
	}
}

/* Adam over n elements, as torch.optim.Adam computes it:
 * m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * w -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps). */
static void
adam_update(const struct optim_config *c, float *restrict w,
            const float *restrict g, const float *restrict global,
            float *restrict m, float *restrict v, size_t n, uint64_t t)
{
	float b1 = c->beta1, b2 = c->beta2, eps = c->eps;
	float step = (float)(c->lr / (1.0 - pow(b1, (double)t)));
	float bc2_sqrt = (float)sqrt(1.0 - pow(b2, (double)t));
	for (size_t i = 0; i < n; i++) {
		float d = effective_grad(c, g[i], w[i], global, i);
		m[i] = b1 * m[i] + (1.0f - b1) * d;
		v[i] = b2 * v[i] + (1.0f - b2) * d * d;
		w[i] -= step * m[i] / (sqrtf(v[i]) / bc2_sqrt + eps);
	}
}

/* AdamW over n elements, as torch.optim.AdamW: the weight decays first
 * (decoupled from the gradient), then the Adam update with bias-corrected
 * moments of d = g + mu * (w - w_global) (FedProx's term only when global is
 * not NULL). */
__attribute__((target_clones("avx2", "default"))) static void
adamw_update(const struct optim_config *c, float *restrict w,
             const float *restrict g, const float *restrict global,
             float *restrict m, float *restrict v, size_t n, uint64_t t)
{
	float b1 = c->beta1, b2 = c->beta2, eps = c->eps;
	float decay = 1.0f - c->lr * c->weight_decay;
	float step = (float)(c->lr / (1.0 - pow(b1, (double)t)));
	float bc2_sqrt = (float)sqrt(1.0 - pow(b2, (double)t));
	for (size_t i = 0; i < n; i++) {
		float d = g[i];
		if (global != NULL)
			d += c->prox_mu * (w[i] - global[i]);
		w[i] *= decay;
		m[i] = b1 * m[i] + (1.0f - b1) * d;
		v[i] = b2 * v[i] + (1.0f - b2) * d * d;
		w[i] -= step * m[i] / (sqrtf(v[i]) / bc2_sqrt + eps);
	}
}

/* One optimiser step over every tensor of the region. */
void
optim_step(struct optim *o, float *params, const float *grads,
           const float *global)
{
	o->t++;
	if (o->c.prox_mu == 0.0f)
		global = NULL;
	for (size_t i = 0; i < o->manifest.count; i++) {
		size_t off = o->manifest.tensors[i].offset / sizeof(float);
		size_t n = o->manifest.tensors[i].nbytes / sizeof(float);
		const float *gl = global != NULL ? global + off : NULL;
		if (o->c.kind == OPT_SGD)
			sgd_update(&o->c, params + off, grads + off, gl,
			           o->m + off, n, o->t == 1);
		else if (o->c.kind == OPT_ADAM)
			adam_update(&o->c, params + off, grads + off, gl,
			            o->m + off, o->v + off, n, o->t);
		else
			adamw_update(&o->c, params + off, grads + off, gl,
			             o->m + off, o->v + off, n, o->t);
	}
}

void
optim_adamw_update(const struct optim_config *c, float *w, const float *g,
                   float *m, float *v, size_t n, uint64_t t)
{
	adamw_update(c, w, g, NULL, m, v, n, t);
}

void
optim_set_lr(struct optim *o, float lr)
{
	o->c.lr = lr;
}

/* The L2 norm of every gradient together (summed in double), and a uniform
 * rescale when it exceeds max_norm. */
/* sum g^2 in double over eight lanes, which the compiler vectorises (one
 * running sum is a chain of dependent adds, four times slower). */
__attribute__((target_clones("avx2", "default"))) static double
sum_squares(const float *restrict g, size_t n)
{
	double lane[8] = {0};
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		for (int k = 0; k < 8; k++)
			lane[k] += (double)g[i + k] * g[i + k];
	double sum = 0.0;
	for (; i < n; i++)
		sum += (double)g[i] * g[i];
	for (int k = 0; k < 8; k++)
		sum += lane[k];
	return sum;
}

double
optim_clip_grad_norm(float *g, size_t n, double max_norm)
{
	double norm = sqrt(sum_squares(g, n));
	double coef = max_norm / (norm + 1e-6);
	if (coef < 1.0) {
		float f = (float)coef;
		for (size_t i = 0; i < n; i++)
			g[i] *= f;
	}
	return norm;
}
