/* model-cnn.c: the cnn, conv1 (6, 5x5) -> relu -> pool -> conv2 (16, 5x5)
 * -> relu -> pool -> fc1 (120) -> relu -> fc2 (84) -> relu -> fc3: the
 * CIFAR-10 seeds' Net, state_dict conv1, conv2, fc1, fc2, fc3 (weight,
 * bias each). */
#include "model-impl.h"

#include "layers.h"

#define CNN_K 5
#define CNN_C1 6
#define CNN_C2 16
#define CNN_F1 120
#define CNN_F2 84

/* Its buffers of one batch. */
struct cnn_buffers {
	float *col1, *c1, *r1, *p1, *col2, *c2, *r2, *p2, *f1, *r3, *f2, *r4;
	float *g_p2, *g_r2, *g_c2, *g_p1, *g_r1, *g_c1, *g_r3, *g_f1, *g_r4,
	    *g_f2, *dcol2;
	int32_t *arg1, *arg2;
};

static int
cnn_build(struct model *m, struct ipc_error *err)
{
	const struct model_shape *s = &m->shape;
	struct model_layers *L = &m->L;
	L->k = CNN_K;
	L->c1 = CNN_C1;
	L->c2 = CNN_C2;
	L->f1 = CNN_F1;
	L->f2 = CNN_F2;
	L->h1 = s->height - L->k + 1;
	L->w1 = s->width - L->k + 1;
	L->h2 = L->h1 / 2 - L->k + 1;
	L->w2 = L->w1 / 2 - L->k + 1;
	if (L->h2 < 2 || L->w2 < 2)
		return ipc_error_set(err, IPC_E_SHAPE,
		                     "model cnn: input %dx%d is too small (two "
		                     "5x5 convolutions and 2x2 pools need at "
		                     "least 16x16)",
		                     s->height, s->width);
	L->flat = L->c2 * (L->h2 / 2) * (L->w2 / 2);
	model_add_conv(m, "conv1", s->channels, L->c1, L->k);
	model_add_conv(m, "conv2", L->c1, L->c2, L->k);
	model_add_linear(m, "fc1", L->flat, L->f1);
	model_add_linear(m, "fc2", L->f1, L->f2);
	model_add_linear(m, "fc3", L->f2, s->classes);
	m->flops = model_conv_flops(s->channels, L->c1, L->k, L->h1, L->w1, 1) +
	           model_conv_flops(L->c1, L->c2, L->k, L->h2, L->w2, 0) +
	           model_linear_flops(L->flat, L->f1, 0) +
	           model_linear_flops(L->f1, L->f2, 0) +
	           model_linear_flops(L->f2, s->classes, 0);
	return 0;
}

static void
cnn_layout(const struct model *m, struct model_workspace *ws, float **cur)
{
	struct cnn_buffers *b = ws->own;
	const struct model_layers *L = &m->L;
	size_t B = ws->max_batch, C = (size_t)m->shape.channels;
	size_t n1 = (size_t)L->c1 * L->h1 * L->w1;
	size_t q1 = (size_t)L->c1 * (L->h1 / 2) * (L->w1 / 2);
	size_t n2 = (size_t)L->c2 * L->h2 * L->w2;
	size_t kk = (size_t)L->k * L->k;
	b->col1 = model_carve(cur, B * C * kk * L->h1 * L->w1);
	b->c1 = model_carve(cur, B * n1);
	b->r1 = model_carve(cur, B * n1);
	b->p1 = model_carve(cur, B * q1);
	b->col2 = model_carve(cur, B * L->c1 * kk * L->h2 * L->w2);
	b->c2 = model_carve(cur, B * n2);
	b->r2 = model_carve(cur, B * n2);
	b->p2 = model_carve(cur, B * L->flat);
	b->f1 = model_carve(cur, B * L->f1);
	b->r3 = model_carve(cur, B * L->f1);
	b->f2 = model_carve(cur, B * L->f2);
	b->r4 = model_carve(cur, B * L->f2);
	b->g_p2 = model_carve(cur, B * L->flat);
	b->g_r2 = model_carve(cur, B * n2);
	b->g_c2 = model_carve(cur, B * n2);
	b->g_p1 = model_carve(cur, B * q1);
	b->g_r1 = model_carve(cur, B * n1);
	b->g_c1 = model_carve(cur, B * n1);
	b->g_r3 = model_carve(cur, B * L->f1);
	b->g_f1 = model_carve(cur, B * L->f1);
	b->g_r4 = model_carve(cur, B * L->f2);
	b->g_f2 = model_carve(cur, B * L->f2);
	b->dcol2 = model_carve(cur, L->c1 * kk * L->h2 * L->w2);
	/* int32 and float are both 4 bytes: argmax lives in the slab. */
	b->arg1 = (int32_t *)model_carve(cur, B * q1);
	b->arg2 = (int32_t *)model_carve(cur, B * L->flat);
}

/* conv1-relu-pool-conv2-relu-pool-flatten-fc1-relu-fc2-relu-fc3, and back. */
static double
cnn_step(const struct model *m, struct model_workspace *ws, const float *p,
         float *g, const int32_t *y, int B, uint64_t key, uint32_t *correct)
{
	(void)key; /* no dropout */
	struct cnn_buffers *b = ws->own;
	const struct model_layers *L = &m->L;
	int C = m->shape.channels, V = m->shape.classes;
	int H = m->shape.height, W = m->shape.width;
	int q1h = L->h1 / 2, q1w = L->w1 / 2;
	size_t n1 = (size_t)B * L->c1 * L->h1 * L->w1;
	size_t n2 = (size_t)B * L->c2 * L->h2 * L->w2;
	const size_t *o = m->off;
	conv2d_forward(b->c1, b->col1, ws->x, p + o[0], p + o[1], B, C, H, W,
	               L->c1, L->k);
	relu_forward(b->r1, b->c1, n1);
	maxpool_forward(b->p1, b->arg1, b->r1, B * L->c1, L->h1, L->w1);
	conv2d_forward(b->c2, b->col2, b->p1, p + o[2], p + o[3], B, L->c1, q1h,
	               q1w, L->c2, L->k);
	relu_forward(b->r2, b->c2, n2);
	maxpool_forward(b->p2, b->arg2, b->r2, B * L->c2, L->h2, L->w2);
	linear_forward(b->f1, b->p2, p + o[4], p + o[5], B, L->flat, L->f1);
	relu_forward(b->r3, b->f1, (size_t)B * L->f1);
	linear_forward(b->f2, b->r3, p + o[6], p + o[7], B, L->f1, L->f2);
	relu_forward(b->r4, b->f2, (size_t)B * L->f2);
	linear_forward(ws->logits, b->r4, p + o[8], p + o[9], B, L->f2, V);
	double loss = softmax_crossentropy(g != NULL ? ws->g_logits : NULL,
	                                   correct, ws->logits, y, B, V);
	if (g == NULL)
		return loss;
	linear_backward(b->g_r4, g + o[8], g + o[9], ws->g_logits, b->r4,
	                p + o[8], B, L->f2, V);
	relu_backward(b->g_f2, b->g_r4, b->r4, (size_t)B * L->f2);
	linear_backward(b->g_r3, g + o[6], g + o[7], b->g_f2, b->r3, p + o[6],
	                B, L->f1, L->f2);
	relu_backward(b->g_f1, b->g_r3, b->r3, (size_t)B * L->f1);
	linear_backward(b->g_p2, g + o[4], g + o[5], b->g_f1, b->p2, p + o[4],
	                B, L->flat, L->f1);
	maxpool_backward(b->g_r2, b->g_p2, b->arg2, B * L->c2, L->h2, L->w2);
	relu_backward(b->g_c2, b->g_r2, b->r2, n2);
	conv2d_backward(b->g_p1, b->dcol2, g + o[2], g + o[3], b->g_c2, b->col2,
	                p + o[2], B, L->c1, q1h, q1w, L->c2, L->k);
	maxpool_backward(b->g_r1, b->g_p1, b->arg1, B * L->c1, L->h1, L->w1);
	relu_backward(b->g_c1, b->g_r1, b->r1, n1);
	conv2d_backward(NULL, NULL, g + o[0], g + o[1], b->g_c1, b->col1,
	                p + o[0], B, C, H, W, L->c1, L->k);
	return loss;
}

const struct model_ops model_cnn = {
    .build = cnn_build,
    .own_size = sizeof(struct cnn_buffers),
    .layout = cnn_layout,
    .step = cnn_step,
};
