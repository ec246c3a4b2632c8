/* gpt2-layers.h: the CPU layers of GPT-2 (Radford et al. 2019, as Hugging
 * Face's GPT2LMHeadModel computes it), as NAME_forward / NAME_backward pairs
 * in the conventions of layers.h: flat row-major float buffers, parameter
 * gradients accumulated (+=), input gradients overwritten (and skipped when
 * NULL where the layer allows it).
 *
 * Shapes: B batch, T sequence, C channels, NH heads (head size hs = C/NH),
 * V vocabulary; N = B*T rows (token positions), each a row of C floats, so
 * an activation [B, T, C] is also a matrix [N, C]. */
#ifndef COHORT_GPT2_LAYERS_H
#define COHORT_GPT2_LAYERS_H

#include <stddef.h>
#include <stdint.h>

/* The epsilon of GPT-2's layer norms (nn.LayerNorm's default). */
#define GPT2_LN_EPS 1e-5f

/* out[b, t, :] = wte[tokens[b, t], :] + wpe[t, :], with wte [V, C] and
 * wpe [maxT, C], T <= maxT; tokens must lie in [0, V). */
void encoder_forward(float *out, const int32_t *tokens, const float *wte,
                     const float *wpe, int B, int T, int C);
/* dwte[tokens[b, t]] += dout[b, t] and dwpe[t] += dout[b, t]: a token seen
 * twice receives both gradients. */
void encoder_backward(float *dwte, float *dwpe, const float *dout,
                      const int32_t *tokens, int B, int T, int C);

/* Over each row x of [N, C]: mu = mean(x), var = mean((x - mu)^2) (biased,
 * as PyTorch), rstd = 1 / sqrt(var + eps), out = (x - mu) * rstd * w + b.
 * mean and rstd [N] are kept for backward. */
void layernorm_forward(float *out, float *mean, float *rstd, const float *x,
                       const float *w, const float *b, int N, int C);
/* With xhat = (x - mu) * rstd and g = dout * w: dw += sum_n dout * xhat,
 * db += sum_n dout, dx = rstd * (g - mean(g) - xhat * mean(g * xhat)). */
void layernorm_backward(float *dx, float *dw, float *db, const float *dout,
                        const float *x, const float *w, const float *mean,
                        const float *rstd, int N, int C);

/* out[N, OC] = x[N, IC] W + b with W stored [IC, OC], the layout of Hugging
 * Face's Conv1D (c_attn, c_proj, c_fc): the transpose of nn.Linear's. */
void matmul_forward(float *out, const float *x, const float *w, const float *b,
                    int N, int IC, int OC);
/* dW += x^T dout, db += column sums of dout, dx = dout W^T. */
void matmul_backward(float *dx, float *dw, float *db, const float *dout,
                     const float *x, const float *w, int N, int IC, int OC);

/* Causal self-attention over the fused qkv [B, T, 3C] (each row q | k | v,
 * each C split into NH heads of hs): per (b, h), scores
 * S = q k^T / sqrt(hs) with S[t, s] = -inf for s > t, P = softmax rows of S,
 * out[b, t, h*hs:(h+1)*hs] = sum_s P[t, s] v_s. att [B, NH, T, T] receives P
 * (zero above the diagonal) for backward. */
void attention_forward(float *out, float *att, const float *qkv, int B, int T,
                       int C, int NH);
/* Per (b, h), with dout's head slice dY [T, hs]: dP = dY v^T, dv = P^T dY,
 * dS = P * (dP - rowsum(dP * P)), dq = dS k / sqrt(hs),
 * dk = dS^T q / sqrt(hs). dqkv [B, T, 3C] is overwritten; dscores [T, T] is
 * scratch. */
void attention_backward(float *dqkv, float *dscores, const float *dout,
                        const float *qkv, const float *att, int B, int T, int C,
                        int NH);

/* GELU, tanh approximation (GPT-2's, torch's gelu(approximate='tanh')):
 * out = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3). */
void gelu_forward(float *out, const float *x, size_t n);
/* dx = dout * (0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) du/dx),
 * du/dx = sqrt(2/pi) (1 + 3 * 0.044715 x^2). */
void gelu_backward(float *dx, const float *dout, const float *x, size_t n);

/* out = a + b (the residual stream plus a block's branch). */
void residual_forward(float *out, const float *a, const float *b, size_t n);
/* da = dout and db = dout (each skipped when NULL). */
void residual_backward(float *da, float *db, const float *dout, size_t n);

/* The language-model head tied to the token embedding:
 * logits[N, V] = x[N, C] wte^T, wte [V, C]. */
void lmhead_forward(float *logits, const float *x, const float *wte, int N,
                    int C, int V);
/* dwte += dlogits^T x, dx = dlogits wte. */
void lmhead_backward(float *dx, float *dwte, const float *dlogits,
                     const float *x, const float *wte, int N, int C, int V);

/* Softmax cross-entropy of logits [N, V] against targets, the mean over the
 * rows whose target is not -1 (ignored, like PyTorch's ignore_index):
 * loss = mean_n (logsumexp(z_n) - z_n[target_n]); 0 when every row is
 * ignored. Unless dlogits is NULL, writes dlogits = (softmax(z_n) -
 * onehot(target_n)) / count for the counted rows and 0 for ignored ones;
 * dlogits may be logits itself (in place, saving an [N, V] buffer). */
double lm_crossentropy(float *dlogits, const float *logits,
                       const int32_t *targets, int N, int V);

#endif
