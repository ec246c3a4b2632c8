/* error.c: filling and naming ipc_error values. */
#include "error.h"

#include <stdio.h>
#include <string.h>

static const char *const code_names[IPC_E_CODE_COUNT] = {
    [IPC_OK] = "ok",
    [IPC_E_FRAME_TOO_LARGE] = "frame-too-large",
    [IPC_E_FRAME_EMPTY] = "frame-empty",
    [IPC_E_TRUNCATED] = "truncated",
    [IPC_E_IO] = "io",
    [IPC_E_CLOSED] = "closed",
    [IPC_E_MSGPACK] = "msgpack",
    [IPC_E_TRAILING] = "trailing-bytes",
    [IPC_E_NOT_MAP] = "not-a-map",
    [IPC_E_TOO_DEEP] = "too-deep",
    [IPC_E_MISSING_KEY] = "missing-key",
    [IPC_E_WRONG_TYPE] = "wrong-type",
    [IPC_E_BAD_VALUE] = "bad-value",
    [IPC_E_UNKNOWN_TYPE] = "unknown-type",
    [IPC_E_PROTO_VERSION] = "protocol-version",
    [IPC_E_DTYPE] = "dtype",
    [IPC_E_SHAPE] = "shape",
    [IPC_E_OVERFLOW] = "overflow",
    [IPC_E_ALIGN] = "alignment",
    [IPC_E_BOUNDS] = "out-of-bounds",
    [IPC_E_OVERLAP] = "overlap",
    [IPC_E_DUPLICATE] = "duplicate",
    [IPC_E_MISMATCH] = "mismatch",
    [IPC_E_NONFINITE] = "non-finite",
    [IPC_E_SHM_EXISTS] = "shm-exists",
    [IPC_E_SHM_NOSPACE] = "shm-no-space",
    [IPC_E_SHM_NOENT] = "shm-not-found",
    [IPC_E_SHM_SIZE] = "shm-size",
    [IPC_E_SHM_SEALS] = "shm-seals",
    [IPC_E_ST_HEADER] = "safetensors-header",
    [IPC_E_ST_FILE] = "safetensors-file",
    [IPC_E_SECAGG_AUTH] = "secagg-auth",
    [IPC_E_SECAGG_THRESHOLD] = "secagg-threshold",
};

int
ipc_error_set(struct ipc_error *err, enum ipc_code code, const char *fmt, ...)
{
	if (err == NULL)
		return -1;
	err->code = code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof err->message, fmt, ap);
	va_end(ap);
	return -1;
}

void
ipc_error_prefix(struct ipc_error *err, const char *fmt, ...)
{
	if (err == NULL)
		return;
	char prefix[256], old[sizeof err->message];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	memcpy(old, err->message, sizeof old);
	/* Truncation is acceptable: the message is for people, the code is
	 * exact. */
	size_t n = strlen(prefix);
	if (n >= sizeof err->message)
		n = sizeof err->message - 1;
	memcpy(err->message, prefix, n);
	size_t rest = strnlen(old, sizeof old - 1);
	if (rest > sizeof err->message - 1 - n)
		rest = sizeof err->message - 1 - n;
	memcpy(err->message + n, old, rest);
	err->message[n + rest] = '\0';
}

const char *
ipc_code_name(enum ipc_code code)
{
	if ((unsigned)code >= IPC_E_CODE_COUNT || code_names[code] == NULL)
		return "unknown";
	return code_names[code];
}

void
ipc_error_clear(struct ipc_error *err)
{
	if (err != NULL) {
		err->code = IPC_OK;
		err->message[0] = '\0';
	}
}
