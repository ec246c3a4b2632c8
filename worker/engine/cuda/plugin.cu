// plugin.cu: the one symbol libcohort-cuda.so exports: the table of entry
// points worker/engine/backend.c and the GPU tests call through.
#include "common.cuh"

static const struct cuda_layer_api layer_api = {
    cuda_linear_forward,   cuda_linear_backward,      cuda_conv2d_forward,
    cuda_conv2d_backward,  cuda_maxpool_forward,      cuda_maxpool_backward,
    cuda_relu_forward,     cuda_relu_backward,        cuda_dropout_forward,
    cuda_dropout_backward, cuda_softmax_crossentropy, cuda_optim_create,
    cuda_optim_step,       cuda_optim_free,
};

static const struct cuda_plugin plugin = {
    CUDA_PLUGIN_ABI, cuda_device_count,    cuda_ctx_open,
    cuda_ctx_close,  cuda_ctx_device_name, cuda_ctx_check,
    cuda_mem_info,   cuda_alloc,           cuda_free,
    cuda_upload,     cuda_download,        cuda_task_begin,
    cuda_task_order, cuda_task_step,       cuda_task_params,
    cuda_task_end,   &layer_api,
};

// The entry table (the module is built with hidden visibility otherwise).
extern "C" __attribute__((visibility("default"))) const struct cuda_plugin *
cohort_cuda_plugin(void)
{
	return &plugin;
}
