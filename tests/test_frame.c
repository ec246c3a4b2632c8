/* test_frame.c: frames decode the same under any split of the stream, bad
 * lengths are refused from the header alone, blocking I/O over sockets. */
#include "frame.h"
#include "harness.h"
#include "rng.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* A growable byte buffer for building test streams. */
struct bytes {
	uint8_t *data;
	size_t len;
};

/* Append n bytes. */
static void
bytes_add(struct bytes *b, const void *p, size_t n)
{
	b->data = xrealloc(b->data, b->len + n);
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

/* Append a frame: big-endian length then payload. */
static void
bytes_add_frame(struct bytes *b, const uint8_t *payload, uint32_t len)
{
	uint8_t h[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16),
	                (uint8_t)(len >> 8), (uint8_t)len};
	bytes_add(b, h, 4);
	bytes_add(b, payload, len);
}

/* Feed stream in pieces of step bytes; collect the payloads (concatenated)
 * and their count. Returns the last feed result. */
static int
feed_in_steps(const struct bytes *stream, size_t step, size_t max,
              struct bytes *out, int *frames, struct ipc_error *err)
{
	struct frame_decoder d;
	frame_decoder_init(&d, max);
	*frames = 0;
	int r = 0;
	for (size_t pos = 0; pos < stream->len && r >= 0;) {
		size_t n = stream->len - pos < step ? stream->len - pos : step;
		const uint8_t *p = stream->data + pos;
		pos += n;
		while (n > 0) {
			size_t used;
			r = frame_decoder_feed(&d, p, n, &used, err);
			CHECK(used <= n);
			p += used;
			n -= used;
			if (r < 0)
				break;
			if (r == 1) {
				size_t len;
				const uint8_t *payload =
				    frame_decoder_payload(&d, &len);
				bytes_add(out, payload, len);
				(*frames)++;
			} else {
				CHECK_EQ_INT(n, 0);
			}
		}
	}
	frame_decoder_free(&d);
	return r;
}

/* Three frames of different sizes back to back. */
static void
make_stream(struct bytes *stream, struct bytes *expect)
{
	static const size_t sizes[] = {1, 300, 9000};
	for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
		uint8_t *p = xmalloc(sizes[i]);
		for (size_t j = 0; j < sizes[i]; j++)
			p[j] = (uint8_t)(i * 31 + j * 7);
		bytes_add_frame(stream, p, (uint32_t)sizes[i]);
		bytes_add(expect, p, sizes[i]);
		free(p);
	}
}

static void
test_any_split_gives_same_frames(void)
{
	struct bytes stream = {0}, expect = {0};
	make_stream(&stream, &expect);
	static const size_t steps[] = {1, 2, 3, 4, 5, 7, 301, 4096, 1 << 20};
	for (size_t i = 0; i < ARRAY_LEN(steps); i++) {
		struct bytes got = {0};
		int frames;
		struct ipc_error err;
		int r = feed_in_steps(&stream, steps[i], FRAME_MAX_DEFAULT,
		                      &got, &frames, &err);
		CHECK(r >= 0);
		CHECK_EQ_INT(frames, 3);
		CHECK_EQ_INT(got.len, expect.len);
		CHECK(got.len == expect.len &&
		      memcmp(got.data, expect.data, got.len) == 0);
		free(got.data);
	}
	free(stream.data);
	free(expect.data);
}

static void
test_contiguous_frame_is_not_copied(void)
{
	struct bytes stream = {0}, expect = {0};
	make_stream(&stream, &expect);
	struct frame_decoder d;
	frame_decoder_init(&d, FRAME_MAX_DEFAULT);
	size_t used, len;
	CHECK_EQ_INT(
	    frame_decoder_feed(&d, stream.data, stream.len, &used, NULL), 1);
	CHECK_EQ_INT(used, 5);
	const uint8_t *p = frame_decoder_payload(&d, &len);
	CHECK(p == stream.data + 4);
	CHECK_EQ_INT(len, 1);
	/* The next frame also lies whole in the rest of the input. */
	CHECK_EQ_INT(frame_decoder_feed(&d, stream.data + used,
	                                stream.len - used, &used, NULL),
	             1);
	p = frame_decoder_payload(&d, &len);
	CHECK(p == stream.data + 9);
	CHECK_EQ_INT(len, 300);
	frame_decoder_free(&d);
	free(stream.data);
	free(expect.data);
}

static void
test_truncated_stream_at_every_split(void)
{
	struct bytes stream = {0};
	uint8_t payload[40];
	for (size_t i = 0; i < sizeof payload; i++)
		payload[i] = (uint8_t)i;
	bytes_add_frame(&stream, payload, sizeof payload);
	for (size_t cut = 0; cut < stream.len; cut++) {
		struct frame_decoder d;
		frame_decoder_init(&d, FRAME_MAX_DEFAULT);
		size_t used;
		struct ipc_error err;
		CHECK_EQ_INT(
		    frame_decoder_feed(&d, stream.data, cut, &used, &err), 0);
		CHECK_EQ_INT(used, cut);
		CHECK_EQ_INT(frame_decoder_eof(&d, &err), -1);
		if (cut == 0) {
			CHECK_EQ_INT(err.code, IPC_E_CLOSED);
		} else if (cut < 4) {
			CHECK_EQ_INT(err.code, IPC_E_TRUNCATED);
			CHECK_STR_CONTAINS(err.message, "header bytes");
		} else {
			CHECK_EQ_INT(err.code, IPC_E_TRUNCATED);
			CHECK_STR_CONTAINS(err.message, "of 40 payload bytes");
		}
		frame_decoder_free(&d);
	}
	free(stream.data);
}

static void
test_oversized_length_refused_from_header(void)
{
	/* Only the header is fed: the refusal cannot depend on payload. */
	uint8_t header[4] = {0x00, 0x10, 0x00, 0x01}; /* 1 MiB + 1 */
	struct frame_decoder d;
	frame_decoder_init(&d, 1u << 20);
	size_t used;
	struct ipc_error err;
	CHECK_EQ_INT(frame_decoder_feed(&d, header, 4, &used, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_FRAME_TOO_LARGE);
	CHECK_STR_CONTAINS(err.message, "1048577");
	CHECK(d.buf == NULL);
	/* The decoder stays failed: the stream lost its framing. */
	uint8_t more[8] = {0};
	ipc_error_clear(&err);
	CHECK_EQ_INT(frame_decoder_feed(&d, more, sizeof more, &used, &err),
	             -1);
	CHECK_EQ_INT(err.code, IPC_E_FRAME_TOO_LARGE);
	CHECK_EQ_INT(used, 0);
	frame_decoder_free(&d);

	/* The largest allowed length is accepted. */
	uint8_t ok[4] = {0x00, 0x10, 0x00, 0x00};
	frame_decoder_init(&d, 1u << 20);
	CHECK_EQ_INT(frame_decoder_feed(&d, ok, 4, &used, &err), 0);
	frame_decoder_free(&d);
}

static void
test_a_lying_header_costs_only_received_bytes(void)
{
	uint8_t stream[4 + 10] = {0x01, 0x00, 0x00, 0x00}; /* 16 MiB */
	struct frame_decoder d;
	frame_decoder_init(&d, FRAME_MAX_DEFAULT);
	size_t used;
	CHECK_EQ_INT(frame_decoder_feed(&d, stream, sizeof stream, &used, NULL),
	             0);
	CHECK_EQ_INT(used, sizeof stream);
	CHECK(d.buf_cap <= 4096);
	frame_decoder_free(&d);
}

static void
test_zero_length_frame(void)
{
	uint8_t stream[8] = {0, 0, 0, 0, 0, 0, 0, 1};
	struct frame_decoder d;
	frame_decoder_init(&d, FRAME_MAX_DEFAULT);
	size_t used;
	struct ipc_error err;
	CHECK_EQ_INT(frame_decoder_feed(&d, stream, sizeof stream, &used, &err),
	             -1);
	CHECK_EQ_INT(err.code, IPC_E_FRAME_EMPTY);
	CHECK_STR_CONTAINS(err.message, "empty");
	frame_decoder_free(&d);
}

static void
test_random_streams_never_crash(void)
{
	struct rng r;
	rng_seed(&r, 11, 0);
	uint8_t buf[64];
	for (int i = 0; i < 20000; i++) {
		size_t len = rng_below(&r, sizeof buf + 1);
		for (size_t j = 0; j < len; j++)
			buf[j] = (uint8_t)rng_next(&r);
		/* Small lengths are likely so that some frames complete. */
		if (len >= 4 && rng_below(&r, 2) == 0)
			buf[0] = buf[1] = buf[2] = 0;
		struct bytes stream = {.data = buf, .len = len};
		struct bytes got = {0};
		int frames;
		struct ipc_error err;
		ipc_error_clear(&err);
		int res = feed_in_steps(&stream, 1 + rng_below(&r, 8), 200,
		                        &got, &frames, &err);
		if (res < 0)
			CHECK(err.code == IPC_E_FRAME_EMPTY ||
			      err.code == IPC_E_FRAME_TOO_LARGE);
		free(got.data);
	}
}

/* A connected pair of stream sockets. */
static void
socket_pair(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		fatal("socketpair failed");
}

static void
test_write_read_over_socket(void)
{
	int sv[2];
	socket_pair(sv);
	/* 3 MiB is larger than any socket buffer: a child writes it while
	 * the parent reads, exercising short writes and reads. */
	size_t big = 3u << 20;
	pid_t pid = fork();
	if (pid == 0) {
		close(sv[0]);
		uint8_t *p = xmalloc(big);
		for (size_t i = 0; i < big; i++)
			p[i] = (uint8_t)(i % 251);
		struct ipc_error err;
		int ok =
		    frame_write(sv[1], (const uint8_t *)"hi", 2, &err) == 0 &&
		    frame_write(sv[1], p, big, &err) == 0;
		free(p);
		_exit(ok ? 0 : 1);
	}
	close(sv[1]);
	uint8_t *payload;
	size_t len;
	struct ipc_error err;
	CHECK_EQ_INT(frame_read(sv[0], FRAME_MAX_DEFAULT, &payload, &len, &err),
	             0);
	CHECK_EQ_INT(len, 2);
	CHECK(len == 2 && memcmp(payload, "hi", 2) == 0);
	free(payload);
	CHECK_EQ_INT(frame_read(sv[0], FRAME_MAX_DEFAULT, &payload, &len, &err),
	             0);
	CHECK_EQ_INT(len, big);
	int same = len == big;
	for (size_t i = 0; same && i < big; i++)
		same = payload[i] == (uint8_t)(i % 251);
	CHECK(same);
	free(payload);
	CHECK_EQ_INT(frame_read(sv[0], FRAME_MAX_DEFAULT, &payload, &len, &err),
	             -1);
	CHECK_EQ_INT(err.code, IPC_E_CLOSED);
	CHECK(payload == NULL);
	int status;
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(sv[0]);
}

/* Write raw bytes to a fresh socket, close it, and frame_read the other end. */
static int
read_after_raw(const uint8_t *raw, size_t n, size_t max, struct ipc_error *err)
{
	int sv[2];
	socket_pair(sv);
	CHECK_EQ_INT(write_all(sv[1], raw, n), 0);
	close(sv[1]);
	uint8_t *payload;
	size_t len;
	int r = frame_read(sv[0], max, &payload, &len, err);
	if (r == 0)
		free(payload);
	close(sv[0]);
	return r;
}

static void
test_read_errors(void)
{
	struct ipc_error err;
	uint8_t raw[] = {0, 0, 0, 5, 'a', 'b'};
	CHECK_EQ_INT(read_after_raw(raw, 2, 100, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_TRUNCATED);
	CHECK_STR_CONTAINS(err.message, "2 of 4 frame header bytes");
	CHECK_EQ_INT(read_after_raw(raw, sizeof raw, 100, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_TRUNCATED);
	CHECK_STR_CONTAINS(err.message, "2 of 5 payload bytes");
	CHECK_EQ_INT(read_after_raw(raw, 4, 100, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_TRUNCATED);
	CHECK_STR_CONTAINS(err.message, "0 of 5 payload bytes");
	CHECK_EQ_INT(read_after_raw(raw, sizeof raw, 4, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_FRAME_TOO_LARGE);
	uint8_t huge[] = {0xff, 0xff, 0xff, 0xff};
	CHECK_EQ_INT(read_after_raw(huge, 4, FRAME_MAX_DEFAULT, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_FRAME_TOO_LARGE);
	uint8_t empty[] = {0, 0, 0, 0};
	CHECK_EQ_INT(read_after_raw(empty, 4, 100, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_FRAME_EMPTY);
	CHECK_EQ_INT(read_after_raw(raw, 0, 100, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_CLOSED);
}

static void
test_write_to_closed_peer_is_an_error_not_sigpipe(void)
{
	signal(SIGPIPE, SIG_DFL);
	int sv[2];
	socket_pair(sv);
	close(sv[0]);
	struct ipc_error err;
	CHECK_EQ_INT(frame_write(sv[1], (const uint8_t *)"x", 1, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_IO);
	CHECK_STR_CONTAINS(err.message, "Broken pipe");
	close(sv[1]);
	CHECK_EQ_INT(frame_write(sv[1], (const uint8_t *)"x", 1, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_IO);
	CHECK_EQ_INT(frame_write(sv[1], NULL, 0, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_FRAME_EMPTY);
}

static void
test_write_read_over_pipe(void)
{
	int p[2];
	if (pipe(p) != 0)
		fatal("pipe failed");
	struct ipc_error err;
	CHECK_EQ_INT(frame_write(p[1], (const uint8_t *)"pipe", 4, &err), 0);
	close(p[1]);
	uint8_t *payload;
	size_t len;
	CHECK_EQ_INT(frame_read(p[0], 100, &payload, &len, &err), 0);
	CHECK(len == 4 && memcmp(payload, "pipe", 4) == 0);
	free(payload);
	close(p[0]);
}

int
main(void)
{
	RUN(test_any_split_gives_same_frames);
	RUN(test_contiguous_frame_is_not_copied);
	RUN(test_truncated_stream_at_every_split);
	RUN(test_oversized_length_refused_from_header);
	RUN(test_a_lying_header_costs_only_received_bytes);
	RUN(test_zero_length_frame);
	RUN(test_random_streams_never_crash);
	RUN(test_write_read_over_socket);
	RUN(test_read_errors);
	RUN(test_write_to_closed_peer_is_an_error_not_sigpipe);
	RUN(test_write_read_over_pipe);
	return harness_finish();
}
