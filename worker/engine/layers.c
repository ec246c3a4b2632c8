/* layers.c: CPU forward/backward of the engine's layers: matrix work through
 * CBLAS (OpenBLAS), the rest as simple loops the compiler vectorises. */
#include "layers.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "rng.h"

/* y = x W^T + b: rows of y start as b, then one sgemm adds x W^T. */
void
linear_forward(float *restrict y, const float *restrict x,
               const float *restrict w, const float *restrict b, int B, int in,
               int out)
{
	for (int i = 0; i < B; i++)
		memcpy(y + (size_t)i * out, b, (size_t)out * sizeof(float));
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, out, in, 1.0f,
	            x, in, w, in, 1.0f, y, out);
}

/* dW[out, in] += dy^T[out, B] x[B, in]; db += sum_b dy[b]; dx = dy[B, out] W.
 */
void
linear_backward(float *restrict dx, float *restrict dw, float *restrict db,
                const float *restrict dy, const float *restrict x,
                const float *restrict w, int B, int in, int out)
{
	cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, B, 1.0f,
	            dy, out, x, in, 1.0f, dw, in);
	for (int i = 0; i < B; i++) {
		const float *row = dy + (size_t)i * out;
		for (int o = 0; o < out; o++)
			db[o] += row[o];
	}
	if (dx != NULL)
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, in,
		            out, 1.0f, dy, out, w, in, 0.0f, dx, in);
}

/* Unfold one image x [C, H, W] into col [C*K*K, OH*OW]:
 * col[(c*K + ki)*K + kj][oh*OW + ow] = x[c][oh + ki][ow + kj]. */
static void
im2col(float *restrict col, const float *restrict x, int C, int H, int W, int K)
{
	int OH = H - K + 1, OW = W - K + 1;
	for (int c = 0; c < C; c++)
		for (int ki = 0; ki < K; ki++)
			for (int kj = 0; kj < K; kj++) {
				float *dst =
				    col +
				    (size_t)((c * K + ki) * K + kj) * OH * OW;
				const float *src =
				    x + ((size_t)c * H + ki) * W + kj;
				for (int oh = 0; oh < OH; oh++)
					memcpy(dst + (size_t)oh * OW,
					       src + (size_t)oh * W,
					       (size_t)OW * sizeof(float));
			}
}

/* Fold col [C*K*K, OH*OW] back into dx [C, H, W], summing overlaps (the
 * adjoint of im2col). */
static void
col2im(float *restrict dx, const float *restrict col, int C, int H, int W,
       int K)
{
	int OH = H - K + 1, OW = W - K + 1;
	memset(dx, 0, (size_t)C * H * W * sizeof(float));
	for (int c = 0; c < C; c++)
		for (int ki = 0; ki < K; ki++)
			for (int kj = 0; kj < K; kj++) {
				const float *src =
				    col +
				    (size_t)((c * K + ki) * K + kj) * OH * OW;
				float *dst = dx + ((size_t)c * H + ki) * W + kj;
				for (int oh = 0; oh < OH; oh++)
					for (int ow = 0; ow < OW; ow++)
						dst[(size_t)oh * W + ow] +=
						    src[(size_t)oh * OW + ow];
			}
}

/* Per image b: y_b[OC, OH*OW] = W[OC, C*K*K] col_b + b (bias broadcast). */
void
conv2d_forward(float *restrict y, float *restrict col, const float *restrict x,
               const float *restrict w, const float *restrict b, int B, int C,
               int H, int W, int OC, int K)
{
	int OH = H - K + 1, OW = W - K + 1, CKK = C * K * K, P = OH * OW;
	for (int i = 0; i < B; i++) {
		float *col_i = col + (size_t)i * CKK * P;
		float *y_i = y + (size_t)i * OC * P;
		im2col(col_i, x + (size_t)i * C * H * W, C, H, W, K);
		for (int o = 0; o < OC; o++)
			for (int p = 0; p < P; p++)
				y_i[(size_t)o * P + p] = b[o];
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OC, P,
		            CKK, 1.0f, w, CKK, col_i, P, 1.0f, y_i, P);
	}
}

/* Per image b: dW += dy_b col_b^T, db += row sums of dy_b,
 * dcol = W^T dy_b and dx_b = col2im(dcol). */
void
conv2d_backward(float *restrict dx, float *restrict dcol, float *restrict dw,
                float *restrict db, const float *restrict dy,
                const float *restrict col, const float *restrict w, int B,
                int C, int H, int W, int OC, int K)
{
	int OH = H - K + 1, OW = W - K + 1, CKK = C * K * K, P = OH * OW;
	for (int i = 0; i < B; i++) {
		const float *col_i = col + (size_t)i * CKK * P;
		const float *dy_i = dy + (size_t)i * OC * P;
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OC, CKK, P,
		            1.0f, dy_i, P, col_i, P, 1.0f, dw, CKK);
		for (int o = 0; o < OC; o++) {
			const float *row = dy_i + (size_t)o * P;
			float s = 0.0f;
			for (int p = 0; p < P; p++)
				s += row[p];
			db[o] += s;
		}
		if (dx == NULL)
			continue;
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, CKK, P, OC,
		            1.0f, w, CKK, dy_i, P, 0.0f, dcol, P);
		col2im(dx + (size_t)i * C * H * W, dcol, C, H, W, K);
	}
}

/* y[p][i][j] = max of x[p][2i..2i+1][2j..2j+1]; argmax keeps where it was. */
void
maxpool_forward(float *restrict y, int32_t *restrict argmax,
                const float *restrict x, int P, int H, int W)
{
	int OH = H / 2, OW = W / 2;
	for (int p = 0; p < P; p++) {
		const float *xp = x + (size_t)p * H * W;
		float *yp = y + (size_t)p * OH * OW;
		int32_t *ap = argmax + (size_t)p * OH * OW;
		for (int i = 0; i < OH; i++)
			for (int j = 0; j < OW; j++) {
				int best = 2 * i * W + 2 * j;
				int cand[3] = {best + 1, best + W,
				               best + W + 1};
				for (int k = 0; k < 3; k++)
					if (xp[cand[k]] > xp[best])
						best = cand[k];
				yp[i * OW + j] = xp[best];
				ap[i * OW + j] = best;
			}
	}
}

/* dx is zero except at each window's argmax, which receives that output's dy.
 */
void
maxpool_backward(float *restrict dx, const float *restrict dy,
                 const int32_t *restrict argmax, int P, int H, int W)
{
	int OH = H / 2, OW = W / 2;
	memset(dx, 0, (size_t)P * H * W * sizeof(float));
	for (int p = 0; p < P; p++) {
		float *dxp = dx + (size_t)p * H * W;
		const float *dyp = dy + (size_t)p * OH * OW;
		const int32_t *ap = argmax + (size_t)p * OH * OW;
		for (int k = 0; k < OH * OW; k++)
			dxp[ap[k]] += dyp[k];
	}
}

/* y = max(x, 0). */
void
relu_forward(float *restrict y, const float *restrict x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

/* dx = dy * [y > 0]. */
void
relu_backward(float *restrict dx, const float *restrict dy,
              const float *restrict y, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

/* Key of one step's masks: (seed, step) through rng_derive. */
uint64_t
dropout_key(uint64_t seed, uint64_t step)
{
	return rng_derive(seed, "dropout", step);
}

/* y = x * scale where kept (u >= p), 0 where dropped; scale = 1 / (1 - p). */
void
dropout_forward(float *restrict y, const float *restrict x, size_t n, float p,
                uint64_t key)
{
	float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
	for (size_t i = 0; i < n; i++)
		y[i] = rng_hash_uniform(key, i) >= p ? x[i] * scale : 0.0f;
}

/* dx = dy * the forward's mask (recomputed from key). */
void
dropout_backward(float *restrict dx, const float *restrict dy, size_t n,
                 float p, uint64_t key)
{
	dropout_forward(dx, dy, n, p, key);
}

/* Stable softmax cross-entropy: subtract the row max before exponentiating. */
double
softmax_crossentropy(float *restrict dlogits, uint32_t *restrict correct,
                     const float *restrict logits,
                     const int32_t *restrict labels, int B, int V)
{
	double total = 0.0;
	for (int i = 0; i < B; i++) {
		const float *z = logits + (size_t)i * V;
		int arg = 0;
		for (int v = 1; v < V; v++)
			if (z[v] > z[arg])
				arg = v;
		float zmax = z[arg];
		double sum = 0.0;
		for (int v = 0; v < V; v++)
			sum += exp((double)(z[v] - zmax));
		double lse = (double)zmax + log(sum);
		int y = labels[i];
		total += lse - (double)z[y];
		*correct += arg == y;
		if (dlogits == NULL)
			continue;
		float *dz = dlogits + (size_t)i * V;
		for (int v = 0; v < V; v++)
			dz[v] = (float)(exp((double)z[v] - lse) / B);
		dz[y] -= 1.0f / (float)B;
	}
	return total / B;
}
