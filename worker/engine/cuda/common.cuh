// common.cuh: what the plugin's .cu files share: the device context, checked
// CUDA/cuBLAS calls that record the first failure with its call and place,
// launch sizes, and the internal functions one file offers the others.
#ifndef COHORT_CUDA_COMMON_CUH
#define COHORT_CUDA_COMMON_CUH

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "cuda/plugin.h"

// One device: the stream every call runs on, its cuBLAS handle, and the first
// error since the last check (later calls become no-ops until then).
struct cuda_ctx {
	int device;
	cudaStream_t stream;
	cublasHandle_t blas;
	char name[256];
	int failed;
	struct ipc_error err;
};

// Threads per block of every elementwise kernel.
#define CUDA_THREADS 256

// Record a failed CUDA runtime call (when e != cudaSuccess); returns -1 then.
int cuda_check_rt(struct cuda_ctx *c, cudaError_t e, const char *call,
                  const char *file, int line);
// Record a failed cuBLAS call; returns -1 then.
int cuda_check_blas(struct cuda_ctx *c, cublasStatus_t s, const char *call,
                    const char *file, int line);
// Write a CUDA runtime failure into err (no context needed); returns -1.
int cuda_error_rt(struct ipc_error *err, cudaError_t e, const char *call,
                  const char *file, int line);

#define CUDA_CHECK(c, call)                                                    \
	cuda_check_rt((c), (call), #call, __FILE__, __LINE__)
#define CUBLAS_CHECK(c, call)                                                  \
	cuda_check_blas((c), (call), #call, __FILE__, __LINE__)
// After a kernel launch: launch errors (bad configuration, no kernel image).
#define CUDA_LAUNCHED(c, kernel)                                               \
	cuda_check_rt((c), cudaGetLastError(), #kernel "<<<>>>", __FILE__,     \
	              __LINE__)

// Blocks of CUDA_THREADS for n elements, capped (kernels loop over the rest).
unsigned cuda_blocks(size_t n);

// context.cu
void *cuda_alloc(struct cuda_ctx *c, size_t bytes);
void cuda_free(struct cuda_ctx *c, void *p);
void cuda_upload(struct cuda_ctx *c, void *dst, const void *src, size_t bytes);
void cuda_download(struct cuda_ctx *c, void *dst, const void *src,
                   size_t bytes);
int cuda_device_count(int *count, struct ipc_error *err);
struct cuda_ctx *cuda_ctx_open(int device, struct ipc_error *err);
void cuda_ctx_close(struct cuda_ctx *c);
const char *cuda_ctx_device_name(const struct cuda_ctx *c);
int cuda_ctx_check(struct cuda_ctx *c, struct ipc_error *err);
int cuda_mem_info(struct cuda_ctx *c, size_t *free_bytes, size_t *total_bytes,
                  struct ipc_error *err);

// layers.cu: the GPU twins of layers.h (see struct cuda_layer_api).
void cuda_linear_forward(struct cuda_ctx *c, float *y, const float *x,
                         const float *w, const float *b, int B, int in,
                         int out);
void cuda_linear_backward(struct cuda_ctx *c, float *dx, float *dw, float *db,
                          const float *dy, const float *x, const float *w,
                          int B, int in, int out);
void cuda_conv2d_forward(struct cuda_ctx *c, float *y, float *col,
                         const float *x, const float *w, const float *b, int B,
                         int C, int H, int W, int OC, int K);
void cuda_conv2d_backward(struct cuda_ctx *c, float *dx, float *dcol,
                          float *dwb, float *dw, float *db, const float *dy,
                          const float *col, const float *w, int B, int C, int H,
                          int W, int OC, int K);
void cuda_maxpool_forward(struct cuda_ctx *c, float *y, int32_t *argmax,
                          const float *x, int P, int H, int W);
void cuda_maxpool_backward(struct cuda_ctx *c, float *dx, const float *dy,
                           const int32_t *argmax, int P, int H, int W);
void cuda_relu_forward(struct cuda_ctx *c, float *y, const float *x, size_t n);
void cuda_relu_backward(struct cuda_ctx *c, float *dx, const float *dy,
                        const float *y, size_t n);
void cuda_dropout_forward(struct cuda_ctx *c, float *y, const float *x,
                          size_t n, float p, uint64_t key);
void cuda_dropout_backward(struct cuda_ctx *c, float *dx, const float *dy,
                           size_t n, float p, uint64_t key);
void cuda_softmax_crossentropy(struct cuda_ctx *c, float *dlogits,
                               double *row_loss, int32_t *row_correct,
                               const float *logits, const int32_t *labels,
                               int B, int V);
// x[i] = norm[c * 256 + pixels[order[i]] byte], y[i] = labels[order[i]]: the
// GPU twin of dataset_batch over the task's samples.
void cuda_gather_batch(struct cuda_ctx *c, float *x, int32_t *y,
                       const uint8_t *pixels, const int32_t *labels,
                       const float *norm, const uint32_t *order, int n,
                       int channels, int plane);

// optim.cu: the GPU twin of optim.h.
struct cuda_optim *cuda_optim_create(struct cuda_ctx *c,
                                     const struct cuda_optim_desc *o,
                                     const struct cuda_region *r,
                                     size_t region_floats);
void cuda_optim_step(struct cuda_ctx *c, struct cuda_optim *o, float *params,
                     const float *grads, const float *global);
void cuda_optim_free(struct cuda_ctx *c, struct cuda_optim *o);

// task.cu: one training or evaluation task (see struct cuda_plugin).
struct cuda_task *
cuda_task_begin(struct cuda_ctx *c, const struct cuda_model_desc *m,
                const struct cuda_data_desc *d, uint32_t max_batch,
                const float *params, const float *global,
                const struct cuda_optim_desc *o, struct ipc_error *err);
int cuda_task_order(struct cuda_task *t, const uint32_t *order,
                    struct ipc_error *err);
int cuda_task_step(struct cuda_task *t, size_t start, uint32_t n, int train,
                   uint64_t key, double *loss, uint32_t *correct,
                   struct ipc_error *err);
int cuda_task_params(struct cuda_task *t, float *params, struct ipc_error *err);
void cuda_task_end(struct cuda_task *t);

#endif
