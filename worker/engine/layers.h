/* layers.h: the CPU layers of the training engine, llm.c style. Each layer is
 * a NAME_forward / NAME_backward pair over flat row-major float buffers; a
 * GPU backend implements the same names and shapes so the two can be
 * compared element for element.
 *
 * Conventions shared by every backward function:
 * - parameter gradients (dw, db) are accumulated (+=), so the caller zeroes
 *   them once per step;
 * - the input gradient dx is overwritten, and skipped when dx is NULL (the
 *   first layer of a network never needs it).
 *
 * flatten has no function: NCHW activations [B, C, H, W] are already laid
 * out as [B, C*H*W] rows, so a flatten is the same buffer read as a matrix. */
#ifndef COHORT_LAYERS_H
#define COHORT_LAYERS_H

#include <stddef.h>
#include <stdint.h>

/* y[B, out] = x[B, in] W^T + b, with W stored [out, in] like nn.Linear. */
void linear_forward(float *y, const float *x, const float *w, const float *b,
                    int B, int in, int out);
/* dW += dy^T x, db += column sums of dy, dx = dy W. */
void linear_backward(float *dx, float *dw, float *db, const float *dy,
                     const float *x, const float *w, int B, int in, int out);

/* Valid 5x5-style convolution (stride 1, no padding) of x [B, C, H, W] with
 * w [OC, C, K, K] and b [OC] into y [B, OC, H-K+1, W-K+1]; col receives the
 * im2col matrices [B, C*K*K, OH*OW] that backward reuses. */
void conv2d_forward(float *y, float *col, const float *x, const float *w,
                    const float *b, int B, int C, int H, int W, int OC, int K);
/* dW += dy_b col_b^T and db += sums of dy over each sample b; dx = col2im of
 * W^T dy_b, using dcol [C*K*K, OH*OW] as scratch (unused when dx is NULL). */
void conv2d_backward(float *dx, float *dcol, float *dw, float *db,
                     const float *dy, const float *col, const float *w, int B,
                     int C, int H, int W, int OC, int K);

/* 2x2 max pooling with stride 2 over planes [P, H, W] (P = batch * channels)
 * into [P, H/2, W/2] (odd edges dropped, like nn.MaxPool2d); argmax records
 * for every output the index of the winning input inside its plane. */
void maxpool_forward(float *y, int32_t *argmax, const float *x, int P, int H,
                     int W);
/* dx = 0 except dx[argmax] = dy: the gradient flows to the maximum only. */
void maxpool_backward(float *dx, const float *dy, const int32_t *argmax, int P,
                      int H, int W);

/* y = max(x, 0). */
void relu_forward(float *y, const float *x, size_t n);
/* dx = dy where the forward output y > 0, else 0. */
void relu_backward(float *dx, const float *dy, const float *y, size_t n);

/* The key of one training step's dropout masks, derived from (seed, step). */
uint64_t dropout_key(uint64_t seed, uint64_t step);
/* Inverted dropout: element i is kept with scale 1/(1-p) when
 * rng_hash_uniform(key, i) >= p, else zeroed. The mask is a pure function of
 * (key, i), so backward recomputes it and a GPU kernel reproduces it. */
void dropout_forward(float *y, const float *x, size_t n, float p, uint64_t key);
/* dx = dy * mask (the same mask as the forward of that key). */
void dropout_backward(float *dx, const float *dy, size_t n, float p,
                      uint64_t key);

/* Softmax cross-entropy of logits [B, V] against labels, averaged over the
 * batch: loss = mean_b (logsumexp(z_b) - z_b[label_b]). Writes
 * dlogits = (softmax(z) - onehot(label)) / B unless dlogits is NULL, adds the
 * number of rows whose argmax equals the label to *correct, returns the loss.
 */
double softmax_crossentropy(float *dlogits, uint32_t *correct,
                            const float *logits, const int32_t *labels, int B,
                            int V);

#endif
