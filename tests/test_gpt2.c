/* test_gpt2.c: the C GPT-2 (worker/engine/gpt2.c) has Hugging Face's
 * tensor names and Conv1D shapes; a tiny model's logits, loss and every
 * parameter gradient match a PyTorch reference (tests/gpt2_reference.py,
 * float64) within 1e-4 relative, and so do two clipped AdamW steps; a few
 * AdamW steps fit one batch. Prints forward + backward time per token. */
#include "gpt2.h"
#include "harness.h"
#include "optim.h"
#include "rng.h"
#include "safetensors.h"

#include <math.h>
#include <stdlib.h>

/* The tiny model of the comparison. */
static const struct gpt2_config tiny = {.max_seq_len = 12,
                                        .vocab_size = 64,
                                        .num_layers = 2,
                                        .num_heads = 2,
                                        .channels = 16};
enum { TINY_B = 2, TINY_T = 8, ADAMW_N = 40 };

static void
fill_uniform(float *v, size_t n, struct rng *r, float lo, float hi)
{
	for (size_t i = 0; i < n; i++)
		v[i] = lo + (hi - lo) * (float)rng_uniform(r);
}

/* Random parameters large enough that attention is peaked and GELU bends:
 * matrices U(-0.3, 0.3), embeddings U(-0.5, 0.5), layer-norm weights
 * U(0.8, 1.2), biases U(-0.1, 0.1). Padding stays zero. */
static float *
random_params(const struct tensor_manifest *m, uint64_t seed)
{
	float *p = calloc(1, m->total_size);
	struct rng r;
	rng_seed(&r, seed, 0);
	for (size_t i = 0; i < m->count; i++) {
		const struct tensor_desc *t = &m->tensors[i];
		float *v = p + t->offset / sizeof(float);
		size_t n = t->nbytes / sizeof(float);
		int ln = strstr(t->name, "ln_") != NULL;
		if (strstr(t->name, "wte") || strstr(t->name, "wpe"))
			fill_uniform(v, n, &r, -0.5f, 0.5f);
		else if (ln && strstr(t->name, ".weight"))
			fill_uniform(v, n, &r, 0.8f, 1.2f);
		else if (strstr(t->name, ".bias"))
			fill_uniform(v, n, &r, -0.1f, 0.1f);
		else
			fill_uniform(v, n, &r, -0.3f, 0.3f);
	}
	return p;
}

/* Tokens uniform over the vocabulary; targets too, with every fifth -1. */
static void
random_tokens(int32_t *tokens, int32_t *targets, int n, int V, uint64_t seed)
{
	struct rng r;
	rng_seed(&r, seed, 0);
	for (int i = 0; i < n; i++) {
		tokens[i] = (int32_t)(rng_uniform(&r) * V);
		targets[i] = i % 5 == 3 ? -1 : (int32_t)(rng_uniform(&r) * V);
	}
}

static void
test_manifest(void)
{
	struct tensor_manifest m;
	struct ipc_error err;
	CHECK_EQ_INT(gpt2_manifest(&tiny, &m, &err), 0);
	CHECK_EQ_INT(m.count, 2 + 12 * 2 + 2);
	const struct {
		const char *name;
		uint64_t d0, d1;
	} want[] = {
	    {"wte.weight", 64, 16},
	    {"wpe.weight", 12, 16},
	    {"h.0.ln_1.weight", 16, 0},
	    {"h.0.attn.c_attn.weight", 16, 48},
	    {"h.0.attn.c_attn.bias", 48, 0},
	    {"h.1.attn.c_proj.weight", 16, 16},
	    {"h.1.mlp.c_fc.weight", 16, 64},
	    {"h.1.mlp.c_fc.bias", 64, 0},
	    {"h.1.mlp.c_proj.weight", 64, 16},
	    {"ln_f.bias", 16, 0},
	};
	for (size_t i = 0; i < ARRAY_LEN(want); i++) {
		const struct tensor_desc *t =
		    tensor_manifest_find(&m, want[i].name);
		CHECK(t != NULL);
		if (t == NULL)
			continue;
		CHECK_EQ_INT(t->rank, want[i].d1 ? 2 : 1);
		CHECK_EQ_INT(t->shape[0], want[i].d0);
		if (want[i].d1)
			CHECK_EQ_INT(t->shape[1], want[i].d1);
	}
	/* Hugging Face's order: h.0's tensors start after wpe, ln_f ends. */
	CHECK(strcmp(m.tensors[2].name, "h.0.ln_1.weight") == 0);
	CHECK(strcmp(m.tensors[13].name, "h.0.mlp.c_proj.bias") == 0);
	CHECK(strcmp(m.tensors[m.count - 1].name, "ln_f.bias") == 0);
	tensor_manifest_free(&m);

	struct gpt2_config bad = tiny;
	bad.num_heads = 3;
	CHECK_EQ_INT(gpt2_manifest(&bad, &m, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_SHAPE);
	CHECK_STR_CONTAINS(err.message, "not a multiple of num_heads 3");
	tensor_manifest_free(&m);
	bad = tiny;
	bad.num_layers = 0;
	CHECK(gpt2_create(&bad, 1, 4, &err) == NULL);
	CHECK_STR_CONTAINS(err.message, "num_layers is 0");
	CHECK(gpt2_create(&tiny, 1, 13, &err) == NULL);
	CHECK_STR_CONTAINS(err.message, "max_seq_len 12");
}

/* The exchange file: parameters (Hugging Face names), tokens, targets and
 * the optimiser case, metadata n_head and the AdamW settings. */
static void
write_reference_input(const char *path, const struct tensor_manifest *pm,
                      const float *params, const int32_t *tokens,
                      const int32_t *targets, const float *adamw,
                      const struct optim_config *oc, double max_norm)
{
	struct tensor_manifest m;
	struct ipc_error err;
	tensor_manifest_copy(&m, pm);
	size_t pbytes = pm->total_size;
	uint64_t bt[2] = {TINY_B, TINY_T}, n[1] = {ADAMW_N};
	CHECK_EQ_INT(tensor_manifest_add(&m, "tokens", DTYPE_I32, 2, bt, &err),
	             0);
	CHECK_EQ_INT(tensor_manifest_add(&m, "targets", DTYPE_I32, 2, bt, &err),
	             0);
	const char *vec[3] = {"adamw.w", "adamw.g1", "adamw.g2"};
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(
		    tensor_manifest_add(&m, vec[i], DTYPE_F32, 1, n, &err), 0);
	char *region = calloc(1, m.total_size);
	memcpy(region, params, pbytes);
	memcpy(region + tensor_manifest_find(&m, "tokens")->offset, tokens,
	       sizeof(int32_t) * TINY_B * TINY_T);
	memcpy(region + tensor_manifest_find(&m, "targets")->offset, targets,
	       sizeof(int32_t) * TINY_B * TINY_T);
	for (int i = 0; i < 3; i++)
		memcpy(region + tensor_manifest_find(&m, vec[i])->offset,
		       adamw + i * ADAMW_N, sizeof(float) * ADAMW_N);
	struct st_metadata meta = {0};
	char buf[64];
	snprintf(buf, sizeof buf, "%d", tiny.num_heads);
	st_metadata_set(&meta, "n_head", buf);
	const struct {
		const char *key;
		double value;
	} settings[] = {{"adamw.lr", oc->lr},
	                {"adamw.weight_decay", oc->weight_decay},
	                {"adamw.beta1", oc->beta1},
	                {"adamw.beta2", oc->beta2},
	                {"adamw.eps", oc->eps},
	                {"adamw.max_norm", max_norm}};
	for (size_t i = 0; i < ARRAY_LEN(settings); i++) {
		snprintf(buf, sizeof buf, "%.9g", settings[i].value);
		st_metadata_set(&meta, settings[i].key, buf);
	}
	CHECK_EQ_INT(safetensors_write(path, &m, region, &meta, &err), 0);
	st_metadata_free(&meta);
	free(region);
	tensor_manifest_free(&m);
}

/* max |a - b| / max(max |b|, 1e-6) over n values of a C result a and the
 * reference tensor name of the reference file b; fails above tol. */
static void
compare(const char *name, const float *a, size_t n,
        const struct tensor_manifest *rm, const char *ref, double tol)
{
	const struct tensor_desc *t = tensor_manifest_find(rm, name);
	if (t == NULL || t->nbytes != n * sizeof(float)) {
		harness_fail(__FILE__, __LINE__,
		             "reference %s missing or of another size", name);
		return;
	}
	const float *b = (const float *)(ref + t->offset);
	double err = 0.0, scale = 1e-6;
	for (size_t i = 0; i < n; i++) {
		err = fmax(err, fabs((double)a[i] - b[i]));
		scale = fmax(scale, fabs((double)b[i]));
	}
	printf("  %-30s max|b| %.3e  relative error %.2e\n", name, scale,
	       err / scale);
	if (!(err / scale < tol))
		harness_fail(__FILE__, __LINE__,
		             "%s: relative error %.3g against PyTorch", name,
		             err / scale);
}

static void
test_matches_pytorch(void)
{
	if (system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0)
		harness_skip("/usr/bin/python3 cannot import torch (apt-get "
		             "install python3-torch): no PyTorch reference");
	struct ipc_error err;
	struct gpt2 *g = gpt2_create(&tiny, TINY_B, TINY_T, &err);
	CHECK(g != NULL);
	const struct tensor_manifest *pm = gpt2_tensors(g);
	float *params = random_params(pm, 1);
	float *grads = calloc(1, pm->total_size);
	int32_t tokens[TINY_B * TINY_T], targets[TINY_B * TINY_T];
	random_tokens(tokens, targets, TINY_B * TINY_T, tiny.vocab_size, 2);

	/* The optimiser case: w U(-1, 1), g1 and g2 U(-0.2, 0.2), clipped at
	 * a norm of 0.5 (about 0.73 unclipped, so both steps clip). */
	struct optim_config oc = {.lr = 0.01f,
	                          .weight_decay = 0.1f,
	                          .beta1 = 0.9f,
	                          .beta2 = 0.95f,
	                          .eps = 1e-8f};
	double max_norm = 0.5;
	float adamw[3 * ADAMW_N];
	struct rng r;
	rng_seed(&r, 3, 0);
	fill_uniform(adamw, ADAMW_N, &r, -1, 1);
	fill_uniform(adamw + ADAMW_N, 2 * ADAMW_N, &r, -0.2f, 0.2f);

	char in[512], out[512], cmd[2048];
	snprintf(in, sizeof in, "%s/gpt2_in.safetensors", harness_tmpdir());
	snprintf(out, sizeof out, "%s/gpt2_out.safetensors", harness_tmpdir());
	write_reference_input(in, pm, params, tokens, targets, adamw, &oc,
	                      max_norm);
	const char *src = getenv("COHORT_SOURCE_DIR");
	snprintf(cmd, sizeof cmd,
	         "/usr/bin/python3 '%s/tests/gpt2_reference.py' '%s' '%s'",
	         src != NULL ? src : "..", in, out);
	CHECK_EQ_INT(system(cmd), 0);
	struct tensor_manifest rm;
	void *ref = NULL;
	CHECK_EQ_INT(safetensors_read(out, &rm, &ref, NULL, &err), 0);
	if (ref == NULL) {
		printf("  %s\n", err.message);
		gpt2_free(g);
		free(params), free(grads);
		return;
	}

	float loss = (float)gpt2_forward(g, params, tokens, targets);
	size_t nlogits = (size_t)TINY_B * TINY_T * tiny.vocab_size;
	compare("logits", gpt2_logits(g), nlogits, &rm, ref, 1e-4);
	compare("loss", &loss, 1, &rm, ref, 1e-4);
	gpt2_backward(g, params, grads);
	for (size_t i = 0; i < pm->count; i++) {
		const struct tensor_desc *t = &pm->tensors[i];
		char name[TENSOR_MAX_NAME + 8];
		snprintf(name, sizeof name, "grad.%s", t->name);
		compare(name, grads + t->offset / sizeof(float),
		        t->nbytes / sizeof(float), &rm, ref, 1e-4);
	}

	/* Two clipped AdamW steps, as torch runs them in float32. */
	float *w = adamw, m[ADAMW_N] = {0}, v[ADAMW_N] = {0}, gs[ADAMW_N];
	for (int step = 1; step <= 2; step++) {
		char name[32];
		memcpy(gs, adamw + step * ADAMW_N, sizeof gs);
		float norm = (float)optim_clip_grad_norm(gs, ADAMW_N, max_norm);
		optim_adamw_update(&oc, w, gs, m, v, ADAMW_N, (uint64_t)step);
		snprintf(name, sizeof name, "adamw.norm%d", step);
		compare(name, &norm, 1, &rm, ref, 1e-5);
		snprintf(name, sizeof name, "adamw.w%d", step);
		compare(name, w, ADAMW_N, &rm, ref, 1e-5);
	}
	tensor_manifest_free(&rm);
	free(ref);
	free(params);
	free(grads);
	gpt2_free(g);
}

static void
test_fits_one_batch(void)
{
	/* 30 AdamW steps (lr 1e-2, clipped at 1) on one batch of the tiny
	 * model: the loss, about log 64 = 4.2 at the start, at least halves. */
	struct ipc_error err;
	struct gpt2 *g = gpt2_create(&tiny, TINY_B, TINY_T, &err);
	CHECK(g != NULL);
	const struct tensor_manifest *pm = gpt2_tensors(g);
	size_t n = pm->total_size / sizeof(float);
	float *params = random_params(pm, 4), *grads = malloc(pm->total_size);
	float *m = calloc(n, sizeof(float)), *v = calloc(n, sizeof(float));
	int32_t tokens[TINY_B * TINY_T], targets[TINY_B * TINY_T];
	random_tokens(tokens, targets, TINY_B * TINY_T, tiny.vocab_size, 5);
	struct optim_config oc = {.lr = 1e-2f,
	                          .weight_decay = 0.0f,
	                          .beta1 = 0.9f,
	                          .beta2 = 0.95f,
	                          .eps = 1e-8f};
	double first = 0.0, loss = 0.0;
	for (int step = 1; step <= 30; step++) {
		loss = gpt2_forward(g, params, tokens, targets);
		if (step == 1)
			first = loss;
		memset(grads, 0, pm->total_size);
		gpt2_backward(g, params, grads);
		optim_clip_grad_norm(grads, n, 1.0);
		optim_adamw_update(&oc, params, grads, m, v, n, (uint64_t)step);
	}
	printf("  loss %.4f -> %.4f after 30 steps\n", first, loss);
	CHECK(isfinite(loss) && loss < 0.5 * first);
	free(params), free(grads), free(m), free(v);
	gpt2_free(g);
}

int
main(void)
{
	RUN(test_manifest);
	RUN(test_matches_pytorch);
	RUN(test_fits_one_batch);
	return harness_finish();
}
