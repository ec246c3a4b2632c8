/* transfer.c: chunk frames in and out of a worker's own buffer; the socket
 * provides the backpressure (a blocking send waits while the orchestrator
 * does not read). */
#include "transfer.h"

#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "message.h"

int
transfer_receive(int fd, uint64_t task_id, void *buf, uint64_t size,
                 struct ipc_error *err)
{
	uint64_t have = 0;
	while (have < size) {
		struct msg m;
		if (msg_recv(fd, FRAME_MAX_DEFAULT, &m, err) < 0) {
			ipc_error_prefix(err,
			                 "task %llu: stream ended after %llu "
			                 "of %llu bytes: ",
			                 (unsigned long long)task_id,
			                 (unsigned long long)have,
			                 (unsigned long long)size);
			return -1;
		}
		int bad = m.type != MSG_CHUNK || m.u.chunk.task_id != task_id ||
		          m.u.chunk.offset != have ||
		          m.u.chunk.len > size - have || m.u.chunk.len == 0;
		if (!bad) {
			memcpy((uint8_t *)buf + have, m.u.chunk.data,
			       m.u.chunk.len);
			have += m.u.chunk.len;
		}
		msg_free(&m);
		if (bad)
			return ipc_error_set(err, IPC_E_BAD_VALUE,
			                     "task %llu: expected the chunk at "
			                     "offset %llu of %llu",
			                     (unsigned long long)task_id,
			                     (unsigned long long)have,
			                     (unsigned long long)size);
	}
	return 0;
}

int
transfer_send(int fd, uint64_t task_id, const void *buf, uint64_t size,
              size_t chunk, struct ipc_error *err)
{
	for (uint64_t off = 0; off < size; off += chunk) {
		struct msg m;
		msg_init(&m, MSG_CHUNK);
		m.u.chunk.task_id = task_id;
		m.u.chunk.offset = off;
		m.u.chunk.len =
		    size - off < chunk ? (size_t)(size - off) : chunk;
		/* Borrowed: cleared before msg_free. */
		m.u.chunk.data = (uint8_t *)buf + off;
		int rc = msg_send(fd, &m, err);
		m.u.chunk.data = NULL;
		msg_free(&m);
		if (rc < 0)
			return -1;
	}
	return 0;
}
