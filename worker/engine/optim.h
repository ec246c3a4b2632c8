/* optim.h: optimisers with PyTorch's exact update rules (torch.optim.SGD
 * with momentum and weight decay, torch.optim.Adam, torch.optim.AdamW) and
 * the FedProx
 * proximal term, applied tensor by tensor over a manifest's region. */
#ifndef COHORT_OPTIM_H
#define COHORT_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "tensor.h"

enum optimizer_kind { OPT_SGD, OPT_ADAM, OPT_ADAMW };

/* Parse "sgd", "adam" or "adamw" (IPC_E_BAD_VALUE naming the choices). */
int optimizer_parse(const char *name, enum optimizer_kind *out,
                    struct ipc_error *err);

/* "sgd", "adam" or "adamw". */
const char *optimizer_name(enum optimizer_kind kind);

struct optim_config {
	enum optimizer_kind kind;
	float lr, momentum, weight_decay;
	float beta1, beta2, eps;
	float prox_mu; /* FedProx: 0 disables the proximal term */
};

struct optim;

/* Optimiser state (momentum / Adam moments) for a region laid out by
 * manifest, zero-initialised. */
struct optim *optim_create(const struct optim_config *c,
                           const struct tensor_manifest *manifest);
void optim_free(struct optim *o);
/* One step over every tensor: g' = g + weight_decay * w
 * + prox_mu * (w - global) (the last term only when global != NULL), then
 * the SGD or Adam update of w with g'; AdamW decays w by lr * weight_decay
 * instead of adding weight_decay * w to g'. grads is left unchanged. */
void optim_step(struct optim *o, float *params, const float *grads,
                const float *global);

/* The learning rate of the next steps (a schedule's). */
void optim_set_lr(struct optim *o, float lr);

/* One torch.optim.AdamW step (decoupled weight decay, bias correction) of
 * n parameters w with gradients g and moments m, v (zero before step 1), t
 * the 1-based step; reads lr, beta1, beta2, eps and weight_decay of c:
 * w -= lr * wd * w; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * w -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
 * Works over a whole flat region (zero padding stays zero). */
void optim_adamw_update(const struct optim_config *c, float *w, const float *g,
                        float *m, float *v, size_t n, uint64_t t);
/* Global-norm clipping (torch.nn.utils.clip_grad_norm_): with
 * norm = sqrt(sum g^2) over all n gradients, g *= max_norm / (norm + 1e-6)
 * when that factor is below 1. Returns norm (before clipping). */
double optim_clip_grad_norm(float *g, size_t n, double max_norm);

#endif
