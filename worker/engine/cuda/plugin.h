/* plugin.h: the C interface of libcohort-cuda.so, the CUDA backend that
 * worker/engine/backend.c loads with dlopen, so that nothing in a CPU run
 * needs the CUDA libraries. Only plain C crosses it: descriptions of the
 * model, the client's samples and the optimiser, host buffers for
 * parameters, and device pointers for the layer entry points that the
 * tests compare with the CPU layers of layers.h. */
#ifndef COHORT_CUDA_PLUGIN_H
#define COHORT_CUDA_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever struct cuda_plugin or a struct it uses changes. */
#define CUDA_PLUGIN_ABI 2
#define CUDA_PLUGIN_FILE "libcohort-cuda.so"
#define CUDA_PLUGIN_SYMBOL "cohort_cuda_plugin"
#define CUDA_MODEL_MAX_TENSORS 10

enum cuda_model_kind { CUDA_MODEL_MLP, CUDA_MODEL_CNN };

/* A built-in model (model.h) as the plugin needs it: its kind, input
 * shape and layer sizes (model.h's struct model_layers: the plugin takes
 * them from the engine and checks the tensors against them, it does not
 * guess them), and where each manifest tensor lies in the flat region
 * (floats). */
struct cuda_model_desc {
	enum cuda_model_kind kind;
	int channels, height, width, classes;
	int hidden;            /* mlp: fc1's width */
	int k, c1, c2, f1, f2; /* cnn: kernel, conv channels, linear widths */
	float dropout; /* mlp: the drop probability of its dropout layer */
	size_t region_floats;
	int tensors;
	size_t offset[CUDA_MODEL_MAX_TENSORS];
	size_t count[CUDA_MODEL_MAX_TENSORS];
};

/* A client's samples gathered on the host: n samples of channels * plane
 * uint8 pixels, their labels, and the dataset's table norm[c * 256 + byte]
 * of normalised values (struct dataset's norm), so that the GPU normalises
 * exactly as dataset_batch does. */
struct cuda_data_desc {
	const uint8_t *pixels;
	const int32_t *labels;
	const float *norm;
	size_t n;
	int channels, plane;
};

/* optim.h's struct optim_config, with the kind as a flag. */
struct cuda_optim_desc {
	int adam;
	float lr, momentum, weight_decay;
	float beta1, beta2, eps;
	float prox_mu;
};

/* The tensors an optimiser updates: the region's padding stays untouched,
 * as in optim_step. */
struct cuda_region {
	int count;
	uint32_t offset[CUDA_MODEL_MAX_TENSORS];
	uint32_t length[CUDA_MODEL_MAX_TENSORS];
};

struct cuda_ctx;   /* one device: its stream, cuBLAS handle, sticky error */
struct cuda_task;  /* one task's device buffers */
struct cuda_optim; /* optimiser state on the device */

/* The GPU twins of layers.h, over device pointers, in the order of the CPU
 * arguments after the context. They are asynchronous: a failure is kept in
 * the context and reported by check(). */
struct cuda_layer_api {
	void (*linear_forward)(struct cuda_ctx *c, float *y, const float *x,
	                       const float *w, const float *b, int B, int in,
	                       int out);
	void (*linear_backward)(struct cuda_ctx *c, float *dx, float *dw,
	                        float *db, const float *dy, const float *x,
	                        const float *w, int B, int in, int out);
	/* col: [B, C*K*K, OH*OW] */
	void (*conv2d_forward)(struct cuda_ctx *c, float *y, float *col,
	                       const float *x, const float *w, const float *b,
	                       int B, int C, int H, int W, int OC, int K);
	/* dcol: [B, C*K*K, OH*OW] (unused when dx is NULL); dwb: [B, OC*C*K*K]
	 * per-sample weight gradients, summed in order into dw */
	void (*conv2d_backward)(struct cuda_ctx *c, float *dx, float *dcol,
	                        float *dwb, float *dw, float *db,
	                        const float *dy, const float *col,
	                        const float *w, int B, int C, int H, int W,
	                        int OC, int K);
	void (*maxpool_forward)(struct cuda_ctx *c, float *y, int32_t *argmax,
	                        const float *x, int P, int H, int W);
	void (*maxpool_backward)(struct cuda_ctx *c, float *dx, const float *dy,
	                         const int32_t *argmax, int P, int H, int W);
	void (*relu_forward)(struct cuda_ctx *c, float *y, const float *x,
	                     size_t n);
	void (*relu_backward)(struct cuda_ctx *c, float *dx, const float *dy,
	                      const float *y, size_t n);
	void (*dropout_forward)(struct cuda_ctx *c, float *y, const float *x,
	                        size_t n, float p, uint64_t key);
	void (*dropout_backward)(struct cuda_ctx *c, float *dx, const float *dy,
	                         size_t n, float p, uint64_t key);
	/* Per row b: row_loss[b] = logsumexp(z_b) - z_b[label_b],
	 * row_correct[b] = argmax == label, dlogits as the CPU (unless NULL);
	 * the caller sums the rows on the host, in order, like the CPU. */
	void (*softmax_crossentropy)(struct cuda_ctx *c, float *dlogits,
	                             double *row_loss, int32_t *row_correct,
	                             const float *logits, const int32_t *labels,
	                             int B, int V);
	/* optim.h on the device: zeroed state for the region's tensors. */
	struct cuda_optim *(*optim_create)(struct cuda_ctx *c,
	                                   const struct cuda_optim_desc *o,
	                                   const struct cuda_region *r,
	                                   size_t region_floats);
	void (*optim_step)(struct cuda_ctx *c, struct cuda_optim *o,
	                   float *params, const float *grads,
	                   const float *global);
	void (*optim_free)(struct cuda_ctx *c, struct cuda_optim *o);
};

struct cuda_plugin {
	int abi; /* CUDA_PLUGIN_ABI */
	/* Devices this process may use (honours CUDA_VISIBLE_DEVICES); no
	 * context is created. -1 with the CUDA error when there is none. */
	int (*device_count)(int *count, struct ipc_error *err);
	/* Create the context of device (its stream and cuBLAS handle). */
	struct cuda_ctx *(*ctx_open)(int device, struct ipc_error *err);
	/* Destroy everything the context owns and release the device. */
	void (*ctx_close)(struct cuda_ctx *c);
	/* The device's marketing name, e.g. "NVIDIA H100 80GB HBM3". */
	const char *(*ctx_device_name)(const struct cuda_ctx *c);
	/* Wait for the device and return the first error since the last
	 * check (0 when none), naming the call, file:line and CUDA code. */
	int (*check)(struct cuda_ctx *c, struct ipc_error *err);
	/* Free and total device memory, in bytes. */
	int (*mem_info)(struct cuda_ctx *c, size_t *free_bytes,
	                size_t *total_bytes, struct ipc_error *err);

	/* Device memory for tests and tools (NULL and a sticky error when
	 * out of memory); copies are synchronous. */
	void *(*alloc)(struct cuda_ctx *c, size_t bytes);
	void (*free)(struct cuda_ctx *c, void *p);
	void (*upload)(struct cuda_ctx *c, void *dst, const void *src,
	               size_t bytes);
	void (*download)(struct cuda_ctx *c, void *dst, const void *src,
	                 size_t bytes);

	/* Copy a task's samples, params (and global, for FedProx) to the
	 * device and allocate its workspace for batches of up to max_batch;
	 * o == NULL is an evaluation task (no gradients, no optimiser). */
	struct cuda_task *(*task_begin)(struct cuda_ctx *c,
	                                const struct cuda_model_desc *m,
	                                const struct cuda_data_desc *d,
	                                uint32_t max_batch, const float *params,
	                                const float *global,
	                                const struct cuda_optim_desc *o,
	                                struct ipc_error *err);
	/* The sample order (positions in the task's samples) steps read. */
	int (*task_order)(struct cuda_task *t, const uint32_t *order,
	                  struct ipc_error *err);
	/* Samples order[start .. start+n) through the model; with train set,
	 * backward with dropout masks of key and one optimiser step. Returns
	 * the batch's mean loss and adds the correct predictions. */
	int (*task_step)(struct cuda_task *t, size_t start, uint32_t n,
	                 int train, uint64_t key, double *loss,
	                 uint32_t *correct, struct ipc_error *err);
	/* Copy the task's current parameters into the host region. */
	int (*task_params)(struct cuda_task *t, float *params,
	                   struct ipc_error *err);
	/* Free the task's device memory; the context stays. */
	void (*task_end)(struct cuda_task *t);

	const struct cuda_layer_api *layers;
};

/* The plugin's one exported symbol. */
typedef const struct cuda_plugin *(*cuda_plugin_entry_fn)(void);
const struct cuda_plugin *cohort_cuda_plugin(void);

#ifdef __cplusplus
}
#endif

#endif
