/* transfer.c: chunk frames in and out of a worker's own buffer; the socket
 * provides the backpressure (a blocking send waits while the orchestrator
 * does not read). */
#include "transfer.h"

#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "message.h"
#include "util.h"

/* The error for a chunk frame that is not the one expected. */
static int
unexpected(uint64_t task_id, uint64_t have, uint64_t size,
           struct ipc_error *err)
{
	return ipc_error_set(err, IPC_E_BAD_VALUE,
	                     "task %llu: expected the chunk at offset %llu of "
	                     "%llu",
	                     (unsigned long long)task_id,
	                     (unsigned long long)have,
	                     (unsigned long long)size);
}

/* A frame that is not a plain chunk (an error frame, say): read the rest,
 * decode it, and take it only if it is the chunk expected. */
static int
receive_other(int fd, const uint8_t *pre, size_t plen, size_t len,
              uint64_t task_id, uint8_t *buf, uint64_t *have, uint64_t size,
              struct ipc_error *err)
{
	uint8_t *all = xmalloc(len);
	memcpy(all, pre, plen);
	struct msg m;
	if (frame_read_rest(fd, all + plen, len - plen, err) != 0 ||
	    msg_decode(all, len, &m, err) != 0) {
		free(all);
		return -1;
	}
	free(all);
	int bad = m.type != MSG_CHUNK || m.u.chunk.task_id != task_id ||
	          m.u.chunk.offset != *have || m.u.chunk.len > size - *have ||
	          m.u.chunk.len == 0;
	if (!bad) {
		memcpy(buf + *have, m.u.chunk.data, m.u.chunk.len);
		*have += m.u.chunk.len;
	}
	msg_free(&m);
	return bad ? unexpected(task_id, *have, size, err) : 0;
}

int
transfer_receive(int fd, uint64_t task_id, void *buf, uint64_t size,
                 struct ipc_error *err)
{
	uint8_t *dst = buf;
	uint64_t have = 0;
	while (have < size) {
		/* The frame's head lands here and its data goes straight
		 * into buf: no frame buffer, no decoded copy. */
		uint8_t pre[64];
		size_t plen, len, at;
		uint64_t id, off;
		if (frame_read_start(fd, FRAME_MAX_DEFAULT, pre, sizeof pre,
		                     &plen, &len, err) != 0) {
			ipc_error_prefix(err,
			                 "task %llu: stream ended after %llu "
			                 "of %llu bytes: ",
			                 (unsigned long long)task_id,
			                 (unsigned long long)have,
			                 (unsigned long long)size);
			return -1;
		}
		if (msg_chunk_head_parse(pre, plen, len, &id, &off, &at) != 0) {
			if (receive_other(fd, pre, plen, len, task_id, dst,
			                  &have, size, err) != 0)
				return -1;
			continue;
		}
		size_t body = len - at;
		if (id != task_id || off != have || body == 0 ||
		    body > size - have)
			return unexpected(task_id, have, size, err);
		memcpy(dst + have, pre + at, plen - at);
		if (frame_read_rest(fd, dst + have + (plen - at),
		                    body - (plen - at), err) != 0)
			return -1;
		have += body;
	}
	return 0;
}

int
transfer_send(int fd, uint64_t task_id, const void *buf, uint64_t from,
              uint64_t size, size_t chunk, struct ipc_error *err)
{
	for (uint64_t off = from; off < size; off += chunk) {
		struct msg m;
		msg_init(&m, MSG_CHUNK);
		m.u.chunk.task_id = task_id;
		m.u.chunk.offset = off;
		m.u.chunk.len =
		    size - off < chunk ? (size_t)(size - off) : chunk;
		uint8_t *head;
		size_t hlen;
		if (msg_encode_chunk_head(&m, &head, &hlen) != 0)
			return ipc_error_set(
			    err, IPC_E_FRAME_TOO_LARGE,
			    "a chunk of %zu bytes does not fit "
			    "a frame",
			    m.u.chunk.len);
		/* The data goes from buf itself, after the head. */
		int rc = frame_write_parts(fd, head, hlen,
		                           (const uint8_t *)buf + off,
		                           m.u.chunk.len, err);
		free(head);
		msg_free(&m);
		if (rc < 0)
			return -1;
	}
	return 0;
}
