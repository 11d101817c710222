/*
 * http - the HTTP front end of assetfs-server, on libmicrohttpd.
 *
 * The rest of the server sees only struct http_request / http_response:
 * libmicrohttpd types never leave http.c. A request reaches the handler
 * once, with its whole body (capped at max_body; a Content-Length over the
 * cap gets 413 before the body is read, a chunked body that grows past it
 * closes the connection). A watchdog closes any connection whose request
 * takes longer than request_timeout_ms to arrive (a client that sends one
 * byte a second), on top of libmicrohttpd's keep-alive idle timeout; once
 * a request is in, computing and sending its answer has no deadline but
 * the idle timeout (a large batch may take its time).
 *
 * Threads: the handler runs on libmicrohttpd's threads (a pool of
 * `threads`, one thread per connection when threads is 0, or one thread in
 * single-threaded mode) and must be thread-safe. Errors: 0 or a negative
 * errno.
 */
#ifndef ASSETFS_SERVER_HTTP_H
#define ASSETFS_SERVER_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

struct http_request {
	const char *method;
	const char *path; /* without the query string, percent-decoded */
	const char *body; /* NUL-terminated; "" when there is none */
	size_t body_len;
	int64_t start_ns; /* monotonic, when the request line arrived */
	void *conn;	  /* private to http.c */
};

struct http_response {
	int status;		  /* 200 unless the handler says otherwise */
	const char *content_type; /* static string; default application/json */
	struct buf body;
	/* for the access log and metrics: what the request was about */
	char model[64];
	char version[64];
	const char *protocol; /* static string or NULL */
};

/* Called once per complete request; fills @resp. */
typedef void (*http_handler_fn)(void *ctx, const struct http_request *req,
				struct http_response *resp);

struct http_opts {
	int listen_fd;	  /* a listening socket to use, or -1 */
	int port;	  /* when listen_fd is -1: bind 0.0.0.0:port */
	unsigned threads; /* pool size; 0 = a thread per connection */
	bool single_threaded;
	size_t max_body;	     /* bytes */
	unsigned keepalive_s;	     /* idle keep-alive timeout */
	unsigned request_timeout_ms; /* time to receive one request */
	unsigned conn_limit;
	bool access_log;
	const char *access_log_skip; /* a path never logged, or NULL */
};

struct http_server;

/*
 * Create a listening TCP socket on 0.0.0.0:@port with SO_REUSEADDR and
 * SO_REUSEPORT, non-blocking (it may be shared by several processes).
 * Returns the fd or a negative errno.
 */
int http_listen(int port);

/*
 * Start serving. @ctx is borrowed and passed to @fn. Returns 0 and the
 * server in *@out, or a negative errno (port in use: -EADDRINUSE).
 */
int http_start(const struct http_opts *o, http_handler_fn fn, void *ctx,
	       struct http_server **out);

/* A request header, or NULL. Borrowed until the handler returns. */
const char *http_header(const struct http_request *req, const char *name);

/* A query argument, or NULL. Borrowed until the handler returns. */
const char *http_query(const struct http_request *req, const char *name);

/*
 * Stop accepting new connections; those open are served to completion,
 * and every response from now on carries "Connection: close".
 */
void http_quiesce(struct http_server *s);

/* Connections currently open. */
unsigned http_connections(struct http_server *s);

/* Requests being received or answered right now. */
unsigned http_inflight(struct http_server *s);

/* Requests answered so far. */
uint64_t http_requests_done(struct http_server *s);

/* Stop and free (closes whatever is still open). NULL-safe. */
void http_stop(struct http_server *s);

#endif
