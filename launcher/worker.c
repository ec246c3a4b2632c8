/* worker.c: one worker process's lifecycle as seen by the launcher: its
 * connection (hello, task, result/metrics/error frames), its timers, and
 * finishing once both its connection closed and its process was reaped. */
#include "internal.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "shm.h"

static void worker_maybe_finish(struct worker *w);
static void on_result(struct worker *w, const struct msg *m);

/* Arm the worker's timer for the given number of seconds. */
static void
arm_timer(struct worker *w, double seconds)
{
	struct timeval tv;
	tv.tv_sec = (time_t)seconds;
	tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
	evtimer_add(w->timer, &tv);
	w->timer_due = now_seconds() + seconds;
	w->timer_left = -1;
}

/* Stop the task's clock while it waits for its turn to upload: the wait is
 * ours, not the worker's. */
static void
pause_timer(struct worker *w)
{
	if (!evtimer_pending(w->timer, NULL))
		return;
	double left = w->timer_due - now_seconds();
	evtimer_del(w->timer);
	w->timer_left = left > 0 ? left : 0;
}

/* Start the task's clock again with what was left of it (a worker that
 * exited meanwhile gets the grace period worker_exited held back). */
static void
resume_timer(struct worker *w)
{
	if (w->exited)
		arm_timer(w, w->l->opt.kill_grace_s + 1.0);
	else if (w->timer_left >= 0)
		arm_timer(w, w->timer_left);
}

/* Remember the first failure reason of the task in hand. */
static void
note_reason(struct worker *w, const char *reason)
{
	if (w->reason[0] == '\0' && reason != NULL)
		snprintf(w->reason, sizeof w->reason, "%s", reason);
}

/* Send a signal to the worker's process group (the worker and the
 * children it started; spawned with a group of its own) unless it is
 * already reaped; to the worker alone if it left its group. */
static void
send_signal(struct worker *w, int sig)
{
	if (w->exited)
		return;
	if (kill(-w->pid, sig) == 0 || kill(w->pid, sig) == 0) {
		if (sig == SIGTERM)
			w->l->stats.sigterms++;
		else if (sig == SIGKILL)
			w->l->stats.sigkills++;
	}
}

static void read_cb(struct bufferevent *bev, void *arg);
static void inbound_done(struct worker *w);

/* Stop streaming: drop our reference to the file segment (chunks still
 * queued keep theirs until the socket takes them). */
static void
stream_end(struct worker *w)
{
	if (w->out_seg != NULL)
		evbuffer_file_segment_free(w->out_seg);
	w->out_seg = NULL;
}

/* Stop reading a chunk straight into its place (its socket is closing). */
static void
direct_end(struct worker *w)
{
	if (w->direct != NULL)
		event_free(w->direct);
	w->direct = NULL;
	w->direct_left = 0;
}

/* Reading may go on: nothing else holds it off. */
static int
may_read(const struct worker *w)
{
	return w->bev != NULL && !w->partial_paused && w->stream_wait == 0 &&
	       w->direct_left == 0;
}

/* Count what w's decoder holds of an incomplete frame against the
 * launcher's budget: 1 when w must stop reading until the worker allowed
 * over the budget is done with its frame. */
static int
account_partial(struct worker *w)
{
	struct launcher *l = w->l;
	size_t now = w->bev != NULL ? frame_decoder_pending(&w->decoder) : 0;
	l->partial = l->partial - w->partial + now;
	w->partial = now;
	if (l->partial > l->stats.peak_partial)
		l->stats.peak_partial = l->partial;
	if (now == 0 && l->partial_big == w) {
		struct worker *o;
		l->partial_big = NULL;
		TAILQ_FOREACH(o, &l->workers, entry)
		if (o->partial_paused) {
			o->partial_paused = 0;
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
	w->partial_paused = 1;
	bufferevent_disable(w->bev, EV_READ);
	return 1;
}

/* Close the connection; the worker finishes once its process is reaped. */
static void
close_connection(struct worker *w)
{
	if (w->bev == NULL)
		return;
	stream_end(w);
	inbound_done(w);
	direct_end(w);
	w->partial_paused = 0;
	bufferevent_free(w->bev);
	w->bev = NULL;
	account_partial(w);
	worker_maybe_finish(w);
}

/* Best-effort error frame to the peer before we hang up on it. */
static void
send_error(struct worker *w, const char *code, const char *message)
{
	if (w->bev == NULL)
		return;
	struct msg m;
	msg_init(&m, MSG_ERROR);
	m.u.error.task_id = w->has_task ? w->task_id : 0;
	m.u.error.code = xstrdup(code);
	m.u.error.message = xstrdup(message);
	uint8_t *frame;
	size_t len;
	if (msg_encode_frame(&m, &frame, &len) == 0) {
		bufferevent_flush(w->bev, EV_WRITE, BEV_FLUSH);
		(void)!write(bufferevent_getfd(w->bev), frame, len);
		free(frame);
	}
	msg_free(&m);
}

/* A protocol violation: tell the peer, fail its task, hang up, kill it. */
static void
protocol_error(struct worker *w, const char *code, const char *what)
{
	send_error(w, code, what);
	char *reason = xasprintf("protocol error: %s", what);
	worker_terminate(w, reason);
	free(reason);
}

/* Free a chunk frame once the socket has taken it. */
static void
free_frame(const void *data, size_t len, void *arg)
{
	(void)len;
	(void)arg;
	free((void *)data);
}

/* Queue chunk frames of the region being streamed to the worker while the
 * output buffer is below two chunks; the write callback calls again when
 * it drains (libevent's write low watermark), so at most a few chunks are
 * ever buffered. */
static void
pump_stream(struct worker *w)
{
	struct launcher *l = w->l;
	size_t chunk = l->opt.chunk_bytes;
	struct evbuffer *out = bufferevent_get_output(w->bev);
	while (w->out_seg != NULL && evbuffer_get_length(out) < 2 * chunk) {
		struct msg m;
		msg_init(&m, MSG_CHUNK);
		m.u.chunk.task_id = w->task_id;
		m.u.chunk.offset = w->out_sent;
		m.u.chunk.len = w->out_size - w->out_sent < chunk
		                    ? (size_t)(w->out_size - w->out_sent)
		                    : chunk;
		/* The head is encoded; the data is queued as a range of the
		 * file, which libevent hands to the socket with sendfile:
		 * no copy in user space, and the file's pages never enter
		 * the orchestrator's resident set. */
		uint64_t at = w->out_sent;
		size_t clen = m.u.chunk.len;
		uint8_t *head;
		size_t hlen;
		int rc = msg_encode_chunk_head(&m, &head, &hlen);
		w->out_sent += clen;
		msg_free(&m);
		if (rc < 0 ||
		    evbuffer_add_reference(out, head, hlen, free_frame, NULL) <
		        0 ||
		    evbuffer_add_file_segment(out, w->out_seg, (ev_off_t)at,
		                              (ev_off_t)clen) < 0)
			fatal("cannot queue a chunk frame");
		if (w->out_sent == w->out_size)
			stream_end(w);
	}
}

/* The output buffer drained to the low watermark: send more chunks. */
static void
write_cb(struct bufferevent *bev, void *arg)
{
	struct worker *w = arg;
	(void)bev;
	if (w->out_seg != NULL)
		pump_stream(w);
}

/* Send the first bytes of a task frame with the task's descriptors
 * attached (SCM_RIGHTS): straight to the socket, which must have nothing
 * queued before it. The bytes sent, or -1 with the reason noted. */
static ssize_t
send_with_fds(struct worker *w, const uint8_t *frame, size_t len,
              const int *fds, unsigned n)
{
	struct evbuffer *out = bufferevent_get_output(w->bev);
	int sock = bufferevent_getfd(w->bev);
	if (evbuffer_get_length(out) > 0)
		evbuffer_write(out, sock);
	if (evbuffer_get_length(out) > 0) {
		note_reason(w, "its socket is full: the worker is not reading "
		               "its task frames");
		return -1;
	}
	ssize_t sent = frame_send_fds(sock, frame, len, fds, n, MSG_DONTWAIT);
	if (sent < 0) {
		char why[160];
		snprintf(
		    why, sizeof why, "cannot send the task's shared memory: %s",
		    errno == EAGAIN ? "its socket is full" : strerror(errno));
		note_reason(w, why);
	}
	return sent;
}

/* Encode task_id's frame, with the descriptors its task carries, and
 * write it at once; 0 on success. */
static int
write_task_frame(struct worker *w, uint64_t task_id)
{
	uint8_t *frame;
	size_t len;
	struct launcher *l = w->l;
	if (l->hooks.encode_task(l->hooks.arg, task_id, &frame, &len) < 0) {
		worker_terminate(w, "could not encode the task");
		return -1;
	}
	int fds[FRAME_FDS_MAX];
	int n = l->hooks.task_fds == NULL
	            ? 0
	            : l->hooks.task_fds(l->hooks.arg, task_id, w->pid, fds,
	                                FRAME_FDS_MAX);
	ssize_t sent = 0;
	if (n < 0)
		note_reason(w, "could not create the task's shared memory");
	else if (n > 0)
		sent = send_with_fds(w, frame, len, fds, (unsigned)n);
	if (n < 0 || sent < 0) {
		free(frame);
		worker_terminate(w, w->reason);
		return -1;
	}
	bufferevent_write(w->bev, frame + sent, len - (size_t)sent);
	free(frame);
	/* Write now rather than when the loop comes back to this socket: the
	 * caller may go on to fold a large update first, and the worker would
	 * sit idle until then. What the socket cannot take stays queued. */
	evbuffer_write(bufferevent_get_output(w->bev),
	               bufferevent_getfd(w->bev));
	return 0;
}

/* Write the task frame for the task in hand and start its timeout. */
static void
send_task(struct worker *w)
{
	struct launcher *l = w->l;
	if (write_task_frame(w, w->task_id) < 0)
		return;
	w->state = WORKER_BUSY;
	if (w->tasks_max > 1)
		arm_timer(w, l->opt.task_timeout_s);
	if (l->hooks.task_stream != NULL) {
		int fd = l->hooks.task_stream(l->hooks.arg, w->task_id,
		                              &w->out_size);
		w->out_sent = 0;
		stream_end(w);
		if (fd >= 0 && w->out_size > 0) {
			w->out_seg = evbuffer_file_segment_new(
			    fd, 0, (ev_off_t)w->out_size,
			    EVBUF_FS_DISABLE_LOCKING);
			if (w->out_seg == NULL)
				fatal("cannot stream the model: "
				      "evbuffer_file_segment_new failed");
			pump_stream(w);
		}
	}
	launcher_worker_busy(l, w);
}

/* w's streamed result is no longer coming in (complete, cut off, or its
 * connection gone): let the next waiting worker send its own. */
static void
inbound_done(struct worker *w)
{
	struct launcher *l = w->l;
	w->stream_wait = 0;
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
	if (w->stream_wait != 0 &&
	    (first == NULL || w->stream_wait < first->stream_wait))
		first = w;
	return first;
}

void
worker_next_inbound(evutil_socket_t fd, short what, void *arg)
{
	struct launcher *l = arg;
	(void)fd;
	(void)what;
	if (l->inbound != NULL)
		return;
	struct worker *first = oldest_waiter(l);
	if (first == NULL || first->bev == NULL)
		return;
	first->stream_wait = 0;
	l->inbound = first;
	resume_timer(first);
	bufferevent_enable(first->bev, EV_READ);
	/* What arrived before reading stopped is already buffered. */
	read_cb(first->bev, first);
}

/* Stop receiving a streamed result: the owner drops what arrived. */
static void
abort_receiving(struct worker *w)
{
	inbound_done(w);
	if (!w->receiving)
		return;
	w->receiving = 0;
	msg_free(&w->pending);
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
		                           w->pending.u.result.params.size,
		                           offset, len, &err);
	if (to == NULL) {
		abort_receiving(w);
		protocol_error(w, ipc_code_name(err.code), err.message);
	}
	return to;
}

/* len more bytes of the streamed result are in place; the result is handed
 * over once its last byte is. */
static void
chunk_in(struct worker *w, size_t len)
{
	w->in_have += len;
	if (w->in_have < w->pending.u.result.params.size)
		return;
	w->receiving = 0;
	inbound_done(w);
	struct msg m = w->pending;
	memset(&w->pending, 0, sizeof w->pending);
	on_result(w, &m);
	msg_free(&m);
}

/* A chunk of the streamed result decoded the general way. */
static void
on_chunk(struct worker *w, const struct msg_chunk *c)
{
	uint8_t *to = chunk_dest(w, c->task_id, c->offset, c->len);
	if (to == NULL)
		return;
	memcpy(to, c->data, c->len);
	chunk_in(w, c->len);
}

/* Check a hello against this worker's identity and the job token. */
static void
on_hello(struct worker *w, const struct msg_hello *h)
{
	const char *bad = NULL;
	if (strcmp(h->token, w->l->opt.token) != 0)
		bad = "hello carries a wrong token";
	else if (h->pid != w->pid)
		bad = "hello pid differs from the connection's peer pid";
	else if (h->client_id != w->client_id)
		bad = "hello client_id differs from COHORT_CLIENT_ID";
	if (bad != NULL) {
		protocol_error(w, "bad-hello", bad);
		return;
	}
	w->state = WORKER_CONNECTED;
	if (w->has_task) {
		send_task(w);
		return;
	}
	evtimer_del(w->timer);
	launcher_worker_idle(w->l, w);
}

/* A result for the task in hand: hand it over, then go idle or retire. */
static void
on_result(struct worker *w, const struct msg *m)
{
	struct launcher *l = w->l;
	uint64_t task_id = w->task_id;
	w->has_task = 0;
	w->reason[0] = '\0';
	w->tasks_done++;
	evtimer_del(w->timer);
	if (w->has_next) {
		/* The task sent ahead is the worker's now: it is already
		 * reading it. Its timeout starts here. */
		w->has_next = 0;
		w->has_task = 1;
		w->task_id = w->next_task;
		arm_timer(w, l->opt.task_timeout_s);
		if (!l->stopping)
			launcher_worker_busy(l, w);
	} else if (w->tasks_done < w->tasks_max) {
		w->state = WORKER_CONNECTED;
	} else {
		/* It exits by itself after COHORT_TASKS tasks; a worker that
		 * lingers is told to go after the grace period. */
		w->state = WORKER_REPORTED;
		arm_timer(w, l->opt.kill_grace_s + 1.0);
	}
	/* Hand out the next queued task before the result hook folds this
	 * one (send_task writes it at once), so the worker trains while the
	 * orchestrator aggregates; a task the hook queues finds the worker
	 * through launcher_submit. */
	if (w->state == WORKER_CONNECTED && w->bev != NULL && !l->stopping)
		launcher_worker_idle(l, w);
	l->hooks.result(l->hooks.arg, task_id, m);
}

/* Dispatch one decoded frame according to the worker's state. */
static void
on_message(struct worker *w, struct msg *m)
{
	struct launcher *l = w->l;
	char what[600];
	if (w->state == WORKER_SPAWNED) {
		if (m->type != MSG_HELLO) {
			snprintf(what, sizeof what, "expected hello, got %s",
			         msg_type_name(m->type));
			protocol_error(w, "protocol", what);
			return;
		}
		on_hello(w, &m->u.hello);
		return;
	}
	if (w->state != WORKER_BUSY) {
		snprintf(what, sizeof what, "unexpected %s frame while idle",
		         msg_type_name(m->type));
		protocol_error(w, "protocol", what);
		return;
	}
	if (w->receiving) {
		if (m->type == MSG_CHUNK) {
			on_chunk(w, &m->u.chunk);
			return;
		}
		snprintf(what, sizeof what,
		         "%s frame in the middle of a streamed result",
		         msg_type_name(m->type));
		abort_receiving(w);
		protocol_error(w, "protocol", what);
		return;
	}
	uint64_t id = 0;
	switch (m->type) {
	case MSG_RESULT:
		id = m->u.result.task_id;
		break;
	case MSG_METRICS:
		id = m->u.metrics.task_id;
		break;
	case MSG_ERROR:
		id = m->u.error.task_id;
		break;
	default:
		snprintf(what, sizeof what, "unexpected %s frame during a task",
		         msg_type_name(m->type));
		protocol_error(w, "protocol", what);
		return;
	}
	if (id != w->task_id && m->type != MSG_ERROR) {
		snprintf(what, sizeof what,
		         "%s for task %llu, expected task %llu",
		         msg_type_name(m->type), (unsigned long long)id,
		         (unsigned long long)w->task_id);
		protocol_error(w, "protocol", what);
		return;
	}
	if (m->type == MSG_RESULT &&
	    m->u.result.params.where == PARAMS_STREAM) {
		if (l->hooks.result_chunk == NULL ||
		    m->u.result.params.size == 0) {
			protocol_error(
			    w, "protocol",
			    "streamed result but the stream transport "
			    "is off");
			return;
		}
		/* Keep the result until its chunks are in. One streamed
		 * result at a time: while another comes in, this one waits
		 * in its socket (the worker blocks in its send). */
		w->pending = *m;
		memset(m, 0, sizeof *m);
		w->receiving = 1;
		w->in_have = 0;
		/* Behind any waiter: the gate may be free only until the
		 * deferred worker_next_inbound lets the oldest in. */
		if (l->inbound == NULL && oldest_waiter(l) == NULL) {
			l->inbound = w;
		} else if (l->inbound != w) {
			w->stream_wait = ++l->stream_waits;
			bufferevent_disable(w->bev, EV_READ);
			pause_timer(w);
		}
	} else if (m->type == MSG_RESULT) {
		on_result(w, m);
	} else if (m->type == MSG_METRICS) {
		l->hooks.metrics(l->hooks.arg, w->task_id, m);
	} else {
		snprintf(what, sizeof what, "worker error %s: %s",
		         m->u.error.code, m->u.error.message);
		worker_terminate(w, what);
	}
}

/* The socket has more of the chunk being read straight into its place. */
static void
direct_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	(void)what;
	while (w->direct_left > 0) {
		ssize_t n = read(fd, w->direct_to, w->direct_left);
		if (n > 0) {
			w->direct_to += n;
			w->direct_left -= (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			return;
		} else { /* the peer hung up (or the socket failed) mid-chunk */
			if (w->has_task)
				w->closed_early = 1;
			close_connection(w);
			return;
		}
	}
	event_del(w->direct);
	bufferevent_enable(w->bev, EV_READ);
	chunk_in(w, w->direct_len);
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
	if (!w->receiving || w->state != WORKER_BUSY ||
	    !frame_decoder_between(&w->decoder))
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
	if (w->direct == NULL)
		w->direct = event_new(w->l->base, bufferevent_getfd(w->bev),
		                      EV_READ | EV_PERSIST, direct_cb, w);
	if (w->direct == NULL)
		fatal("cannot create a read event");
	w->direct_to = to + now;
	w->direct_left = len - now;
	w->direct_len = len;
	bufferevent_disable(w->bev, EV_READ);
	event_add(w->direct, NULL);
	return 0;
}

/* Bytes arrived: decode every whole frame and act on it. */
static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct worker *w = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	while (w->bev != NULL && w->stream_wait == 0 && w->direct_left == 0) {
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
			protocol_error(w, ipc_code_name(err.code), err.message);
			return;
		}
		if (rc == 0) {
			evbuffer_drain(in, used);
			account_partial(w);
			break;
		}
		account_partial(w);
		size_t plen;
		const uint8_t *payload =
		    frame_decoder_payload(&w->decoder, &plen);
		struct msg m;
		rc = msg_decode(payload, plen, &m, &err);
		if (rc < 0) {
			protocol_error(w, ipc_code_name(err.code), err.message);
			return;
		}
		on_message(w, &m);
		msg_free(&m);
		if (w->bev != NULL)
			evbuffer_drain(in, used);
	}
}

/* The peer hung up or the socket failed. */
static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct worker *w = arg;
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		if (w->has_task)
			w->closed_early = 1;
		close_connection(w);
	}
}

/* Whether bytes from the worker wait in its socket or its input buffer. */
static int
socket_has_bytes(const struct worker *w)
{
	if (w->bev == NULL)
		return 0;
	int n = 0;
	return evbuffer_get_length(bufferevent_get_input(w->bev)) > 0 ||
	       (ioctl(bufferevent_getfd(w->bev), FIONREAD, &n) == 0 && n > 0);
}

/* Timeout of the task in hand, or the end of a kill grace period. */
static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct launcher *l = w->l;
	(void)fd;
	(void)what;
	if (w->exited) {
		/* Reaped but something still holds its socket open. */
		close_connection(w);
		return;
	}
	if (w->kill_stage == 0) {
		/* The orchestrator itself may have been stopped (SIGSTOP, a
		 * loaded machine) while the result arrived: what is in the
		 * socket before the deadline is read first, once. */
		if (w->has_task && !w->timeout_waited && socket_has_bytes(w)) {
			w->timeout_waited = 1;
			arm_timer(w, 0.5);
			return;
		}
		if (w->has_task) {
			char *r = xasprintf("timed out after %g s",
			                    l->opt.task_timeout_s);
			note_reason(w, r);
			free(r);
			l->stats.timeouts++;
		}
		worker_terminate(w, NULL);
	} else if (w->kill_stage == 1) {
		worker_kill(w);
	}
}

/* Deferred finish: report the task's failure, clean up, leave. */
static void
finish_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct launcher *l = w->l;
	(void)fd;
	(void)what;
	w->state = WORKER_EXITED;
	abort_receiving(w);
	if (w->has_task) {
		char status[128];
		if (WIFSIGNALED(w->status))
			snprintf(status, sizeof status,
			         "worker killed by signal %d (%s)",
			         WTERMSIG(w->status),
			         strsignal(WTERMSIG(w->status)));
		else
			snprintf(status, sizeof status,
			         "worker exited with status %d",
			         WEXITSTATUS(w->status));
		char *reason;
		int clean = WIFEXITED(w->status) && WEXITSTATUS(w->status) == 0;
		if (w->reason[0] != '\0')
			reason = xasprintf("%s; %s", w->reason, status);
		else if (w->closed_early && clean)
			reason = xasprintf("connection closed without a "
			                   "result; %s",
			                   status);
		else if (!w->was_connected)
			reason = xasprintf("%s before connecting", status);
		else
			reason =
			    xasprintf("%s before reporting a result", status);
		w->has_task = 0;
		launcher_task_failed(l, w->task_id, reason);
		free(reason);
	}
	if (w->has_next) {
		w->has_next = 0;
		launcher_requeue(l, w->next_task, w->next_client);
	}
	launcher_worker_gone(l, w);
}

/* Schedule the finish once the connection is closed and the process reaped. */
static void
worker_maybe_finish(struct worker *w)
{
	if (w->exited && w->bev == NULL)
		event_active(w->finish, EV_TIMEOUT, 0);
}

struct worker *
worker_new(struct launcher *l, pid_t pid, int64_t client_id, unsigned tasks_max)
{
	struct worker *w = xcalloc(1, sizeof *w);
	w->l = l;
	w->pid = pid;
	w->state = WORKER_SPAWNED;
	w->client_id = client_id;
	w->tasks_max = tasks_max;
	frame_decoder_init(&w->decoder, FRAME_MAX_DEFAULT);
	w->timer = evtimer_new(l->base, timer_cb, w);
	w->finish = evtimer_new(l->base, finish_cb, w);
	if (w->timer == NULL || w->finish == NULL)
		fatal("cannot create worker timers");
	/* Startup counts against the first task's timeout. */
	arm_timer(w, l->opt.task_timeout_s);
	return w;
}

void
worker_assign(struct worker *w, uint64_t task_id)
{
	w->has_task = 1;
	w->task_id = task_id;
	w->timeout_waited = 0;
	w->reason[0] = '\0';
	if (w->state == WORKER_CONNECTED && w->bev != NULL)
		send_task(w);
}

int
worker_can_take_next(const struct worker *w)
{
	return w->state == WORKER_BUSY && w->has_task && !w->has_next &&
	       w->bev != NULL && w->kill_stage == 0 && w->out_seg == NULL &&
	       !w->receiving && w->tasks_done + 2 <= w->tasks_max;
}

void
worker_send_next(struct worker *w, uint64_t task_id, int64_t client_id)
{
	w->has_next = 1;
	w->next_task = task_id;
	w->next_client = client_id;
	write_task_frame(w, task_id);
}

void
worker_attach(struct worker *w, int fd)
{
	w->bev = bufferevent_socket_new(w->l->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (w->bev == NULL)
		fatal("cannot create a bufferevent");
	w->was_connected = 1;
	bufferevent_setcb(w->bev, read_cb, write_cb, event_cb, w);
	/* Backpressure: stop reading the socket while two chunks wait to be
	 * decoded; refill the output when it drains below one chunk. */
	size_t chunk = w->l->opt.chunk_bytes;
	bufferevent_setwatermark(w->bev, EV_READ, 0, 2 * chunk + 65536);
	bufferevent_setwatermark(w->bev, EV_WRITE, chunk, 0);
	/* libevent moves at most 16 KiB per read or write call by default:
	 * 200,000 calls each way for a 3 GB model. */
	bufferevent_set_max_single_read(w->bev, chunk);
	bufferevent_set_max_single_write(w->bev, chunk);
	bufferevent_enable(w->bev, EV_READ | EV_WRITE);
}

void
worker_exited(struct worker *w, int status)
{
	w->exited = 1;
	w->status = status;
	struct launcher_stats *s = &w->l->stats;
	if (WIFSIGNALED(status))
		s->signalled++;
	else if (WEXITSTATUS(status) == 0)
		s->exited_ok++;
	else
		s->exited_error++;
	/* Its socket reaches EOF soon; the timer closes it if a stray child
	 * keeps it open. Not while its streamed result waits for its turn:
	 * the result lies whole in the socket, read once it is let in. */
	if (w->bev != NULL && w->stream_wait == 0) {
		arm_timer(w, w->l->opt.kill_grace_s + 1.0);
	} else {
		evtimer_del(w->timer);
		w->timer_left = -1;
	}
	worker_maybe_finish(w);
}

void
worker_terminate(struct worker *w, const char *reason)
{
	note_reason(w, reason);
	close_connection(w);
	if (w->exited || w->kill_stage > 0)
		return;
	if (w->l->opt.kill_grace_s <= 0) {
		worker_kill(w);
		return;
	}
	send_signal(w, SIGTERM);
	w->kill_stage = 1;
	arm_timer(w, w->l->opt.kill_grace_s);
}

void
worker_kill(struct worker *w)
{
	close_connection(w);
	if (w->exited || w->kill_stage >= 2)
		return;
	send_signal(w, SIGKILL);
	w->kill_stage = 2;
	evtimer_del(w->timer);
}

void
worker_shutdown(struct worker *w)
{
	struct msg m;
	msg_init(&m, MSG_TASK);
	m.u.task.kind = TASK_SHUTDOWN;
	uint8_t *frame;
	size_t len;
	if (msg_encode_frame(&m, &frame, &len) == 0) {
		bufferevent_write(w->bev, frame, len);
		free(frame);
	}
	msg_free(&m);
	w->state = WORKER_REPORTED;
	arm_timer(w, w->l->opt.kill_grace_s + 1.0);
}

int
worker_idle(const struct worker *w)
{
	return w->state == WORKER_CONNECTED && w->bev != NULL && !w->has_task &&
	       w->tasks_done < w->tasks_max;
}

void
worker_free(struct worker *w)
{
	stream_end(w);
	inbound_done(w);
	direct_end(w);
	if (w->bev != NULL)
		bufferevent_free(w->bev);
	event_free(w->timer);
	event_free(w->finish);
	frame_decoder_free(&w->decoder);
	msg_free(&w->pending);
	free(w);
}
