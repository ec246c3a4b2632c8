/* frame.h: length-prefixed frames (4-byte big-endian length + payload) on a
 * byte stream: an incremental decoder for event loops and a blocking
 * read/write pair for workers. */
#ifndef COHORT_FRAME_H
#define COHORT_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

#define FRAME_HEADER_SIZE 4
#define FRAME_MAX_DEFAULT (64u << 20)

/* Incremental decoder state. Embed it anywhere; the fields are private to
 * frame.c. A failed decoder stays failed: the stream has lost its framing. */
struct frame_decoder {
	size_t max_frame;
	uint8_t header[FRAME_HEADER_SIZE];
	size_t header_have; /* header bytes seen of the current frame */
	size_t want;        /* declared payload length, once known */
	uint8_t *buf;       /* payload split across feeds is gathered here */
	size_t buf_have;
	size_t buf_cap;
	const uint8_t *ready; /* the frame handed out by the last feed */
	size_t ready_len;
	struct ipc_error failure; /* code IPC_OK until the decoder fails */
};

/* Start a decoder that rejects frames whose payload exceeds max_frame bytes. */
void frame_decoder_init(struct frame_decoder *d, size_t max_frame);
/* Release the decoder's buffer; the decoder may be initialised again. */
void frame_decoder_free(struct frame_decoder *d);
/* Consume bytes from data. Returns 1 when a whole frame is ready (see
 * frame_decoder_payload), 0 when all of data was consumed and more is needed,
 * -1 on error (IPC_E_FRAME_EMPTY, IPC_E_FRAME_TOO_LARGE: reported from the
 * header alone, before any payload byte is kept). *used is the number of
 * bytes of data consumed; call again with the rest. */
int frame_decoder_feed(struct frame_decoder *d, const uint8_t *data, size_t len,
                       size_t *used, struct ipc_error *err);
/* The payload of the frame the last feed returned 1 for (header excluded);
 * valid until the next feed, and no longer than the data passed to it. */
const uint8_t *frame_decoder_payload(const struct frame_decoder *d,
                                     size_t *len);
/* The payload length a 4-byte frame header declares, checked as the
 * decoder checks it (IPC_E_FRAME_EMPTY, IPC_E_FRAME_TOO_LARGE over max). */
int frame_header_check(const uint8_t *header, size_t max, size_t *len,
                       struct ipc_error *err);
/* Bytes the decoder holds of a frame not yet complete (0 between
 * frames). */
size_t frame_decoder_pending(const struct frame_decoder *d);
/* Whether the decoder stands between frames (no part of one seen yet) and
 * has not failed: the caller may then take the next frame by other means. */
int frame_decoder_between(const struct frame_decoder *d);
/* Report why the stream may not end here: IPC_E_CLOSED when it ended
 * between frames, IPC_E_TRUNCATED when inside one. Always returns -1. */
int frame_decoder_eof(const struct frame_decoder *d, struct ipc_error *err);

/* Write one frame (header and payload) to a blocking or non-blocking fd,
 * retrying EINTR and short writes. On sockets a vanished peer is IPC_E_IO,
 * never SIGPIPE; on pipes the caller must ignore SIGPIPE itself. */
int frame_write(int fd, const uint8_t *payload, size_t len,
                struct ipc_error *err);
/* Write one frame given as two parts: head (the 4-byte header, whose
 * length must cover both parts, then the payload's first bytes) and body
 * (the rest, written from where it lies, without a copy). */
int frame_write_parts(int fd, const uint8_t *head, size_t head_len,
                      const void *body, size_t body_len, struct ipc_error *err);
/* Read a frame's header and its first min(*len, cap) payload bytes into
 * prefix: *len is the payload's length, *prefix_len how much is in prefix.
 * The caller reads the rest (frame_read_rest) wherever it wants it. Errors
 * as frame_read. */
int frame_read_start(int fd, size_t max, uint8_t *prefix, size_t cap,
                     size_t *prefix_len, size_t *len, struct ipc_error *err);
/* Read exactly n more bytes of a frame into dst (IPC_E_TRUNCATED on EOF). */
int frame_read_rest(int fd, void *dst, size_t n, struct ipc_error *err);
/* Descriptors that arrived with a frame (SCM_RIGHTS on a Unix socket). */
#define FRAME_FDS_MAX 4
struct frame_fds {
	int fd[FRAME_FDS_MAX]; /* -1 once taken */
	unsigned n;
	int dropped; /* more came than fit (the kernel closed the rest) */
};

/* An empty set. */
void frame_fds_init(struct frame_fds *f);
/* Descriptor i, now the caller's (its slot empties); -1 if none. */
int frame_fds_take(struct frame_fds *f, unsigned i);
/* Close every descriptor not taken; the set is empty afterwards. */
void frame_fds_close(struct frame_fds *f);
/* One sendmsg(2) of data[0..len) with descriptors fds[0..n) attached to
 * its first byte (MSG_NOSIGNAL | flags): the bytes sent, or -1 with errno
 * (EAGAIN with MSG_DONTWAIT when the socket is full). */
ssize_t frame_send_fds(int sock, const uint8_t *data, size_t len,
                       const int *fds, unsigned n, int flags);

/* Read one frame into a malloc'd *payload of *len bytes. IPC_E_CLOSED on
 * EOF before the first header byte, IPC_E_TRUNCATED on EOF inside a frame,
 * IPC_E_FRAME_TOO_LARGE (checked before allocating), IPC_E_FRAME_EMPTY,
 * IPC_E_IO. */
int frame_read(int fd, size_t max, uint8_t **payload, size_t *len,
               struct ipc_error *err);
/* frame_read that also collects descriptors sent with the frame's bytes
 * into fds (which the caller closes: frame_fds_close). */
int frame_read_fds(int fd, size_t max, uint8_t **payload, size_t *len,
                   struct frame_fds *fds, struct ipc_error *err);

#endif
