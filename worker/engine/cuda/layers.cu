// layers.cu: the GPU twins of worker/engine/layers.c: matrix products through
// cuBLAS (row-major, like the CBLAS calls they mirror), the rest as our own
// kernels. Each wrapper cuda_NAME takes the CPU function's arguments as
// device pointers; kernels are queued on the context's stream.
#include "common.cuh"
#include "rng.h"

// Row-major C[M,N] = alpha op(A) op(B) + beta C, batched with strides (batch
// 1: one product). cuBLAS is column-major, where a row-major matrix reads as
// its transpose, so C^T = op(B)^T op(A)^T is computed with A and B swapped.
static void
gemm_rm(struct cuda_ctx *c, int trans_a, int trans_b, int M, int N, int K,
        const float *A, int lda, long long stride_a, const float *B, int ldb,
        long long stride_b, float beta, float *C, int ldc, long long stride_c,
        int batch)
{
	const float one = 1.0f;
	cublasOperation_t ta = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
	cublasOperation_t tb = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
	if (c->failed)
		return;
	if (batch == 1)
		CUBLAS_CHECK(c, cublasSgemm(c->blas, tb, ta, N, M, K, &one, B,
		                            ldb, A, lda, &beta, C, ldc));
	else
		CUBLAS_CHECK(c, cublasSgemmStridedBatched(
		                    c->blas, tb, ta, N, M, K, &one, B, ldb,
		                    stride_b, A, lda, stride_a, &beta, C, ldc,
		                    stride_c, batch));
}

// y[r, j] = b[j / inner % cols]: rows of a bias (linear: inner 1) or one
// bias per channel plane (conv: inner OH*OW, cols OC).
__global__ static void
bias_fill_kernel(float *y, const float *b, size_t n, int cols, int inner)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x)
		y[i] = b[(i / inner) % cols];
}

// db[j] += sum_r dy[r, j] over rows r = 0..B-1, one thread per column, rows in
// order (the CPU's order).
__global__ static void
column_sum_kernel(float *db, const float *dy, int B, int out)
{
	int j = blockIdx.x * blockDim.x + threadIdx.x;
	if (j >= out)
		return;
	float s = db[j];
	for (int r = 0; r < B; r++)
		s += dy[(size_t)r * out + j];
	db[j] = s;
}

// db[o] += sum over samples b and positions p of dy[b, o, p]: one block per
// channel o, a per-sample partial sum as the CPU keeps, then a tree.
__global__ static void
channel_sum_kernel(float *db, const float *dy, int B, int OC, int P)
{
	__shared__ float part[CUDA_THREADS];
	int o = blockIdx.x;
	float s = 0.0f;
	for (int b = 0; b < B; b++) {
		const float *row = dy + ((size_t)b * OC + o) * P;
		for (int p = threadIdx.x; p < P; p += blockDim.x)
			s += row[p];
	}
	part[threadIdx.x] = s;
	__syncthreads();
	for (int half = blockDim.x / 2; half > 0; half /= 2) {
		if ((int)threadIdx.x < half)
			part[threadIdx.x] += part[threadIdx.x + half];
		__syncthreads();
	}
	if (threadIdx.x == 0)
		db[o] += part[0];
}

// dw[j] += sum_b dwb[b, j], samples in order.
__global__ static void
batch_sum_kernel(float *dw, const float *dwb, int B, size_t n)
{
	for (size_t j = blockIdx.x * (size_t)blockDim.x + threadIdx.x; j < n;
	     j += (size_t)gridDim.x * blockDim.x) {
		float s = 0.0f;
		for (int b = 0; b < B; b++)
			s += dwb[(size_t)b * n + j];
		dw[j] += s;
	}
}

// y[B, out] = x[B, in] W^T + b: rows start as b, one sgemm adds x W^T.
void
cuda_linear_forward(struct cuda_ctx *c, float *y, const float *x,
                    const float *w, const float *b, int B, int in, int out)
{
	size_t n = (size_t)B * out;
	if (c->failed)
		return;
	bias_fill_kernel<<<cuda_blocks(n), CUDA_THREADS, 0, c->stream>>>(
	    y, b, n, out, 1);
	CUDA_LAUNCHED(c, bias_fill_kernel);
	gemm_rm(c, 0, 1, B, out, in, x, in, 0, w, in, 0, 1.0f, y, out, 0, 1);
}

// dW[out, in] += dy^T x; db += column sums of dy; dx = dy W (skipped if NULL).
void
cuda_linear_backward(struct cuda_ctx *c, float *dx, float *dw, float *db,
                     const float *dy, const float *x, const float *w, int B,
                     int in, int out)
{
	if (c->failed)
		return;
	gemm_rm(c, 1, 0, out, in, B, dy, out, 0, x, in, 0, 1.0f, dw, in, 0, 1);
	column_sum_kernel<<<cuda_blocks((size_t)out), CUDA_THREADS, 0,
	                    c->stream>>>(db, dy, B, out);
	CUDA_LAUNCHED(c, column_sum_kernel);
	if (dx != NULL)
		gemm_rm(c, 0, 0, B, in, out, dy, out, 0, w, in, 0, 0.0f, dx, in,
		        0, 1);
}

// col[b][(ch*K + ki)*K + kj][oh*OW + ow] = x[b][ch][oh + ki][ow + kj], one
// thread per element of col.
__global__ static void
im2col_kernel(float *col, const float *x, int B, int C, int H, int W, int K)
{
	int OH = H - K + 1, OW = W - K + 1;
	size_t P = (size_t)OH * OW, rows = (size_t)C * K * K;
	size_t n = (size_t)B * rows * P;
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x) {
		size_t p = i % P, r = i / P % rows, b = i / P / rows;
		int kj = (int)(r % K), ki = (int)(r / K % K),
		    ch = (int)(r / K / K);
		int oh = (int)(p / OW), ow = (int)(p % OW);
		col[i] = x[((b * C + ch) * H + oh + ki) * W + ow + kj];
	}
}

// dx[b][ch][h][w] = sum over (ki, kj), in that order, of the col entries
// im2col copied x[b][ch][h][w] to: the adjoint of im2col, as a gather.
__global__ static void
col2im_kernel(float *dx, const float *col, int B, int C, int H, int W, int K)
{
	int OH = H - K + 1, OW = W - K + 1;
	size_t P = (size_t)OH * OW;
	size_t n = (size_t)B * C * H * W;
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x) {
		int w = (int)(i % W), h = (int)(i / W % H);
		size_t ch = i / W / H % C, b = i / W / H / C;
		const float *cb = col + b * (size_t)C * K * K * P;
		float s = 0.0f;
		for (int ki = 0; ki < K; ki++)
			for (int kj = 0; kj < K; kj++) {
				int oh = h - ki, ow = w - kj;
				if (oh < 0 || oh >= OH || ow < 0 || ow >= OW)
					continue;
				s += cb[((ch * K + ki) * K + kj) * P +
				        (size_t)oh * OW + ow];
			}
		dx[i] = s;
	}
}

// Per sample b: y_b[OC, OH*OW] = W[OC, C*K*K] col_b + bias, all samples in one
// strided-batched sgemm after one im2col of the batch.
void
cuda_conv2d_forward(struct cuda_ctx *c, float *y, float *col, const float *x,
                    const float *w, const float *b, int B, int C, int H, int W,
                    int OC, int K)
{
	int OH = H - K + 1, OW = W - K + 1, CKK = C * K * K, P = OH * OW;
	size_t ncol = (size_t)B * CKK * P, ny = (size_t)B * OC * P;
	if (c->failed)
		return;
	im2col_kernel<<<cuda_blocks(ncol), CUDA_THREADS, 0, c->stream>>>(
	    col, x, B, C, H, W, K);
	CUDA_LAUNCHED(c, im2col_kernel);
	bias_fill_kernel<<<cuda_blocks(ny), CUDA_THREADS, 0, c->stream>>>(
	    y, b, ny, OC, P);
	CUDA_LAUNCHED(c, bias_fill_kernel);
	gemm_rm(c, 0, 0, OC, P, CKK, w, CKK, 0, col, P, (long long)CKK * P,
	        1.0f, y, P, (long long)OC * P, B);
}

// Per sample b: dwb_b = dy_b col_b^T, then dW += sum_b dwb_b in order;
// db += sums of dy per channel; dcol_b = W^T dy_b and dx_b = col2im(dcol_b).
void
cuda_conv2d_backward(struct cuda_ctx *c, float *dx, float *dcol, float *dwb,
                     float *dw, float *db, const float *dy, const float *col,
                     const float *w, int B, int C, int H, int W, int OC, int K)
{
	int OH = H - K + 1, OW = W - K + 1, CKK = C * K * K, P = OH * OW;
	size_t nw = (size_t)OC * CKK;
	if (c->failed)
		return;
	gemm_rm(c, 0, 1, OC, CKK, P, dy, P, (long long)OC * P, col, P,
	        (long long)CKK * P, 0.0f, dwb, CKK, (long long)nw, B);
	batch_sum_kernel<<<cuda_blocks(nw), CUDA_THREADS, 0, c->stream>>>(
	    dw, dwb, B, nw);
	CUDA_LAUNCHED(c, batch_sum_kernel);
	channel_sum_kernel<<<OC, CUDA_THREADS, 0, c->stream>>>(db, dy, B, OC,
	                                                       P);
	CUDA_LAUNCHED(c, channel_sum_kernel);
	if (dx == NULL)
		return;
	gemm_rm(c, 1, 0, CKK, P, OC, w, CKK, 0, dy, P, (long long)OC * P, 0.0f,
	        dcol, P, (long long)CKK * P, B);
	size_t nx = (size_t)B * C * H * W;
	col2im_kernel<<<cuda_blocks(nx), CUDA_THREADS, 0, c->stream>>>(
	    dx, dcol, B, C, H, W, K);
	CUDA_LAUNCHED(c, col2im_kernel);
}

// y[p][i][j] = max of the 2x2 window at (2i, 2j) of plane p, first maximum
// wins (candidates in the CPU's order); argmax keeps its index in the plane.
__global__ static void
maxpool_forward_kernel(float *y, int32_t *argmax, const float *x, int P, int H,
                       int W)
{
	int OH = H / 2, OW = W / 2;
	size_t n = (size_t)P * OH * OW;
	for (size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < n;
	     k += (size_t)gridDim.x * blockDim.x) {
		int j = (int)(k % OW), i = (int)(k / OW % OH);
		const float *xp = x + k / OW / OH * H * W;
		int best = 2 * i * W + 2 * j;
		int cand[3] = {best + 1, best + W, best + W + 1};
		for (int q = 0; q < 3; q++)
			if (xp[cand[q]] > xp[best])
				best = cand[q];
		y[k] = xp[best];
		argmax[k] = best;
	}
}

// dx[p][h][w] = dy of the window containing (h, w) if that window's argmax is
// (h, w), else 0: windows do not overlap, so each input has one candidate.
__global__ static void
maxpool_backward_kernel(float *dx, const float *dy, const int32_t *argmax,
                        int P, int H, int W)
{
	int OH = H / 2, OW = W / 2;
	size_t n = (size_t)P * H * W;
	for (size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < n;
	     k += (size_t)gridDim.x * blockDim.x) {
		int w = (int)(k % W), h = (int)(k / W % H);
		size_t p = k / W / H;
		int i = h / 2, j = w / 2;
		float g = 0.0f;
		if (i < OH && j < OW) {
			size_t o = (p * OH + i) * OW + j;
			if (argmax[o] == h * W + w)
				g = dy[o];
		}
		dx[k] = g;
	}
}

// 2x2 max pooling, stride 2, of planes [P, H, W] into [P, H/2, W/2].
void
cuda_maxpool_forward(struct cuda_ctx *c, float *y, int32_t *argmax,
                     const float *x, int P, int H, int W)
{
	size_t n = (size_t)P * (H / 2) * (W / 2);
	if (c->failed)
		return;
	maxpool_forward_kernel<<<cuda_blocks(n), CUDA_THREADS, 0, c->stream>>>(
	    y, argmax, x, P, H, W);
	CUDA_LAUNCHED(c, maxpool_forward_kernel);
}

// dx = 0 except dx[argmax] = dy.
void
cuda_maxpool_backward(struct cuda_ctx *c, float *dx, const float *dy,
                      const int32_t *argmax, int P, int H, int W)
{
	size_t n = (size_t)P * H * W;
	if (c->failed)
		return;
	maxpool_backward_kernel<<<cuda_blocks(n), CUDA_THREADS, 0, c->stream>>>(
	    dx, dy, argmax, P, H, W);
	CUDA_LAUNCHED(c, maxpool_backward_kernel);
}

// y = max(x, 0).
__global__ static void
relu_forward_kernel(float *y, const float *x, size_t n)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x)
		y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

// dx = dy * [y > 0].
__global__ static void
relu_backward_kernel(float *dx, const float *dy, const float *y, size_t n)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x)
		dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

// y = max(x, 0).
void
cuda_relu_forward(struct cuda_ctx *c, float *y, const float *x, size_t n)
{
	if (c->failed)
		return;
	relu_forward_kernel<<<cuda_blocks(n), CUDA_THREADS, 0, c->stream>>>(
	    y, x, n);
	CUDA_LAUNCHED(c, relu_forward_kernel);
}

// dx = dy where y > 0, else 0.
void
cuda_relu_backward(struct cuda_ctx *c, float *dx, const float *dy,
                   const float *y, size_t n)
{
	if (c->failed)
		return;
	relu_backward_kernel<<<cuda_blocks(n), CUDA_THREADS, 0, c->stream>>>(
	    dx, dy, y, n);
	CUDA_LAUNCHED(c, relu_backward_kernel);
}

// y[i] = x[i] / (1 - p) if rng_hash_uniform(key, i) >= p else 0: the CPU's
// counter-based mask, bit for bit (same hash, same element counter).
__global__ static void
dropout_kernel(float *y, const float *x, size_t n, float p, uint64_t key)
{
	float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x)
		y[i] = rng_hash_uniform(key, i) >= p ? x[i] * scale : 0.0f;
}

// Inverted dropout with the mask of key.
void
cuda_dropout_forward(struct cuda_ctx *c, float *y, const float *x, size_t n,
                     float p, uint64_t key)
{
	if (c->failed)
		return;
	dropout_kernel<<<cuda_blocks(n), CUDA_THREADS, 0, c->stream>>>(y, x, n,
	                                                               p, key);
	CUDA_LAUNCHED(c, dropout_kernel);
}

// dx = dy * the forward's mask, recomputed from key.
void
cuda_dropout_backward(struct cuda_ctx *c, float *dx, const float *dy, size_t n,
                      float p, uint64_t key)
{
	cuda_dropout_forward(c, dx, dy, n, p, key);
}

// One warp per row b of logits z [B, V]: m = max z (first index wins),
// lse = m + log sum exp(z - m) in double, row_loss = lse - z[label],
// dz = (exp(z - lse) - onehot) / B; as the CPU, with the sum split across
// the warp's lanes.
__global__ static void
softmax_crossentropy_kernel(float *dlogits, double *row_loss,
                            int32_t *row_correct, const float *logits,
                            const int32_t *labels, int B, int V)
{
	int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
	int lane = threadIdx.x % 32;
	if (row >= B)
		return;
	const float *z = logits + (size_t)row * V;
	int arg = -1;
	float best = 0.0f;
	for (int v = lane; v < V; v += 32)
		if (arg < 0 || z[v] > best)
			best = z[v], arg = v;
	for (int off = 16; off > 0; off /= 2) {
		float ob = __shfl_down_sync(0xffffffffu, best, off);
		int oa = __shfl_down_sync(0xffffffffu, arg, off);
		if (oa >= 0 &&
		    (arg < 0 || ob > best || (ob == best && oa < arg)))
			best = ob, arg = oa;
	}
	arg = __shfl_sync(0xffffffffu, arg, 0);
	float zmax = z[arg];
	double sum = 0.0;
	for (int v = lane; v < V; v += 32)
		sum += exp((double)(z[v] - zmax));
	for (int off = 16; off > 0; off /= 2)
		sum += __shfl_down_sync(0xffffffffu, sum, off);
	sum = __shfl_sync(0xffffffffu, sum, 0);
	double lse = (double)zmax + log(sum);
	int y = labels[row];
	if (lane == 0) {
		row_loss[row] = lse - (double)z[y];
		row_correct[row] = arg == y;
	}
	if (dlogits == NULL)
		return;
	float *dz = dlogits + (size_t)row * V;
	for (int v = lane; v < V; v += 32) {
		float g = (float)(exp((double)z[v] - lse) / B);
		if (v == y)
			g -= 1.0f / (float)B;
		dz[v] = g;
	}
}

// Softmax cross-entropy per row; the caller averages row_loss on the host.
void
cuda_softmax_crossentropy(struct cuda_ctx *c, float *dlogits, double *row_loss,
                          int32_t *row_correct, const float *logits,
                          const int32_t *labels, int B, int V)
{
	const int rows_per_block = CUDA_THREADS / 32;
	if (c->failed)
		return;
	softmax_crossentropy_kernel<<<(B + rows_per_block - 1) / rows_per_block,
	                              CUDA_THREADS, 0, c->stream>>>(
	    dlogits, row_loss, row_correct, logits, labels, B, V);
	CUDA_LAUNCHED(c, softmax_crossentropy_kernel);
}

// x[i, j] = norm[(j / plane) * 256 + pixels[order[i], j]]; y[i] = label.
__global__ static void
gather_batch_kernel(float *x, int32_t *y, const uint8_t *pixels,
                    const int32_t *labels, const float *norm,
                    const uint32_t *order, int n, int channels, int plane)
{
	size_t sample = (size_t)channels * plane, total = (size_t)n * sample;
	for (size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
	     k < total; k += (size_t)gridDim.x * blockDim.x) {
		size_t i = k / sample, j = k % sample;
		uint32_t s = order[i];
		x[k] = norm[(j / plane) * 256 + pixels[(size_t)s * sample + j]];
		if (j == 0)
			y[i] = labels[s];
	}
}

// The batch of samples order[0..n) as normalised floats and labels.
void
cuda_gather_batch(struct cuda_ctx *c, float *x, int32_t *y,
                  const uint8_t *pixels, const int32_t *labels,
                  const float *norm, const uint32_t *order, int n, int channels,
                  int plane)
{
	size_t total = (size_t)n * channels * plane;
	if (c->failed)
		return;
	gather_batch_kernel<<<cuda_blocks(total), CUDA_THREADS, 0, c->stream>>>(
	    x, y, pixels, labels, norm, order, n, channels, plane);
	CUDA_LAUNCHED(c, gather_batch_kernel);
}
