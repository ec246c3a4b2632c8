/* frame.c: length-prefixed frames: incremental decoding and blocking I/O. */
#include "frame.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* A buffer this large is dropped after its frame, not kept for reuse. */
#define FRAME_KEEP_BUFFER (1u << 20)

/* Decode the big-endian length in a header. */
static uint32_t
header_length(const uint8_t *h)
{
	return (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
	       (uint32_t)h[2] << 8 | (uint32_t)h[3];
}

/* Encode a big-endian length into a header. */
static void
header_store(uint8_t *h, uint32_t len)
{
	h[0] = (uint8_t)(len >> 24);
	h[1] = (uint8_t)(len >> 16);
	h[2] = (uint8_t)(len >> 8);
	h[3] = (uint8_t)len;
}

/* Check a declared payload length against the limit. */
static int
check_length(size_t len, size_t max, struct ipc_error *err)
{
	if (len == 0)
		return ipc_error_set(err, IPC_E_FRAME_EMPTY,
		                     "frame declares an empty payload (every "
		                     "frame carries one msgpack map)");
	if (len > max)
		return ipc_error_set(err, IPC_E_FRAME_TOO_LARGE,
		                     "frame declares %zu payload bytes, over "
		                     "the limit of %zu",
		                     len, max);
	return 0;
}

/* Start an empty decoder with a payload limit. */
void
frame_decoder_init(struct frame_decoder *d, size_t max_frame)
{
	memset(d, 0, sizeof *d);
	d->max_frame = max_frame;
}

/* Release the decoder's buffer. */
void
frame_decoder_free(struct frame_decoder *d)
{
	free(d->buf);
	memset(d, 0, sizeof *d);
}

/* Remember the first error; later feeds repeat it. */
static int
decoder_fail(struct frame_decoder *d, struct ipc_error *err)
{
	d->failure = *err;
	return -1;
}

/* Consume stream bytes; 1 when a frame is ready. */
int
frame_decoder_feed(struct frame_decoder *d, const uint8_t *data, size_t len,
                   size_t *used, struct ipc_error *err)
{
	struct ipc_error local;
	if (err == NULL)
		err = &local;
	*used = 0;
	if (d->failure.code != IPC_OK) {
		*err = d->failure;
		return -1;
	}
	/* The previous frame is no longer needed by the caller. */
	if (d->ready == d->buf && d->buf_cap > FRAME_KEEP_BUFFER) {
		free(d->buf);
		d->buf = NULL;
		d->buf_cap = 0;
	}
	d->ready = NULL;
	d->ready_len = 0;

	size_t off = 0;
	if (d->header_have < FRAME_HEADER_SIZE) {
		size_t n = FRAME_HEADER_SIZE - d->header_have;
		if (n > len)
			n = len;
		memcpy(d->header + d->header_have, data, n);
		d->header_have += n;
		off = n;
		if (d->header_have < FRAME_HEADER_SIZE) {
			*used = off;
			return 0;
		}
		d->want = header_length(d->header);
		if (check_length(d->want, d->max_frame, err) != 0) {
			*used = off;
			return decoder_fail(d, err);
		}
		d->buf_have = 0;
		/* Whole payload already in the caller's buffer: no copy. */
		if (len - off >= d->want) {
			d->ready = data + off;
			d->ready_len = d->want;
			d->header_have = 0;
			*used = off + d->want;
			return 1;
		}
	}

	size_t n = d->want - d->buf_have;
	if (n > len - off)
		n = len - off;
	size_t need = d->buf_have + n;
	if (need > d->buf_cap) {
		/* Grow with the data actually received, never past the
		 * declared length, so a lying header costs little memory. */
		size_t cap = d->buf_cap ? d->buf_cap * 2 : 4096;
		if (cap > d->want)
			cap = d->want;
		if (cap < need)
			cap = need;
		d->buf = xrealloc(d->buf, cap);
		d->buf_cap = cap;
	}
	if (n > 0)
		memcpy(d->buf + d->buf_have, data + off, n);
	d->buf_have += n;
	*used = off + n;
	if (d->buf_have < d->want)
		return 0;
	d->ready = d->buf;
	d->ready_len = d->want;
	d->header_have = 0;
	return 1;
}

size_t
frame_decoder_pending(const struct frame_decoder *d)
{
	return d->header_have == FRAME_HEADER_SIZE ? d->buf_have : 0;
}

/* The frame completed by the last feed. */
const uint8_t *
frame_decoder_payload(const struct frame_decoder *d, size_t *len)
{
	*len = d->ready_len;
	return d->ready;
}

int
frame_header_check(const uint8_t *header, size_t max, size_t *len,
                   struct ipc_error *err)
{
	*len = header_length(header);
	return check_length(*len, max, err);
}

int
frame_decoder_between(const struct frame_decoder *d)
{
	return d->header_have == 0 && d->failure.code == IPC_OK;
}

/* Explain why the stream may not end here. */
int
frame_decoder_eof(const struct frame_decoder *d, struct ipc_error *err)
{
	if (d->header_have == 0)
		return ipc_error_set(err, IPC_E_CLOSED,
		                     "peer closed the stream between frames");
	if (d->header_have < FRAME_HEADER_SIZE)
		return ipc_error_set(err, IPC_E_TRUNCATED,
		                     "stream ended after %zu of %d frame "
		                     "header bytes",
		                     d->header_have, FRAME_HEADER_SIZE);
	return ipc_error_set(err, IPC_E_TRUNCATED,
	                     "stream ended after %zu of %zu payload bytes",
	                     d->buf_have, d->want);
}

/* Wait until fd is ready for events; used when a non-blocking fd says
 * EAGAIN. Returns -1 with errno set if poll itself fails. */
static int
wait_fd(int fd, short events)
{
	struct pollfd p = {.fd = fd, .events = events};
	for (;;) {
		int r = poll(&p, 1, -1);
		if (r >= 0 || errno != EINTR)
			return r < 0 ? -1 : 0;
	}
}

/* One gathered write: send with MSG_NOSIGNAL on sockets, writev otherwise. */
static ssize_t
write_vector(int fd, struct iovec *iov, int count, int *is_socket)
{
	if (*is_socket) {
		struct msghdr mh = {.msg_iov = iov,
		                    .msg_iovlen = (size_t)count};
		ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (n >= 0 || errno != ENOTSOCK)
			return n;
		*is_socket = 0;
	}
	return writev(fd, iov, count);
}

/* Write every byte of iov[0..count), retrying EINTR and short writes. */
static int
write_iov_all(int fd, struct iovec *v, int count, size_t total,
              struct ipc_error *err)
{
	int is_socket = 1;
	while (count > 0) {
		ssize_t n = write_vector(fd, v, count, &is_socket);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if ((errno == EAGAIN || errno == EWOULDBLOCK) &&
			    wait_fd(fd, POLLOUT) == 0)
				continue;
			return ipc_error_set(err, IPC_E_IO,
			                     "writing a %zu-byte frame: %s",
			                     total, strerror(errno));
		}
		size_t done = (size_t)n;
		while (count > 0 && done >= v->iov_len) {
			done -= v->iov_len;
			v++;
			count--;
		}
		if (count > 0) {
			v->iov_base = (uint8_t *)v->iov_base + done;
			v->iov_len -= done;
		}
	}
	return 0;
}

/* Write header and payload as one frame. */
int
frame_write(int fd, const uint8_t *payload, size_t len, struct ipc_error *err)
{
	if (len == 0)
		return ipc_error_set(err, IPC_E_FRAME_EMPTY,
		                     "refusing to write an empty frame");
	if (len > UINT32_MAX)
		return ipc_error_set(err, IPC_E_FRAME_TOO_LARGE,
		                     "payload of %zu bytes does not fit a "
		                     "4-byte frame length",
		                     len);
	uint8_t header[FRAME_HEADER_SIZE];
	header_store(header, (uint32_t)len);
	struct iovec iov[2] = {
	    {.iov_base = header, .iov_len = sizeof header},
	    {.iov_base = (void *)payload, .iov_len = len},
	};
	return write_iov_all(fd, iov, 2, len, err);
}

int
frame_write_parts(int fd, const uint8_t *head, size_t head_len,
                  const void *body, size_t body_len, struct ipc_error *err)
{
	struct iovec iov[2] = {
	    {.iov_base = (void *)head, .iov_len = head_len},
	    {.iov_base = (void *)body, .iov_len = body_len},
	};
	return write_iov_all(fd, iov, body_len > 0 ? 2 : 1, head_len + body_len,
	                     err);
}

void
frame_fds_init(struct frame_fds *f)
{
	memset(f, 0, sizeof *f);
	for (unsigned i = 0; i < FRAME_FDS_MAX; i++)
		f->fd[i] = -1;
}

int
frame_fds_take(struct frame_fds *f, unsigned i)
{
	if (i >= f->n)
		return -1;
	int fd = f->fd[i];
	f->fd[i] = -1;
	return fd;
}

void
frame_fds_close(struct frame_fds *f)
{
	for (unsigned i = 0; i < f->n; i++)
		if (f->fd[i] >= 0)
			close(f->fd[i]);
	frame_fds_init(f);
}

ssize_t
frame_send_fds(int sock, const uint8_t *data, size_t len, const int *fds,
               unsigned n, int flags)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * FRAME_FDS_MAX)];
		struct cmsghdr align;
	} u;
	struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (n > FRAME_FDS_MAX) {
		errno = EINVAL;
		return -1;
	}
	if (n > 0) {
		memset(&u, 0, sizeof u);
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
	}
	ssize_t w;
	do
		w = sendmsg(sock, &mh, MSG_NOSIGNAL | flags);
	while (w < 0 && errno == EINTR);
	return w;
}

/* Keep the descriptors of a received control message in fds (closing the
 * ones that do not fit). */
static void
collect_fds(struct msghdr *mh, struct frame_fds *fds)
{
	if (mh->msg_flags & MSG_CTRUNC)
		fds->dropped = 1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c != NULL;
	     c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
			if (fds->n < FRAME_FDS_MAX) {
				fds->fd[fds->n++] = fd;
			} else {
				close(fd);
				fds->dropped = 1;
			}
		}
	}
}

/* One read of up to len bytes; with fds, a recvmsg that keeps the
 * descriptors sent with them (plain read() lets the kernel close them). */
static ssize_t
read_some(int fd, uint8_t *buf, size_t len, struct frame_fds *fds)
{
	if (fds == NULL)
		return read(fd, buf, len);
	union {
		char buf[CMSG_SPACE(sizeof(int) * FRAME_FDS_MAX)];
		struct cmsghdr align;
	} u;
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov,
	                    .msg_iovlen = 1,
	                    .msg_control = u.buf,
	                    .msg_controllen = sizeof u.buf};
	ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	if (n < 0 && errno == ENOTSOCK)
		return read(fd, buf, len);
	if (n >= 0)
		collect_fds(&mh, fds);
	return n;
}

/* Read up to len bytes, stopping early only at EOF; *got says how many
 * arrived. Returns -1 with errno set on a read error. */
static int
read_upto(int fd, uint8_t *buf, size_t len, size_t *got, struct frame_fds *fds)
{
	*got = 0;
	while (*got < len) {
		ssize_t n = read_some(fd, buf + *got, len - *got, fds);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if ((errno == EAGAIN || errno == EWOULDBLOCK) &&
			    wait_fd(fd, POLLIN) == 0)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		*got += (size_t)n;
	}
	return 0;
}

/* Read a frame header: *want gets the payload's length, checked. */
static int
read_header(int fd, size_t max, size_t *want, struct frame_fds *fds,
            struct ipc_error *err)
{
	uint8_t header[FRAME_HEADER_SIZE];
	size_t got;
	if (read_upto(fd, header, sizeof header, &got, fds) != 0)
		return ipc_error_set(err, IPC_E_IO,
		                     "reading a frame header: %s",
		                     strerror(errno));
	if (got == 0)
		return ipc_error_set(err, IPC_E_CLOSED,
		                     "peer closed the stream between frames");
	if (got < sizeof header)
		return ipc_error_set(err, IPC_E_TRUNCATED,
		                     "stream ended after %zu of %d frame "
		                     "header bytes",
		                     got, FRAME_HEADER_SIZE);
	return frame_header_check(header, max, want, err);
}

/* Read n of a want-byte payload into buf. */
static int
read_payload(int fd, uint8_t *buf, size_t n, size_t want, struct frame_fds *fds,
             struct ipc_error *err)
{
	size_t got;
	if (read_upto(fd, buf, n, &got, fds) != 0)
		return ipc_error_set(err, IPC_E_IO,
		                     "reading a %zu-byte frame payload: %s",
		                     want, strerror(errno));
	if (got < n)
		return ipc_error_set(err, IPC_E_TRUNCATED,
		                     "stream ended after %zu of %zu payload "
		                     "bytes",
		                     got, want);
	return 0;
}

/* Read one whole frame into a new buffer. */
int
frame_read_fds(int fd, size_t max, uint8_t **payload, size_t *len,
               struct frame_fds *fds, struct ipc_error *err)
{
	*payload = NULL;
	*len = 0;
	size_t want = 0;
	if (read_header(fd, max, &want, fds, err) != 0)
		return -1;
	uint8_t *buf = xmalloc(want);
	if (read_payload(fd, buf, want, want, fds, err) != 0) {
		free(buf);
		return -1;
	}
	*payload = buf;
	*len = want;
	return 0;
}

int
frame_read(int fd, size_t max, uint8_t **payload, size_t *len,
           struct ipc_error *err)
{
	return frame_read_fds(fd, max, payload, len, NULL, err);
}

int
frame_read_start(int fd, size_t max, uint8_t *prefix, size_t cap,
                 size_t *prefix_len, size_t *len, struct ipc_error *err)
{
	*prefix_len = 0;
	*len = 0;
	size_t want = 0;
	if (read_header(fd, max, &want, NULL, err) != 0)
		return -1;
	size_t first = want < cap ? want : cap;
	if (read_payload(fd, prefix, first, want, NULL, err) != 0)
		return -1;
	*prefix_len = first;
	*len = want;
	return 0;
}

int
frame_read_rest(int fd, void *dst, size_t n, struct ipc_error *err)
{
	size_t got;
	if (read_upto(fd, dst, n, &got, NULL) != 0)
		return ipc_error_set(err, IPC_E_IO,
		                     "reading a frame payload: %s",
		                     strerror(errno));
	if (got < n)
		return ipc_error_set(err, IPC_E_TRUNCATED,
		                     "stream ended %zu bytes short of the "
		                     "frame's end",
		                     n - got);
	return 0;
}
