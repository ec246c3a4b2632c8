/* test_message.c: protocol v2 messages round-trip, and every malformed
 * payload is a specific error naming the key, never a crash. */
#define _GNU_SOURCE /* memfd_create */
#include "frame.h"
#include "harness.h"
#include "message.h"
#include "rng.h"

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <msgpack.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* A params_ref with two F32 tensors (fc.weight 3x4, fc.bias 3). */
static void
make_params(struct params_ref *p, enum params_where where)
{
	struct ipc_error err;
	params_ref_init(p);
	uint64_t w[2] = {3, 4}, b[1] = {3};
	if (tensor_manifest_add(&p->manifest, "fc.weight", DTYPE_F32, 2, w,
	                        &err) != 0 ||
	    tensor_manifest_add(&p->manifest, "fc.bias", DTYPE_F32, 1, b,
	                        &err) != 0)
		fatal("tensor_manifest_add: %s", err.message);
	p->where = where;
	if (where == PARAMS_FD) {
		p->fd = 2;
		p->size = p->manifest.total_size + 4096;
	} else if (where == PARAMS_STREAM) {
		p->size = p->manifest.total_size;
	} else if (where == PARAMS_INLINE) {
		p->inline_len = p->manifest.total_size;
		p->inline_data = xcalloc(1, p->inline_len);
		for (size_t i = 0; i < p->inline_len; i++)
			p->inline_data[i] = (uint8_t)(i * 13);
		p->size = p->inline_len;
	}
}

/* One filled-in message of each type (and params variant). */
static int
make_sample(int i, struct msg *m)
{
	switch (i) {
	case 0:
		msg_init(m, MSG_HELLO);
		strcpy(m->u.hello.token, "s3cr3t-token");
		m->u.hello.client_id = 17;
		m->u.hello.pid = 4242;
		strcpy(m->u.hello.device, "cuda:0");
		return 1;
	case 1:
		msg_init(m, MSG_HELLO);
		m->u.hello.client_id = -1;
		m->u.hello.pid = 1;
		strcpy(m->u.hello.device, "cpu");
		return 1;
	case 2:
	case 3:
	case 4:
		msg_init(m, MSG_TASK);
		m->u.task.task_id = UINT64_MAX - 5;
		m->u.task.kind = i == 3 ? TASK_EVALUATE : TASK_FIT;
		m->u.task.round = 4000000000u;
		m->u.task.client_id = 99;
		kv_set_num(&m->u.task.config, "lr", 0.05);
		kv_set_num(&m->u.task.config, "local_epochs", 2);
		kv_set_str(&m->u.task.config, "optimizer", "sgd");
		kv_set_bool(&m->u.task.config, "shuffle", 1);
		make_params(&m->u.task.params, i == 2   ? PARAMS_FD
		                               : i == 3 ? PARAMS_INLINE
		                                        : PARAMS_STREAM);
		if (i == 2)
			m->u.task.update_fd = 3;
		return 1;
	case 5:
		msg_init(m, MSG_TASK);
		m->u.task.task_id = 1;
		m->u.task.kind = TASK_SHUTDOWN;
		m->u.task.client_id = -1;
		return 1;
	case 6:
		msg_init(m, MSG_RESULT);
		m->u.result.task_id = 12;
		m->u.result.num_examples = 6000;
		kv_set_num(&m->u.result.metrics, "loss", 0.25);
		kv_set_num(&m->u.result.metrics, "nan_is_kept", NAN);
		kv_set_num(&m->u.result.metrics, "inf", -INFINITY);
		make_params(&m->u.result.params, PARAMS_FD);
		return 1;
	case 7:
		msg_init(m, MSG_RESULT);
		m->u.result.task_id = 13;
		m->u.result.num_examples = 0;
		kv_set_num(&m->u.result.metrics, "accuracy", 0.875);
		return 1;
	case 8:
		msg_init(m, MSG_METRICS);
		m->u.metrics.task_id = 12;
		m->u.metrics.step = 1u << 20;
		kv_set_num(&m->u.metrics.values, "train_loss", 1.5);
		return 1;
	case 9:
		msg_init(m, MSG_ERROR);
		m->u.error.task_id = 12;
		m->u.error.code = xstrdup("cuda-oom");
		m->u.error.message = xstrdup("out of GPU memory: 81 GiB");
		return 1;
	case 10:
		msg_init(m, MSG_CHUNK);
		m->u.chunk.task_id = 12;
		m->u.chunk.offset = 1u << 30;
		m->u.chunk.len = 1000;
		m->u.chunk.data = xmalloc(1000);
		for (int j = 0; j < 1000; j++)
			m->u.chunk.data[j] = (uint8_t)j;
		return 1;
	case 11:
		msg_init(m, MSG_HELLO);
		strcpy(m->u.hello.token, "tok");
		m->u.hello.client_id = -1;
		m->u.hello.pid = 77;
		strcpy(m->u.hello.device, "cpu");
		m->u.hello.fork_server = 1;
		return 1;
	case 12:
		msg_init(m, MSG_FORK);
		m->u.fork.fork_id = 5;
		kv_set_str(&m->u.fork.env, "COHORT_CLIENT_ID", "42");
		kv_set_str(&m->u.fork.env, "COHORT_TASKS", "1");
		return 1;
	case 13:
		msg_init(m, MSG_FORKED);
		m->u.forked.fork_id = 5;
		m->u.forked.pid = 31337;
		return 1;
	case 14:
		msg_init(m, MSG_EXITED);
		m->u.exited.pid = 31337;
		m->u.exited.status = 9; /* killed by SIGKILL */
		return 1;
	case 15:
		msg_init(m, MSG_TASK);
		m->u.task.task_id = 0;
		m->u.task.kind = TASK_INIT;
		m->u.task.client_id = -1;
		kv_set_str(&m->u.task.config, "model", "custom");
		return 1;
	case 16:
		msg_init(m, MSG_TASK);
		m->u.task.task_id = 40;
		m->u.task.kind = TASK_FIT;
		m->u.task.client_id = 3;
		make_params(&m->u.task.params, PARAMS_FD);
		m->u.task.params.fd = 0;
		m->u.task.update_fd = 1;
		m->u.task.partial_fd = 2;
		m->u.task.partial_id = UINT64_MAX - 1;
		m->u.task.partial_size = 16 * 8;
		return 1;
	case 17:
		msg_init(m, MSG_RESULT);
		m->u.result.task_id = 40;
		m->u.result.num_examples = 60;
		kv_set_num(&m->u.result.metrics, "steps", 2);
		m->u.result.folded = INT64_MAX;
		return 1;
	case 18:
		msg_init(m, MSG_PARTIAL);
		m->u.partial.id = 7;
		m->u.partial.ntasks = 3;
		m->u.partial.tasks = xcalloc(3, sizeof(uint64_t));
		m->u.partial.tasks[0] = 40;
		m->u.partial.tasks[1] = UINT64_MAX;
		m->u.partial.tasks[2] = 0;
		m->u.partial.weight = 180.5;
		return 1;
	default:
		return 0;
	}
}

/* Encode m and decode the payload of the frame into out. */
static int
round_trip(const struct msg *m, struct msg *out, struct ipc_error *err)
{
	uint8_t *frame;
	size_t len;
	CHECK_EQ_INT(msg_encode_frame(m, &frame, &len), 0);
	CHECK(len > 4);
	uint32_t declared = (uint32_t)frame[0] << 24 |
	                    (uint32_t)frame[1] << 16 | (uint32_t)frame[2] << 8 |
	                    frame[3];
	CHECK_EQ_INT(declared, len - 4);
	int rc = msg_decode(frame + 4, len - 4, out, err);
	free(frame);
	return rc;
}

static void
test_every_message_round_trips(void)
{
	struct msg m;
	for (int i = 0; make_sample(i, &m); i++) {
		struct msg back;
		struct ipc_error err;
		int rc = round_trip(&m, &back, &err);
		if (rc != 0)
			fprintf(stderr, "  sample %d: %s\n", i, err.message);
		CHECK_EQ_INT(rc, 0);
		CHECK(msg_equal(&m, &back));
		msg_free(&back);
		msg_free(&m);
	}
}

static void
test_round_trip_fields_by_hand(void)
{
	struct msg m, back;
	struct ipc_error err;
	make_sample(3, &m);
	CHECK_EQ_INT(round_trip(&m, &back, &err), 0);
	struct msg_task *t = &back.u.task;
	CHECK_EQ_INT(back.type, MSG_TASK);
	CHECK(t->task_id == UINT64_MAX - 5);
	CHECK_EQ_INT(t->kind, TASK_EVALUATE);
	CHECK(t->round == 4000000000u);
	CHECK_EQ_INT(t->client_id, 99);
	CHECK_NEAR(kv_get_num(&t->config, "lr", 0), 0.05, 0);
	CHECK_NEAR(kv_get_num(&t->config, "local_epochs", 0), 2, 0);
	CHECK_STR_CONTAINS(kv_get_str(&t->config, "optimizer", ""), "sgd");
	CHECK_EQ_INT(kv_get_bool(&t->config, "shuffle", 0), 1);
	CHECK_EQ_INT(t->params.where, PARAMS_INLINE);
	CHECK_EQ_INT(t->params.manifest.count, 2);
	CHECK(strcmp(t->params.manifest.tensors[1].name, "fc.bias") == 0);
	CHECK_EQ_INT(t->params.manifest.tensors[1].offset, 64);
	CHECK_EQ_INT(t->params.manifest.total_size,
	             m.u.task.params.manifest.total_size);
	CHECK_EQ_INT(t->params.inline_len, m.u.task.params.inline_len);
	msg_free(&back);
	msg_free(&m);

	/* msg_equal itself notices a difference. */
	struct msg a, b;
	make_sample(9, &a);
	make_sample(9, &b);
	CHECK(msg_equal(&a, &b));
	b.u.error.message[0] = 'O';
	CHECK(!msg_equal(&a, &b));
	msg_free(&a);
	msg_free(&b);
}

static void
test_kv_list(void)
{
	struct kv_list l = {0};
	kv_set_num(&l, "a", 1);
	kv_set_str(&l, "b", "x");
	kv_set_str(&l, "a", "replaced");
	CHECK_EQ_INT(l.count, 2);
	CHECK(strcmp(l.entries[0].key, "a") == 0);
	CHECK_STR_CONTAINS(kv_get_str(&l, "a", "default"), "replaced");
	CHECK_NEAR(kv_get_num(&l, "a", -1), -1, 0);
	CHECK_NEAR(kv_get_num(&l, "missing", 7), 7, 0);
	CHECK(kv_find(&l, "missing") == NULL);
	for (int i = 0; i < 100; i++) {
		char key[16];
		snprintf(key, sizeof key, "k%d", i);
		kv_set_bool(&l, key, i % 2);
	}
	CHECK_EQ_INT(l.count, 102);
	CHECK_EQ_INT(kv_get_bool(&l, "k51", 0), 1);
	kv_free(&l);
	CHECK_EQ_INT(l.count, 0);
	CHECK_STR_CONTAINS(msg_type_name(MSG_CHUNK), "chunk");
	CHECK_STR_CONTAINS(task_kind_name(TASK_EVALUATE), "evaluate");
}

/* Tiny msgpack writer for hand-made payloads. */
struct pk {
	msgpack_sbuffer sbuf;
	msgpack_packer p;
};

/* Start an empty hand-made payload. */
static void
pk_init(struct pk *k)
{
	msgpack_sbuffer_init(&k->sbuf);
	msgpack_packer_init(&k->p, &k->sbuf, msgpack_sbuffer_write);
}

/* Pack a C string. */
static void
pk_str(struct pk *k, const char *s)
{
	msgpack_pack_str_with_body(&k->p, s, strlen(s));
}

/* Decode the payload in k, free it, and return the result code. */
static int
pk_decode(struct pk *k, struct ipc_error *err)
{
	struct msg m;
	ipc_error_clear(err);
	int rc =
	    msg_decode((const uint8_t *)k->sbuf.data, k->sbuf.size, &m, err);
	msgpack_sbuffer_destroy(&k->sbuf);
	if (rc == 0) {
		msg_free(&m);
		return IPC_OK;
	}
	CHECK(err->code != IPC_OK);
	return (int)err->code;
}

/* The fields of a valid hello, optionally with one key left out or given
 * a wrong value (a string where a number belongs and vice versa). */
static void
pack_hello(struct pk *k, const char *skip, const char *wrong)
{
	static const char *const keys[] = {"proto", "token", "client_id", "pid",
	                                   "device"};
	msgpack_pack_map(&k->p, 6 - (skip != NULL));
	pk_str(k, "type");
	pk_str(k, "hello");
	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		if (skip != NULL && strcmp(skip, keys[i]) == 0)
			continue;
		pk_str(k, keys[i]);
		int is_str = i == 1 || i == 4;
		if (wrong != NULL && strcmp(wrong, keys[i]) == 0)
			is_str = !is_str;
		if (is_str)
			pk_str(k, i == 1 ? "tok" : "cpu");
		else
			msgpack_pack_int(&k->p, i == 2   ? 3
			                        : i == 0 ? PROTO_VERSION
			                                 : 1);
	}
}

/* The key sets of each message type, for missing/wrong-type sweeps. */
struct schema_case {
	int sample;
	const char *type;
	const char *keys[8];
};

static const struct schema_case schema_cases[] = {
    {2, "task", {"task_id", "kind", "round", "client_id", "config", "params"}},
    {6, "result", {"task_id", "num_examples", "metrics", "params"}},
    {8, "metrics", {"task_id", "step", "values"}},
    {9, "error", {"task_id", "code", "message"}},
    {10, "chunk", {"task_id", "offset", "data"}},
    {12, "fork", {"fork_id", "env"}},
    {13, "forked", {"fork_id", "pid"}},
    {14, "exited", {"pid", "status"}},
};

/* Re-pack a decoded msgpack map, dropping key drop and replacing the value
 * of key bad by nil-like junk of the wrong type (an array). */
static void
repack_without(struct pk *k, const msgpack_object *map, const char *drop,
               const char *bad)
{
	uint32_t n = map->via.map.size;
	uint32_t keep = 0;
	for (uint32_t i = 0; i < n; i++) {
		const msgpack_object *key = &map->via.map.ptr[i].key;
		if (drop == NULL || key->via.str.size != strlen(drop) ||
		    memcmp(key->via.str.ptr, drop, key->via.str.size) != 0)
			keep++;
	}
	msgpack_pack_map(&k->p, keep);
	for (uint32_t i = 0; i < n; i++) {
		const msgpack_object *key = &map->via.map.ptr[i].key;
		int is = 0, is_bad = 0;
		if (drop != NULL && key->via.str.size == strlen(drop))
			is = memcmp(key->via.str.ptr, drop,
			            key->via.str.size) == 0;
		if (bad != NULL && key->via.str.size == strlen(bad))
			is_bad = memcmp(key->via.str.ptr, bad,
			                key->via.str.size) == 0;
		if (is)
			continue;
		msgpack_pack_object(&k->p, *key);
		if (is_bad) {
			msgpack_pack_array(&k->p, 1);
			msgpack_pack_nil(&k->p);
		} else {
			msgpack_pack_object(&k->p, map->via.map.ptr[i].val);
		}
	}
}

/* Encode sample, unpack it, and hand the map to repack_without. */
static void
mutated_sample(int sample, const char *drop, const char *bad, struct pk *k)
{
	struct msg m;
	make_sample(sample, &m);
	uint8_t *frame;
	size_t len;
	CHECK_EQ_INT(msg_encode_frame(&m, &frame, &len), 0);
	msg_free(&m);
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	CHECK(msgpack_unpack_next(&up, (const char *)frame + 4, len - 4,
	                          &off) == MSGPACK_UNPACK_SUCCESS);
	pk_init(k);
	repack_without(k, &up.data, drop, bad);
	msgpack_unpacked_destroy(&up);
	free(frame);
}

static void
test_missing_and_wrong_type_keys(void)
{
	struct ipc_error err;
	static const char *const hello_keys[] = {"proto", "token", "client_id",
	                                         "pid", "device"};
	for (size_t i = 0; i < ARRAY_LEN(hello_keys); i++) {
		char want[64];
		snprintf(want, sizeof want, "hello.%s", hello_keys[i]);
		struct pk k;
		pk_init(&k);
		pack_hello(&k, hello_keys[i], NULL);
		CHECK_EQ_INT(pk_decode(&k, &err), IPC_E_MISSING_KEY);
		CHECK_STR_CONTAINS(err.message, want);
		CHECK_STR_CONTAINS(err.message, "missing");
		pk_init(&k);
		pack_hello(&k, NULL, hello_keys[i]);
		CHECK_EQ_INT(pk_decode(&k, &err), IPC_E_WRONG_TYPE);
		CHECK_STR_CONTAINS(err.message, want);
		CHECK_STR_CONTAINS(err.message, "expected");
	}
	for (size_t c = 0; c < ARRAY_LEN(schema_cases); c++) {
		const struct schema_case *sc = &schema_cases[c];
		for (size_t i = 0; sc->keys[i] != NULL; i++) {
			char want[64];
			snprintf(want, sizeof want, "%s.%s", sc->type,
			         sc->keys[i]);
			struct pk k;
			mutated_sample(sc->sample, sc->keys[i], NULL, &k);
			int code = pk_decode(&k, &err);
			/* result.params is optional. */
			if (strcmp(want, "result.params") == 0) {
				CHECK_EQ_INT(code, IPC_OK);
			} else {
				CHECK_EQ_INT(code, IPC_E_MISSING_KEY);
				CHECK_STR_CONTAINS(err.message, want);
			}
			mutated_sample(sc->sample, NULL, sc->keys[i], &k);
			CHECK_EQ_INT(pk_decode(&k, &err), IPC_E_WRONG_TYPE);
			CHECK_STR_CONTAINS(err.message, want);
			CHECK_STR_CONTAINS(err.message, "got an array");
		}
	}
	/* And a valid payload through the same path is accepted. */
	struct pk k;
	mutated_sample(2, NULL, NULL, &k);
	CHECK_EQ_INT(pk_decode(&k, &err), IPC_OK);
}

/* A task payload whose params map is built by fn. */
static int
decode_task_with(void (*fn)(struct pk *), struct ipc_error *err)
{
	struct pk k;
	pk_init(&k);
	msgpack_pack_map(&k.p, 7);
	pk_str(&k, "type");
	pk_str(&k, "task");
	pk_str(&k, "task_id");
	msgpack_pack_uint64(&k.p, 5);
	pk_str(&k, "kind");
	pk_str(&k, "fit");
	pk_str(&k, "round");
	msgpack_pack_uint64(&k.p, 1);
	pk_str(&k, "client_id");
	msgpack_pack_int(&k.p, 0);
	pk_str(&k, "config");
	msgpack_pack_map(&k.p, 0);
	pk_str(&k, "params");
	fn(&k);
	return pk_decode(&k, err);
}

/* One manifest entry; bad_dim puts a string at shape[1]. */
static void
pack_tensor(struct pk *k, const char *name, uint64_t offset, int bad_dim)
{
	msgpack_pack_map(&k->p, 5);
	pk_str(k, "name");
	pk_str(k, name);
	pk_str(k, "dtype");
	pk_str(k, "F32");
	pk_str(k, "shape");
	msgpack_pack_array(&k->p, 2);
	msgpack_pack_uint64(&k->p, 4);
	if (bad_dim)
		pk_str(k, "four");
	else
		msgpack_pack_uint64(&k->p, 4);
	pk_str(k, "offset");
	msgpack_pack_uint64(&k->p, offset);
	pk_str(k, "nbytes");
	msgpack_pack_uint64(&k->p, 64);
}

/* params with four tensors at offsets[], descriptor fd of the given
 * size. */
static void
pack_params4(struct pk *k, const uint64_t offsets[4], uint64_t size,
             int bad_dim_at, uint64_t fd)
{
	static const char *const names[] = {"a", "b", "c", "d"};
	msgpack_pack_map(&k->p, 3);
	pk_str(k, "manifest");
	msgpack_pack_array(&k->p, 4);
	for (int i = 0; i < 4; i++)
		pack_tensor(k, names[i], offsets[i], i == bad_dim_at);
	pk_str(k, "fd");
	msgpack_pack_uint64(&k->p, fd);
	pk_str(k, "size");
	msgpack_pack_uint64(&k->p, size);
}

static const uint64_t good_offsets[4] = {0, 64, 128, 192};

/* A valid params map. */
static void
params_ok(struct pk *k)
{
	pack_params4(k, good_offsets, 256, -1, 0);
}

/* A string where shape[1] of tensor 3 belongs. */
static void
params_bad_dim(struct pk *k)
{
	pack_params4(k, good_offsets, 256, 3, 0);
}

/* Tensors b and c share bytes. */
static void
params_overlap(struct pk *k)
{
	static const uint64_t o[4] = {0, 64, 64, 192};
	pack_params4(k, o, 256, -1, 0);
}

/* Tensor d ends past the 200-byte segment. */
static void
params_out_of_bounds(struct pk *k)
{
	pack_params4(k, good_offsets, 200, -1, 0);
}

/* A descriptor index past the four a frame may carry. */
static void
params_bad_fd(struct pk *k)
{
	pack_params4(k, good_offsets, 256, -1, 4);
}

/* A descriptor without its size. */
static void
params_fd_no_size(struct pk *k)
{
	msgpack_pack_map(&k->p, 2);
	pk_str(k, "manifest");
	msgpack_pack_array(&k->p, 0);
	pk_str(k, "fd");
	msgpack_pack_uint64(&k->p, 0);
}

/* Both a descriptor and a stream. */
static void
params_fd_and_stream(struct pk *k)
{
	msgpack_pack_map(&k->p, 4);
	pk_str(k, "manifest");
	msgpack_pack_array(&k->p, 0);
	pk_str(k, "fd");
	msgpack_pack_uint64(&k->p, 0);
	pk_str(k, "size");
	msgpack_pack_uint64(&k->p, 64);
	pk_str(k, "stream");
	msgpack_pack_uint64(&k->p, 64);
}

/* A manifest with no fd, inline or stream. */
static void
params_no_source(struct pk *k)
{
	msgpack_pack_map(&k->p, 1);
	pk_str(k, "manifest");
	msgpack_pack_array(&k->p, 0);
}

/* Inline bytes shorter than the manifest. */
static void
params_inline_too_short(struct pk *k)
{
	msgpack_pack_map(&k->p, 2);
	pk_str(k, "manifest");
	msgpack_pack_array(&k->p, 1);
	pack_tensor(k, "w", 0, 0);
	pk_str(k, "inline");
	msgpack_pack_bin_with_body(&k->p, "0123456789", 10);
}

static void
test_params_validation(void)
{
	struct ipc_error err;
	CHECK_EQ_INT(decode_task_with(params_ok, &err), IPC_OK);
	CHECK_EQ_INT(decode_task_with(params_bad_dim, &err), IPC_E_WRONG_TYPE);
	CHECK_STR_CONTAINS(err.message, "task.params.manifest[3].shape[1]: "
	                                "expected a non-negative integer");
	CHECK_EQ_INT(decode_task_with(params_overlap, &err), IPC_E_OVERLAP);
	CHECK_STR_CONTAINS(err.message, "task.params: ");
	CHECK_STR_CONTAINS(err.message, "overlap");
	CHECK_EQ_INT(decode_task_with(params_out_of_bounds, &err),
	             IPC_E_BOUNDS);
	CHECK_STR_CONTAINS(err.message, "'d'");
	CHECK(decode_task_with(params_bad_fd, &err) != IPC_OK);
	CHECK_STR_CONTAINS(err.message, "task.params.fd");
	CHECK_EQ_INT(decode_task_with(params_fd_no_size, &err),
	             IPC_E_MISSING_KEY);
	CHECK_STR_CONTAINS(err.message, "size");
	CHECK_EQ_INT(decode_task_with(params_fd_and_stream, &err),
	             IPC_E_BAD_VALUE);
	CHECK_STR_CONTAINS(err.message, "more than one of fd");
	CHECK_EQ_INT(decode_task_with(params_no_source, &err),
	             IPC_E_MISSING_KEY);
	CHECK_STR_CONTAINS(err.message, "one of fd");
	CHECK_EQ_INT(decode_task_with(params_inline_too_short, &err),
	             IPC_E_BOUNDS);
}

/* A task of kind whose params are descriptor 0, with update_fd and a
 * partial sum on descriptor partial_fd as given (negative: none). */
static int
decode_task_fds(const char *kind, int64_t update_fd, int64_t partial_fd,
                struct ipc_error *err)
{
	struct pk k;
	pk_init(&k);
	msgpack_pack_map(&k.p, 7 + (update_fd >= 0) + (partial_fd >= 0));
	pk_str(&k, "type");
	pk_str(&k, "task");
	pk_str(&k, "task_id");
	msgpack_pack_uint64(&k.p, 5);
	pk_str(&k, "kind");
	pk_str(&k, kind);
	pk_str(&k, "round");
	msgpack_pack_uint64(&k.p, 1);
	pk_str(&k, "client_id");
	msgpack_pack_int(&k.p, 0);
	pk_str(&k, "config");
	msgpack_pack_map(&k.p, 0);
	pk_str(&k, "params");
	params_ok(&k);
	if (update_fd >= 0) {
		pk_str(&k, "update_fd");
		msgpack_pack_int64(&k.p, update_fd);
	}
	if (partial_fd >= 0) {
		pk_str(&k, "partial");
		msgpack_pack_map(&k.p, 3);
		pk_str(&k, "fd");
		msgpack_pack_int64(&k.p, partial_fd);
		pk_str(&k, "id");
		msgpack_pack_uint64(&k.p, 1);
		pk_str(&k, "size");
		msgpack_pack_uint64(&k.p, 8);
	}
	return pk_decode(&k, err);
}

static int
decode_update_fd(const char *kind, int64_t update_fd, struct ipc_error *err)
{
	return decode_task_fds(kind, update_fd, -1, err);
}

static void
test_update_fd(void)
{
	struct ipc_error err;
	CHECK_EQ_INT(decode_update_fd("fit", 1, &err), IPC_OK);
	CHECK_EQ_INT(decode_update_fd("fit", -1, &err), IPC_OK);
	/* The global model's own descriptor, one past the four a frame
	 * carries, an evaluation: refused, naming the key. */
	CHECK_EQ_INT(decode_update_fd("fit", 0, &err), IPC_E_BAD_VALUE);
	CHECK_STR_CONTAINS(err.message, "task.update_fd");
	CHECK(decode_update_fd("fit", 4, &err) != IPC_OK);
	CHECK_STR_CONTAINS(err.message, "task.update_fd");
	CHECK_EQ_INT(decode_update_fd("evaluate", 1, &err), IPC_E_BAD_VALUE);
	CHECK_STR_CONTAINS(err.message, "only a fit task");
}

/* A fit task with update_fd 1 and a partial on descriptor fd. */
static int
decode_partial_fd(int64_t fd, struct ipc_error *err)
{
	return decode_task_fds("fit", 1, fd, err);
}

/* partial {id, tasks, weight} with ntasks tasks 1, 2, ... */
static int
decode_partial(uint32_t ntasks, double weight, int folded_params,
               struct ipc_error *err)
{
	struct pk k;
	pk_init(&k);
	if (folded_params) {
		/* a result that says folded and still carries params */
		msgpack_pack_map(&k.p, 6);
		pk_str(&k, "type");
		pk_str(&k, "result");
		pk_str(&k, "task_id");
		msgpack_pack_uint64(&k.p, 5);
		pk_str(&k, "num_examples");
		msgpack_pack_uint64(&k.p, 5);
		pk_str(&k, "metrics");
		msgpack_pack_map(&k.p, 0);
		pk_str(&k, "folded");
		msgpack_pack_uint64(&k.p, 1);
		pk_str(&k, "params");
		params_ok(&k);
		return pk_decode(&k, err);
	}
	msgpack_pack_map(&k.p, 4);
	pk_str(&k, "type");
	pk_str(&k, "partial");
	pk_str(&k, "id");
	msgpack_pack_uint64(&k.p, 1);
	pk_str(&k, "tasks");
	msgpack_pack_array(&k.p, ntasks);
	for (uint32_t i = 0; i < ntasks; i++)
		msgpack_pack_uint64(&k.p, i + 1);
	pk_str(&k, "weight");
	msgpack_pack_double(&k.p, weight);
	return pk_decode(&k, err);
}

/* A partial sum on a descriptor of its own, at least one task, a positive
 * finite weight; a folded result carries no params. */
static void
test_partial(void)
{
	struct ipc_error err;
	CHECK_EQ_INT(decode_partial_fd(2, &err), IPC_OK);
	CHECK_EQ_INT(decode_partial_fd(1, &err), IPC_E_BAD_VALUE);
	CHECK_STR_CONTAINS(err.message, "task.partial");
	CHECK_EQ_INT(decode_partial_fd(0, &err), IPC_E_BAD_VALUE);
	CHECK(decode_partial_fd(4, &err) != IPC_OK);
	CHECK_STR_CONTAINS(err.message, "task.partial.fd");
	CHECK_EQ_INT(decode_partial(3, 2.5, 0, &err), IPC_OK);
	CHECK_EQ_INT(decode_partial(0, 2.5, 0, &err), IPC_E_BAD_VALUE);
	CHECK_STR_CONTAINS(err.message, "partial.tasks");
	CHECK_EQ_INT(decode_partial(2, 0, 0, &err), IPC_E_BAD_VALUE);
	CHECK_STR_CONTAINS(err.message, "partial.weight");
	CHECK_EQ_INT(decode_partial(2, NAN, 0, &err), IPC_E_BAD_VALUE);
	CHECK_EQ_INT(decode_partial(2, -1, 0, &err), IPC_E_BAD_VALUE);
	CHECK_EQ_INT(decode_partial(1, 1, 1, &err), IPC_E_BAD_VALUE);
	CHECK_STR_CONTAINS(err.message, "carries no params");
}

/* Descriptors sent with a frame arrive with it as new descriptors of the
 * same files; a frame read without asking for them leaks none. */
static void
test_fds_over_socket(void)
{
	int sv[2];
	CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	int a = memfd_create("a", MFD_CLOEXEC), b = memfd_create("b", 0);
	CHECK(a >= 0 && b >= 0);
	struct ipc_error err;
	struct msg m, back;
	make_sample(2, &m);
	int fds[2] = {a, b};
	CHECK_EQ_INT(msg_send_fds(sv[0], &m, fds, 2, &err), 0);
	struct frame_fds got;
	frame_fds_init(&got);
	CHECK_EQ_INT(msg_recv_fds(sv[1], FRAME_MAX_DEFAULT, &back, &got, &err),
	             0);
	CHECK(msg_equal(&m, &back));
	CHECK_EQ_INT(got.n, 2);
	CHECK_EQ_INT(got.dropped, 0);
	struct stat sa, sb, ga, gb;
	fstat(a, &sa);
	fstat(b, &sb);
	int ta = frame_fds_take(&got, 0), tb = frame_fds_take(&got, 1);
	CHECK(ta >= 0 && tb >= 0 && ta != a && tb != b);
	fstat(ta, &ga);
	fstat(tb, &gb);
	CHECK(ga.st_ino == sa.st_ino && gb.st_ino == sb.st_ino);
	CHECK_EQ_INT(frame_fds_take(&got, 0), -1);
	CHECK_EQ_INT(fcntl(ta, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	close(ta);
	close(tb);
	msg_free(&back);
	/* No descriptors: none arrive. */
	frame_fds_close(&got);
	CHECK_EQ_INT(msg_send(sv[0], &m, &err), 0);
	CHECK_EQ_INT(msg_recv_fds(sv[1], FRAME_MAX_DEFAULT, &back, &got, &err),
	             0);
	CHECK_EQ_INT(got.n, 0);
	msg_free(&back);
	/* Sent with descriptors, read without: the kernel drops them. */
	int before = harness_open_fds();
	CHECK_EQ_INT(msg_send_fds(sv[0], &m, fds, 2, &err), 0);
	CHECK_EQ_INT(msg_recv(sv[1], FRAME_MAX_DEFAULT, &back, &err), 0);
	CHECK_EQ_INT(harness_open_fds(), before);
	msg_free(&back);
	msg_free(&m);
	close(a);
	close(b);
	close(sv[0]);
	close(sv[1]);
}

static void
test_values_and_versions(void)
{
	struct ipc_error err;
	struct pk k;

	/* A v3 peer: its other keys are not checked against v2. */
	pk_init(&k);
	msgpack_pack_map(&k.p, 3);
	pk_str(&k, "type");
	pk_str(&k, "hello");
	pk_str(&k, "proto");
	msgpack_pack_int(&k.p, 3);
	pk_str(&k, "token");
	msgpack_pack_array(&k.p, 0);
	CHECK_EQ_INT(pk_decode(&k, &err), IPC_E_PROTO_VERSION);
	CHECK_STR_CONTAINS(err.message, "protocol 3");

	pk_init(&k);
	msgpack_pack_map(&k.p, 1);
	pk_str(&k, "type");
	pk_str(&k, "bye");
	CHECK_EQ_INT(pk_decode(&k, &err), IPC_E_UNKNOWN_TYPE);
	CHECK_STR_CONTAINS(err.message, "\"bye\"");

	pk_init(&k);
	msgpack_pack_map(&k.p, 1);
	pk_str(&k, "token");
	pk_str(&k, "x");
	CHECK_EQ_INT(pk_decode(&k, &err), IPC_E_MISSING_KEY);
	CHECK_STR_CONTAINS(err.message, "message.type");

	pk_init(&k);
	msgpack_pack_map(&k.p, 1);
	pk_str(&k, "type");
	msgpack_pack_int(&k.p, 1);
	CHECK_EQ_INT(pk_decode(&k, &err), IPC_E_WRONG_TYPE);

	pk_init(&k);
	msgpack_pack_array(&k.p, 0);
	CHECK_EQ_INT(pk_decode(&k, &err), IPC_E_NOT_MAP);
	CHECK_STR_CONTAINS(err.message, "an array");

	/* Embedded NUL in a string. */
	pk_init(&k);
	msgpack_pack_map(&k.p, 3);
	pk_str(&k, "type");
	pk_str(&k, "hello");
	pk_str(&k, "proto");
	msgpack_pack_int(&k.p, 2);
	pk_str(&k, "token");
	msgpack_pack_str_with_body(&k.p, "ab\0cd", 5);
	CHECK_EQ_INT(pk_decode(&k, &err), IPC_E_BAD_VALUE);
	CHECK_STR_CONTAINS(err.message, "hello.token: string contains a NUL");

	/* Over-long token, negative pid, unknown kind, duplicate key. */
	char token[MSG_MAX_TOKEN + 2];
	memset(token, 't', sizeof token - 1);
	token[sizeof token - 1] = '\0';
	pk_init(&k);
	msgpack_pack_map(&k.p, 3);
	pk_str(&k, "type");
	pk_str(&k, "hello");
	pk_str(&k, "proto");
	msgpack_pack_int(&k.p, 2);
	pk_str(&k, "token");
	pk_str(&k, token);
	CHECK_EQ_INT(pk_decode(&k, &err), IPC_E_BAD_VALUE);
	CHECK_STR_CONTAINS(err.message, "limit of 128");

	pk_init(&k);
	msgpack_pack_map(&k.p, 2);
	pk_str(&k, "type");
	pk_str(&k, "error");
	pk_str(&k, "task_id");
	msgpack_pack_int(&k.p, -3);
	CHECK_EQ_INT(pk_decode(&k, &err), IPC_E_BAD_VALUE);
	CHECK_STR_CONTAINS(err.message,
	                   "error.task_id: expected a non-negative integer");

	pk_init(&k);
	msgpack_pack_map(&k.p, 2);
	pk_str(&k, "type");
	pk_str(&k, "task");
	pk_str(&k, "type");
	pk_str(&k, "task");
	CHECK_EQ_INT(pk_decode(&k, &err), IPC_E_BAD_VALUE);
	CHECK_STR_CONTAINS(err.message, "appears twice");

	struct msg m;
	make_sample(5, &m);
	m.u.task.kind = TASK_SHUTDOWN;
	make_params(&m.u.task.params, PARAMS_STREAM);
	struct msg back;
	CHECK_EQ_INT(round_trip(&m, &back, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
	CHECK_STR_CONTAINS(err.message, "shutdown task carries no params");
	msg_free(&m);
	make_sample(15, &m);
	make_params(&m.u.task.params, PARAMS_INLINE);
	CHECK_EQ_INT(round_trip(&m, &back, &err), -1);
	CHECK_STR_CONTAINS(err.message, "an init task carries no params");
	msg_free(&m);

	/* A config value that is a map. */
	pk_init(&k);
	msgpack_pack_map(&k.p, 6);
	pk_str(&k, "type");
	pk_str(&k, "task");
	pk_str(&k, "task_id");
	msgpack_pack_int(&k.p, 1);
	pk_str(&k, "kind");
	pk_str(&k, "shutdown");
	pk_str(&k, "round");
	msgpack_pack_int(&k.p, 1);
	pk_str(&k, "client_id");
	msgpack_pack_int(&k.p, 1);
	pk_str(&k, "config");
	msgpack_pack_map(&k.p, 1);
	pk_str(&k, "nested");
	msgpack_pack_map(&k.p, 0);
	CHECK_EQ_INT(pk_decode(&k, &err), IPC_E_WRONG_TYPE);
	CHECK_STR_CONTAINS(err.message,
	                   "task.config.nested: expected a number, "
	                   "string or boolean, got a map");

	/* Unknown keys are ignored. */
	pk_init(&k);
	msgpack_pack_map(&k.p, 5);
	pk_str(&k, "type");
	pk_str(&k, "metrics");
	pk_str(&k, "task_id");
	msgpack_pack_int(&k.p, 1);
	pk_str(&k, "step");
	msgpack_pack_int(&k.p, 1);
	pk_str(&k, "values");
	msgpack_pack_map(&k.p, 0);
	pk_str(&k, "from_the_future");
	msgpack_pack_array(&k.p, 0);
	CHECK_EQ_INT(pk_decode(&k, &err), IPC_OK);

	/* A fork's env: names without '=', string values only. */
	make_sample(12, &m);
	kv_set_str(&m.u.fork.env, "A=B", "x");
	CHECK_EQ_INT(round_trip(&m, &back, &err), -1);
	CHECK_STR_CONTAINS(err.message, "fork.env.A=B");
	msg_free(&m);
	make_sample(12, &m);
	kv_set_num(&m.u.fork.env, "COHORT_TASKS", 3);
	CHECK_EQ_INT(round_trip(&m, &back, &err), -1);
	CHECK_STR_CONTAINS(err.message, "fork.env.COHORT_TASKS");
	msg_free(&m);
	/* A hello's role is worker or fork-server. */
	make_sample(11, &m);
	uint8_t *frame;
	size_t len;
	CHECK_EQ_INT(msg_encode_frame(&m, &frame, &len), 0);
	uint8_t *at = memmem(frame, len, "fork-server", 11);
	CHECK(at != NULL);
	memcpy(at, "fork-sorvor", 11);
	struct msg out;
	CHECK_EQ_INT(msg_decode(frame + 4, len - 4, &out, &err), -1);
	CHECK_STR_CONTAINS(err.message, "hello.role: expected worker or "
	                                "fork-server");
	free(frame);
	msg_free(&m);
	/* An exit status is a wait status (16 bits). */
	make_sample(14, &m);
	m.u.exited.status = 1 << 20;
	CHECK_EQ_INT(round_trip(&m, &back, &err), -1);
	CHECK_STR_CONTAINS(err.message, "exited.status");
	msg_free(&m);
}

static void
test_framing_level_errors(void)
{
	struct ipc_error err;
	struct msg m;
	/* Trailing bytes after a valid map. */
	uint8_t *frame;
	size_t len;
	make_sample(8, &m);
	CHECK_EQ_INT(msg_encode_frame(&m, &frame, &len), 0);
	msg_free(&m);
	uint8_t *more = xmalloc(len + 1);
	memcpy(more, frame, len);
	more[len] = 0xc0;
	CHECK_EQ_INT(msg_decode(more + 4, len - 3, &m, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_TRAILING);
	CHECK_STR_CONTAINS(err.message, "1 bytes follow");
	/* Truncated at every length. */
	for (size_t cut = 0; cut < len - 4; cut++) {
		CHECK_EQ_INT(msg_decode(frame + 4, cut, &m, &err), -1);
		CHECK_EQ_INT(err.code, IPC_E_TRUNCATED);
	}
	free(more);
	free(frame);

	/* 100,000 nested arrays: a clean error, not a stack overflow. */
	size_t depth = 100000;
	uint8_t *deep = xmalloc(depth + 1);
	memset(deep, 0x91, depth);
	deep[depth] = 0xc0;
	CHECK_EQ_INT(msg_decode(deep, depth + 1, &m, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_TOO_DEEP);
	/* msgpack-c alone fails on it too, as "no memory": the scan exists
	 * so that users see the real cause. */
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	CHECK(msgpack_unpack_next(&up, (const char *)deep, depth + 1, &off) <
	      0);
	msgpack_unpacked_destroy(&up);
	free(deep);

	/* Counts larger than the payload can hold are refused before
	 * msgpack-c allocates for them. */
	static const uint8_t huge_array[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
	CHECK_EQ_INT(msg_decode(huge_array, sizeof huge_array, &m, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_TRUNCATED);
	static const uint8_t huge_map[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0};
	CHECK_EQ_INT(msg_decode(huge_map, sizeof huge_map, &m, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_TRUNCATED);
	static const uint8_t never_used[] = {0xc1};
	CHECK_EQ_INT(msg_decode(never_used, 1, &m, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_MSGPACK);
	CHECK_EQ_INT(msg_decode(never_used, 0, &m, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_TRUNCATED);
}

/* Run one payload through msg_decode and check the outcome is well formed. */
static void
decode_any(const uint8_t *p, size_t len)
{
	struct msg m;
	struct ipc_error err;
	ipc_error_clear(&err);
	if (msg_decode(p, len, &m, &err) == 0) {
		CHECK((unsigned)m.type < MSG_TYPE_COUNT);
		msg_free(&m);
	} else {
		CHECK(err.code > IPC_OK && err.code < IPC_E_CODE_COUNT);
		CHECK(err.message[0] != '\0');
	}
}

static void
test_random_and_mutated_payloads(void)
{
	struct rng r;
	rng_seed(&r, 2024, 0);
	uint8_t buf[256];
	for (int i = 0; i < 100000; i++) {
		size_t len = rng_below(&r, 64);
		for (size_t j = 0; j < len; j++)
			buf[j] = (uint8_t)rng_next(&r);
		/* A map start makes the schema code run more often. */
		if (len > 0 && i % 2 == 0)
			buf[0] = (uint8_t)(0x80 | rng_below(&r, 16));
		decode_any(buf, len);
	}
	/* Mutations of valid frames: flip, overwrite, cut or repeat bytes,
	 * then push them through the frame decoder as a stream. */
	struct msg m;
	int decoded = 0;
	for (int s = 0; make_sample(s, &m); s++) {
		uint8_t *frame;
		size_t len;
		CHECK_EQ_INT(msg_encode_frame(&m, &frame, &len), 0);
		msg_free(&m);
		uint8_t *mut = xmalloc(len + 16);
		for (int i = 0; i < 4000; i++) {
			memcpy(mut, frame, len);
			size_t n = len;
			int edits = 1 + (int)rng_below(&r, 4);
			for (int e = 0; e < edits; e++) {
				size_t at = 4 + rng_below(&r, n - 4);
				switch (rng_below(&r, 4)) {
				case 0:
					mut[at] ^=
					    (uint8_t)(1u << rng_below(&r, 8));
					break;
				case 1:
					mut[at] = (uint8_t)rng_next(&r);
					break;
				case 2:
					n = at + 1;
					break;
				default:
					mut[at] = 0x00;
					break;
				}
			}
			/* Keep the header honest about the mutated length. */
			uint32_t pl = (uint32_t)(n - 4);
			mut[0] = (uint8_t)(pl >> 24);
			mut[1] = (uint8_t)(pl >> 16);
			mut[2] = (uint8_t)(pl >> 8);
			mut[3] = (uint8_t)pl;
			struct frame_decoder d;
			frame_decoder_init(&d, FRAME_MAX_DEFAULT);
			size_t used;
			struct ipc_error err;
			if (frame_decoder_feed(&d, mut, n, &used, &err) == 1) {
				size_t plen;
				const uint8_t *p =
				    frame_decoder_payload(&d, &plen);
				struct msg out;
				if (msg_decode(p, plen, &out, &err) == 0) {
					decoded++;
					msg_free(&out);
				} else {
					CHECK(err.code != IPC_OK);
				}
			}
			frame_decoder_free(&d);
		}
		free(mut);
		free(frame);
	}
	/* Some mutations (in values, not structure) still decode. */
	CHECK(decoded > 0);
}

static void
test_send_recv_over_socket(void)
{
	signal(SIGPIPE, SIG_DFL);
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		fatal("socketpair failed");
	struct ipc_error err;
	struct msg m, back;
	make_sample(6, &m);
	CHECK_EQ_INT(msg_send(sv[0], &m, &err), 0);
	CHECK_EQ_INT(msg_recv(sv[1], FRAME_MAX_DEFAULT, &back, &err), 0);
	CHECK(msg_equal(&m, &back));
	msg_free(&back);
	/* A frame over the receiver's limit. */
	CHECK_EQ_INT(msg_send(sv[0], &m, &err), 0);
	CHECK_EQ_INT(msg_recv(sv[1], 16, &back, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_FRAME_TOO_LARGE);
	close(sv[1]);
	CHECK_EQ_INT(msg_send(sv[0], &m, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_IO);
	msg_free(&m);
	close(sv[0]);
}

/* Read a whole small file into a malloc'd buffer; NULL if unreadable. */
static uint8_t *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	uint8_t *buf = xmalloc(1 << 16);
	*len = fread(buf, 1, 1 << 16, f);
	fclose(f);
	return buf;
}

static void
test_fuzz_seeds_are_valid_frames(void)
{
	/* Seeds are a split byte then one frame; if the schema changes they
	 * must be regenerated, or the fuzzer starts from garbage. */
	/* CMake compiles with absolute paths: the corpus sits beside us. */
	char dir[1024];
	snprintf(dir, sizeof dir, "%s", __FILE__);
	char *slash = strrchr(dir, '/');
	if (slash == NULL)
		harness_skip("source path unknown (__FILE__ is relative)");
	snprintf(slash, sizeof dir - (size_t)(slash - dir),
	         "/fuzz/corpus/message");
	DIR *d = opendir(dir);
	CHECK(d != NULL);
	if (d == NULL)
		return;
	int seen[MSG_TYPE_COUNT] = {0};
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char path[2048];
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		size_t len;
		uint8_t *buf = read_file(path, &len);
		CHECK(buf != NULL && len > 5);
		if (buf == NULL)
			continue;
		struct frame_decoder fd;
		frame_decoder_init(&fd, FRAME_MAX_DEFAULT);
		size_t used, plen;
		struct ipc_error err;
		struct msg m;
		ipc_error_clear(&err);
		int ok = frame_decoder_feed(&fd, buf + 1, len - 1, &used,
		                            &err) == 1 &&
		         used == len - 1;
		const uint8_t *payload = frame_decoder_payload(&fd, &plen);
		ok = ok && msg_decode(payload, plen, &m, &err) == 0;
		if (!ok)
			fprintf(stderr, "  seed %s: %s\n", e->d_name,
			        err.message);
		CHECK(ok);
		if (ok) {
			seen[m.type]++;
			msg_free(&m);
		}
		frame_decoder_free(&fd);
		free(buf);
	}
	closedir(d);
	for (int t = 0; t < MSG_TYPE_COUNT; t++)
		CHECK(seen[t] > 0);
}

/* A chunk frame written as head + data (msg_encode_chunk_head) is byte for
 * byte the frame msg_encode_frame writes, for integers and lengths of every
 * msgpack width; msg_chunk_head_parse finds the fields and the data in it
 * and refuses anything else. */
static void
test_chunk_head(void)
{
	static const uint64_t ids[] = {0, 127, 200, 70000, 5000000000ull};
	static const size_t lens[] = {1, 255, 256, 70000};
	uint8_t *data = xmalloc(70000);
	for (size_t i = 0; i < 70000; i++)
		data[i] = (uint8_t)(i * 31 + 7);
	for (size_t a = 0; a < sizeof ids / sizeof ids[0]; a++)
		for (size_t b = 0; b < sizeof lens / sizeof lens[0]; b++) {
			struct msg m;
			msg_init(&m, MSG_CHUNK);
			m.u.chunk.task_id = ids[a];
			m.u.chunk.offset = ids[(a + 2) % 5];
			m.u.chunk.len = lens[b];
			m.u.chunk.data = data;
			uint8_t *whole, *head;
			size_t wlen, hlen;
			CHECK_EQ_INT(msg_encode_frame(&m, &whole, &wlen), 0);
			CHECK_EQ_INT(msg_encode_chunk_head(&m, &head, &hlen),
			             0);
			CHECK(hlen + lens[b] == wlen);
			CHECK(memcmp(whole, head, hlen) == 0);
			CHECK(memcmp(whole + hlen, data, lens[b]) == 0);
			uint64_t id = 1, off = 1;
			size_t at = 0, plen = wlen - 4;
			const uint8_t *pay = whole + 4;
			size_t n = plen < 64 ? plen : 64;
			CHECK_EQ_INT(
			    msg_chunk_head_parse(pay, n, plen, &id, &off, &at),
			    0);
			CHECK(id == ids[a] && off == ids[(a + 2) % 5]);
			CHECK(at == hlen - 4);
			/* A payload of another length, a cut head, a changed
			 * key or map size: not a chunk head. */
			CHECK_EQ_INT(msg_chunk_head_parse(pay, n, plen + 1, &id,
			                                  &off, &at),
			             -1);
			CHECK_EQ_INT(msg_chunk_head_parse(pay, at - 1, plen,
			                                  &id, &off, &at),
			             -1);
			uint8_t bad[64];
			memcpy(bad, pay, n);
			bad[3]++;
			CHECK_EQ_INT(
			    msg_chunk_head_parse(bad, n, plen, &id, &off, &at),
			    -1);
			bad[3]--;
			bad[0] = 0x85;
			CHECK_EQ_INT(
			    msg_chunk_head_parse(bad, n, plen, &id, &off, &at),
			    -1);
			m.u.chunk.data = NULL;
			msg_free(&m);
			free(whole);
			free(head);
		}
	/* Other messages are not chunk heads. */
	struct msg e;
	msg_init(&e, MSG_ERROR);
	e.u.error.code = xstrdup("x");
	e.u.error.message = xstrdup("y");
	uint8_t *f;
	size_t flen;
	CHECK_EQ_INT(msg_encode_frame(&e, &f, &flen), 0);
	uint64_t id, off;
	size_t at;
	CHECK_EQ_INT(
	    msg_chunk_head_parse(f + 4, flen - 4, flen - 4, &id, &off, &at),
	    -1);
	CHECK_EQ_INT(msg_encode_chunk_head(&e, &f, &flen) == 0 ? 0 : -1, -1);
	free(f);
	msg_free(&e);
	free(data);
}

int
main(void)
{
	RUN(test_every_message_round_trips);
	RUN(test_round_trip_fields_by_hand);
	RUN(test_kv_list);
	RUN(test_missing_and_wrong_type_keys);
	RUN(test_params_validation);
	RUN(test_values_and_versions);
	RUN(test_framing_level_errors);
	RUN(test_random_and_mutated_payloads);
	RUN(test_send_recv_over_socket);
	RUN(test_update_fd);
	RUN(test_partial);
	RUN(test_fds_over_socket);
	RUN(test_fuzz_seeds_are_valid_frames);
	RUN(test_chunk_head);
	return harness_finish();
}
