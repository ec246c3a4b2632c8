/* fuzz_message.c: libFuzzer target for the frame decoder and msg_decode.
 * Every decoded message must survive encode -> decode unchanged. */
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "message.h"

/* Frames over this are refused; small enough to keep the fuzzer fast. */
#define FUZZ_MAX_FRAME (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Decode a payload; if it is a message, re-encoding it must give a frame
 * that decodes to an equal message. */
static void
check_payload(const uint8_t *p, size_t len)
{
	struct msg m, again;
	struct ipc_error err;
	/* The worker's fast path for chunk heads must agree with the full
	 * decoder: a head it accepts is a chunk whose data runs from body_at
	 * to the end. */
	uint64_t id, off;
	size_t at;
	int head = msg_chunk_head_parse(p, len < 64 ? len : 64, len, &id, &off,
	                                &at) == 0;
	if (head) {
		if (msg_decode(p, len, &m, &err) != 0)
			abort();
		if (m.type != MSG_CHUNK || m.u.chunk.task_id != id ||
		    m.u.chunk.offset != off || m.u.chunk.len != len - at ||
		    (m.u.chunk.len > 0 &&
		     memcmp(m.u.chunk.data, p + at, m.u.chunk.len) != 0))
			abort();
		msg_free(&m);
	}
	if (msg_decode(p, len, &m, &err) != 0) {
		if (err.code == IPC_OK || err.code >= IPC_E_CODE_COUNT)
			abort();
		return;
	}
	uint8_t *frame;
	size_t frame_len;
	if (msg_encode_frame(&m, &frame, &frame_len) != 0)
		abort();
	if (msg_decode(frame + FRAME_HEADER_SIZE, frame_len - FRAME_HEADER_SIZE,
	               &again, &err) != 0)
		abort();
	if (!msg_equal(&m, &again))
		abort();
	free(frame);
	msg_free(&again);
	msg_free(&m);
}

/* Feed the input as a stream in pieces, and decode it whole as a payload. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	/* First byte: the size of the pieces the stream arrives in. */
	size_t step = 1 + data[0] % 64;
	const uint8_t *stream = data + 1;
	size_t len = size - 1;

	struct frame_decoder d;
	frame_decoder_init(&d, FUZZ_MAX_FRAME);
	int failed = 0;
	for (size_t pos = 0; pos < len && !failed;) {
		size_t n = len - pos < step ? len - pos : step;
		const uint8_t *piece = stream + pos;
		pos += n;
		while (n > 0) {
			size_t used;
			int r = frame_decoder_feed(&d, piece, n, &used, NULL);
			if (used > n)
				abort();
			piece += used;
			n -= used;
			if (r < 0) {
				failed = 1;
				break;
			}
			if (r == 1) {
				size_t plen;
				const uint8_t *p =
				    frame_decoder_payload(&d, &plen);
				check_payload(p, plen);
			}
		}
	}
	frame_decoder_free(&d);

	check_payload(stream, len);
	return 0;
}
