/* test_stream.c: the orchestrator's staging of streamed updates: chunks
 * must arrive in order without gap or overlap, a stream cut off or a
 * non-finite value leaves the FedAvg accumulator exactly as it was, the
 * page-releasing fold of a shared-memory update adds the same numbers as a
 * streamed one, and manifests of thousands of tensors and their chunks
 * survive framing. */
#include "harness.h"
#include "stream.h"

#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "frame.h"
#include "shm.h"
#include "strategy.h"
#include "util.h"

static struct tensor_manifest model;
static struct config cfg;
static char jobkey[64];

/* A model of three F32 tensors spanning several pages, padding between. */
static void
make_model(void)
{
	struct ipc_error err;
	uint64_t a[2] = {70, 33}, b[1] = {3}, c[1] = {2500};
	tensor_manifest_init(&model);
	if (tensor_manifest_add(&model, "a.weight", DTYPE_F32, 2, a, &err) <
	        0 ||
	    tensor_manifest_add(&model, "a.bias", DTYPE_F32, 1, b, &err) < 0 ||
	    tensor_manifest_add(&model, "c.weight", DTYPE_F32, 1, c, &err) < 0)
		harness_fail(__FILE__, __LINE__, "%s", err.message);
}

/* An update region: element k of every tensor is seed + k / 64. */
static uint8_t *
update_of(double seed)
{
	uint8_t *r = xcalloc(1, model.total_size);
	for (size_t i = 0; i < model.count; i++) {
		float *f = (float *)(r + model.tensors[i].offset);
		for (size_t k = 0; k < model.tensors[i].nbytes / 4; k++)
			f[k] = (float)(seed + (double)k / 64);
	}
	return r;
}

/* A FedAvg strategy for the test model. */
static void
start(struct strategy *st)
{
	struct ipc_error err;
	struct strategy_env env = {&cfg, &model, jobkey, NULL};
	if (strategy_init(st, &env, &err) < 0)
		harness_fail(__FILE__, __LINE__, "init: %s", err.message);
}

/* A result's params describing a streamed update laid out as the model. */
static void
stream_params(struct params_ref *p)
{
	params_ref_init(p);
	p->where = PARAMS_STREAM;
	p->size = model.total_size;
	tensor_manifest_copy(&p->manifest, &model);
}

/* Send region as task's stream in chunks of len bytes (0: no error). */
static int
send_all(struct stream *s, uint64_t task, const uint8_t *region, size_t len)
{
	struct ipc_error err;
	for (uint64_t off = 0; off < model.total_size; off += len) {
		size_t n = model.total_size - off < len
		               ? (size_t)(model.total_size - off)
		               : len;
		if (stream_receive(s, task, model.total_size, off, region + off,
		                   n, &err) < 0)
			return -1;
	}
	return 0;
}

/* Two updates streamed interleaved in odd-sized chunks (splitting floats)
 * fold to sum(w * u) / sum(w), as plain float64 arithmetic gives it. */
static void
test_interleaved_streams_fold(void)
{
	struct strategy st;
	struct stream s;
	struct ipc_error err;
	start(&st);
	stream_init(&s, 1, 13, &model);
	uint8_t *u1 = update_of(1), *u2 = update_of(-0.5);
	for (uint64_t off = 0; off < model.total_size; off += 13) {
		size_t n = model.total_size - off < 13
		               ? (size_t)(model.total_size - off)
		               : 13;
		CHECK_EQ_INT(stream_receive(&s, 7, model.total_size, off,
		                            u1 + off, n, &err),
		             0);
		CHECK(off + n == model.total_size ||
		      stream_staged(&s, 7) == NULL);
		CHECK_EQ_INT(stream_receive(&s, 9, model.total_size, off,
		                            u2 + off, n, &err),
		             0);
	}
	CHECK_EQ_INT(s.staged_peak, 2);
	CHECK(stream_staged(&s, 7) != NULL && stream_staged(&s, 9) != NULL);
	struct params_ref p;
	stream_params(&p);
	CHECK_EQ_INT(stream_fold(&s, &st, 7, &p, NULL, 0, 1.0, &err), 0);
	CHECK_EQ_INT(stream_fold(&s, &st, 9, &p, NULL, 0, 3.0, &err), 0);
	stream_drop(&s, 7);
	stream_drop(&s, 9);
	CHECK(stream_staged(&s, 7) == NULL && s.inbox == NULL);
	uint8_t *out = xcalloc(1, model.total_size);
	CHECK_EQ_INT(strategy_finish(&st, NULL, out, &err), 0);
	int bad = 0;
	for (size_t i = 0; i < model.count; i++) {
		size_t o = model.tensors[i].offset;
		const float *a = (const float *)(u1 + o);
		const float *b = (const float *)(u2 + o);
		const float *g = (const float *)(out + o);
		for (size_t k = 0; k < model.tensors[i].nbytes / 4; k++)
			bad += g[k] != (float)((1.0 * a[k] + 3.0 * b[k]) / 4.0);
	}
	CHECK_EQ_INT(bad, 0);
	free(out);
	free(u1);
	free(u2);
	params_ref_free(&p);
	stream_free(&s);
	strategy_free(&st);
}

/* A gap, an overlap, an empty or overlong chunk and a wrong total are
 * refused with the offsets in the message. */
static void
test_out_of_order_refused(void)
{
	struct stream s;
	struct ipc_error err;
	uint8_t *u = update_of(2);
	uint64_t size = model.total_size;
	stream_init(&s, 1, 64, &model);
	CHECK_EQ_INT(stream_receive(&s, 1, size, 64, u + 64, 64, &err), -1);
	CHECK_STR_CONTAINS(err.message, "out of order");
	CHECK_STR_CONTAINS(err.message, "expected offset 0");
	CHECK_EQ_INT(stream_receive(&s, 1, size, 0, u, 100, &err), 0);
	CHECK_EQ_INT(stream_receive(&s, 1, size, 50, u + 50, 100, &err), -1);
	CHECK_STR_CONTAINS(err.message, "expected offset 100");
	CHECK_EQ_INT(stream_receive(&s, 1, size, 100, u + 100, 0, &err), -1);
	CHECK_EQ_INT(stream_receive(&s, 1, size, 100, u, size, &err), -1);
	CHECK_EQ_INT(stream_receive(&s, 1, size + 4, 100, u, 4, &err), -1);
	CHECK_STR_CONTAINS(err.message, "the model has");
	CHECK(stream_staged(&s, 1) == NULL);
	free(u);
	stream_free(&s);
}

/* The accumulator's sum, weight and count, to compare before and after. */
struct snapshot {
	double *acc;
	double weight;
	unsigned folded;
};

/* Copy st's accumulator. */
static void
snap(const struct strategy *st, struct snapshot *sn)
{
	sn->acc = xmalloc(st->acc.numel * sizeof *sn->acc);
	memcpy(sn->acc, st->acc.acc, st->acc.numel * sizeof *sn->acc);
	sn->weight = st->acc.weight;
	sn->folded = st->acc.folded;
}

/* Whether st's accumulator is still exactly sn (and free sn). */
static int
unchanged(const struct strategy *st, struct snapshot *sn)
{
	int same = memcmp(sn->acc, st->acc.acc,
	                  st->acc.numel * sizeof *sn->acc) == 0 &&
	           sn->weight == st->acc.weight && sn->folded == st->acc.folded;
	free(sn->acc);
	return same;
}

/* A stream cut off mid-tensor (dropped, as when its worker dies) or not
 * yet complete folds nothing: the accumulator keeps the earlier update
 * bit for bit. */
static void
test_cut_stream_leaves_accumulator(void)
{
	struct strategy st;
	struct stream s;
	struct ipc_error err;
	struct params_ref p;
	struct snapshot sn;
	start(&st);
	stream_init(&s, 1, 4096, &model);
	stream_params(&p);
	uint8_t *u = update_of(1), *v = update_of(5);
	CHECK_EQ_INT(send_all(&s, 1, u, 4096), 0);
	CHECK_EQ_INT(stream_fold(&s, &st, 1, &p, NULL, 0, 2.0, &err), 0);
	stream_drop(&s, 1);
	snap(&st, &sn);
	uint64_t mid =
	    model.tensors[0].offset + model.tensors[0].nbytes / 2 + 2;
	CHECK_EQ_INT(stream_receive(&s, 2, model.total_size, 0, v, mid, &err),
	             0);
	CHECK_EQ_INT(stream_fold(&s, &st, 2, &p, NULL, 0, 1.0, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_TRUNCATED);
	stream_drop(&s, 2);
	CHECK_EQ_INT(stream_fold(&s, &st, 2, &p, NULL, 0, 1.0, &err), -1);
	CHECK(unchanged(&st, &sn));
	CHECK(s.inbox == NULL);
	free(u);
	free(v);
	params_ref_free(&p);
	stream_free(&s);
	strategy_free(&st);
}

/* A NaN in the last tensor of a complete stream, or a layout that differs
 * from the model, is refused before anything is added. */
static void
test_bad_update_leaves_accumulator(void)
{
	struct strategy st;
	struct stream s;
	struct ipc_error err;
	struct params_ref p;
	struct snapshot sn;
	start(&st);
	stream_init(&s, 1, 4096, &model);
	stream_params(&p);
	uint8_t *u = update_of(1);
	CHECK_EQ_INT(send_all(&s, 1, u, 4096), 0);
	CHECK_EQ_INT(stream_fold(&s, &st, 1, &p, NULL, 0, 1.0, &err), 0);
	stream_drop(&s, 1);
	snap(&st, &sn);
	const struct tensor_desc *last = &model.tensors[model.count - 1];
	((float *)(u + last->offset))[last->nbytes / 4 - 1] = NAN;
	CHECK_EQ_INT(send_all(&s, 2, u, 4096), 0);
	CHECK_EQ_INT(stream_fold(&s, &st, 2, &p, NULL, 0, 1.0, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_NONFINITE);
	CHECK_STR_CONTAINS(err.message, "c.weight");
	stream_drop(&s, 2);
	struct params_ref q;
	stream_params(&q);
	q.manifest.tensors[0].shape[0] = 33;
	q.manifest.tensors[0].shape[1] = 70;
	CHECK_EQ_INT(send_all(&s, 3, u, 4096), 0);
	CHECK_EQ_INT(stream_fold(&s, &st, 3, &q, NULL, 0, 1.0, &err), -1);
	CHECK_STR_CONTAINS(err.message, "layout differs");
	CHECK(unchanged(&st, &sn));
	free(u);
	params_ref_free(&p);
	params_ref_free(&q);
	stream_free(&s);
	strategy_free(&st);
}

/* An update segment holding u, mapped read-write as its worker has it,
 * and the params of a result naming it. */
static void
shm_update(const uint8_t *u, struct params_ref *p, struct shm_segment *seg)
{
	struct ipc_error err;
	params_ref_init(p);
	p->where = PARAMS_FD;
	p->fd = 1;
	p->size = model.total_size;
	tensor_manifest_copy(&p->manifest, &model);
	CHECK_EQ_INT(
	    shm_segment_create_copy(seg, "update", model.total_size, u, &err),
	    0);
}

/* The shared-memory fold, which drops pages as it reads them, adds the
 * same numbers as the streamed fold, and leaves the segment's contents. */
static void
test_shm_fold_equals_stream_fold(void)
{
	struct strategy a, b;
	struct stream s;
	struct ipc_error err;
	start(&a);
	start(&b);
	stream_init(&s, 0, 4096, &model);
	uint8_t *u = update_of(0.25);
	struct params_ref p;
	struct shm_segment seg, view;
	shm_update(u, &p, &seg);
	shm_segment_unmap(&seg);
	CHECK_EQ_INT(stream_fold(&s, &a, 0, &p, &seg, 0, 1.5, &err), 0);
	CHECK_EQ_INT(shm_segment_from_fd(&view, dup(seg.fd), "update",
	                                 SHM_SEALED_READONLY, SHM_READ,
	                                 model.total_size, &err),
	             0);
	CHECK(memcmp(view.addr, u, model.total_size) == 0);
	shm_segment_close(&view);
	shm_segment_close(&seg);
	struct params_ref q;
	stream_params(&q);
	CHECK_EQ_INT(send_all(&s, 4, u, 1000), 0);
	CHECK_EQ_INT(stream_fold(&s, &b, 4, &q, NULL, 0, 1.5, &err), 0);
	CHECK(a.acc.numel == b.acc.numel &&
	      memcmp(a.acc.acc, b.acc.acc, a.acc.numel * sizeof(double)) == 0);
	CHECK(a.acc.weight == b.acc.weight);
	free(u);
	params_ref_free(&p);
	params_ref_free(&q);
	stream_free(&s);
	strategy_free(&a);
	strategy_free(&b);
}

/* A result announcing a stream for a manifest of 4096 tensors fits one
 * frame and decodes equal; the region's chunk frames, fed to a decoder in
 * odd-sized pieces, rebuild it byte for byte through stream_receive. */
static void
test_many_tensor_framing(void)
{
	struct ipc_error err;
	struct tensor_manifest big;
	tensor_manifest_init(&big);
	for (unsigned i = 0; i < 4096; i++) {
		char name[64];
		uint64_t shape[2] = {3 + i % 5, 7};
		snprintf(name, sizeof name, "h.%u.attn.c_attn.weight", i);
		CHECK_EQ_INT(
		    tensor_manifest_add(&big, name, DTYPE_F32, 2, shape, &err),
		    0);
	}
	struct msg r, back;
	msg_init(&r, MSG_RESULT);
	r.u.result.task_id = 11;
	r.u.result.num_examples = 5;
	r.u.result.params.where = PARAMS_STREAM;
	r.u.result.params.size = big.total_size;
	tensor_manifest_copy(&r.u.result.params.manifest, &big);
	uint8_t *frame;
	size_t len;
	CHECK_EQ_INT(msg_encode_frame(&r, &frame, &len), 0);
	CHECK(len < FRAME_MAX_DEFAULT);
	CHECK_EQ_INT(msg_decode(frame + 4, len - 4, &back, &err), 0);
	CHECK(msg_equal(&r, &back));
	free(frame);
	msg_free(&back);
	msg_free(&r);

	/* The region of that manifest, streamed as 64 KiB chunk frames. */
	uint8_t *region = xmalloc(big.total_size);
	for (uint64_t i = 0; i < big.total_size; i++)
		region[i] = (uint8_t)(i * 131 + 7);
	uint8_t *wire = NULL;
	size_t wlen = 0;
	size_t chunk = 65536;
	for (uint64_t off = 0; off < big.total_size; off += chunk) {
		struct msg c;
		msg_init(&c, MSG_CHUNK);
		c.u.chunk.task_id = 11;
		c.u.chunk.offset = off;
		c.u.chunk.len = big.total_size - off < chunk
		                    ? (size_t)(big.total_size - off)
		                    : chunk;
		c.u.chunk.data = region + off;
		CHECK_EQ_INT(msg_encode_frame(&c, &frame, &len), 0);
		c.u.chunk.data = NULL;
		msg_free(&c);
		wire = xrealloc(wire, wlen + len);
		memcpy(wire + wlen, frame, len);
		wlen += len;
		free(frame);
	}
	struct stream s;
	stream_init(&s, 1, chunk, &big);
	struct frame_decoder d;
	frame_decoder_init(&d, FRAME_MAX_DEFAULT);
	size_t at = 0, piece = 1;
	unsigned frames = 0;
	int rc = 0;
	while (at < wlen && rc == 0) {
		size_t n = wlen - at < piece ? wlen - at : piece;
		size_t used;
		int got = frame_decoder_feed(&d, wire + at, n, &used, &err);
		at += used;
		piece = piece * 3 % 70001 + 1;
		if (got < 0)
			rc = -1;
		if (got != 1)
			continue;
		const uint8_t *pl = frame_decoder_payload(&d, &n);
		struct msg c;
		if (msg_decode(pl, n, &c, &err) < 0) {
			rc = -1;
			continue;
		}
		rc = c.type != MSG_CHUNK
		         ? -1
		         : stream_receive(&s, c.u.chunk.task_id, big.total_size,
		                          c.u.chunk.offset, c.u.chunk.data,
		                          c.u.chunk.len, &err);
		msg_free(&c);
		frames++;
	}
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(frames, (big.total_size + chunk - 1) / chunk);
	const uint8_t *got = stream_staged(&s, 11);
	CHECK(got != NULL && memcmp(got, region, big.total_size) == 0);
	frame_decoder_free(&d);
	stream_free(&s);
	free(wire);
	free(region);
	tensor_manifest_free(&big);
}

/* An update its worker still maps writable cannot be sealed: refused
 * with the reason, nothing added, and folded once the mapping is gone. */
static void
test_update_still_mapped_refused(void)
{
	struct strategy st;
	struct stream s;
	struct ipc_error err;
	struct snapshot sn;
	start(&st);
	stream_init(&s, 0, 4096, &model);
	uint8_t *u = update_of(2);
	struct params_ref p;
	struct shm_segment seg;
	shm_update(u, &p, &seg);
	snap(&st, &sn);
	/* seg's own writable mapping stands for the worker's. */
	CHECK_EQ_INT(stream_fold(&s, &st, 0, &p, &seg, 0, 1.0, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_SHM_SEALS);
	CHECK_STR_CONTAINS(err.message, "still maps it writable");
	CHECK(unchanged(&st, &sn));
	shm_segment_unmap(&seg);
	CHECK_EQ_INT(stream_fold(&s, &st, 0, &p, &seg, 0, 1.0, &err), 0);
	CHECK_EQ_INT(st.acc.folded, 1);
	shm_segment_close(&seg);
	free(u);
	params_ref_free(&p);
	stream_free(&s);
	strategy_free(&st);
}

int
main(void)
{
	snprintf(jobkey, sizeof jobkey, "streamtest%d", (int)getpid());
	make_model();
	config_defaults(&cfg);
	RUN(test_interleaved_streams_fold);
	RUN(test_out_of_order_refused);
	RUN(test_cut_stream_leaves_accumulator);
	RUN(test_bad_update_leaves_accumulator);
	RUN(test_shm_fold_equals_stream_fold);
	RUN(test_update_still_mapped_refused);
	RUN(test_many_tensor_framing);
	tensor_manifest_free(&model);
	config_free(&cfg);
	return harness_finish();
}
