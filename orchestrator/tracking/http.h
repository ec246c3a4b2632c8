/* http.h: asynchronous HTTP requests on a libevent loop (libcurl's multi
 * interface), with retries and exponential backoff for transient failures. */
#ifndef COHORT_HTTP_H
#define COHORT_HTTP_H

#include <stddef.h>

#include <event2/event.h>

/* How every request of one client is sent. */
struct http_options {
	const char *username; /* Basic auth when set (with password) */
	const char *password;
	const char *bearer;    /* Bearer token, used when username is NULL */
	int insecure_tls;      /* skip certificate and host verification */
	const char *ca_path;   /* CA bundle to verify the server with */
	long timeout_s;        /* whole-request timeout */
	int max_retries;       /* retries after the first try */
	double backoff_base_s; /* first retry delay; doubles each retry */
	double backoff_cap_s;  /* longest delay between tries */
};

/* The final outcome of a request, after its retries. */
struct http_response {
	long status;      /* HTTP status, 0 when no answer came */
	const char *body; /* NUL-terminated (may hold NULs inside) */
	size_t len;
	int tries;         /* attempts made */
	const char *error; /* transport error text when status is 0 */
};

typedef void (*http_done_cb)(void *arg, const struct http_response *r);

struct http;

/* A client on base; the options' strings are copied. */
struct http *http_new(struct event_base *base, const struct http_options *o);
/* Send method (GET, POST, PUT) to url with an optional body (copied); cb runs
 * once from the loop with the final answer. */
void http_request(struct http *h, const char *method, const char *url,
                  const char *content_type, const void *body, size_t len,
                  http_done_cb cb, void *arg);
/* True for statuses worth retrying (408, 429, 500, 502, 503, 504). */
int http_status_retryable(long status);
/* Cancel whatever is pending (no callbacks) and free the client. */
void http_free(struct http *h);

#endif
