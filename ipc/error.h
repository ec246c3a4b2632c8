/* error.h: the error value every ipc/ function returns for bad input. */
#ifndef COHORT_ERROR_H
#define COHORT_ERROR_H

#include "util.h"

/* One code per distinct failure a caller may want to tell apart; the message
 * carries the details (field, sizes, file) for the user. */
enum ipc_code {
	IPC_OK = 0,
	/* frames */
	IPC_E_FRAME_TOO_LARGE, /* declared length over the configured limit */
	IPC_E_FRAME_EMPTY,     /* zero-length frame */
	IPC_E_TRUNCATED,       /* stream ended inside a frame or value */
	IPC_E_IO,     /* read/write/open/mmap failed (errno text in message) */
	IPC_E_CLOSED, /* orderly end of stream between frames */
	/* msgpack / schema */
	IPC_E_MSGPACK,       /* bytes are not one valid msgpack object */
	IPC_E_TRAILING,      /* bytes left after the msgpack object */
	IPC_E_NOT_MAP,       /* top-level object is not a map */
	IPC_E_TOO_DEEP,      /* nesting deeper than the schema allows */
	IPC_E_MISSING_KEY,   /* a required key is absent */
	IPC_E_WRONG_TYPE,    /* a key has the wrong msgpack type */
	IPC_E_BAD_VALUE,     /* right type, value out of range or malformed */
	IPC_E_UNKNOWN_TYPE,  /* "type" names no message of protocol v1 */
	IPC_E_PROTO_VERSION, /* hello with an unsupported protocol version */
	/* tensors and manifests */
	IPC_E_DTYPE, /* unknown or unsupported dtype */
	IPC_E_SHAPE, /* bad rank, zero/negative dim, or nbytes != shape*dtype */
	IPC_E_OVERFLOW,  /* size arithmetic overflows */
	IPC_E_ALIGN,     /* offset not 64-byte aligned */
	IPC_E_BOUNDS,    /* tensor outside its region */
	IPC_E_OVERLAP,   /* two tensors share bytes */
	IPC_E_DUPLICATE, /* two tensors share a name */
	IPC_E_MISMATCH,  /* manifest differs from the expected one */
	IPC_E_NONFINITE, /* NaN or Inf in a tensor */
	/* shared memory */
	IPC_E_SHM_EXISTS,  /* segment name already taken */
	IPC_E_SHM_NOSPACE, /* /dev/shm cannot hold the segment */
	IPC_E_SHM_NOENT,   /* segment does not exist */
	IPC_E_SHM_SIZE,    /* segment smaller than expected */
	IPC_E_SHM_SEALS,   /* segment not sealed as required, or a seal
	                    * refused (still mapped writable) */
	/* safetensors */
	IPC_E_ST_HEADER, /* header length or JSON invalid */
	IPC_E_ST_FILE,   /* file shorter/longer than the header says */
	/* secure aggregation */
	IPC_E_SECAGG_AUTH,      /* a sealed share or rebuilt key fails its
	                         * check: tampered, replayed or redirected */
	IPC_E_SECAGG_THRESHOLD, /* fewer than t neighbours answered */
	IPC_E_CODE_COUNT
};

struct ipc_error {
	enum ipc_code code;
	char message[512];
};

/* Record code and a printf-style message; returns -1 so callers can
 * "return ipc_error_set(...)". err may be NULL. */
int ipc_error_set(struct ipc_error *err, enum ipc_code code, const char *fmt,
                  ...) COHORT_PRINTF(3, 4);
/* Prefix the message already in err with more context ("file.safetensors: ").
 */
void ipc_error_prefix(struct ipc_error *err, const char *fmt, ...)
    COHORT_PRINTF(2, 3);
/* Stable short name of a code, e.g. "frame-too-large". */
const char *ipc_code_name(enum ipc_code code);
void ipc_error_clear(struct ipc_error *err);

#endif
