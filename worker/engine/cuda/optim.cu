// optim.cu: the GPU twin of worker/engine/optim.c: torch.optim.SGD (momentum,
// weight decay) and torch.optim.Adam with the FedProx term, one kernel launch
// per step over the tensors of the region.
#include <math.h>
#include <stdlib.h>

#include "common.cuh"

struct cuda_optim {
	struct cuda_optim_desc d;
	struct cuda_region r;
	size_t elements; /* sum of the tensor lengths */
	float *m;        /* SGD momentum buffer, or Adam first moment */
	float *v;        /* Adam second moment */
	uint64_t t;      /* steps taken */
};

// The region offset of the k-th tensor element (k < sum of lengths).
__device__ static size_t
region_index(const struct cuda_region &r, size_t k)
{
	for (int i = 0; i < r.count; i++) {
		if (k < r.length[i])
			return r.offset[i] + k;
		k -= r.length[i];
	}
	return 0;
}

// g' = g + wd w + mu (w - global) (the last term when global != NULL), then
// SGD: buf = first ? g' : momentum buf + g'; w -= lr buf (w -= lr g' when
// momentum is 0).
__global__ static void
sgd_kernel(struct cuda_optim_desc d, struct cuda_region r, size_t elements,
           float *w, const float *g, const float *global, float *buf, int first)
{
	for (size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
	     k < elements; k += (size_t)gridDim.x * blockDim.x) {
		size_t i = region_index(r, k);
		float x = g[i] + d.weight_decay * w[i];
		if (global != NULL)
			x += d.prox_mu * (w[i] - global[i]);
		if (d.momentum != 0.0f) {
			buf[i] = first ? x : d.momentum * buf[i] + x;
			x = buf[i];
		}
		w[i] -= d.lr * x;
	}
}

// g' as for SGD, then Adam: m = b1 m + (1-b1) g'; v = b2 v + (1-b2) g'^2;
// w -= step m / (sqrt(v) / bc2_sqrt + eps), with step = lr / (1 - b1^t) and
// bc2_sqrt = sqrt(1 - b2^t) computed on the host as the CPU does.
__global__ static void
adam_kernel(struct cuda_optim_desc d, struct cuda_region r, size_t elements,
            float *w, const float *g, const float *global, float *m, float *v,
            float step, float bc2_sqrt)
{
	for (size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
	     k < elements; k += (size_t)gridDim.x * blockDim.x) {
		size_t i = region_index(r, k);
		float x = g[i] + d.weight_decay * w[i];
		if (global != NULL)
			x += d.prox_mu * (w[i] - global[i]);
		m[i] = d.beta1 * m[i] + (1.0f - d.beta1) * x;
		v[i] = d.beta2 * v[i] + (1.0f - d.beta2) * x * x;
		w[i] -= step * m[i] / (sqrtf(v[i]) / bc2_sqrt + d.eps);
	}
}

// Zeroed optimiser state over a region of region_floats floats.
struct cuda_optim *
cuda_optim_create(struct cuda_ctx *c, const struct cuda_optim_desc *d,
                  const struct cuda_region *r, size_t region_floats)
{
	struct cuda_optim *o = (struct cuda_optim *)calloc(1, sizeof *o);
	if (o == NULL)
		return NULL;
	o->d = *d;
	o->r = *r;
	for (int i = 0; i < r->count; i++)
		o->elements += r->length[i];
	size_t bytes = region_floats * sizeof(float);
	o->m = (float *)cuda_alloc(c, bytes);
	if (o->m != NULL)
		CUDA_CHECK(c, cudaMemsetAsync(o->m, 0, bytes, c->stream));
	if (d->adam) {
		o->v = (float *)cuda_alloc(c, bytes);
		if (o->v != NULL)
			CUDA_CHECK(c,
			           cudaMemsetAsync(o->v, 0, bytes, c->stream));
	}
	if (c->failed) {
		cuda_optim_free(c, o);
		return NULL;
	}
	return o;
}

// One optimiser step over every tensor (global ignored when prox_mu is 0).
void
cuda_optim_step(struct cuda_ctx *c, struct cuda_optim *o, float *params,
                const float *grads, const float *global)
{
	if (c->failed)
		return;
	o->t++;
	if (o->d.prox_mu == 0.0f)
		global = NULL;
	unsigned blocks = cuda_blocks(o->elements);
	if (!o->d.adam) {
		sgd_kernel<<<blocks, CUDA_THREADS, 0, c->stream>>>(
		    o->d, o->r, o->elements, params, grads, global, o->m,
		    o->t == 1);
		CUDA_LAUNCHED(c, sgd_kernel);
		return;
	}
	float step = (float)(o->d.lr / (1.0 - pow(o->d.beta1, (double)o->t)));
	float bc2_sqrt = (float)sqrt(1.0 - pow(o->d.beta2, (double)o->t));
	adam_kernel<<<blocks, CUDA_THREADS, 0, c->stream>>>(
	    o->d, o->r, o->elements, params, grads, global, o->m, o->v, step,
	    bc2_sqrt);
	CUDA_LAUNCHED(c, adam_kernel);
}

// Release the state (NULL is fine).
void
cuda_optim_free(struct cuda_ctx *c, struct cuda_optim *o)
{
	if (o == NULL)
		return;
	cuda_free(c, o->m);
	cuda_free(c, o->v);
	free(o);
}
