// context.cu: a device context (stream + cuBLAS handle), checked calls that
// keep the first failure for the next check, and device memory helpers.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.cuh"

// The source path from "worker/" on, so messages stay short and stable.
static const char *
short_path(const char *file)
{
	const char *p = strstr(file, "worker/");
	return p != NULL ? p : file;
}

// Fill err with code IPC_E_IO and a formatted message; returns -1.
static int
set_error(struct ipc_error *err, const char *fmt, ...)
{
	if (err == NULL)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	err->code = IPC_E_IO;
	vsnprintf(err->message, sizeof err->message, fmt, ap);
	va_end(ap);
	return -1;
}

// "cuda: CALL failed at FILE:LINE: cudaErrorName (code): description".
int
cuda_error_rt(struct ipc_error *err, cudaError_t e, const char *call,
              const char *file, int line)
{
	return set_error(err, "cuda: %s failed at %s:%d: %s (%d): %s", call,
	                 short_path(file), line, cudaGetErrorName(e), (int)e,
	                 cudaGetErrorString(e));
}

// Keep the first runtime failure in the context.
int
cuda_check_rt(struct cuda_ctx *c, cudaError_t e, const char *call,
              const char *file, int line)
{
	if (e == cudaSuccess)
		return 0;
	if (!c->failed) {
		c->failed = 1;
		cuda_error_rt(&c->err, e, call, file, line);
	}
	/* reset the runtime's last error, or the next launch check would
	 * report this failure again under the kernel's name */
	cudaGetLastError();
	return -1;
}

// Keep the first cuBLAS failure in the context.
int
cuda_check_blas(struct cuda_ctx *c, cublasStatus_t s, const char *call,
                const char *file, int line)
{
	if (s == CUBLAS_STATUS_SUCCESS)
		return 0;
	if (!c->failed) {
		c->failed = 1;
		set_error(&c->err, "cuda: %s failed at %s:%d: %s (%d): %s",
		          call, short_path(file), line, cublasGetStatusName(s),
		          (int)s, cublasGetStatusString(s));
	}
	return -1;
}

// Enough blocks to cover n, at most 65535 (the kernels grid-stride).
unsigned
cuda_blocks(size_t n)
{
	size_t b = (n + CUDA_THREADS - 1) / CUDA_THREADS;
	if (b == 0)
		b = 1;
	return b > 65535 ? 65535u : (unsigned)b;
}

// cudaGetDeviceCount, which loads the driver but creates no context.
int
cuda_device_count(int *count, struct ipc_error *err)
{
	*count = 0;
	cudaError_t e = cudaGetDeviceCount(count);
	if (e != cudaSuccess) {
		*count = 0;
		return cuda_error_rt(err, e, "cudaGetDeviceCount(&count)",
		                     __FILE__, __LINE__);
	}
	if (*count == 0)
		return set_error(err,
		                 "cuda: no CUDA device is visible "
		                 "(CUDA_VISIBLE_DEVICES=%s)",
		                 getenv("CUDA_VISIBLE_DEVICES") != NULL
		                     ? getenv("CUDA_VISIBLE_DEVICES")
		                     : "(unset)");
	return 0;
}

// Select the device, create its primary context (cudaFree(0) forces it), a
// non-blocking stream and a cuBLAS handle bound to that stream. FP32 GEMMs
// stay in FP32 (CUBLAS_DEFAULT_MATH: no TF32), to agree with the CPU.
struct cuda_ctx *
cuda_ctx_open(int device, struct ipc_error *err)
{
	int count;
	if (cuda_device_count(&count, err) != 0)
		return NULL;
	if (device < 0 || device >= count) {
		set_error(err,
		          "cuda: device %d requested but %d visible "
		          "(CUDA_VISIBLE_DEVICES=%s)",
		          device, count,
		          getenv("CUDA_VISIBLE_DEVICES") != NULL
		              ? getenv("CUDA_VISIBLE_DEVICES")
		              : "(unset)");
		return NULL;
	}
	struct cuda_ctx *c = (struct cuda_ctx *)calloc(1, sizeof *c);
	if (c == NULL) {
		set_error(err, "cuda: out of host memory for a context");
		return NULL;
	}
	c->device = device;
	cudaDeviceProp prop;
	if (CUDA_CHECK(c, cudaSetDevice(device)) != 0 ||
	    CUDA_CHECK(c, cudaFree(0)) != 0 ||
	    CUDA_CHECK(c, cudaGetDeviceProperties(&prop, device)) != 0 ||
	    CUDA_CHECK(c, cudaStreamCreateWithFlags(
	                      &c->stream, cudaStreamNonBlocking)) != 0 ||
	    CUBLAS_CHECK(c, cublasCreate(&c->blas)) != 0 ||
	    CUBLAS_CHECK(c, cublasSetStream(c->blas, c->stream)) != 0 ||
	    CUBLAS_CHECK(c, cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH)) !=
	        0) {
		if (err != NULL)
			*err = c->err;
		cuda_ctx_close(c);
		return NULL;
	}
	snprintf(c->name, sizeof c->name, "%s", prop.name);
	return c;
}

// Destroy the handle and stream; the primary context goes with the process
// (or with cudaDeviceReset, which would also hit other users in a pool).
void
cuda_ctx_close(struct cuda_ctx *c)
{
	if (c == NULL)
		return;
	if (c->blas != NULL)
		cublasDestroy(c->blas);
	if (c->stream != NULL)
		cudaStreamDestroy(c->stream);
	free(c);
}

// The name cudaGetDeviceProperties gave.
const char *
cuda_ctx_device_name(const struct cuda_ctx *c)
{
	return c->name;
}

// Synchronise the stream, then hand out and clear the first error.
int
cuda_ctx_check(struct cuda_ctx *c, struct ipc_error *err)
{
	CUDA_CHECK(c, cudaStreamSynchronize(c->stream));
	if (!c->failed)
		return 0;
	if (err != NULL)
		*err = c->err;
	c->failed = 0;
	memset(&c->err, 0, sizeof c->err);
	return -1;
}

// cudaMemGetInfo of the context's device.
int
cuda_mem_info(struct cuda_ctx *c, size_t *free_bytes, size_t *total_bytes,
              struct ipc_error *err)
{
	CUDA_CHECK(c, cudaMemGetInfo(free_bytes, total_bytes));
	return cuda_ctx_check(c, err);
}

// cudaMalloc, or NULL with the failure kept in the context.
void *
cuda_alloc(struct cuda_ctx *c, size_t bytes)
{
	void *p = NULL;
	if (c->failed || CUDA_CHECK(c, cudaMalloc(&p, bytes)) != 0)
		return NULL;
	return p;
}

// cudaFree (NULL is fine); the stream is drained first.
void
cuda_free(struct cuda_ctx *c, void *p)
{
	if (p == NULL)
		return;
	CUDA_CHECK(c, cudaStreamSynchronize(c->stream));
	CUDA_CHECK(c, cudaFree(p));
}

// Host to device, synchronous with respect to the host.
void
cuda_upload(struct cuda_ctx *c, void *dst, const void *src, size_t bytes)
{
	if (c->failed || bytes == 0)
		return;
	if (CUDA_CHECK(c, cudaMemcpyAsync(dst, src, bytes,
	                                  cudaMemcpyHostToDevice, c->stream)) ==
	    0)
		CUDA_CHECK(c, cudaStreamSynchronize(c->stream));
}

// Device to host, synchronous with respect to the host.
void
cuda_download(struct cuda_ctx *c, void *dst, const void *src, size_t bytes)
{
	if (c->failed || bytes == 0)
		return;
	if (CUDA_CHECK(c, cudaMemcpyAsync(dst, src, bytes,
	                                  cudaMemcpyDeviceToHost, c->stream)) ==
	    0)
		CUDA_CHECK(c, cudaStreamSynchronize(c->stream));
}
