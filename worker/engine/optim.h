/* optim.h: optimisers with PyTorch's exact update rules (torch.optim.SGD
 * with momentum and weight decay, torch.optim.Adam) and the FedProx
 * proximal term, applied tensor by tensor over a manifest's region. */
#ifndef COHORT_OPTIM_H
#define COHORT_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "tensor.h"

enum optimizer_kind { OPT_SGD, OPT_ADAM };

/* Parse "sgd" or "adam" (IPC_E_BAD_VALUE naming the choices). */
int optimizer_parse(const char *name, enum optimizer_kind *out,
                    struct ipc_error *err);

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
 * the SGD or Adam update of w with g'. grads is left unchanged. */
void optim_step(struct optim *o, float *params, const float *grads,
                const float *global);

#endif
