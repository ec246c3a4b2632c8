/* gpt2-layers.c: CPU forward/backward of GPT-2's layers: the matrix
 * products (Conv1D projections, attention per head, the tied LM head)
 * through CBLAS (OpenBLAS), the rest as plain loops over rows. */
#include "gpt2-layers.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* sqrt(2 / pi) and the cubic coefficient of GELU's tanh approximation. */
#define GELU_SCALE 0.7978845608028654f
#define GELU_CUBIC 0.044715f

/* out[b, t] = wte[token] + wpe[t], one row at a time. */
void
encoder_forward(float *restrict out, const int32_t *restrict tokens,
                const float *restrict wte, const float *restrict wpe, int B,
                int T, int C)
{
	for (int b = 0; b < B; b++)
		for (int t = 0; t < T; t++) {
			size_t n = (size_t)b * T + t;
			float *o = out + n * C;
			const float *we = wte + (size_t)tokens[n] * C;
			const float *pe = wpe + (size_t)t * C;
			for (int c = 0; c < C; c++)
				o[c] = we[c] + pe[c];
		}
}

/* Scatter each row's gradient into its token's and its position's rows. */
void
encoder_backward(float *restrict dwte, float *restrict dwpe,
                 const float *restrict dout, const int32_t *restrict tokens,
                 int B, int T, int C)
{
	for (int b = 0; b < B; b++)
		for (int t = 0; t < T; t++) {
			size_t n = (size_t)b * T + t;
			const float *d = dout + n * C;
			float *dwe = dwte + (size_t)tokens[n] * C;
			float *dpe = dwpe + (size_t)t * C;
			for (int c = 0; c < C; c++) {
				dwe[c] += d[c];
				dpe[c] += d[c];
			}
		}
}

/* Normalise each row to zero mean and unit variance, then scale and shift. */
void
layernorm_forward(float *restrict out, float *restrict mean,
                  float *restrict rstd, const float *restrict x,
                  const float *restrict w, const float *restrict b, int N,
                  int C)
{
	for (int n = 0; n < N; n++) {
		const float *xn = x + (size_t)n * C;
		float *on = out + (size_t)n * C;
		float mu = 0.0f, var = 0.0f;
		for (int c = 0; c < C; c++)
			mu += xn[c];
		mu /= (float)C;
		for (int c = 0; c < C; c++)
			var += (xn[c] - mu) * (xn[c] - mu);
		var /= (float)C;
		float rs = 1.0f / sqrtf(var + GPT2_LN_EPS);
		for (int c = 0; c < C; c++)
			on[c] = (xn[c] - mu) * rs * w[c] + b[c];
		mean[n] = mu;
		rstd[n] = rs;
	}
}

/* Per row: the affine part's gradients, then the normalisation's
 * Jacobian applied to g = dout * w. */
void
layernorm_backward(float *restrict dx, float *restrict dw, float *restrict db,
                   const float *restrict dout, const float *restrict x,
                   const float *restrict w, const float *restrict mean,
                   const float *restrict rstd, int N, int C)
{
	for (int n = 0; n < N; n++) {
		const float *xn = x + (size_t)n * C;
		const float *dn = dout + (size_t)n * C;
		float mu = mean[n], rs = rstd[n];
		float g_mean = 0.0f, gx_mean = 0.0f;
		for (int c = 0; c < C; c++) {
			float xhat = (xn[c] - mu) * rs;
			float g = dn[c] * w[c];
			dw[c] += dn[c] * xhat;
			db[c] += dn[c];
			g_mean += g;
			gx_mean += g * xhat;
		}
		if (dx == NULL)
			continue;
		g_mean /= (float)C;
		gx_mean /= (float)C;
		float *dxn = dx + (size_t)n * C;
		for (int c = 0; c < C; c++) {
			float xhat = (xn[c] - mu) * rs;
			dxn[c] = rs * (dn[c] * w[c] - g_mean - xhat * gx_mean);
		}
	}
}

/* out = x W + b: rows start as b, then one sgemm adds x[N, IC] W[IC, OC]. */
void
matmul_forward(float *restrict out, const float *restrict x,
               const float *restrict w, const float *restrict b, int N, int IC,
               int OC)
{
	for (int n = 0; n < N; n++)
		memcpy(out + (size_t)n * OC, b, (size_t)OC * sizeof(float));
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, OC, IC, 1.0f,
	            x, IC, w, OC, 1.0f, out, OC);
}

/* dW[IC, OC] += x^T[IC, N] dout[N, OC]; db += sum_n dout[n];
 * dx[N, IC] = dout W^T. */
void
matmul_backward(float *restrict dx, float *restrict dw, float *restrict db,
                const float *restrict dout, const float *restrict x,
                const float *restrict w, int N, int IC, int OC)
{
	cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, IC, OC, N, 1.0f, x,
	            IC, dout, OC, 1.0f, dw, OC);
	for (int n = 0; n < N; n++) {
		const float *row = dout + (size_t)n * OC;
		for (int o = 0; o < OC; o++)
			db[o] += row[o];
	}
	if (dx != NULL)
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, IC, OC,
		            1.0f, dout, OC, w, OC, 0.0f, dx, IC);
}

/* Row t of scores [T, T] becomes softmax over s <= t, zero for s > t. */
static void
causal_softmax(float *restrict p, int T)
{
	for (int t = 0; t < T; t++) {
		float *row = p + (size_t)t * T;
		float max = row[0], sum = 0.0f;
		for (int s = 1; s <= t; s++)
			if (row[s] > max)
				max = row[s];
		for (int s = 0; s <= t; s++) {
			row[s] = expf(row[s] - max);
			sum += row[s];
		}
		float inv = 1.0f / sum;
		for (int s = 0; s <= t; s++)
			row[s] *= inv;
		for (int s = t + 1; s < T; s++)
			row[s] = 0.0f;
	}
}

/* Per (b, h): S = q k^T / sqrt(hs) (one sgemm over the strided head slices
 * of qkv), P = causal softmax of S in att, out's head slice = P v. */
void
attention_forward(float *restrict out, float *restrict att,
                  const float *restrict qkv, int B, int T, int C, int NH)
{
	int hs = C / NH, C3 = 3 * C;
	float scale = 1.0f / sqrtf((float)hs);
	for (int b = 0; b < B; b++)
		for (int h = 0; h < NH; h++) {
			const float *q = qkv + (size_t)b * T * C3 + h * hs;
			const float *k = q + C, *v = q + 2 * C;
			float *p = att + ((size_t)b * NH + h) * T * T;
			float *y = out + (size_t)b * T * C + h * hs;
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T,
			            T, hs, scale, q, C3, k, C3, 0.0f, p, T);
			causal_softmax(p, T);
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
			            T, hs, T, 1.0f, p, T, v, C3, 0.0f, y, C);
		}
}

/* dP [T, T] becomes dS = P * (dP - rowsum(dP * P)), the softmax's Jacobian
 * row by row; masked entries (P = 0) get 0. */
static void
softmax_backward_rows(float *restrict d, const float *restrict p, int T)
{
	for (int t = 0; t < T; t++) {
		float *dr = d + (size_t)t * T;
		const float *pr = p + (size_t)t * T;
		float dot = 0.0f;
		for (int s = 0; s <= t; s++)
			dot += dr[s] * pr[s];
		for (int s = 0; s < T; s++)
			dr[s] = pr[s] * (dr[s] - dot);
	}
}

/* Per (b, h): dP = dY v^T, dv = P^T dY, dS from the softmax, dq = dS k
 * / sqrt(hs), dk = dS^T q / sqrt(hs); each sgemm writes its slice of dqkv. */
void
attention_backward(float *restrict dqkv, float *restrict dscores,
                   const float *restrict dout, const float *restrict qkv,
                   const float *restrict att, int B, int T, int C, int NH)
{
	int hs = C / NH, C3 = 3 * C;
	float scale = 1.0f / sqrtf((float)hs);
	for (int b = 0; b < B; b++)
		for (int h = 0; h < NH; h++) {
			size_t off = (size_t)b * T * C3 + h * hs;
			const float *q = qkv + off, *k = q + C, *v = q + 2 * C;
			float *dq = dqkv + off, *dk = dq + C, *dv = dq + 2 * C;
			const float *p = att + ((size_t)b * NH + h) * T * T;
			const float *dy = dout + (size_t)b * T * C + h * hs;
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T,
			            T, hs, 1.0f, dy, C, v, C3, 0.0f, dscores,
			            T);
			cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T,
			            hs, T, 1.0f, p, T, dy, C, 0.0f, dv, C3);
			softmax_backward_rows(dscores, p, T);
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
			            T, hs, T, scale, dscores, T, k, C3, 0.0f,
			            dq, C3);
			cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T,
			            hs, T, scale, dscores, T, q, C3, 0.0f, dk,
			            C3);
		}
}

/* out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
void
gelu_forward(float *restrict out, const float *restrict x, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		float xi = x[i];
		float u = GELU_SCALE * (xi + GELU_CUBIC * xi * xi * xi);
		out[i] = 0.5f * xi * (1.0f + tanhf(u));
	}
}

/* dx = dout * d/dx [0.5 x (1 + tanh u)], u as in the forward. */
void
gelu_backward(float *restrict dx, const float *restrict dout,
              const float *restrict x, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		float xi = x[i];
		float u = GELU_SCALE * (xi + GELU_CUBIC * xi * xi * xi);
		float th = tanhf(u);
		float du = GELU_SCALE * (1.0f + 3.0f * GELU_CUBIC * xi * xi);
		float grad =
		    0.5f * (1.0f + th) + 0.5f * xi * (1.0f - th * th) * du;
		dx[i] = dout[i] * grad;
	}
}

/* out = a + b. */
void
residual_forward(float *restrict out, const float *restrict a,
                 const float *restrict b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = a[i] + b[i];
}

/* Both addends receive the output's gradient unchanged. */
void
residual_backward(float *restrict da, float *restrict db,
                  const float *restrict dout, size_t n)
{
	if (da != NULL)
		memcpy(da, dout, n * sizeof(float));
	if (db != NULL)
		memcpy(db, dout, n * sizeof(float));
}

/* logits = x wte^T: one sgemm, wte read as the transposed weight. */
void
lmhead_forward(float *restrict logits, const float *restrict x,
               const float *restrict wte, int N, int C, int V)
{
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, V, C, 1.0f, x,
	            C, wte, C, 0.0f, logits, V);
}

/* dwte[V, C] += dlogits^T[V, N] x[N, C]; dx[N, C] = dlogits[N, V] wte. */
void
lmhead_backward(float *restrict dx, float *restrict dwte,
                const float *restrict dlogits, const float *restrict x,
                const float *restrict wte, int N, int C, int V)
{
	cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, V, C, N, 1.0f,
	            dlogits, V, x, C, 1.0f, dwte, C);
	if (dx != NULL)
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, V,
		            1.0f, dlogits, V, wte, C, 0.0f, dx, C);
}

/* One row's loss term logsumexp(z) - z[y], the row max subtracted before
 * exponentiating; with dz, also dz = (softmax(z) - onehot(y)) * scale,
 * the exponentials written first and normalised after (dz may be z: z[y]
 * is read before anything is written). */
static double
row_crossentropy(float *dz, const float *z, int y, int V, float scale)
{
	float zmax = z[0], zy = z[y];
	for (int v = 1; v < V; v++)
		if (z[v] > zmax)
			zmax = z[v];
	double sum = 0.0;
	if (dz == NULL) {
		for (int v = 0; v < V; v++)
			sum += expf(z[v] - zmax);
		return (double)zmax + log(sum) - (double)zy;
	}
	for (int v = 0; v < V; v++) {
		dz[v] = expf(z[v] - zmax);
		sum += dz[v];
	}
	float k = (float)(scale / sum);
	for (int v = 0; v < V; v++)
		dz[v] *= k;
	dz[y] -= scale;
	return (double)zmax + log(sum) - (double)zy;
}

/* Count the rows that are not ignored, then sum the counted rows' terms;
 * ignored rows get a zero gradient. logits and dlogits may alias: no
 * restrict. */
double
lm_crossentropy(float *dlogits, const float *logits, const int32_t *targets,
                int N, int V)
{
	int count = 0;
	for (int n = 0; n < N; n++)
		count += targets[n] != -1;
	float scale = count > 0 ? 1.0f / (float)count : 0.0f;
	double total = 0.0;
	for (int n = 0; n < N; n++) {
		float *dz = dlogits != NULL ? dlogits + (size_t)n * V : NULL;
		if (targets[n] == -1) {
			if (dz != NULL)
				memset(dz, 0, (size_t)V * sizeof(float));
			continue;
		}
		total += row_crossentropy(dz, logits + (size_t)n * V,
		                          targets[n], V, scale);
	}
	return count > 0 ? total / count : 0.0;
}
