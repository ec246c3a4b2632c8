/* http.c: libcurl's multi interface driven by libevent: one event per socket
 * curl asks us to watch, one timer for curl's timeouts, one timer per request
 * waiting to be retried. */
#include "http.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <curl/curl.h>

#include "util.h"

/* A socket curl wants watched, with the event that watches it. */
struct http_sock {
	struct http *h;
	curl_socket_t fd;
	struct event *ev;
	LIST_ENTRY(http_sock) entry;
};

/* One logical request: the easy handle is reused for each try. */
struct http_req {
	struct http *h;
	CURL *easy;
	struct curl_slist *headers;
	char *url;
	char *body;
	size_t body_len;
	char *answer;
	size_t answer_len, answer_cap;
	char errbuf[CURL_ERROR_SIZE];
	int tries;
	int in_multi;
	struct event *retry_timer;
	http_done_cb cb;
	void *arg;
	LIST_ENTRY(http_req) entry;
};

struct http {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	struct http_options o;
	char *auth_header;
	LIST_HEAD(, http_sock) socks;
	LIST_HEAD(, http_req) reqs;
};

static void process_done(struct http *h);

/* Initialise libcurl once per process. */
static void
global_init(void)
{
	static int done;
	if (!done && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		fatal("curl_global_init failed");
	done = 1;
}

/* A socket became readable or writable: let curl act on it. */
static void
on_socket(evutil_socket_t fd, short what, void *arg)
{
	struct http *h = arg;
	int flags = ((what & EV_READ) ? CURL_CSELECT_IN : 0) |
	            ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
	int running;
	curl_multi_socket_action(h->multi, fd, flags, &running);
	process_done(h);
}

/* curl's timeout expired: let it run its timers. */
static void
on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct http *h = arg;
	int running;
	(void)fd;
	(void)what;
	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	process_done(h);
}

/* CURLMOPT_SOCKETFUNCTION: start, change or stop watching a socket. */
static int
socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct http *h = userp;
	struct http_sock *s = socketp;
	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (s != NULL) {
			event_free(s->ev);
			LIST_REMOVE(s, entry);
			free(s);
			curl_multi_assign(h->multi, fd, NULL);
		}
		return 0;
	}
	short kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
	             ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
	if (s == NULL) {
		s = xcalloc(1, sizeof *s);
		s->h = h;
		s->fd = fd;
		s->ev = event_new(h->base, fd, kind, on_socket, h);
		LIST_INSERT_HEAD(&h->socks, s, entry);
		curl_multi_assign(h->multi, fd, s);
	} else {
		event_del(s->ev);
		event_assign(s->ev, h->base, fd, kind, on_socket, h);
	}
	event_add(s->ev, NULL);
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: (re)arm or cancel the single curl timer. */
static int
timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct http *h = userp;
	(void)multi;
	if (timeout_ms < 0) {
		evtimer_del(h->timer);
		return 0;
	}
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	evtimer_add(h->timer, &tv);
	return 0;
}

/* CURLOPT_WRITEFUNCTION: append the answer body. */
static size_t
write_cb(char *data, size_t size, size_t n, void *userp)
{
	struct http_req *r = userp;
	size_t len = size * n;
	if (r->answer_len + len + 1 > r->answer_cap) {
		r->answer_cap = (r->answer_len + len + 1) * 2;
		r->answer = xrealloc(r->answer, r->answer_cap);
	}
	memcpy(r->answer + r->answer_len, data, len);
	r->answer_len += len;
	r->answer[r->answer_len] = '\0';
	return len;
}

struct http *
http_new(struct event_base *base, const struct http_options *o)
{
	global_init();
	struct http *h = xcalloc(1, sizeof *h);
	h->base = base;
	h->o = *o;
	h->o.username = o->username ? xstrdup(o->username) : NULL;
	h->o.password = o->password ? xstrdup(o->password) : NULL;
	h->o.bearer = o->bearer ? xstrdup(o->bearer) : NULL;
	h->o.ca_path = o->ca_path ? xstrdup(o->ca_path) : NULL;
	if (h->o.username == NULL && h->o.bearer != NULL)
		h->auth_header =
		    xasprintf("Authorization: Bearer %s", h->o.bearer);
	LIST_INIT(&h->socks);
	LIST_INIT(&h->reqs);
	h->multi = curl_multi_init();
	if (h->multi == NULL)
		fatal("curl_multi_init failed");
	h->timer = evtimer_new(base, on_timeout, h);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	return h;
}

/* Hand the request's easy handle to curl for one more try. */
static void
start_try(struct http_req *r)
{
	r->answer_len = 0;
	if (r->answer != NULL)
		r->answer[0] = '\0';
	r->errbuf[0] = '\0';
	r->tries++;
	r->in_multi = 1;
	curl_multi_add_handle(r->h->multi, r->easy);
}

/* The backoff timer of a request fired: try again. */
static void
on_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	start_try(arg);
}

void
http_request(struct http *h, const char *method, const char *url,
             const char *content_type, const void *body, size_t len,
             http_done_cb cb, void *arg)
{
	struct http_req *r = xcalloc(1, sizeof *r);
	r->h = h;
	r->url = xstrdup(url);
	r->cb = cb;
	r->arg = arg;
	r->easy = curl_easy_init();
	if (r->easy == NULL)
		fatal("curl_easy_init failed");
	CURL *e = r->easy;
	curl_easy_setopt(e, CURLOPT_URL, r->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, h->o.timeout_s);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "cohort/" COHORT_VERSION);
	if (h->o.username != NULL) {
		curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(e, CURLOPT_USERNAME, h->o.username);
		curl_easy_setopt(e, CURLOPT_PASSWORD,
		                 h->o.password ? h->o.password : "");
	}
	if (h->o.insecure_tls) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (h->o.ca_path != NULL)
		curl_easy_setopt(e, CURLOPT_CAINFO, h->o.ca_path);
	/* evhttp and some proxies mishandle 100-continue; send bodies at once
	 */
	r->headers = curl_slist_append(r->headers, "Expect:");
	if (h->auth_header != NULL)
		r->headers = curl_slist_append(r->headers, h->auth_header);
	if (content_type != NULL) {
		char *ct = xasprintf("Content-Type: %s", content_type);
		r->headers = curl_slist_append(r->headers, ct);
		free(ct);
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
	if (strcmp(method, "GET") != 0) {
		r->body = xmalloc(len + 1);
		if (len > 0)
			memcpy(r->body, body, len);
		r->body_len = len;
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
		                 (curl_off_t)r->body_len);
		if (strcmp(method, "POST") != 0)
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	}
	r->retry_timer = evtimer_new(h->base, on_retry, r);
	LIST_INSERT_HEAD(&h->reqs, r, entry);
	start_try(r);
}

int
http_status_retryable(long status)
{
	return status == 408 || status == 429 || status == 500 ||
	       status == 502 || status == 503 || status == 504;
}

/* Free a request that is no longer in curl's multi handle. */
static void
req_free(struct http_req *r)
{
	if (r->in_multi)
		curl_multi_remove_handle(r->h->multi, r->easy);
	LIST_REMOVE(r, entry);
	event_free(r->retry_timer);
	curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->headers);
	free(r->url);
	free(r->body);
	free(r->answer);
	free(r);
}

/* Seconds to wait before the next try: the server's Retry-After, else
 * base * 2^(tries-1), capped. */
static double
retry_delay(const struct http_req *r)
{
	curl_off_t after = -1;
	if (curl_easy_getinfo(r->easy, CURLINFO_RETRY_AFTER, &after) !=
	    CURLE_OK)
		after = -1;
	double d = after > 0
	               ? (double)after
	               : r->h->o.backoff_base_s * ldexp(1.0, r->tries - 1);
	return d < r->h->o.backoff_cap_s ? d : r->h->o.backoff_cap_s;
}

/* Finish one try: retry it later, or report the outcome and free it. */
static void
try_done(struct http_req *r, CURLcode code)
{
	struct http *h = r->h;
	long status = 0;
	if (code == CURLE_OK)
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_multi_remove_handle(h->multi, r->easy);
	r->in_multi = 0;
	int transient = code != CURLE_OK || http_status_retryable(status);
	if (transient && r->tries <= h->o.max_retries) {
		double d = retry_delay(r);
		struct timeval tv = {(time_t)d,
		                     (suseconds_t)((d - floor(d)) * 1e6)};
		evtimer_add(r->retry_timer, &tv);
		return;
	}
	struct http_response resp = {
	    .status = status,
	    .body = r->answer ? r->answer : "",
	    .len = r->answer_len,
	    .tries = r->tries,
	    .error = code == CURLE_OK       ? NULL
	             : r->errbuf[0] != '\0' ? r->errbuf
	                                    : curl_easy_strerror(code),
	};
	r->cb(r->arg, &resp);
	req_free(r);
}

/* Collect the tries curl has finished. */
static void
process_done(struct http *h)
{
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(h->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		struct http_req *r = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &r);
		try_done(r, msg->data.result);
	}
}

void
http_free(struct http *h)
{
	if (h == NULL)
		return;
	while (!LIST_EMPTY(&h->reqs))
		req_free(LIST_FIRST(&h->reqs));
	curl_multi_cleanup(h->multi);
	while (!LIST_EMPTY(&h->socks)) {
		struct http_sock *s = LIST_FIRST(&h->socks);
		event_free(s->ev);
		LIST_REMOVE(s, entry);
		free(s);
	}
	event_free(h->timer);
	free((char *)h->o.username);
	free((char *)h->o.password);
	free((char *)h->o.bearer);
	free((char *)h->o.ca_path);
	free(h->auth_header);
	free(h);
}
