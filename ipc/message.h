/* message.h: the protocol's messages between orchestrator and workers
 * (docs/protocol.md is the specification): typed structs, msgpack
 * encode/decode with schema validation, and blocking send/receive on a
 * socket. */
#ifndef COHORT_MESSAGE_H
#define COHORT_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "frame.h"
#include "tensor.h"

#define PROTO_VERSION 2
#define MSG_MAX_TOKEN 128 /* bytes of hello.token */
#define MSG_MAX_DEVICE 63 /* bytes of hello.device */
#define MSG_MAX_DEPTH 16  /* nested maps/arrays accepted in a payload */
#define MSG_MAX_OBJECTS (1u << 22) /* msgpack values in one payload */
#define MSG_MAX_KV 4096 /* entries of config{}, metrics{}, values{} */
#define PARAMS_FD_MAX 4 /* descriptors one frame may carry (FRAME_FDS_MAX) */

/* Scalar key/value lists: task config{}, result metrics{}, metrics values{}.
 * Entries keep their insertion order; keys are unique. */
enum kv_type { KV_NUM, KV_STR, KV_BOOL };

struct kv_entry {
	char *key;
	enum kv_type type;
	double num;
	char *str;
	int boolean;
};

struct kv_list {
	size_t count;
	size_t cap;
	struct kv_entry *entries;
};

/* Set key to a number, string or boolean, replacing an existing entry. */
void kv_set_num(struct kv_list *l, const char *key, double value);
void kv_set_str(struct kv_list *l, const char *key, const char *value);
void kv_set_bool(struct kv_list *l, const char *key, int value);
/* The entry for key, or NULL. */
const struct kv_entry *kv_find(const struct kv_list *l, const char *key);
/* The value of key if present with that type, else def. */
double kv_get_num(const struct kv_list *l, const char *key, double def);
const char *kv_get_str(const struct kv_list *l, const char *key,
                       const char *def);
int kv_get_bool(const struct kv_list *l, const char *key, int def);
/* Free every entry; the list is empty (and reusable) afterwards. */
void kv_free(struct kv_list *l);

/* Where the bytes of a tensor set are. */
enum params_where { PARAMS_NONE, PARAMS_FD, PARAMS_INLINE, PARAMS_STREAM };

/* Wire form: {manifest: [{name, dtype, shape, offset, nbytes}...]} plus one
 * of fd: I and size: N (shared memory: descriptor I of those sent with the
 * task frame, shm.h), inline: BIN, or stream: SIZE (chunk messages
 * follow). Decoding validates the manifest against the region size. */
struct params_ref {
	struct tensor_manifest manifest;
	enum params_where where;
	uint32_t fd;   /* PARAMS_FD: index among the task frame's descriptors */
	uint64_t size; /* region bytes for PARAMS_FD/STREAM */
	uint8_t *inline_data; /* owned; PARAMS_INLINE */
	size_t inline_len;
};

void params_ref_init(struct params_ref *p);
void params_ref_free(struct params_ref *p);

enum msg_type {
	MSG_HELLO,
	MSG_TASK,
	MSG_RESULT,
	MSG_METRICS,
	MSG_ERROR,
	MSG_CHUNK,
	MSG_FORK,
	MSG_FORKED,
	MSG_EXITED,
	MSG_PARTIAL,
	MSG_TYPE_COUNT
};

/* TASK_INIT (model custom without model.init): no params; the result
 * carries the program's own initial model (docs/protocol.md). */
enum task_kind {
	TASK_FIT,
	TASK_EVALUATE,
	TASK_SHUTDOWN,
	TASK_INIT,
	TASK_KIND_COUNT
};

/* worker -> orchestrator, first frame on a connection. */
struct msg_hello {
	uint32_t proto; /* PROTO_VERSION */
	char token[MSG_MAX_TOKEN + 1];
	int64_t client_id; /* -1: pool worker not bound to a client */
	int32_t pid;
	char device[MSG_MAX_DEVICE + 1];
	int fork_server; /* role "fork-server" (docs/protocol.md) */
};

/* orchestrator -> worker. params is required for fit and evaluate and
 * absent (PARAMS_NONE) for shutdown. A fit task whose global model is in
 * shared memory also names the descriptor its update goes into
 * (update_fd); its result's params then say {fd: update_fd}. */
struct msg_task {
	uint64_t task_id;
	enum task_kind kind;
	uint32_t round;
	int64_t client_id;
	struct kv_list config;
	struct params_ref params;
	int32_t update_fd; /* index among the frame's descriptors; -1: none */
	/* A partial sum the worker may fold this fit into instead of
	 * returning its update (docs/protocol.md, "Partial sums"): the index
	 * of its descriptor (-1: none), its id and its bytes (8 per model
	 * element). */
	int32_t partial_fd;
	uint64_t partial_id;
	uint64_t partial_size;
};

/* worker -> orchestrator: outcome of a task; params is PARAMS_NONE when the
 * task returns no tensors (evaluate). */
struct msg_result {
	uint64_t task_id;
	uint64_t num_examples;
	struct kv_list metrics; /* numbers only */
	struct params_ref params;
	/* A fit folded into partial sum folded (no params); -1: not. */
	int64_t folded;
};

/* worker -> orchestrator: progress during a task. */
struct msg_metrics {
	uint64_t task_id;
	uint64_t step;
	struct kv_list values; /* numbers only */
};

/* either way: a failure, with a short machine code and a human message. */
struct msg_error {
	uint64_t task_id;
	char *code;
	char *message;
};

/* either way: bytes [offset, offset + len) of a PARAMS_STREAM region. */
struct msg_chunk {
	uint64_t task_id;
	uint64_t offset;
	uint8_t *data; /* owned */
	size_t len;
};

/* orchestrator -> fork server: make a child (a one-worker process) that
 * sets env (strings) and writes its output to the descriptor the frame
 * carries. */
struct msg_fork {
	uint64_t fork_id;
	struct kv_list env;
};

/* fork server -> orchestrator: request fork_id's child is pid. */
struct msg_forked {
	uint64_t fork_id;
	int32_t pid;
};

/* fork server -> orchestrator: its child pid ended with wait status
 * status (waitpid's). */
struct msg_exited {
	int32_t pid;
	int32_t status;
};

/* The most tasks one partial sum holds. */
#define MSG_MAX_PARTIAL_TASKS (1u << 20)

/* worker -> orchestrator: partial sum id (the segment a task frame gave)
 * holds the weighted updates of tasks (in the order they were reported),
 * whose weights add up to weight. */
struct msg_partial {
	uint64_t id;
	uint64_t *tasks; /* owned */
	size_t ntasks;
	double weight;
};

struct msg {
	enum msg_type type;
	union {
		struct msg_hello hello;
		struct msg_task task;
		struct msg_result result;
		struct msg_metrics metrics;
		struct msg_error error;
		struct msg_chunk chunk;
		struct msg_fork fork;
		struct msg_forked forked;
		struct msg_exited exited;
		struct msg_partial partial;
	} u;
};

/* Wire names: "hello", "task", ... and "fit", "evaluate", "shutdown". */
const char *msg_type_name(enum msg_type type);
const char *task_kind_name(enum task_kind kind);

/* Zero a message of the given type (empty lists, PARAMS_NONE,
 * proto = PROTO_VERSION for hello) ready to be filled in. */
void msg_init(struct msg *m, enum msg_type type);
/* Free what a decoded or filled-in message owns; m may be zeroed. */
void msg_free(struct msg *m);

/* Decode one frame payload (without the 4-byte header). Errors:
 * IPC_E_MSGPACK (not msgpack), IPC_E_TRUNCATED (ends inside a value),
 * IPC_E_TRAILING, IPC_E_TOO_DEEP, IPC_E_NOT_MAP, IPC_E_UNKNOWN_TYPE,
 * IPC_E_MISSING_KEY / IPC_E_WRONG_TYPE / IPC_E_BAD_VALUE naming the key path
 * (e.g. "task.params.manifest[3].shape[1]"), IPC_E_PROTO_VERSION, and the
 * manifest codes of tensor_manifest_validate. Unknown keys are ignored. On
 * error nothing is allocated and out needs no msg_free. */
int msg_decode(const uint8_t *payload, size_t len, struct msg *out,
               struct ipc_error *err);
/* Encode m as a complete frame (4-byte header included) in a malloc'd
 * buffer. Returns -1 only if the payload would exceed a frame's 4 GiB. */
int msg_encode_frame(const struct msg *m, uint8_t **frame, size_t *frame_len);
/* A chunk message's frame without its data: the 4-byte header (counting
 * the data) and the msgpack up to the data's bin header, so that the data
 * can be written from where it lies (frame_write_parts, or a reference in
 * an evbuffer). Head then data is byte for byte msg_encode_frame's frame. */
int msg_encode_chunk_head(const struct msg *m, uint8_t **head,
                          size_t *head_len);
/* Recognise the head of a chunk frame as msg_encode_chunk_head writes it
 * in the first n bytes of a payload_len-byte payload: 0 with the task id,
 * the offset and where the data starts (it runs to the payload's end);
 * -1 for anything else (decode that with msg_decode). */
int msg_chunk_head_parse(const uint8_t *p, size_t n, size_t payload_len,
                         uint64_t *task_id, uint64_t *offset, size_t *body_at);
/* Field-by-field equality of two messages (1 if equal); NaNs compare by
 * bit pattern. For tests and fuzzing. */
int msg_equal(const struct msg *a, const struct msg *b);

/* Encode and frame_write m to fd. */
int msg_send(int fd, const struct msg *m, struct ipc_error *err);
/* msg_send with descriptors attached to the frame's first byte (a Unix
 * socket; the rest of the frame is written as msg_send writes). */
int msg_send_fds(int fd, const struct msg *m, const int *fds, unsigned n,
                 struct ipc_error *err);
/* frame_read (payload at most max bytes) and decode into out. */
int msg_recv(int fd, size_t max, struct msg *out, struct ipc_error *err);
/* msg_recv that keeps the descriptors sent with the frame in fds
 * (frame.h); the caller takes or closes them, whatever the outcome. */
int msg_recv_fds(int fd, size_t max, struct msg *out, struct frame_fds *fds,
                 struct ipc_error *err);

#endif
