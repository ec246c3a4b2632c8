/* model-mlp.c: the mlp, fc1 (128) -> relu -> dropout -> fc2: PyTorch's
 * MLP of the Fashion-MNIST seeds, state_dict fc1.weight, fc1.bias,
 * fc2.weight, fc2.bias. */
#include "model-impl.h"

#include "layers.h"

#define MLP_HIDDEN 128

/* Its buffers of one batch. */
struct mlp_buffers {
	float *h1, *a1, *d1, *g_d1, *g_a1, *g_h1;
};

static int
mlp_build(struct model *m, struct ipc_error *err)
{
	(void)err;
	m->L.hidden = MLP_HIDDEN;
	model_add_linear(m, "fc1", m->L.in, m->L.hidden);
	model_add_linear(m, "fc2", m->L.hidden, m->shape.classes);
	m->flops = model_linear_flops((uint64_t)m->L.in, m->L.hidden, 1) +
	           model_linear_flops(m->L.hidden, m->shape.classes, 0);
	return 0;
}

static void
mlp_layout(const struct model *m, struct model_workspace *ws, float **cur)
{
	struct mlp_buffers *b = ws->own;
	size_t nh = (size_t)ws->max_batch * m->L.hidden;
	b->h1 = model_carve(cur, nh);
	b->a1 = model_carve(cur, nh);
	b->d1 = model_carve(cur, nh);
	b->g_d1 = model_carve(cur, nh);
	b->g_a1 = model_carve(cur, nh);
	b->g_h1 = model_carve(cur, nh);
}

/* fc1 -> relu -> dropout (training only) -> fc2 -> softmax-CE, and back. */
static double
mlp_step(const struct model *m, struct model_workspace *ws, const float *p,
         float *g, const int32_t *y, int B, uint64_t key, uint32_t *correct)
{
	struct mlp_buffers *b = ws->own;
	int H = m->L.hidden, V = m->shape.classes;
	size_t nh = (size_t)B * H;
	const size_t *o = m->off;
	linear_forward(b->h1, ws->x, p + o[0], p + o[1], B, m->L.in, H);
	relu_forward(b->a1, b->h1, nh);
	const float *h = b->a1;
	if (g != NULL) {
		dropout_forward(b->d1, b->a1, nh, MLP_DROPOUT, key);
		h = b->d1;
	}
	linear_forward(ws->logits, h, p + o[2], p + o[3], B, H, V);
	double loss = softmax_crossentropy(g != NULL ? ws->g_logits : NULL,
	                                   correct, ws->logits, y, B, V);
	if (g == NULL)
		return loss;
	linear_backward(b->g_d1, g + o[2], g + o[3], ws->g_logits, h, p + o[2],
	                B, H, V);
	dropout_backward(b->g_a1, b->g_d1, nh, MLP_DROPOUT, key);
	relu_backward(b->g_h1, b->g_a1, b->a1, nh);
	linear_backward(NULL, g + o[0], g + o[1], b->g_h1, ws->x, p + o[0], B,
	                m->L.in, H);
	return loss;
}

const struct model_ops model_mlp = {
    .build = mlp_build,
    .own_size = sizeof(struct mlp_buffers),
    .layout = mlp_layout,
    .step = mlp_step,
};
