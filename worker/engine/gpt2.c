/* gpt2.c: GPT-2's forward and backward over a flat parameter region: the
 * tensor table (Hugging Face names), one slab of activations for a batch
 * shape, and the chain of gpt2-layers.h that GPT2LMHeadModel computes. */
#include "gpt2.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpt2-layers.h"
#include "model-impl.h"
#include "rng.h"

/* The tensors of block h.N, in state_dict order (gpt2_manifest's). */
enum gpt2_block_tensor {
	LN1_W,
	LN1_B,
	QKV_W,
	QKV_B,
	ATTPROJ_W,
	ATTPROJ_B,
	LN2_W,
	LN2_B,
	FC_W,
	FC_B,
	FCPROJ_W,
	FCPROJ_B,
	BLOCK_TENSORS
};

/* What one block's backward reads, kept by its forward (N = B*T rows). */
struct gpt2_block_acts {
	float *ln1, *ln1_mean, *ln1_rstd; /* [N, C], [N], [N] */
	float *qkv;                       /* [N, 3C] c_attn's output */
	float *att;                       /* [B, NH, T, T] probabilities */
	float *atty;                      /* [N, C] attention output */
	float *res2;                      /* [N, C] stream after attention */
	float *ln2, *ln2_mean, *ln2_rstd; /* [N, C], [N], [N] */
	float *fch;                       /* [N, 4C] c_fc's output */
	float *fch_gelu;                  /* [N, 4C] GELU of it */
	float *res3;                      /* [N, C] the block's output */
};

/* Gradients of activations, reused by every block of the backward. */
struct gpt2_scratch {
	float *g_out;      /* [N, C] dL/d(block output) */
	float *g_in;       /* [N, C] dL/d(block input) */
	float *g_mid;      /* [N, C] dL/d(res2) */
	float *g_branch;   /* [N, C] dL/d(a branch's c_proj output) */
	float *g_ln;       /* [N, C] dL/d(a layer norm's output) */
	float *g_norm;     /* [N, C] dL/d(a layer norm's input), via it */
	float *g_atty;     /* [N, C] */
	float *g_qkv;      /* [N, 3C] */
	float *g_fch_gelu; /* [N, 4C] */
	float *g_fch;      /* [N, 4C] */
	float *g_scores;   /* [T, T] one head's dP / dS */
};

struct gpt2 {
	struct gpt2_config c;
	int B, T;
	struct tensor_manifest manifest;
	size_t wte, wpe, lnf_w, lnf_b; /* float offsets in the region */
	size_t *block;                 /* [L][BLOCK_TENSORS] float offsets */
	int32_t *tokens, *targets;     /* [N] copies from the forward */
	float *mem;                    /* the slab every buffer lives in */
	size_t floats;
	float *encoded;            /* [N, C] the stream entering block 0 */
	struct gpt2_block_acts *h; /* [L] */
	float *proj;               /* [N, C] either c_proj's output */
	float *lnf, *lnf_mean, *lnf_rstd;
	float *logits; /* [N, V]; dlogits in place after backward */
	struct gpt2_scratch s;
};

/* Float offset of tensor i of the manifest. */
static size_t
tensor_at(const struct gpt2 *g, size_t i)
{
	return g->manifest.tensors[i].offset / sizeof(float);
}

/* Carve every activation buffer from cur (counting only when the slab is
 * not allocated yet); returns the floats used. */
static size_t
layout(struct gpt2 *g, float *mem)
{
	size_t B = (size_t)g->B, T = (size_t)g->T, N = B * T;
	size_t C = (size_t)g->c.channels, NH = (size_t)g->c.num_heads;
	float *cur = mem;
	g->encoded = model_carve(&cur, N * C);
	for (int l = 0; l < g->c.num_layers; l++) {
		struct gpt2_block_acts *a = &g->h[l];
		a->ln1 = model_carve(&cur, N * C);
		a->ln1_mean = model_carve(&cur, N);
		a->ln1_rstd = model_carve(&cur, N);
		a->qkv = model_carve(&cur, N * 3 * C);
		a->att = model_carve(&cur, B * NH * T * T);
		a->atty = model_carve(&cur, N * C);
		a->res2 = model_carve(&cur, N * C);
		a->ln2 = model_carve(&cur, N * C);
		a->ln2_mean = model_carve(&cur, N);
		a->ln2_rstd = model_carve(&cur, N);
		a->fch = model_carve(&cur, N * 4 * C);
		a->fch_gelu = model_carve(&cur, N * 4 * C);
		a->res3 = model_carve(&cur, N * C);
	}
	g->proj = model_carve(&cur, N * C);
	g->lnf = model_carve(&cur, N * C);
	g->lnf_mean = model_carve(&cur, N);
	g->lnf_rstd = model_carve(&cur, N);
	g->logits = model_carve(&cur, N * (size_t)g->c.vocab_size);
	struct gpt2_scratch *s = &g->s;
	s->g_out = model_carve(&cur, N * C);
	s->g_in = model_carve(&cur, N * C);
	s->g_mid = model_carve(&cur, N * C);
	s->g_branch = model_carve(&cur, N * C);
	s->g_ln = model_carve(&cur, N * C);
	s->g_norm = model_carve(&cur, N * C);
	s->g_atty = model_carve(&cur, N * C);
	s->g_qkv = model_carve(&cur, N * 3 * C);
	s->g_fch_gelu = model_carve(&cur, N * 4 * C);
	s->g_fch = model_carve(&cur, N * 4 * C);
	s->g_scores = model_carve(&cur, T * T);
	return (size_t)(cur - mem);
}

/* The tensor table, its offsets and one slab for the batch shape. */
struct gpt2 *
gpt2_create(const struct gpt2_config *c, int B, int T, struct ipc_error *err)
{
	if (B <= 0 || T <= 0 || (c->max_seq_len > 0 && T > c->max_seq_len)) {
		ipc_error_set(err, IPC_E_SHAPE,
		              "gpt2: batch %d x sequence %d (the sequence "
		              "must be 1..max_seq_len %d)",
		              B, T, c->max_seq_len);
		return NULL;
	}
	struct gpt2 *g = xcalloc(1, sizeof *g);
	if (gpt2_manifest(c, &g->manifest, err) != 0) {
		free(g);
		return NULL;
	}
	g->c = *c;
	g->B = B;
	g->T = T;
	int L = c->num_layers;
	g->wte = tensor_at(g, 0);
	g->wpe = tensor_at(g, 1);
	g->block = xcalloc((size_t)L * BLOCK_TENSORS, sizeof *g->block);
	for (size_t i = 0; i < (size_t)L * BLOCK_TENSORS; i++)
		g->block[i] = tensor_at(g, 2 + i);
	g->lnf_w = tensor_at(g, 2 + (size_t)L * BLOCK_TENSORS);
	g->lnf_b = tensor_at(g, 3 + (size_t)L * BLOCK_TENSORS);
	g->tokens = xcalloc((size_t)B * T, sizeof *g->tokens);
	g->targets = xcalloc((size_t)B * T, sizeof *g->targets);
	g->h = xcalloc((size_t)L, sizeof *g->h);
	g->floats = layout(g, NULL);
	g->mem = aligned_alloc(64, g->floats * sizeof(float));
	if (g->mem == NULL)
		fatal("gpt2: out of memory for %zu bytes of activations",
		      g->floats * sizeof(float));
	layout(g, g->mem);
	return g;
}

/* Release the model (NULL is fine); the parameter region is the caller's. */
void
gpt2_free(struct gpt2 *g)
{
	if (g == NULL)
		return;
	tensor_manifest_free(&g->manifest);
	free(g->block);
	free(g->tokens);
	free(g->targets);
	free(g->h);
	free(g->mem);
	free(g);
}

/* Its parameter table. */
const struct tensor_manifest *
gpt2_tensors(const struct gpt2 *g)
{
	return &g->manifest;
}

/* The slab's size. */
size_t
gpt2_activation_bytes(const struct gpt2 *g)
{
	return g->floats * sizeof(float);
}

/* Per block: the four projections 24 N C^2 forward and twice that
 * backward; attention's four T x T x hs products per head forward
 * (computed in full, the mask applied after) 4 B T^2 C, backward twice
 * that; the head 2 N C V forward, twice that backward. */
double
gpt2_flops_per_batch(const struct gpt2 *g)
{
	double N = (double)g->B * g->T, C = g->c.channels;
	double att = 4.0 * g->B * (double)g->T * g->T * C;
	double block = 3.0 * (24.0 * N * C * C + att);
	return g->c.num_layers * block + 6.0 * N * C * g->c.vocab_size;
}

/* The float offset of tensor k of block l. */
static size_t
block_at(const struct gpt2 *g, int l, enum gpt2_block_tensor k)
{
	return g->block[(size_t)l * BLOCK_TENSORS + k];
}

/* One block forward: x -> res2 = x + attn(ln_1(x)) -> res3 = res2 +
 * mlp(ln_2(res2)). */
static void
block_forward(struct gpt2 *g, int l, const float *p, const float *x)
{
	struct gpt2_block_acts *a = &g->h[l];
	int B = g->B, T = g->T, N = B * T, C = g->c.channels;
	size_t NC = (size_t)N * C;
	layernorm_forward(a->ln1, a->ln1_mean, a->ln1_rstd, x,
	                  p + block_at(g, l, LN1_W), p + block_at(g, l, LN1_B),
	                  N, C);
	matmul_forward(a->qkv, a->ln1, p + block_at(g, l, QKV_W),
	               p + block_at(g, l, QKV_B), N, C, 3 * C);
	attention_forward(a->atty, a->att, a->qkv, B, T, C, g->c.num_heads);
	matmul_forward(g->proj, a->atty, p + block_at(g, l, ATTPROJ_W),
	               p + block_at(g, l, ATTPROJ_B), N, C, C);
	residual_forward(a->res2, x, g->proj, NC);
	layernorm_forward(a->ln2, a->ln2_mean, a->ln2_rstd, a->res2,
	                  p + block_at(g, l, LN2_W), p + block_at(g, l, LN2_B),
	                  N, C);
	matmul_forward(a->fch, a->ln2, p + block_at(g, l, FC_W),
	               p + block_at(g, l, FC_B), N, C, 4 * C);
	gelu_forward(a->fch_gelu, a->fch, 4 * NC);
	matmul_forward(g->proj, a->fch_gelu, p + block_at(g, l, FCPROJ_W),
	               p + block_at(g, l, FCPROJ_B), N, 4 * C, C);
	residual_forward(a->res3, a->res2, g->proj, NC);
}

/* Embeddings, the blocks, ln_f, the tied head and (with targets) the loss. */
double
gpt2_forward(struct gpt2 *g, const float *params, const int32_t *tokens,
             const int32_t *targets)
{
	int B = g->B, T = g->T, N = B * T, C = g->c.channels;
	memcpy(g->tokens, tokens, (size_t)N * sizeof *tokens);
	if (targets != NULL)
		memcpy(g->targets, targets, (size_t)N * sizeof *targets);
	else
		memset(g->targets, 0xff, (size_t)N * sizeof *g->targets);
	encoder_forward(g->encoded, g->tokens, params + g->wte, params + g->wpe,
	                B, T, C);
	const float *x = g->encoded;
	for (int l = 0; l < g->c.num_layers; l++) {
		block_forward(g, l, params, x);
		x = g->h[l].res3;
	}
	layernorm_forward(g->lnf, g->lnf_mean, g->lnf_rstd, x,
	                  params + g->lnf_w, params + g->lnf_b, N, C);
	lmhead_forward(g->logits, g->lnf, params + g->wte, N, C,
	               g->c.vocab_size);
	if (targets == NULL)
		return 0.0;
	return lm_crossentropy(NULL, g->logits, g->targets, N, g->c.vocab_size);
}

/* The logits of the last forward. */
const float *
gpt2_logits(const struct gpt2 *g)
{
	return g->logits;
}

/* dst += src: a tensor read by two layers (the residual stream, read by
 * the skip connection and by a layer norm) gets the sum of both gradients.
 */
static void
gradient_add(float *restrict dst, const float *restrict src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] += src[i];
}

/* One block backward, from s->g_out = dL/d(res3) to s->g_in = dL/dx. */
static void
block_backward(struct gpt2 *g, int l, const float *p, float *grads,
               const float *x)
{
	struct gpt2_block_acts *a = &g->h[l];
	struct gpt2_scratch *s = &g->s;
	int B = g->B, T = g->T, N = B * T, C = g->c.channels;
	size_t NC = (size_t)N * C;
	/* res3 = res2 + mlp(ln_2(res2)) */
	residual_backward(s->g_mid, s->g_branch, s->g_out, NC);
	matmul_backward(s->g_fch_gelu, grads + block_at(g, l, FCPROJ_W),
	                grads + block_at(g, l, FCPROJ_B), s->g_branch,
	                a->fch_gelu, p + block_at(g, l, FCPROJ_W), N, 4 * C, C);
	gelu_backward(s->g_fch, s->g_fch_gelu, a->fch, 4 * NC);
	matmul_backward(s->g_ln, grads + block_at(g, l, FC_W),
	                grads + block_at(g, l, FC_B), s->g_fch, a->ln2,
	                p + block_at(g, l, FC_W), N, C, 4 * C);
	layernorm_backward(s->g_norm, grads + block_at(g, l, LN2_W),
	                   grads + block_at(g, l, LN2_B), s->g_ln, a->res2,
	                   p + block_at(g, l, LN2_W), a->ln2_mean, a->ln2_rstd,
	                   N, C);
	gradient_add(s->g_mid, s->g_norm, NC);
	/* res2 = x + c_proj(attention(c_attn(ln_1(x)))) */
	residual_backward(s->g_in, s->g_branch, s->g_mid, NC);
	matmul_backward(s->g_atty, grads + block_at(g, l, ATTPROJ_W),
	                grads + block_at(g, l, ATTPROJ_B), s->g_branch, a->atty,
	                p + block_at(g, l, ATTPROJ_W), N, C, C);
	attention_backward(s->g_qkv, s->g_scores, s->g_atty, a->qkv, a->att, B,
	                   T, C, g->c.num_heads);
	matmul_backward(s->g_ln, grads + block_at(g, l, QKV_W),
	                grads + block_at(g, l, QKV_B), s->g_qkv, a->ln1,
	                p + block_at(g, l, QKV_W), N, C, 3 * C);
	layernorm_backward(s->g_norm, grads + block_at(g, l, LN1_W),
	                   grads + block_at(g, l, LN1_B), s->g_ln, x,
	                   p + block_at(g, l, LN1_W), a->ln1_mean, a->ln1_rstd,
	                   N, C);
	gradient_add(s->g_in, s->g_norm, NC);
}

/* The forward's chain in reverse: loss -> head -> ln_f -> blocks from the
 * last -> embeddings; wte collects the head's and the embedding's
 * gradients. */
void
gpt2_backward(struct gpt2 *g, const float *params, float *grads)
{
	gpt2_backward_weighted(g, params, grads, 1.0);
}

/* gpt2_backward of weight * loss: dlogits is scaled before the chain (every
 * gradient is linear in it). */
void
gpt2_backward_weighted(struct gpt2 *g, const float *params, float *grads,
                       double weight)
{
	int B = g->B, T = g->T, N = B * T, C = g->c.channels,
	    L = g->c.num_layers;
	struct gpt2_scratch *s = &g->s;
	const float *last = g->h[L - 1].res3;
	lm_crossentropy(g->logits, g->logits, g->targets, N, g->c.vocab_size);
	if (weight != 1.0) {
		float w = (float)weight;
		size_t NV = (size_t)N * g->c.vocab_size;
		for (size_t i = 0; i < NV; i++)
			g->logits[i] *= w;
	}
	lmhead_backward(s->g_ln, grads + g->wte, g->logits, g->lnf,
	                params + g->wte, N, C, g->c.vocab_size);
	layernorm_backward(s->g_out, grads + g->lnf_w, grads + g->lnf_b,
	                   s->g_ln, last, params + g->lnf_w, g->lnf_mean,
	                   g->lnf_rstd, N, C);
	for (int l = L - 1; l >= 0; l--) {
		const float *x = l > 0 ? g->h[l - 1].res3 : g->encoded;
		block_backward(g, l, params, grads, x);
		float *t = s->g_out;
		s->g_out = s->g_in;
		s->g_in = t;
	}
	encoder_backward(grads + g->wte, grads + g->wpe, s->g_out, g->tokens, B,
	                 T, C);
}

/* Hugging Face's GPT2PreTrainedModel._init_weights: N(0, 0.02) for the
 * embeddings and every Conv1D weight, N(0, 0.02 / sqrt(2 n_layer)) for the
 * two c_proj weights of a block (the residual branches' outputs), biases 0,
 * LayerNorm weights 1. */
void
gpt2_init(const struct gpt2_config *c, float *params, uint64_t seed)
{
	struct tensor_manifest m;
	struct ipc_error err;
	if (gpt2_manifest(c, &m, &err) != 0)
		fatal("gpt2_init: %s", err.message);
	memset(params, 0, m.total_size);
	struct rng r;
	rng_seed(&r, seed, 0);
	double proj_std = 0.02 / sqrt(2.0 * c->num_layers);
	for (size_t i = 0; i < m.count; i++) {
		const struct tensor_desc *t = &m.tensors[i];
		float *p = params + t->offset / sizeof(float);
		size_t n = t->nbytes / sizeof(float);
		const char *name = t->name;
		size_t len = strlen(name);
		int bias = len > 5 && strcmp(name + len - 5, ".bias") == 0;
		int ln = strstr(name, "ln_") != NULL;
		if (bias)
			continue;
		if (ln) {
			for (size_t k = 0; k < n; k++)
				p[k] = 1.0f;
			continue;
		}
		double sd =
		    strstr(name, "c_proj.weight") != NULL ? proj_std : 0.02;
		for (size_t k = 0; k < n; k++)
			p[k] = (float)(sd * rng_normal(&r));
	}
	tensor_manifest_free(&m);
}
