/* wire.c: the bytes of a worker's socket beyond whole small frames:
 * reading and decoding frames, the model streamed to the worker as chunk
 * frames (sendfile), its streamed result coming in (one at a time, through
 * the upload gate; chunks read from the socket straight into place), and
 * the budget of bytes held in incomplete frames. */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

/* Reading may go on: nothing else holds it off. */
static int
may_read(const struct worker *w)
{
	return w->bev != NULL && !w->x.partial_paused &&
	       w->x.gate_ticket == 0 && w->x.direct_left == 0;
}

int
wire_account_partial(struct worker *w)
{
	struct launcher *l = w->l;
	size_t now = w->bev != NULL ? frame_decoder_pending(&w->decoder) : 0;
	l->partial = l->partial - w->x.partial + now;
	w->x.partial = now;
	if (l->partial > l->stats.peak_partial)
		l->stats.peak_partial = l->partial;
	if (now == 0 && l->partial_big == w) {
		struct worker *o;
		l->partial_big = NULL;
		TAILQ_FOREACH(o, &l->workers, entry)
		if (o->x.partial_paused) {
			o->x.partial_paused = 0;
			if (may_read(o))
				bufferevent_enable(o->bev, EV_READ);
		}
	}
	if (now == 0 || l->partial <= LAUNCHER_PARTIAL_BUDGET ||
	    l->partial_big == w)
		return 0;
	if (l->partial_big == NULL) {
		l->partial_big = w;
		return 0;
	}
	w->x.partial_paused = 1;
	bufferevent_disable(w->bev, EV_READ);
	return 1;
}

/* Drop our reference to the file being sent (chunks still queued keep
 * theirs until the socket takes them). */
static void
send_end(struct worker *w)
{
	if (w->x.out_seg != NULL)
		evbuffer_file_segment_free(w->x.out_seg);
	w->x.out_seg = NULL;
}

/* Free a chunk frame's head once the socket has taken it. */
static void
free_frame(const void *data, size_t len, void *arg)
{
	(void)len;
	(void)arg;
	free((void *)data);
}

/* Queue chunk frames of the file being sent while the output buffer is
 * below two chunks; the write callback calls again when it drains
 * (libevent's write low watermark), so at most a few chunks are ever
 * buffered. */
static void
pump(struct worker *w)
{
	size_t chunk = w->l->opt.chunk_bytes;
	struct evbuffer *out = bufferevent_get_output(w->bev);
	while (w->x.out_seg != NULL && evbuffer_get_length(out) < 2 * chunk) {
		struct msg m;
		msg_init(&m, MSG_CHUNK);
		m.u.chunk.task_id = w->task_id;
		m.u.chunk.offset = w->x.out_sent;
		m.u.chunk.len = w->x.out_size - w->x.out_sent < chunk
		                    ? (size_t)(w->x.out_size - w->x.out_sent)
		                    : chunk;
		/* The head is encoded; the data is queued as a range of the
		 * file, which libevent hands to the socket with sendfile:
		 * no copy in user space, and the file's pages never enter
		 * the orchestrator's resident set. */
		uint64_t at = w->x.out_sent;
		size_t clen = m.u.chunk.len;
		uint8_t *head;
		size_t hlen;
		int rc = msg_encode_chunk_head(&m, &head, &hlen);
		w->x.out_sent += clen;
		msg_free(&m);
		if (rc < 0 ||
		    evbuffer_add_reference(out, head, hlen, free_frame, NULL) <
		        0 ||
		    evbuffer_add_file_segment(out, w->x.out_seg, (ev_off_t)at,
		                              (ev_off_t)clen) < 0)
			fatal("cannot queue a chunk frame");
		if (w->x.out_sent == w->x.out_size)
			send_end(w);
	}
}

void
wire_write_cb(struct bufferevent *bev, void *arg)
{
	struct worker *w = arg;
	(void)bev;
	if (w->x.out_seg != NULL)
		pump(w);
}

void
wire_send_file(struct worker *w, int fd, uint64_t size)
{
	send_end(w);
	w->x.out_size = size;
	w->x.out_sent = 0;
	if (fd < 0 || size == 0)
		return;
	w->x.out_seg = evbuffer_file_segment_new(fd, 0, (ev_off_t)size,
	                                         EVBUF_FS_DISABLE_LOCKING);
	if (w->x.out_seg == NULL)
		fatal("cannot stream the model: evbuffer_file_segment_new "
		      "failed");
	pump(w);
}

int
wire_sending(const struct worker *w)
{
	return w->x.out_seg != NULL;
}

/* w's streamed result is no longer coming in (complete, cut off, or its
 * connection gone): let the next waiting worker send its own. */
static void
gate_leave(struct worker *w)
{
	struct launcher *l = w->l;
	w->x.gate_ticket = 0;
	if (l->inbound != w)
		return;
	l->inbound = NULL;
	event_active(l->next_inbound, EV_TIMEOUT, 0);
}

/* The worker whose streamed result has waited longest, or NULL. */
static struct worker *
oldest_waiter(struct launcher *l)
{
	struct worker *w, *first = NULL;
	TAILQ_FOREACH(w, &l->workers, entry)
	if (w->x.gate_ticket != 0 &&
	    (first == NULL || w->x.gate_ticket < first->x.gate_ticket))
		first = w;
	return first;
}

void
wire_next_inbound(evutil_socket_t fd, short what, void *arg)
{
	struct launcher *l = arg;
	(void)fd;
	(void)what;
	if (l->inbound != NULL)
		return;
	struct worker *first = oldest_waiter(l);
	if (first == NULL || first->bev == NULL)
		return;
	first->x.gate_ticket = 0;
	l->inbound = first;
	worker_resume_timer(first);
	bufferevent_enable(first->bev, EV_READ);
	/* What arrived before reading stopped is already buffered. */
	wire_read_cb(first->bev, first);
}

void
wire_receive(struct worker *w, struct msg *m)
{
	struct launcher *l = w->l;
	/* Kept until its chunks are in. One streamed result at a time:
	 * while another comes in, this one waits in its socket (the worker
	 * blocks in its send). */
	w->x.pending = *m;
	memset(m, 0, sizeof *m);
	w->x.receiving = 1;
	w->x.in_have = 0;
	/* Behind any waiter: the gate may be free only until the deferred
	 * wire_next_inbound lets the oldest in. */
	if (l->inbound == NULL && oldest_waiter(l) == NULL) {
		l->inbound = w;
	} else if (l->inbound != w) {
		w->x.gate_ticket = ++l->gate_tickets;
		bufferevent_disable(w->bev, EV_READ);
		worker_pause_timer(w);
	}
}

void
wire_abort(struct worker *w)
{
	gate_leave(w);
	if (!w->x.receiving)
		return;
	w->x.receiving = 0;
	msg_free(&w->x.pending);
	if (w->l->hooks.result_abort != NULL)
		w->l->hooks.result_abort(w->l->hooks.arg, w->task_id);
}

/* Where the len bytes of the chunk at offset of task_id's streamed result
 * go; NULL after refusing it (the connection is closed). */
static uint8_t *
chunk_dest(struct worker *w, uint64_t task_id, uint64_t offset, size_t len)
{
	struct launcher *l = w->l;
	struct ipc_error err;
	uint8_t *to = NULL;
	if (task_id != w->task_id)
		ipc_error_set(&err, IPC_E_BAD_VALUE,
		              "chunk for task %llu, expected task %llu",
		              (unsigned long long)task_id,
		              (unsigned long long)w->task_id);
	else
		to = l->hooks.result_chunk(l->hooks.arg, w->task_id,
		                           w->x.pending.u.result.params.size,
		                           offset, len, &err);
	if (to == NULL) {
		wire_abort(w);
		worker_protocol_error(w, ipc_code_name(err.code), err.message);
	}
	return to;
}

/* len more bytes of the streamed result are in place; the result is
 * handed over once its last byte is. */
static void
chunk_in(struct worker *w, size_t len)
{
	w->x.in_have += len;
	if (w->x.in_have < w->x.pending.u.result.params.size)
		return;
	w->x.receiving = 0;
	gate_leave(w);
	struct msg m = w->x.pending;
	memset(&w->x.pending, 0, sizeof w->x.pending);
	worker_on_result(w, &m);
	msg_free(&m);
}

void
wire_on_chunk(struct worker *w, const struct msg_chunk *c)
{
	uint8_t *to = chunk_dest(w, c->task_id, c->offset, c->len);
	if (to == NULL)
		return;
	memcpy(to, c->data, c->len);
	chunk_in(w, c->len);
}

/* The socket has more of the chunk being read straight into its place. */
static void
direct_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	(void)what;
	while (w->x.direct_left > 0) {
		ssize_t n = read(fd, w->x.direct_to, w->x.direct_left);
		if (n > 0) {
			w->x.direct_to += n;
			w->x.direct_left -= (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			return;
		} else { /* the peer hung up (or the socket failed) mid-chunk */
			worker_hung_up(w);
			return;
		}
	}
	event_del(w->x.direct);
	bufferevent_enable(w->bev, EV_READ);
	chunk_in(w, w->x.direct_len);
}

/* While a streamed result arrives, take its next chunk frame without the
 * frame decoder: what the input buffer holds of its data is copied to its
 * place, the rest is read from the socket straight there (direct_cb), so
 * each byte is copied once, in large reads. Returns 1 when a chunk was
 * taken, 0 when more bytes must come first (or the rest of the chunk is
 * being read directly), -1 when the next bytes are anything else (decoded
 * the general way). */
static int
take_chunk_frame(struct worker *w, struct evbuffer *in)
{
	enum { HEAD_MAX = FRAME_HEADER_SIZE + 64 };
	uint8_t head[HEAD_MAX];
	size_t have = evbuffer_get_length(in);
	if (w->conn != CONN_UPLOADING || !frame_decoder_between(&w->decoder))
		return -1;
	if (have < FRAME_HEADER_SIZE)
		return 0; /* not even a header: wait rather than gather */
	ev_ssize_t got = evbuffer_copyout(in, head, HEAD_MAX);
	uint64_t task_id, offset;
	size_t plen, at;
	if (frame_header_check(head, w->decoder.max_frame, &plen, NULL) != 0)
		return -1; /* the decoder reports it */
	if (msg_chunk_head_parse(head + FRAME_HEADER_SIZE,
	                         (size_t)got - FRAME_HEADER_SIZE, plen,
	                         &task_id, &offset, &at) != 0)
		/* a chunk head cut short: wait for the rest of it */
		return (size_t)got < HEAD_MAX &&
		               (size_t)got < FRAME_HEADER_SIZE + plen
		           ? 0
		           : -1;
	evbuffer_drain(in, FRAME_HEADER_SIZE + at);
	size_t len = plen - at;
	uint8_t *to = chunk_dest(w, task_id, offset, len);
	if (to == NULL)
		return 1;
	size_t now = evbuffer_get_length(in);
	if (now > len)
		now = len;
	evbuffer_remove(in, to, now);
	if (now == len) {
		chunk_in(w, len);
		return 1;
	}
	if (w->x.direct == NULL)
		w->x.direct = event_new(w->l->base, bufferevent_getfd(w->bev),
		                        EV_READ | EV_PERSIST, direct_cb, w);
	if (w->x.direct == NULL)
		fatal("cannot create a read event");
	w->x.direct_to = to + now;
	w->x.direct_left = len - now;
	w->x.direct_len = len;
	bufferevent_disable(w->bev, EV_READ);
	event_add(w->x.direct, NULL);
	return 0;
}

void
wire_read_cb(struct bufferevent *bev, void *arg)
{
	struct worker *w = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	while (w->bev != NULL && w->x.gate_ticket == 0 &&
	       w->x.direct_left == 0) {
		int taken = take_chunk_frame(w, in);
		if (taken == 1)
			continue;
		if (taken == 0)
			break;
		size_t len = evbuffer_get_length(in);
		if (len == 0)
			break;
		const uint8_t *data = evbuffer_pullup(in, (ssize_t)len);
		size_t used;
		struct ipc_error err;
		int rc =
		    frame_decoder_feed(&w->decoder, data, len, &used, &err);
		if (rc < 0) {
			worker_protocol_error(w, ipc_code_name(err.code),
			                      err.message);
			return;
		}
		if (rc == 0) {
			evbuffer_drain(in, used);
			wire_account_partial(w);
			break;
		}
		wire_account_partial(w);
		size_t plen;
		const uint8_t *payload =
		    frame_decoder_payload(&w->decoder, &plen);
		struct msg m;
		rc = msg_decode(payload, plen, &m, &err);
		if (rc < 0) {
			worker_protocol_error(w, ipc_code_name(err.code),
			                      err.message);
			return;
		}
		worker_on_message(w, &m);
		msg_free(&m);
		if (w->bev != NULL)
			evbuffer_drain(in, used);
	}
}

void
wire_close(struct worker *w)
{
	send_end(w);
	gate_leave(w);
	if (w->x.direct != NULL)
		event_free(w->x.direct);
	w->x.direct = NULL;
	w->x.direct_left = 0;
	w->x.partial_paused = 0;
}
