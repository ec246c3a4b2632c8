/* tool-gpt2-bench.c: cohort-gpt2-bench: the CPU GPT-2's forward + backward
 * time per token at a few sizes (worker/engine/gpt2.c), with the GFLOP/s it
 * reaches and the activation memory it holds, to judge it against
 * cohort-sgemm-peak.
 *
 * usage: cohort-gpt2-bench [THREADS]   (default 1)
 *        cohort-gpt2-bench --train THREADS LAYERS HEADS CHANNELS VOCAB B T
 *
 * --train times whole training steps of one config (forward, backward,
 * gradient clipping, AdamW) and prints one line: tokens/s, ms per step,
 * and the process's peak resident memory next to its parts (parameters,
 * gradients, AdamW's two moments, activations), for tools/bench's gpt2
 * suite and its PyTorch counterpart (tools/bench/torch_gpt2.py). */
#include <cblas.h>
#include <stdio.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>

#include "gpt2.h"
#include "optim.h"
#include "rng.h"
#include "util.h"

/* A config: n_positions, vocab, layers, heads, channels. */
#define GPT2(maxT, V, L, NH, C)                                                \
	{                                                                      \
		.max_seq_len = (maxT), .vocab_size = (V), .num_layers = (L),   \
		.num_heads = (NH), .channels = (C)                             \
	}

struct preset {
	const char *what;
	struct gpt2_config c;
	int B, T;
};

/* Best seconds of one forward + backward over a few repetitions (the
 * first warms up), parameters U(-0.02, 0.02). */
static double
best_step_seconds(const struct preset *p, size_t *act_bytes, double *flops)
{
	struct ipc_error err;
	struct gpt2 *g = gpt2_create(&p->c, p->B, p->T, &err);
	if (g == NULL)
		fatal("%s", err.message);
	const struct tensor_manifest *m = gpt2_tensors(g);
	size_t n = m->total_size / sizeof(float), N = (size_t)p->B * p->T;
	float *params = xmalloc(m->total_size), *grads = xmalloc(m->total_size);
	int32_t *tokens = xmalloc(N * sizeof *tokens);
	struct rng r;
	rng_seed(&r, 1, 0);
	for (size_t i = 0; i < n; i++)
		params[i] = 0.04f * (float)rng_uniform(&r) - 0.02f;
	for (size_t i = 0; i < N; i++)
		tokens[i] = (int32_t)(rng_uniform(&r) * p->c.vocab_size);
	double best = 1e30;
	for (int rep = 0, reps = gpt2_flops_per_batch(g) > 1e10 ? 4 : 20;
	     rep < reps; rep++) {
		memset(grads, 0, m->total_size);
		double t0 = now_seconds();
		gpt2_forward(g, params, tokens, tokens);
		gpt2_backward(g, params, grads);
		double dt = now_seconds() - t0;
		if (rep > 0 && dt < best)
			best = dt;
	}
	*act_bytes = gpt2_activation_bytes(g);
	*flops = gpt2_flops_per_batch(g);
	free(params), free(grads), free(tokens);
	gpt2_free(g);
	return best;
}

/* --train: steps of one config, the best timed after a warm-up; one
 * line of numbers. */
static int
train_config(char **argv)
{
	struct gpt2_config c = GPT2(1024, atoi(argv[4]), atoi(argv[1]),
	                            atoi(argv[2]), atoi(argv[3]));
	int B = atoi(argv[5]), T = atoi(argv[6]);
	struct ipc_error err;
	struct gpt2 *g = gpt2_create(&c, B, T, &err);
	if (g == NULL)
		fatal("%s", err.message);
	const struct tensor_manifest *m = gpt2_tensors(g);
	size_t n = m->total_size / sizeof(float), N = (size_t)B * T;
	float *w = xcalloc(n, sizeof *w), *gr = xcalloc(n, sizeof *gr);
	float *mo = xcalloc(n, sizeof *mo), *ve = xcalloc(n, sizeof *ve);
	int32_t *tokens = xmalloc((N + 1) * sizeof *tokens);
	struct rng r;
	rng_seed(&r, 1, 0);
	for (size_t i = 0; i < n; i++)
		w[i] = 0.04f * (float)rng_uniform(&r) - 0.02f;
	for (size_t i = 0; i <= N; i++)
		tokens[i] = (int32_t)(rng_uniform(&r) * c.vocab_size);
	struct optim_config oc = {.lr = 3e-4f,
	                          .weight_decay = 0.1f,
	                          .beta1 = 0.9f,
	                          .beta2 = 0.95f,
	                          .eps = 1e-8f};
	double best = 1e30;
	int steps = gpt2_flops_per_batch(g) > 1e11 ? 4 : 12;
	for (int step = 1; step <= steps; step++) {
		double t0 = now_seconds();
		memset(gr, 0, m->total_size);
		gpt2_forward(g, w, tokens, tokens + 1);
		gpt2_backward(g, w, gr);
		optim_clip_grad_norm(gr, n, 1.0);
		optim_adamw_update(&oc, w, gr, mo, ve, n, (uint64_t)step);
		double dt = now_seconds() - t0;
		if (step > 1 && dt < best)
			best = dt;
	}
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double mib = 1 << 20;
	printf("tokens_per_s %.1f ms_per_step %.2f peak_mib %.1f params_mib "
	       "%.1f grads_mib %.1f adamw_mib %.1f activations_mib %.1f "
	       "parameters %zu\n",
	       (double)N / best, best * 1e3, (double)ru.ru_maxrss / 1024,
	       (double)m->total_size / mib, (double)m->total_size / mib,
	       2.0 * (double)m->total_size / mib,
	       (double)gpt2_activation_bytes(g) / mib, n);
	free(w), free(gr), free(mo), free(ve), free(tokens);
	gpt2_free(g);
	return 0;
}

/* Time each preset and print one line per preset. */
int
main(int argc, char **argv)
{
	if (version_requested(argc, argv, "cohort-gpt2-bench"))
		return 0;
	if (argc == 9 && strcmp(argv[1], "--train") == 0) {
		openblas_set_num_threads(atoi(argv[2]));
		return train_config(argv + 2);
	}
	int threads = argc > 1 ? atoi(argv[1]) : 1;
	if (threads < 1) {
		fprintf(stderr, "usage: cohort-gpt2-bench [THREADS]\n");
		return 2;
	}
	openblas_set_num_threads(threads);
	const struct preset presets[] = {
	    {"tiny V=64 C=16 NH=2 L=2", GPT2(12, 64, 2, 2, 16), 2, 8},
	    {"C=768 NH=12 L=1 V=50257", GPT2(1024, 50257, 1, 12, 768), 4, 64},
	    {"C=768 NH=12 L=1 V=256", GPT2(1024, 256, 1, 12, 768), 4, 64},
	};
	printf("# forward + backward, %d thread(s), best of the timings\n",
	       threads);
	for (size_t i = 0; i < ARRAY_LEN(presets); i++) {
		const struct preset *p = &presets[i];
		size_t act;
		double flops, s = best_step_seconds(p, &act, &flops);
		double tokens = (double)p->B * p->T;
		printf("%-26s B=%d T=%-3d %10.3f ms/step %9.2f us/token "
		       "%7.1f GFLOP/s  activations %.1f MiB\n",
		       p->what, p->B, p->T, s * 1e3, s * 1e6 / tokens,
		       flops / s / 1e9, (double)act / (1 << 20));
	}
	return 0;
}
