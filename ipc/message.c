/* message.c: the protocol's messages (docs/protocol.md): msgpack encoding,
 * schema-checked decoding that names the offending key path, and blocking
 * send/receive. */
#include "message.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

#define PATH_LEN 256         /* key paths in error messages */
#define MSG_MAX_CODE 63      /* bytes of error.code */
#define MSG_MAX_DTYPE 15     /* bytes of a dtype name */
#define MSG_MAX_TYPE_NAME 31 /* bytes of "type" worth quoting back */

static const char *const type_names[MSG_TYPE_COUNT] = {
    [MSG_HELLO] = "hello",     [MSG_TASK] = "task",     [MSG_RESULT] = "result",
    [MSG_METRICS] = "metrics", [MSG_ERROR] = "error",   [MSG_CHUNK] = "chunk",
    [MSG_FORK] = "fork",       [MSG_FORKED] = "forked", [MSG_EXITED] = "exited",
    [MSG_PARTIAL] = "partial",
};

static const char *const kind_names[TASK_KIND_COUNT] = {
    [TASK_FIT] = "fit",
    [TASK_EVALUATE] = "evaluate",
    [TASK_SHUTDOWN] = "shutdown",
    [TASK_INIT] = "init",
};

/* Wire name of a message type. */
const char *
msg_type_name(enum msg_type type)
{
	if ((unsigned)type >= MSG_TYPE_COUNT)
		return "unknown";
	return type_names[type];
}

/* Wire name of a task kind. */
const char *
task_kind_name(enum task_kind kind)
{
	if ((unsigned)kind >= TASK_KIND_COUNT)
		return "unknown";
	return kind_names[kind];
}

/* Index of key in l, or -1. */
static long
kv_index(const struct kv_list *l, const char *key)
{
	for (size_t i = 0; i < l->count; i++) {
		if (strcmp(l->entries[i].key, key) == 0)
			return (long)i;
	}
	return -1;
}

/* The entry for key, emptied for a new value, appended if absent. */
static struct kv_entry *
kv_slot(struct kv_list *l, const char *key)
{
	long i = kv_index(l, key);
	if (i >= 0) {
		struct kv_entry *e = &l->entries[i];
		free(e->str);
		e->str = NULL;
		return e;
	}
	if (l->count == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->entries =
		    xreallocarray(l->entries, l->cap, sizeof *l->entries);
	}
	struct kv_entry *e = &l->entries[l->count++];
	memset(e, 0, sizeof *e);
	e->key = xstrdup(key);
	return e;
}

/* Set key to a number. */
void
kv_set_num(struct kv_list *l, const char *key, double value)
{
	struct kv_entry *e = kv_slot(l, key);
	e->type = KV_NUM;
	e->num = value;
}

/* Set key to a copy of a string. */
void
kv_set_str(struct kv_list *l, const char *key, const char *value)
{
	struct kv_entry *e = kv_slot(l, key);
	e->type = KV_STR;
	e->str = xstrdup(value);
}

/* Set key to a boolean. */
void
kv_set_bool(struct kv_list *l, const char *key, int value)
{
	struct kv_entry *e = kv_slot(l, key);
	e->type = KV_BOOL;
	e->boolean = value != 0;
}

/* The entry for key, or NULL. */
const struct kv_entry *
kv_find(const struct kv_list *l, const char *key)
{
	long i = kv_index(l, key);
	return i < 0 ? NULL : &l->entries[i];
}

/* Number under key, or def. */
double
kv_get_num(const struct kv_list *l, const char *key, double def)
{
	const struct kv_entry *e = kv_find(l, key);
	return e != NULL && e->type == KV_NUM ? e->num : def;
}

/* String under key, or def. */
const char *
kv_get_str(const struct kv_list *l, const char *key, const char *def)
{
	const struct kv_entry *e = kv_find(l, key);
	return e != NULL && e->type == KV_STR ? e->str : def;
}

/* Boolean under key, or def. */
int
kv_get_bool(const struct kv_list *l, const char *key, int def)
{
	const struct kv_entry *e = kv_find(l, key);
	return e != NULL && e->type == KV_BOOL ? e->boolean : def;
}

/* Free every entry and empty the list. */
void
kv_free(struct kv_list *l)
{
	for (size_t i = 0; i < l->count; i++) {
		free(l->entries[i].key);
		free(l->entries[i].str);
	}
	free(l->entries);
	memset(l, 0, sizeof *l);
}

/* An empty params_ref (PARAMS_NONE). */
void
params_ref_init(struct params_ref *p)
{
	memset(p, 0, sizeof *p);
	tensor_manifest_init(&p->manifest);
	p->where = PARAMS_NONE;
}

/* Free the manifest and inline bytes. */
void
params_ref_free(struct params_ref *p)
{
	tensor_manifest_free(&p->manifest);
	free(p->inline_data);
	params_ref_init(p);
}

/* Zero a message of the given type. */
void
msg_init(struct msg *m, enum msg_type type)
{
	memset(m, 0, sizeof *m);
	m->type = type;
	if (type == MSG_HELLO)
		m->u.hello.proto = PROTO_VERSION;
	else if (type == MSG_TASK) {
		params_ref_init(&m->u.task.params);
		m->u.task.update_fd = -1;
		m->u.task.partial_fd = -1;
	} else if (type == MSG_RESULT) {
		params_ref_init(&m->u.result.params);
		m->u.result.folded = -1;
	}
}

/* Free what a message owns and zero it. */
void
msg_free(struct msg *m)
{
	switch (m->type) {
	case MSG_TASK:
		kv_free(&m->u.task.config);
		params_ref_free(&m->u.task.params);
		break;
	case MSG_RESULT:
		kv_free(&m->u.result.metrics);
		params_ref_free(&m->u.result.params);
		break;
	case MSG_METRICS:
		kv_free(&m->u.metrics.values);
		break;
	case MSG_ERROR:
		free(m->u.error.code);
		free(m->u.error.message);
		break;
	case MSG_CHUNK:
		free(m->u.chunk.data);
		break;
	case MSG_FORK:
		kv_free(&m->u.fork.env);
		break;
	case MSG_PARTIAL:
		free(m->u.partial.tasks);
		break;
	default:
		break;
	}
	msg_init(m, m->type);
}

/* Report a payload that stops inside a value. */
static int
scan_truncated(size_t off, size_t len, struct ipc_error *err)
{
	return ipc_error_set(err, IPC_E_TRUNCATED,
	                     "payload ends inside a msgpack value (needs more "
	                     "than its %zu bytes, at byte %zu)",
	                     len, off);
}

/* Walk the encoding of the first msgpack object in p without building it:
 * every container count must fit in the bytes left (an element takes at
 * least one byte), nesting stays within MSG_MAX_DEPTH, objects within
 * MSG_MAX_OBJECTS. msgpack-c would otherwise allocate for counts a short
 * payload cannot hold, and report its fixed parser stack running out as
 * "no memory". *end is the offset just after the object. */
static int
scan_payload(const uint8_t *p, size_t len, size_t *end, struct ipc_error *err)
{
	uint64_t left[MSG_MAX_DEPTH + 1]; /* elements still to read per level */
	int depth = 0;
	uint64_t objects = 0;
	size_t off = 0;
	left[0] = 1;
	for (;;) {
		while (left[depth] == 0) {
			if (depth == 0) {
				*end = off;
				return 0;
			}
			depth--;
		}
		left[depth]--;
		if (off >= len)
			return scan_truncated(off, len, err);
		if (++objects > MSG_MAX_OBJECTS)
			return ipc_error_set(
			    err, IPC_E_BAD_VALUE,
			    "payload holds more than %u msgpack "
			    "values",
			    MSG_MAX_OBJECTS);
		uint8_t b = p[off++];
		uint64_t skip = 0, count = 0;
		size_t length_bytes = 0;
		int container = 0; /* 1: array, 2: map (two values per entry) */
		if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 ||
		    b == 0xc3) {
			/* fixint, nil, bool: the type byte is the value */
		} else if (b <= 0x8f) {
			count = 2u * (b & 0x0fu);
			container = 2;
		} else if (b <= 0x9f) {
			count = b & 0x0fu;
			container = 1;
		} else if (b <= 0xbf) {
			skip = b & 0x1fu;
		} else {
			switch (b) {
			case 0xc4: /* bin 8, 16, 32 and str 8, 16, 32 */
			case 0xd9:
				length_bytes = 1;
				break;
			case 0xc5:
			case 0xda:
				length_bytes = 2;
				break;
			case 0xc6:
			case 0xdb:
				length_bytes = 4;
				break;
			case 0xc7: /* ext 8, 16, 32: length, then a type byte */
				length_bytes = 1;
				skip = 1;
				break;
			case 0xc8:
				length_bytes = 2;
				skip = 1;
				break;
			case 0xc9:
				length_bytes = 4;
				skip = 1;
				break;
			case 0xcc: /* uint8, int8 */
			case 0xd0:
				skip = 1;
				break;
			case 0xcd:
			case 0xd1:
				skip = 2;
				break;
			case 0xca: /* float32 */
			case 0xce:
			case 0xd2:
				skip = 4;
				break;
			case 0xcb: /* float64 */
			case 0xcf:
			case 0xd3:
				skip = 8;
				break;
			case 0xd4: /* fixext 1, 2, 4, 8, 16 (plus a type byte)
			            */
				skip = 2;
				break;
			case 0xd5:
				skip = 3;
				break;
			case 0xd6:
				skip = 5;
				break;
			case 0xd7:
				skip = 9;
				break;
			case 0xd8:
				skip = 17;
				break;
			case 0xdc:
				length_bytes = 2;
				container = 1;
				break;
			case 0xdd:
				length_bytes = 4;
				container = 1;
				break;
			case 0xde:
				length_bytes = 2;
				container = 2;
				break;
			case 0xdf:
				length_bytes = 4;
				container = 2;
				break;
			default:
				return ipc_error_set(err, IPC_E_MSGPACK,
				                     "payload byte %zu: 0x%02x "
				                     "starts no msgpack value",
				                     off - 1, b);
			}
		}
		if (length_bytes > 0) {
			if (len - off < length_bytes)
				return scan_truncated(off, len, err);
			uint64_t n = 0;
			for (size_t i = 0; i < length_bytes; i++)
				n = n << 8 | p[off++];
			if (container)
				count = n * (uint64_t)container;
			else
				skip += n;
		}
		if (skip > len - off)
			return scan_truncated(off, len, err);
		off += skip;
		if (count > 0) {
			if (count > len - off)
				return ipc_error_set(
				    err, IPC_E_TRUNCATED,
				    "payload byte %zu: a container of "
				    "%" PRIu64 " values cannot fit in the "
				    "%zu bytes left",
				    off, count, len - off);
			if (depth == MSG_MAX_DEPTH)
				return ipc_error_set(err, IPC_E_TOO_DEEP,
				                     "payload nests maps and "
				                     "arrays deeper than %d "
				                     "levels",
				                     MSG_MAX_DEPTH);
			left[++depth] = count;
		}
	}
}

/* The msgpack type of o, in words for error messages. */
static const char *
obj_type_name(const msgpack_object *o)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		return "nil";
	case MSGPACK_OBJECT_BOOLEAN:
		return "a boolean";
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return "an integer";
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return "a float";
	case MSGPACK_OBJECT_STR:
		return "a string";
	case MSGPACK_OBJECT_ARRAY:
		return "an array";
	case MSGPACK_OBJECT_MAP:
		return "a map";
	case MSGPACK_OBJECT_BIN:
		return "binary";
	case MSGPACK_OBJECT_EXT:
		return "an extension value";
	}
	return "an unknown type";
}

/* Report that the value at where has the wrong type. */
static int
wrong_type(const msgpack_object *o, const char *where, const char *expected,
           struct ipc_error *err)
{
	return ipc_error_set(err, IPC_E_WRONG_TYPE, "%s: expected %s, got %s",
	                     where, expected, obj_type_name(o));
}

/* Format a key path into buf (PATH_LEN bytes). A long path is cut short,
 * which only shortens an error message. */
static const char *path_fmt(char *buf, const char *fmt, ...)
    COHORT_PRINTF(2, 3);

static const char *
path_fmt(char *buf, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, PATH_LEN, fmt, ap);
	va_end(ap);
	return buf;
}

/* Format "parent.key" into buf. */
static const char *
path_join(char *buf, const char *parent, const char *key)
{
	return path_fmt(buf, "%s.%s", parent, key);
}

/* Find key in a map: *out is NULL when absent (an error if required). A key
 * given twice is an error: the two senders' intents cannot both hold. */
static int
map_get(const msgpack_object *map, const char *parent, const char *key,
        int required, const msgpack_object **out, struct ipc_error *err)
{
	*out = NULL;
	size_t klen = strlen(key);
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object *k = &map->via.map.ptr[i].key;
		if (k->type != MSGPACK_OBJECT_STR || k->via.str.size != klen ||
		    memcmp(k->via.str.ptr, key, klen) != 0)
			continue;
		if (*out != NULL)
			return ipc_error_set(err, IPC_E_BAD_VALUE,
			                     "%s.%s: key appears twice", parent,
			                     key);
		*out = &map->via.map.ptr[i].val;
	}
	if (*out == NULL && required)
		return ipc_error_set(err, IPC_E_MISSING_KEY,
		                     "%s.%s: missing required key", parent,
		                     key);
	return 0;
}

/* An unsigned integer no larger than max. */
static int
want_uint(const msgpack_object *o, const char *where, uint64_t max,
          uint64_t *out, struct ipc_error *err)
{
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "%s: expected a non-negative integer, "
		                     "got %" PRId64,
		                     where, o->via.i64);
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return wrong_type(o, where, "a non-negative integer", err);
	if (o->via.u64 > max)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "%s: %" PRIu64 " is over the maximum "
		                     "%" PRIu64,
		                     where, o->via.u64, max);
	*out = o->via.u64;
	return 0;
}

/* A signed integer in [min, max]. */
static int
want_int(const msgpack_object *o, const char *where, int64_t min, int64_t max,
         int64_t *out, struct ipc_error *err)
{
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		if (o->via.u64 > (uint64_t)max)
			return ipc_error_set(err, IPC_E_BAD_VALUE,
			                     "%s: %" PRIu64 " is over the "
			                     "maximum %" PRId64,
			                     where, o->via.u64, max);
		*out = (int64_t)o->via.u64;
		return 0;
	}
	if (o->type != MSGPACK_OBJECT_NEGATIVE_INTEGER)
		return wrong_type(o, where, "an integer", err);
	if (o->via.i64 < min)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "%s: %" PRId64 " is under the minimum "
		                     "%" PRId64,
		                     where, o->via.i64, min);
	*out = o->via.i64;
	return 0;
}

/* A string of at most max bytes without NUL bytes (C code reads it). */
static int
want_str(const msgpack_object *o, const char *where, size_t max,
         struct ipc_error *err)
{
	if (o->type != MSGPACK_OBJECT_STR)
		return wrong_type(o, where, "a string", err);
	if (o->via.str.size > max)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "%s: string of %" PRIu32 " bytes is over "
		                     "the limit of %zu",
		                     where, o->via.str.size, max);
	if (memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "%s: string contains a NUL byte", where);
	return 0;
}

/* A NUL-terminated copy of a checked string. */
static char *
obj_strdup(const msgpack_object *o)
{
	char *s = xmalloc(o->via.str.size + 1u);
	memcpy(s, o->via.str.ptr, o->via.str.size);
	s[o->via.str.size] = '\0';
	return s;
}

/* Copy a checked string into a buffer known to be large enough. */
static void
obj_strcpy(char *dst, const msgpack_object *o)
{
	memcpy(dst, o->via.str.ptr, o->via.str.size);
	dst[o->via.str.size] = '\0';
}

/* Whether a checked string equals s. */
static int
obj_str_is(const msgpack_object *o, const char *s)
{
	return o->via.str.size == strlen(s) &&
	       memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

/* Required key holding an unsigned integer no larger than max. */
static int
key_uint(const msgpack_object *map, const char *parent, const char *key,
         uint64_t max, uint64_t *out, struct ipc_error *err)
{
	const msgpack_object *o;
	char where[PATH_LEN];
	if (map_get(map, parent, key, 1, &o, err) != 0)
		return -1;
	return want_uint(o, path_join(where, parent, key), max, out, err);
}

/* Required key holding a signed integer in [min, max]. */
static int
key_int(const msgpack_object *map, const char *parent, const char *key,
        int64_t min, int64_t max, int64_t *out, struct ipc_error *err)
{
	const msgpack_object *o;
	char where[PATH_LEN];
	if (map_get(map, parent, key, 1, &o, err) != 0)
		return -1;
	return want_int(o, path_join(where, parent, key), min, max, out, err);
}

/* Required key holding a string of at most max bytes; *out points at it. */
static int
key_str(const msgpack_object *map, const char *parent, const char *key,
        size_t max, const msgpack_object **out, struct ipc_error *err)
{
	char where[PATH_LEN];
	if (map_get(map, parent, key, 1, out, err) != 0)
		return -1;
	return want_str(*out, path_join(where, parent, key), max, err);
}

/* A map of scalar values into l: numbers, and unless numbers_only also
 * strings and booleans. */
static int
decode_kv(const msgpack_object *o, const char *where, int numbers_only,
          struct kv_list *l, struct ipc_error *err)
{
	if (o->type != MSGPACK_OBJECT_MAP)
		return wrong_type(o, where, "a map", err);
	if (o->via.map.size > MSG_MAX_KV)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "%s: %" PRIu32 " entries, over the limit "
		                     "of %d",
		                     where, o->via.map.size, MSG_MAX_KV);
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object *k = &o->via.map.ptr[i].key;
		const msgpack_object *v = &o->via.map.ptr[i].val;
		char sub[PATH_LEN];
		path_fmt(sub, "%s[key %" PRIu32 "]", where, i);
		if (want_str(k, sub, SIZE_MAX, err) != 0)
			return -1;
		char *key = obj_strdup(k);
		path_fmt(sub, "%s.%.64s", where, key);
		if (kv_find(l, key) != NULL) {
			free(key);
			return ipc_error_set(err, IPC_E_BAD_VALUE,
			                     "%s: key appears twice", sub);
		}
		switch (v->type) {
		case MSGPACK_OBJECT_POSITIVE_INTEGER:
			kv_set_num(l, key, (double)v->via.u64);
			break;
		case MSGPACK_OBJECT_NEGATIVE_INTEGER:
			kv_set_num(l, key, (double)v->via.i64);
			break;
		case MSGPACK_OBJECT_FLOAT32:
		case MSGPACK_OBJECT_FLOAT64:
			kv_set_num(l, key, v->via.f64);
			break;
		case MSGPACK_OBJECT_STR:
			if (numbers_only)
				goto bad;
			if (want_str(v, sub, SIZE_MAX, err) != 0) {
				free(key);
				return -1;
			}
			char *s = obj_strdup(v);
			kv_set_str(l, key, s);
			free(s);
			break;
		case MSGPACK_OBJECT_BOOLEAN:
			if (numbers_only)
				goto bad;
			kv_set_bool(l, key, v->via.boolean);
			break;
		default:
			goto bad;
		}
		free(key);
		continue;
	bad:
		free(key);
		return wrong_type(v, sub,
		                  numbers_only ? "a number"
		                               : "a number, string or boolean",
		                  err);
	}
	return 0;
}

/* One manifest entry {name, dtype, shape, offset, nbytes}. */
static int
decode_tensor(const msgpack_object *o, const char *where, struct tensor_desc *t,
              struct ipc_error *err)
{
	const msgpack_object *v;
	char sub[PATH_LEN];
	if (o->type != MSGPACK_OBJECT_MAP)
		return wrong_type(o, where, "a map", err);
	if (key_str(o, where, "name", TENSOR_MAX_NAME - 1, &v, err) != 0)
		return -1;
	obj_strcpy(t->name, v);
	if (key_str(o, where, "dtype", SIZE_MAX, &v, err) != 0)
		return -1;
	char dtype[MSG_MAX_DTYPE + 1];
	if (v->via.str.size > MSG_MAX_DTYPE)
		return ipc_error_set(err, IPC_E_DTYPE,
		                     "%s.dtype: a %" PRIu32 "-byte string is "
		                     "not a dtype (F32, F16, BF16, F64, I64, "
		                     "I32, U8)",
		                     where, v->via.str.size);
	obj_strcpy(dtype, v);
	if (tensor_dtype_parse(dtype, &t->dtype, err) != 0) {
		ipc_error_prefix(err, "%s.dtype: ", where);
		return -1;
	}
	if (map_get(o, where, "shape", 1, &v, err) != 0)
		return -1;
	path_join(sub, where, "shape");
	if (v->type != MSGPACK_OBJECT_ARRAY)
		return wrong_type(v, sub, "an array of dimensions", err);
	if (v->via.array.size > TENSOR_MAX_RANK)
		return ipc_error_set(err, IPC_E_SHAPE,
		                     "%s: rank %" PRIu32 " is over the maximum "
		                     "%d",
		                     sub, v->via.array.size, TENSOR_MAX_RANK);
	t->rank = (int)v->via.array.size;
	for (int d = 0; d < t->rank; d++) {
		char dim[PATH_LEN];
		path_fmt(dim, "%s[%d]", sub, d);
		if (want_uint(&v->via.array.ptr[d], dim, UINT64_MAX,
		              &t->shape[d], err) != 0)
			return -1;
	}
	if (key_uint(o, where, "offset", UINT64_MAX, &t->offset, err) != 0)
		return -1;
	return key_uint(o, where, "nbytes", UINT64_MAX, &t->nbytes, err);
}

/* The manifest array into m (not yet validated against a region). */
static int
decode_manifest(const msgpack_object *o, const char *where,
                struct tensor_manifest *m, struct ipc_error *err)
{
	if (o->type != MSGPACK_OBJECT_ARRAY)
		return wrong_type(o, where, "an array of tensors", err);
	if (o->via.array.size > TENSOR_MAX_COUNT)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "%s: %" PRIu32 " tensors, over the limit "
		                     "of %d",
		                     where, o->via.array.size,
		                     TENSOR_MAX_COUNT);
	m->count = o->via.array.size;
	m->tensors = xcalloc(m->count, sizeof *m->tensors);
	for (size_t i = 0; i < m->count; i++) {
		char sub[PATH_LEN];
		path_fmt(sub, "%s[%zu]", where, i);
		if (decode_tensor(&o->via.array.ptr[i], sub, &m->tensors[i],
		                  err) != 0)
			return -1;
	}
	return 0;
}

/* params {manifest, fd+size | inline | stream}, manifest checked against
 * the region it describes. */
static int
decode_params(const msgpack_object *o, const char *where, struct params_ref *p,
              struct ipc_error *err)
{
	const msgpack_object *man, *fd, *inl, *stream, *size;
	char sub[PATH_LEN];
	if (o->type != MSGPACK_OBJECT_MAP)
		return wrong_type(o, where, "a map", err);
	if (map_get(o, where, "manifest", 1, &man, err) != 0 ||
	    map_get(o, where, "fd", 0, &fd, err) != 0 ||
	    map_get(o, where, "inline", 0, &inl, err) != 0 ||
	    map_get(o, where, "stream", 0, &stream, err) != 0)
		return -1;
	int sources = (fd != NULL) + (inl != NULL) + (stream != NULL);
	if (sources == 0)
		return ipc_error_set(err, IPC_E_MISSING_KEY,
		                     "%s: needs one of fd (with size), inline "
		                     "or stream",
		                     where);
	if (sources > 1)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "%s: has more than one of fd, inline and "
		                     "stream",
		                     where);
	if (decode_manifest(man, path_join(sub, where, "manifest"),
	                    &p->manifest, err) != 0)
		return -1;
	if (fd != NULL) {
		uint64_t index;
		if (want_uint(fd, path_join(sub, where, "fd"),
		              PARAMS_FD_MAX - 1, &index, err) != 0)
			return -1;
		p->fd = (uint32_t)index;
		if (map_get(o, where, "size", 1, &size, err) != 0 ||
		    want_uint(size, path_join(sub, where, "size"), INT64_MAX,
		              &p->size, err) != 0)
			return -1;
		p->where = PARAMS_FD;
	} else if (inl != NULL) {
		if (inl->type != MSGPACK_OBJECT_BIN)
			return wrong_type(inl, path_join(sub, where, "inline"),
			                  "binary", err);
		p->inline_len = inl->via.bin.size;
		p->inline_data = xmalloc(p->inline_len);
		memcpy(p->inline_data, inl->via.bin.ptr, p->inline_len);
		p->size = p->inline_len;
		p->where = PARAMS_INLINE;
	} else {
		if (want_uint(stream, path_join(sub, where, "stream"),
		              INT64_MAX, &p->size, err) != 0)
			return -1;
		p->where = PARAMS_STREAM;
	}
	if (tensor_manifest_validate(&p->manifest, p->size, err) != 0) {
		ipc_error_prefix(err, "%s: ", where);
		return -1;
	}
	/* Every tensor lies inside a region of at most INT64_MAX bytes, so
	 * rounding the end up cannot overflow. */
	uint64_t end = 0;
	for (size_t i = 0; i < p->manifest.count; i++) {
		const struct tensor_desc *t = &p->manifest.tensors[i];
		if (t->offset + t->nbytes > end)
			end = t->offset + t->nbytes;
	}
	p->manifest.total_size =
	    (end + TENSOR_ALIGN - 1) / TENSOR_ALIGN * TENSOR_ALIGN;
	return 0;
}

/* hello {proto, token, client_id, pid, device}; proto checked first. */
static int
decode_hello(const msgpack_object *map, struct msg_hello *h,
             struct ipc_error *err)
{
	const msgpack_object *v;
	uint64_t proto;
	int64_t pid;
	/* The version first: a newer peer may have changed everything else. */
	if (key_uint(map, "hello", "proto", UINT64_MAX, &proto, err) != 0)
		return -1;
	if (proto != PROTO_VERSION)
		return ipc_error_set(err, IPC_E_PROTO_VERSION,
		                     "hello.proto: peer speaks protocol "
		                     "%" PRIu64 ", this build speaks %d (run "
		                     "a worker and an orchestrator from the "
		                     "same build)",
		                     proto, PROTO_VERSION);
	h->proto = (uint32_t)proto;
	if (key_str(map, "hello", "token", MSG_MAX_TOKEN, &v, err) != 0)
		return -1;
	obj_strcpy(h->token, v);
	if (key_int(map, "hello", "client_id", -1, INT64_MAX, &h->client_id,
	            err) != 0 ||
	    key_int(map, "hello", "pid", 1, INT32_MAX, &pid, err) != 0)
		return -1;
	h->pid = (int32_t)pid;
	if (key_str(map, "hello", "device", MSG_MAX_DEVICE, &v, err) != 0)
		return -1;
	obj_strcpy(h->device, v);
	if (map_get(map, "hello", "role", 0, &v, err) != 0)
		return -1;
	if (v == NULL)
		return 0;
	if (want_str(v, "hello.role", 16, err) != 0)
		return -1;
	if (obj_str_is(v, "fork-server"))
		h->fork_server = 1;
	else if (!obj_str_is(v, "worker"))
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "hello.role: expected worker or "
		                     "fork-server");
	return 0;
}

/* A task's partial {fd, id, size}: only a fit task with an update
 * descriptor carries one, on a descriptor of its own. */
static int
decode_task_partial(const msgpack_object *map, struct msg_task *t,
                    struct ipc_error *err)
{
	const msgpack_object *v;
	uint64_t index;
	if (map_get(map, "task", "partial", 0, &v, err) != 0)
		return -1;
	if (v == NULL)
		return 0;
	if (v->type != MSGPACK_OBJECT_MAP)
		return wrong_type(v, "task.partial", "a map", err);
	if (key_uint(v, "task.partial", "fd", PARAMS_FD_MAX - 1, &index, err) !=
	        0 ||
	    key_uint(v, "task.partial", "id", UINT64_MAX, &t->partial_id,
	             err) != 0 ||
	    key_uint(v, "task.partial", "size", INT64_MAX, &t->partial_size,
	             err) != 0)
		return -1;
	if (t->update_fd < 0 || index == t->params.fd ||
	    (int32_t)index == t->update_fd)
		return ipc_error_set(
		    err, IPC_E_BAD_VALUE,
		    "task.partial: only a fit task with an "
		    "update_fd carries one, on a descriptor of "
		    "its own");
	t->partial_fd = (int32_t)index;
	return 0;
}

/* task {task_id, kind, round, client_id, config, params, update_fd?,
 * partial?}. */
static int
decode_task(const msgpack_object *map, struct msg_task *t,
            struct ipc_error *err)
{
	const msgpack_object *v;
	uint64_t round;
	if (key_uint(map, "task", "task_id", UINT64_MAX, &t->task_id, err) !=
	        0 ||
	    key_str(map, "task", "kind", SIZE_MAX, &v, err) != 0)
		return -1;
	int kind = -1;
	for (int k = 0; k < TASK_KIND_COUNT; k++) {
		if (obj_str_is(v, kind_names[k]))
			kind = k;
	}
	if (kind < 0)
		return ipc_error_set(
		    err, IPC_E_BAD_VALUE,
		    "task.kind: \"%.*s\" is not fit, evaluate, "
		    "shutdown or init",
		    (int)(v->via.str.size < 32 ? v->via.str.size : 32),
		    v->via.str.ptr);
	t->kind = (enum task_kind)kind;
	if (key_uint(map, "task", "round", UINT32_MAX, &round, err) != 0 ||
	    key_int(map, "task", "client_id", -1, INT64_MAX, &t->client_id,
	            err) != 0 ||
	    map_get(map, "task", "config", 1, &v, err) != 0 ||
	    decode_kv(v, "task.config", 0, &t->config, err) != 0 ||
	    map_get(map, "task", "params", 0, &v, err) != 0)
		return -1;
	t->round = (uint32_t)round;
	if (t->kind == TASK_SHUTDOWN || t->kind == TASK_INIT) {
		if (v != NULL)
			return ipc_error_set(err, IPC_E_BAD_VALUE,
			                     "task.params: a%s %s task carries "
			                     "no params",
			                     t->kind == TASK_INIT ? "n" : "",
			                     kind_names[t->kind]);
		return 0;
	}
	if (v == NULL)
		return ipc_error_set(err, IPC_E_MISSING_KEY,
		                     "task.params: missing required key (a "
		                     "%s task needs the global model)",
		                     kind_names[t->kind]);
	if (decode_params(v, "task.params", &t->params, err) != 0)
		return -1;
	const msgpack_object *u;
	uint64_t index;
	if (map_get(map, "task", "update_fd", 0, &u, err) != 0)
		return -1;
	if (u == NULL)
		return decode_task_partial(map, t, err);
	if (want_uint(u, "task.update_fd", PARAMS_FD_MAX - 1, &index, err) != 0)
		return -1;
	if (t->kind != TASK_FIT || t->params.where != PARAMS_FD ||
	    index == t->params.fd)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "task.update_fd: only a fit task whose "
		                     "params are a descriptor names one, and "
		                     "another than params.fd");
	t->update_fd = (int32_t)index;
	return decode_task_partial(map, t, err);
}

/* result {task_id, num_examples, metrics, params? | folded?}. */
static int
decode_result(const msgpack_object *map, struct msg_result *r,
              struct ipc_error *err)
{
	const msgpack_object *v, *f;
	if (key_uint(map, "result", "task_id", UINT64_MAX, &r->task_id, err) !=
	        0 ||
	    key_uint(map, "result", "num_examples", UINT64_MAX,
	             &r->num_examples, err) != 0 ||
	    map_get(map, "result", "metrics", 1, &v, err) != 0 ||
	    decode_kv(v, "result.metrics", 1, &r->metrics, err) != 0 ||
	    map_get(map, "result", "folded", 0, &f, err) != 0 ||
	    map_get(map, "result", "params", 0, &v, err) != 0)
		return -1;
	if (f != NULL) {
		uint64_t id;
		if (v != NULL)
			return ipc_error_set(err, IPC_E_BAD_VALUE,
			                     "result.folded: a folded result "
			                     "carries no params");
		if (want_uint(f, "result.folded", INT64_MAX, &id, err) != 0)
			return -1;
		r->folded = (int64_t)id;
		return 0;
	}
	if (v == NULL)
		return 0;
	return decode_params(v, "result.params", &r->params, err);
}

/* partial {id, tasks: [task_id, ...], weight}: at least one task, each
 * once, and a positive finite weight. */
static int
decode_partial(const msgpack_object *map, struct msg_partial *p,
               struct ipc_error *err)
{
	const msgpack_object *v, *w;
	if (key_uint(map, "partial", "id", UINT64_MAX, &p->id, err) != 0 ||
	    map_get(map, "partial", "tasks", 1, &v, err) != 0 ||
	    map_get(map, "partial", "weight", 1, &w, err) != 0)
		return -1;
	if (v->type != MSGPACK_OBJECT_ARRAY)
		return wrong_type(v, "partial.tasks", "an array", err);
	uint32_t n = v->via.array.size;
	if (n == 0 || n > MSG_MAX_PARTIAL_TASKS)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "partial.tasks: %u tasks; a partial sum "
		                     "holds 1 to %u",
		                     n, MSG_MAX_PARTIAL_TASKS);
	p->tasks = xcalloc(n, sizeof *p->tasks);
	p->ntasks = n;
	char where[PATH_LEN];
	for (uint32_t i = 0; i < n; i++)
		if (want_uint(&v->via.array.ptr[i],
		              path_fmt(where, "partial.tasks[%u]", i),
		              UINT64_MAX, &p->tasks[i], err) != 0)
			return -1;
	if (w->type == MSGPACK_OBJECT_FLOAT64 ||
	    w->type == MSGPACK_OBJECT_FLOAT32)
		p->weight = w->via.f64;
	else if (w->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		p->weight = (double)w->via.u64;
	else
		return wrong_type(w, "partial.weight", "a number", err);
	if (!(p->weight > 0) || !isfinite(p->weight))
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "partial.weight: %g; it must be positive "
		                     "and finite",
		                     p->weight);
	return 0;
}

/* metrics {task_id, step, values}. */
static int
decode_metrics(const msgpack_object *map, struct msg_metrics *m,
               struct ipc_error *err)
{
	const msgpack_object *v;
	if (key_uint(map, "metrics", "task_id", UINT64_MAX, &m->task_id, err) !=
	        0 ||
	    key_uint(map, "metrics", "step", UINT64_MAX, &m->step, err) != 0 ||
	    map_get(map, "metrics", "values", 1, &v, err) != 0)
		return -1;
	return decode_kv(v, "metrics.values", 1, &m->values, err);
}

/* error {task_id, code, message}. */
static int
decode_error(const msgpack_object *map, struct msg_error *e,
             struct ipc_error *err)
{
	const msgpack_object *code, *message;
	if (key_uint(map, "error", "task_id", UINT64_MAX, &e->task_id, err) !=
	        0 ||
	    key_str(map, "error", "code", MSG_MAX_CODE, &code, err) != 0 ||
	    key_str(map, "error", "message", SIZE_MAX, &message, err) != 0)
		return -1;
	e->code = obj_strdup(code);
	e->message = obj_strdup(message);
	return 0;
}

/* chunk {task_id, offset, data}. */
static int
decode_chunk(const msgpack_object *map, struct msg_chunk *c,
             struct ipc_error *err)
{
	const msgpack_object *v;
	if (key_uint(map, "chunk", "task_id", UINT64_MAX, &c->task_id, err) !=
	        0 ||
	    key_uint(map, "chunk", "offset", UINT64_MAX, &c->offset, err) !=
	        0 ||
	    map_get(map, "chunk", "data", 1, &v, err) != 0)
		return -1;
	if (v->type != MSGPACK_OBJECT_BIN)
		return wrong_type(v, "chunk.data", "binary", err);
	c->len = v->via.bin.size;
	c->data = xmalloc(c->len);
	memcpy(c->data, v->via.bin.ptr, c->len);
	return 0;
}

/* fork {fork_id, env}: env holds strings only. */
static int
decode_fork(const msgpack_object *map, struct msg_fork *f,
            struct ipc_error *err)
{
	const msgpack_object *v;
	if (key_uint(map, "fork", "fork_id", UINT64_MAX, &f->fork_id, err) !=
	        0 ||
	    map_get(map, "fork", "env", 1, &v, err) != 0 ||
	    decode_kv(v, "fork.env", 0, &f->env, err) != 0)
		return -1;
	for (size_t i = 0; i < f->env.count; i++)
		if (f->env.entries[i].type != KV_STR ||
		    f->env.entries[i].key[0] == '\0' ||
		    strchr(f->env.entries[i].key, '=') != NULL)
			return ipc_error_set(
			    err, IPC_E_BAD_VALUE,
			    "fork.env.%.64s: a variable's name "
			    "(no '=') and a string value",
			    f->env.entries[i].key);
	return 0;
}

/* forked {fork_id, pid}. */
static int
decode_forked(const msgpack_object *map, struct msg_forked *f,
              struct ipc_error *err)
{
	int64_t pid;
	if (key_uint(map, "forked", "fork_id", UINT64_MAX, &f->fork_id, err) !=
	        0 ||
	    key_int(map, "forked", "pid", 1, INT32_MAX, &pid, err) != 0)
		return -1;
	f->pid = (int32_t)pid;
	return 0;
}

/* exited {pid, status}. */
static int
decode_exited(const msgpack_object *map, struct msg_exited *e,
              struct ipc_error *err)
{
	int64_t pid, status;
	if (key_int(map, "exited", "pid", 1, INT32_MAX, &pid, err) != 0 ||
	    key_int(map, "exited", "status", 0, 0xffff, &status, err) != 0)
		return -1;
	e->pid = (int32_t)pid;
	e->status = (int32_t)status;
	return 0;
}

/* Dispatch on "type" and decode the body into out. */
static int
decode_root(const msgpack_object *root, struct msg *out, struct ipc_error *err)
{
	const msgpack_object *v;
	if (root->type != MSGPACK_OBJECT_MAP)
		return ipc_error_set(err, IPC_E_NOT_MAP,
		                     "payload is %s, not a map",
		                     obj_type_name(root));
	if (key_str(root, "message", "type", SIZE_MAX, &v, err) != 0)
		return -1;
	int type = -1;
	for (int t = 0; t < MSG_TYPE_COUNT; t++) {
		if (obj_str_is(v, type_names[t]))
			type = t;
	}
	if (type < 0)
		return ipc_error_set(
		    err, IPC_E_UNKNOWN_TYPE,
		    "message.type: \"%.*s\" is not a protocol v%d message "
		    "(hello, task, result, metrics, error, chunk, fork, "
		    "forked, exited, partial)",
		    (int)(v->via.str.size < MSG_MAX_TYPE_NAME
		              ? v->via.str.size
		              : MSG_MAX_TYPE_NAME),
		    v->via.str.ptr, PROTO_VERSION);
	msg_init(out, (enum msg_type)type);
	switch (out->type) {
	case MSG_HELLO:
		return decode_hello(root, &out->u.hello, err);
	case MSG_TASK:
		return decode_task(root, &out->u.task, err);
	case MSG_RESULT:
		return decode_result(root, &out->u.result, err);
	case MSG_METRICS:
		return decode_metrics(root, &out->u.metrics, err);
	case MSG_ERROR:
		return decode_error(root, &out->u.error, err);
	case MSG_CHUNK:
		return decode_chunk(root, &out->u.chunk, err);
	case MSG_FORK:
		return decode_fork(root, &out->u.fork, err);
	case MSG_FORKED:
		return decode_forked(root, &out->u.forked, err);
	case MSG_EXITED:
		return decode_exited(root, &out->u.exited, err);
	case MSG_PARTIAL:
		return decode_partial(root, &out->u.partial, err);
	default:
		fatal("message type %d has no decoder", type);
	}
}

/* Decode and validate one frame payload. */
int
msg_decode(const uint8_t *payload, size_t len, struct msg *out,
           struct ipc_error *err)
{
	msg_init(out, MSG_HELLO);
	size_t end = 0;
	if (scan_payload(payload, len, &end, err) != 0)
		return -1;
	if (end < len)
		return ipc_error_set(err, IPC_E_TRAILING,
		                     "%zu bytes follow the msgpack map in a "
		                     "%zu-byte payload (one map per frame)",
		                     len - end, len);
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	msgpack_unpack_return r =
	    msgpack_unpack_next(&up, (const char *)payload, len, &off);
	int rc;
	if (r != MSGPACK_UNPACK_SUCCESS && r != MSGPACK_UNPACK_EXTRA_BYTES)
		rc = ipc_error_set(err, IPC_E_MSGPACK,
		                   "msgpack-c could not unpack the payload "
		                   "(code %d)",
		                   (int)r);
	else
		rc = decode_root(&up.data, out, err);
	msgpack_unpacked_destroy(&up);
	if (rc != 0) {
		msg_free(out);
		msg_init(out, MSG_HELLO);
	}
	return rc;
}

/* sbuffer writer for the packer: out of memory is fatal, as for xmalloc. */
static int
sbuffer_write_or_die(void *data, const char *buf, size_t len)
{
	if (msgpack_sbuffer_write(data, buf, len) != 0)
		fatal("out of memory encoding a message");
	return 0;
}

/* Pack a C string (NULL packs as ""). */
static void
pack_cstr(msgpack_packer *pk, const char *s)
{
	if (s == NULL)
		s = "";
	msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* Pack a kv_list as a map; numbers always as float64. */
static void
pack_kv(msgpack_packer *pk, const struct kv_list *l)
{
	msgpack_pack_map(pk, l->count);
	for (size_t i = 0; i < l->count; i++) {
		const struct kv_entry *e = &l->entries[i];
		pack_cstr(pk, e->key);
		switch (e->type) {
		case KV_NUM:
			msgpack_pack_double(pk, e->num);
			break;
		case KV_STR:
			pack_cstr(pk, e->str);
			break;
		case KV_BOOL:
			if (e->boolean)
				msgpack_pack_true(pk);
			else
				msgpack_pack_false(pk);
			break;
		}
	}
}

/* Pack params {manifest, fd+size | inline | stream}. */
static void
pack_params(msgpack_packer *pk, const struct params_ref *p)
{
	msgpack_pack_map(pk, p->where == PARAMS_FD ? 3 : 2);
	pack_cstr(pk, "manifest");
	msgpack_pack_array(pk, p->manifest.count);
	for (size_t i = 0; i < p->manifest.count; i++) {
		const struct tensor_desc *t = &p->manifest.tensors[i];
		msgpack_pack_map(pk, 5);
		pack_cstr(pk, "name");
		pack_cstr(pk, t->name);
		pack_cstr(pk, "dtype");
		pack_cstr(pk, tensor_dtype_name(t->dtype));
		pack_cstr(pk, "shape");
		msgpack_pack_array(pk, (size_t)t->rank);
		for (int d = 0; d < t->rank; d++)
			msgpack_pack_uint64(pk, t->shape[d]);
		pack_cstr(pk, "offset");
		msgpack_pack_uint64(pk, t->offset);
		pack_cstr(pk, "nbytes");
		msgpack_pack_uint64(pk, t->nbytes);
	}
	switch (p->where) {
	case PARAMS_FD:
		pack_cstr(pk, "fd");
		msgpack_pack_uint32(pk, p->fd);
		pack_cstr(pk, "size");
		msgpack_pack_uint64(pk, p->size);
		break;
	case PARAMS_INLINE:
		pack_cstr(pk, "inline");
		msgpack_pack_bin_with_body(pk, p->inline_data, p->inline_len);
		break;
	case PARAMS_STREAM:
		pack_cstr(pk, "stream");
		msgpack_pack_uint64(pk, p->size);
		break;
	case PARAMS_NONE:
		fatal("pack_params called without params");
	}
}

/* Pack the body of m as one map; a chunk's data as a bin header only when
 * chunk_body is 0 (its bytes follow from where they lie). */
static void
pack_msg(msgpack_packer *pk, const struct msg *m, int chunk_body)
{
	const struct msg_task *t = &m->u.task;
	const struct msg_result *r = &m->u.result;
	switch (m->type) {
	case MSG_HELLO:
		msgpack_pack_map(pk, 6 + (m->u.hello.fork_server != 0));
		break;
	case MSG_FORK:
	case MSG_FORKED:
	case MSG_EXITED:
		msgpack_pack_map(pk, 3);
		break;
	case MSG_TASK:
		msgpack_pack_map(pk, (t->params.where != PARAMS_NONE ? 7 : 6) +
		                         (t->update_fd >= 0) +
		                         (t->partial_fd >= 0));
		break;
	case MSG_RESULT:
		msgpack_pack_map(pk, (r->params.where != PARAMS_NONE ? 5 : 4) +
		                         (r->folded >= 0));
		break;
	default:
		msgpack_pack_map(pk, 4);
		break;
	}
	pack_cstr(pk, "type");
	pack_cstr(pk, msg_type_name(m->type));
	switch (m->type) {
	case MSG_HELLO:
		pack_cstr(pk, "proto");
		msgpack_pack_uint32(pk, m->u.hello.proto);
		pack_cstr(pk, "token");
		pack_cstr(pk, m->u.hello.token);
		pack_cstr(pk, "client_id");
		msgpack_pack_int64(pk, m->u.hello.client_id);
		pack_cstr(pk, "pid");
		msgpack_pack_int32(pk, m->u.hello.pid);
		pack_cstr(pk, "device");
		pack_cstr(pk, m->u.hello.device);
		if (m->u.hello.fork_server) {
			pack_cstr(pk, "role");
			pack_cstr(pk, "fork-server");
		}
		break;
	case MSG_FORK:
		pack_cstr(pk, "fork_id");
		msgpack_pack_uint64(pk, m->u.fork.fork_id);
		pack_cstr(pk, "env");
		pack_kv(pk, &m->u.fork.env);
		break;
	case MSG_FORKED:
		pack_cstr(pk, "fork_id");
		msgpack_pack_uint64(pk, m->u.forked.fork_id);
		pack_cstr(pk, "pid");
		msgpack_pack_int32(pk, m->u.forked.pid);
		break;
	case MSG_EXITED:
		pack_cstr(pk, "pid");
		msgpack_pack_int32(pk, m->u.exited.pid);
		pack_cstr(pk, "status");
		msgpack_pack_int32(pk, m->u.exited.status);
		break;
	case MSG_TASK:
		pack_cstr(pk, "task_id");
		msgpack_pack_uint64(pk, t->task_id);
		pack_cstr(pk, "kind");
		pack_cstr(pk, task_kind_name(t->kind));
		pack_cstr(pk, "round");
		msgpack_pack_uint32(pk, t->round);
		pack_cstr(pk, "client_id");
		msgpack_pack_int64(pk, t->client_id);
		pack_cstr(pk, "config");
		pack_kv(pk, &t->config);
		if (t->params.where != PARAMS_NONE) {
			pack_cstr(pk, "params");
			pack_params(pk, &t->params);
		}
		if (t->update_fd >= 0) {
			pack_cstr(pk, "update_fd");
			msgpack_pack_uint32(pk, (uint32_t)t->update_fd);
		}
		if (t->partial_fd >= 0) {
			pack_cstr(pk, "partial");
			msgpack_pack_map(pk, 3);
			pack_cstr(pk, "fd");
			msgpack_pack_uint32(pk, (uint32_t)t->partial_fd);
			pack_cstr(pk, "id");
			msgpack_pack_uint64(pk, t->partial_id);
			pack_cstr(pk, "size");
			msgpack_pack_uint64(pk, t->partial_size);
		}
		break;
	case MSG_RESULT:
		pack_cstr(pk, "task_id");
		msgpack_pack_uint64(pk, r->task_id);
		pack_cstr(pk, "num_examples");
		msgpack_pack_uint64(pk, r->num_examples);
		pack_cstr(pk, "metrics");
		pack_kv(pk, &r->metrics);
		if (r->params.where != PARAMS_NONE) {
			pack_cstr(pk, "params");
			pack_params(pk, &r->params);
		}
		if (r->folded >= 0) {
			pack_cstr(pk, "folded");
			msgpack_pack_uint64(pk, (uint64_t)r->folded);
		}
		break;
	case MSG_PARTIAL:
		pack_cstr(pk, "id");
		msgpack_pack_uint64(pk, m->u.partial.id);
		pack_cstr(pk, "tasks");
		msgpack_pack_array(pk, (uint32_t)m->u.partial.ntasks);
		for (size_t i = 0; i < m->u.partial.ntasks; i++)
			msgpack_pack_uint64(pk, m->u.partial.tasks[i]);
		pack_cstr(pk, "weight");
		msgpack_pack_double(pk, m->u.partial.weight);
		break;
	case MSG_METRICS:
		pack_cstr(pk, "task_id");
		msgpack_pack_uint64(pk, m->u.metrics.task_id);
		pack_cstr(pk, "step");
		msgpack_pack_uint64(pk, m->u.metrics.step);
		pack_cstr(pk, "values");
		pack_kv(pk, &m->u.metrics.values);
		break;
	case MSG_ERROR:
		pack_cstr(pk, "task_id");
		msgpack_pack_uint64(pk, m->u.error.task_id);
		pack_cstr(pk, "code");
		pack_cstr(pk, m->u.error.code);
		pack_cstr(pk, "message");
		pack_cstr(pk, m->u.error.message);
		break;
	case MSG_CHUNK:
		pack_cstr(pk, "task_id");
		msgpack_pack_uint64(pk, m->u.chunk.task_id);
		pack_cstr(pk, "offset");
		msgpack_pack_uint64(pk, m->u.chunk.offset);
		pack_cstr(pk, "data");
		if (chunk_body)
			msgpack_pack_bin_with_body(pk, m->u.chunk.data,
			                           m->u.chunk.len);
		else
			msgpack_pack_bin(pk, (uint32_t)m->u.chunk.len);
		break;
	default:
		fatal("cannot encode message type %d", (int)m->type);
	}
}

/* Encode m into a frame whose payload is extra bytes longer than what is
 * packed (a chunk's body sent apart). */
static int
encode_frame(const struct msg *m, int chunk_body, size_t extra, uint8_t **frame,
             size_t *frame_len)
{
	msgpack_sbuffer sbuf;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sbuf);
	msgpack_packer_init(&pk, &sbuf, sbuffer_write_or_die);
	/* Room for the header, filled in once the length is known. */
	sbuffer_write_or_die(&sbuf, "\0\0\0\0", FRAME_HEADER_SIZE);
	pack_msg(&pk, m, chunk_body);
	size_t payload = sbuf.size - FRAME_HEADER_SIZE + extra;
	if (payload > UINT32_MAX) {
		msgpack_sbuffer_destroy(&sbuf);
		*frame = NULL;
		*frame_len = 0;
		return -1;
	}
	uint8_t *h = (uint8_t *)sbuf.data;
	h[0] = (uint8_t)(payload >> 24);
	h[1] = (uint8_t)(payload >> 16);
	h[2] = (uint8_t)(payload >> 8);
	h[3] = (uint8_t)payload;
	*frame_len = sbuf.size;
	*frame = (uint8_t *)msgpack_sbuffer_release(&sbuf);
	return 0;
}

/* Encode a message as a whole frame, header included. */
int
msg_encode_frame(const struct msg *m, uint8_t **frame, size_t *frame_len)
{
	return encode_frame(m, 1, 0, frame, frame_len);
}

int
msg_encode_chunk_head(const struct msg *m, uint8_t **head, size_t *head_len)
{
	if (m->type != MSG_CHUNK || m->u.chunk.len > UINT32_MAX)
		return -1;
	return encode_frame(m, 0, m->u.chunk.len, head, head_len);
}

/* Take the fixstr lit at *i of p[0..n). */
static int
take_str(const uint8_t *p, size_t n, size_t *i, const char *lit)
{
	size_t len = strlen(lit);
	if (*i + 1 + len > n || p[*i] != (uint8_t)(0xa0 | len) ||
	    memcmp(p + *i + 1, lit, len) != 0)
		return -1;
	*i += 1 + len;
	return 0;
}

/* Take a big-endian unsigned of w bytes at *i. */
static int
take_be(const uint8_t *p, size_t n, size_t *i, size_t w, uint64_t *v)
{
	if (*i + w > n)
		return -1;
	*v = 0;
	for (size_t k = 0; k < w; k++)
		*v = *v << 8 | p[*i + k];
	*i += w;
	return 0;
}

/* Take a msgpack unsigned integer (positive fixint, uint 8..64). */
static int
take_uint(const uint8_t *p, size_t n, size_t *i, uint64_t *v)
{
	if (*i >= n)
		return -1;
	uint8_t t = p[(*i)++];
	if (t <= 0x7f) {
		*v = t;
		return 0;
	}
	if (t < 0xcc || t > 0xcf)
		return -1;
	return take_be(p, n, i, (size_t)1 << (t - 0xcc), v);
}

int
msg_chunk_head_parse(const uint8_t *p, size_t n, size_t payload_len,
                     uint64_t *task_id, uint64_t *offset, size_t *body_at)
{
	size_t i = 0;
	uint64_t len;
	if (n < 1 || p[i++] != 0x84 || take_str(p, n, &i, "type") != 0 ||
	    take_str(p, n, &i, "chunk") != 0 ||
	    take_str(p, n, &i, "task_id") != 0 ||
	    take_uint(p, n, &i, task_id) != 0 ||
	    take_str(p, n, &i, "offset") != 0 ||
	    take_uint(p, n, &i, offset) != 0 ||
	    take_str(p, n, &i, "data") != 0 || i >= n || p[i] < 0xc4 ||
	    p[i] > 0xc6)
		return -1;
	size_t w = (size_t)1 << (p[i] - 0xc4);
	i++;
	if (take_be(p, n, &i, w, &len) != 0 || i > payload_len ||
	    len != payload_len - i)
		return -1;
	*body_at = i;
	return 0;
}

/* Bitwise equality of doubles, so that NaN payloads and -0 round-trip. */
static int
same_double(double a, double b)
{
	return memcmp(&a, &b, sizeof a) == 0;
}

/* Equality of C strings where NULL equals "". */
static int
same_str(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

/* Same entries, in the same order. */
static int
kv_equal(const struct kv_list *a, const struct kv_list *b)
{
	if (a->count != b->count)
		return 0;
	for (size_t i = 0; i < a->count; i++) {
		const struct kv_entry *x = &a->entries[i], *y = &b->entries[i];
		if (strcmp(x->key, y->key) != 0 || x->type != y->type)
			return 0;
		if (x->type == KV_NUM && !same_double(x->num, y->num))
			return 0;
		if (x->type == KV_STR && !same_str(x->str, y->str))
			return 0;
		if (x->type == KV_BOOL && x->boolean != y->boolean)
			return 0;
	}
	return 1;
}

/* Same tensors (every field) in the same order. */
static int
manifest_equal(const struct tensor_manifest *a, const struct tensor_manifest *b)
{
	if (a->count != b->count || a->total_size != b->total_size)
		return 0;
	for (size_t i = 0; i < a->count; i++) {
		const struct tensor_desc *x = &a->tensors[i],
		                         *y = &b->tensors[i];
		if (strcmp(x->name, y->name) != 0 || x->dtype != y->dtype ||
		    x->rank != y->rank || x->offset != y->offset ||
		    x->nbytes != y->nbytes)
			return 0;
		for (int d = 0; d < x->rank; d++) {
			if (x->shape[d] != y->shape[d])
				return 0;
		}
	}
	return 1;
}

/* Same manifest and the same source of bytes. */
static int
params_equal(const struct params_ref *a, const struct params_ref *b)
{
	if (a->where != b->where)
		return 0;
	if (a->where == PARAMS_NONE)
		return 1;
	if (!manifest_equal(&a->manifest, &b->manifest))
		return 0;
	switch (a->where) {
	case PARAMS_FD:
		return a->fd == b->fd && a->size == b->size;
	case PARAMS_STREAM:
		return a->size == b->size;
	case PARAMS_INLINE:
		return a->inline_len == b->inline_len &&
		       (a->inline_len == 0 ||
		        memcmp(a->inline_data, b->inline_data, a->inline_len) ==
		            0);
	default:
		return 1;
	}
}

/* Field-by-field equality of two messages. */
int
msg_equal(const struct msg *a, const struct msg *b)
{
	if (a->type != b->type)
		return 0;
	switch (a->type) {
	case MSG_HELLO: {
		const struct msg_hello *x = &a->u.hello, *y = &b->u.hello;
		return x->proto == y->proto &&
		       strcmp(x->token, y->token) == 0 &&
		       x->client_id == y->client_id && x->pid == y->pid &&
		       strcmp(x->device, y->device) == 0 &&
		       x->fork_server == y->fork_server;
	}
	case MSG_FORK:
		return a->u.fork.fork_id == b->u.fork.fork_id &&
		       kv_equal(&a->u.fork.env, &b->u.fork.env);
	case MSG_FORKED:
		return a->u.forked.fork_id == b->u.forked.fork_id &&
		       a->u.forked.pid == b->u.forked.pid;
	case MSG_EXITED:
		return a->u.exited.pid == b->u.exited.pid &&
		       a->u.exited.status == b->u.exited.status;
	case MSG_TASK: {
		const struct msg_task *x = &a->u.task, *y = &b->u.task;
		return x->task_id == y->task_id && x->kind == y->kind &&
		       x->round == y->round && x->client_id == y->client_id &&
		       kv_equal(&x->config, &y->config) &&
		       x->update_fd == y->update_fd &&
		       x->partial_fd == y->partial_fd &&
		       (x->partial_fd < 0 ||
		        (x->partial_id == y->partial_id &&
		         x->partial_size == y->partial_size)) &&
		       params_equal(&x->params, &y->params);
	}
	case MSG_RESULT: {
		const struct msg_result *x = &a->u.result, *y = &b->u.result;
		return x->task_id == y->task_id &&
		       x->num_examples == y->num_examples &&
		       kv_equal(&x->metrics, &y->metrics) &&
		       x->folded == y->folded &&
		       params_equal(&x->params, &y->params);
	}
	case MSG_PARTIAL: {
		const struct msg_partial *x = &a->u.partial, *y = &b->u.partial;
		return x->id == y->id && x->ntasks == y->ntasks &&
		       x->weight == y->weight &&
		       memcmp(x->tasks, y->tasks,
		              x->ntasks * sizeof *x->tasks) == 0;
	}
	case MSG_METRICS: {
		const struct msg_metrics *x = &a->u.metrics, *y = &b->u.metrics;
		return x->task_id == y->task_id && x->step == y->step &&
		       kv_equal(&x->values, &y->values);
	}
	case MSG_ERROR: {
		const struct msg_error *x = &a->u.error, *y = &b->u.error;
		return x->task_id == y->task_id && same_str(x->code, y->code) &&
		       same_str(x->message, y->message);
	}
	case MSG_CHUNK: {
		const struct msg_chunk *x = &a->u.chunk, *y = &b->u.chunk;
		return x->task_id == y->task_id && x->offset == y->offset &&
		       x->len == y->len &&
		       (x->len == 0 || memcmp(x->data, y->data, x->len) == 0);
	}
	default:
		return 0;
	}
}

/* Encode and write one message. */
int
msg_send(int fd, const struct msg *m, struct ipc_error *err)
{
	return msg_send_fds(fd, m, NULL, 0, err);
}

int
msg_send_fds(int fd, const struct msg *m, const int *fds, unsigned n,
             struct ipc_error *err)
{
	uint8_t *frame;
	size_t len;
	if (msg_encode_frame(m, &frame, &len) != 0)
		return ipc_error_set(err, IPC_E_FRAME_TOO_LARGE,
		                     "%s message does not fit in a frame",
		                     msg_type_name(m->type));
	/* The frame is complete, header included: written as it is, its
	 * first byte carrying the descriptors if there are any. */
	ssize_t w = n > 0 ? frame_send_fds(fd, frame, len, fds, n, 0) : 0;
	int rc = 0;
	if (w < 0)
		rc = ipc_error_set(err, IPC_E_IO,
		                   "sending a frame with %u descriptors: %s", n,
		                   strerror(errno));
	else if ((size_t)w < len)
		rc = frame_write_parts(fd, frame + w, len - (size_t)w, NULL, 0,
		                       err);
	free(frame);
	return rc;
}

/* Read and decode one message. */
int
msg_recv(int fd, size_t max, struct msg *out, struct ipc_error *err)
{
	return msg_recv_fds(fd, max, out, NULL, err);
}

int
msg_recv_fds(int fd, size_t max, struct msg *out, struct frame_fds *fds,
             struct ipc_error *err)
{
	uint8_t *payload;
	size_t len;
	msg_init(out, MSG_HELLO);
	if (frame_read_fds(fd, max, &payload, &len, fds, err) != 0)
		return -1;
	int rc = msg_decode(payload, len, out, err);
	free(payload);
	return rc;
}
