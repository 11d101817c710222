/*
 * grpc_server_int - what the three files of the gRPC front end share
 * (private to grpc_server.c, grpc_call.c and grpc_tls.c; the contract
 * with the rest of the server is grpc_server.h).
 *
 *   grpc_server.c  the event loops: one thread per loop, each owning its
 *                  connections (epoll), the listener, accept hand-out,
 *                  socket reads and writes, timers, stop;
 *   grpc_call.c    one HTTP/2 session per connection (libnghttp2 does
 *                  the framing, HPACK, flow control and SETTINGS) and the
 *                  gRPC calls on it: headers, the 5-byte message prefix,
 *                  the method, the answer and its trailers;
 *   grpc_tls.c     OpenSSL: the context (ALPN "h2") and the reads and
 *                  writes of a TLS connection.
 *
 * A connection lives on one loop and is only touched by that loop's
 * thread; a call is answered inline on the thread that read its last
 * byte, and what a turn of the loop produced for a connection leaves in
 * one write. Output waiting for a client is capped (GH_OUT_MAX): past it
 * the connection is no longer read until the client takes its answers.
 * Answers its flow control keeps from leaving are capped too (held_max,
 * GH_HELD_MIN or twice --grpc-max-message): past it the connection's
 * next calls wait, unrun, with their request bytes not given back to the
 * client's window, until answers leave.
 */
#ifndef ASSETFS_SERVER_GRPC_SERVER_INT_H
#define ASSETFS_SERVER_GRPC_SERVER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#include "server/grpc_server.h"

#define GH_OUT_MAX (256u << 10) /* bytes queued for one client */
#define GH_STREAM_WINDOW (1u << 20)
#define GH_CONN_WINDOW (8u << 20)
#define GH_HELD_MIN (4u << 20) /* answers one connection may hold, at least */
#define GH_IDLE_MS 300000  /* a connection without calls is closed after */
#define GH_HELLO_MS 10000  /* to finish TLS and send the HTTP/2 preface */
#define GH_PATH_MAX 128	   /* of an unknown method, kept for the message */

struct gh_loop;

/* grpc-encoding of a request's messages */
enum { GH_ENC_IDENTITY, GH_ENC_GZIP, GH_ENC_DEFLATE, GH_ENC_OTHER };

/* One call (HTTP/2 stream), owned by its connection. */
struct gh_stream {
	struct gh_stream *prev, *next; /* the connection's open streams */
	int32_t id;
	const struct grpc_method *m; /* NULL: unknown path */
	char path[GH_PATH_MAX];
	int http_status;	     /* non-zero: not a gRPC request */
	bool post, grpc_ct, too_big;
	int enc; /* grpc-encoding: GH_ENC_* */
	bool counted; /* a gRPC call (metrics) */
	bool answered;
	bool deferred; /* its method runs on the loader */
	bool waiting;  /* complete, not run: its connection holds too much */
	int code;		/* what it was answered */
	int64_t start_ns, deadline_ns; /* deadline 0: none */
	uint8_t *body;		/* framed request bytes */
	size_t body_len, body_cap;
	size_t rx_kept;		/* DATA bytes not yet given back (consume) */
	uint8_t prefix[5];	/* of the answer */
	uint8_t *out;		/* the answer's message */
	size_t out_len, out_off; /* out_off counts the prefix too */
};

struct gh_conn {
	struct gh_conn *prev, *next; /* the loop's connections */
	struct gh_loop *loop;
	uint64_t serial; /* in its loop: a job finds its connection */
	int fd;
	SSL *ssl;	    /* NULL: plaintext */
	bool hello_done;    /* TLS handshake over (or plaintext) */
	bool tls_want_out;  /* OpenSSL waits for the socket to take bytes */
	bool paused;	    /* not read: its output is over GH_OUT_MAX */
	bool dead;	    /* close at the end of this turn */
	uint32_t events;    /* registered with epoll */
	nghttp2_session *h2;
	struct gh_stream *streams;
	unsigned n_streams;
	uint8_t *out;	    /* bytes for the socket */
	size_t out_len, out_off, out_cap;
	size_t held;	    /* bytes of answers not yet handed to out */
	unsigned n_waiting; /* streams waiting */
	int64_t moved_ns;   /* when an answer last left, or the connection came */
	int64_t born_ns, last_rx_ns, last_call_ns, ping_ns; /* ping_ns 0: none */
	bool seen_frame;
};

/*
 * A call whose method would block its loop (it must load a lazy model):
 * the loader thread runs it and hands the reply back to the loop.
 */
struct gh_job {
	struct gh_job *next;
	struct gh_loop *loop;
	struct gh_conn *conn; /* compared, with serial, never followed */
	uint64_t serial;
	int32_t id;
	const struct grpc_method *m;
	uint8_t *body; /* framed: the message is at body + 5 */
	size_t len;
	struct grpc_reply r;
};

struct gh_loop {
	struct grpc_front *g;
	struct server_ctx ctx; /* front's, with load_deferred */
	bool deferred;
	uint64_t serials;
	pthread_t thread;
	bool started;
	int ep, evfd;
	struct gh_conn *conns;
	unsigned n_conns;
	int64_t last_sweep_ns;
	bool goaway_sent;
	pthread_mutex_t lock;
	int *inbox; /* accepted sockets for this loop; protected by lock */
	size_t n_inbox, cap_inbox;
	struct gh_job *done; /* replies from the loader; protected by lock */
};

struct grpc_front {
	struct server_ctx own_ctx; /* the caller's, but never waiting */
	struct server_ctx *ctx;
	const struct grpc_method *const *methods; /* NULL-terminated */
	size_t max_message;
	size_t held_max; /* answers held per connection before calls wait */
	unsigned max_streams, keepalive_ms, keepalive_timeout_ms;
	SSL_CTX *tls;
	int lfd;
	struct gh_loop *loops;
	unsigned n_loops;
	atomic_uint next_loop;
	atomic_bool stopping;
	int64_t stop_by_ns; /* written before stopping is set */
	atomic_uint_fast64_t done;
	nghttp2_session_callbacks *cbs;
	nghttp2_option *h2opt;
	pthread_t loader;
	bool loader_started;
	pthread_mutex_t jlock;
	pthread_cond_t jcond;
	struct gh_job *jobs; /* for the loader, in order; protected by jlock */
	bool jstop;	     /* protected by jlock */
};


/* grpc_call.c */

/* The callbacks and options every session shares. 0 or -ENOMEM. */
int gh_h2_init(struct grpc_front *g);
void gh_h2_fini(struct grpc_front *g);

/* Make @c's server session and queue its SETTINGS. 0 or -ENOMEM. */
int gh_session_new(struct grpc_front *g, struct gh_conn *c);

/*
 * Feed @n bytes the client sent; calls whose last byte came are answered
 * (queued in the session). 0, or -EPROTO: close the connection.
 */
int gh_session_recv(struct gh_conn *c, const uint8_t *p, size_t n);

/*
 * Move what the session has to send into @c->out, up to GH_OUT_MAX.
 * 0 or -EPROTO.
 */
int gh_session_send(struct gh_conn *c);

/*
 * Run the calls of @c that wait, oldest first, while what it holds is
 * within held_max. Returns how many ran.
 */
unsigned gh_session_resume(struct gh_conn *c);

/* Answer DEADLINE_EXCEEDED to calls of @c still reading past theirs. */
void gh_session_expire(struct gh_conn *c, int64_t now_ns);

/* Answer the call of @j (consumed) on @c, when it is still open. */
void gh_job_done(struct gh_conn *c, struct gh_job *j);

/* Free the session and its calls (counted as CANCELLED). */
void gh_session_free(struct gh_conn *c);

/* Parse a grpc-timeout value ("100m"): 0 and *@ns, or -EINVAL. */
int gh_parse_timeout(const char *v, size_t n, int64_t *ns);

/*
 * The request message of a unary call from the stream's bytes: one
 * 5-byte prefix and its message, nothing after. Returns GC_OK with *@msg
 * and *@len (inside @p), or a gRPC code with a message in @err.
 */
int gh_unframe(const uint8_t *p, size_t n, size_t max, bool may_compress,
	       const uint8_t **msg, size_t *len, char *err, size_t errlen);

/*
 * Inflate the compressed message @p (@n bytes, GH_ENC_GZIP or _DEFLATE)
 * into *@out (malloc'd, at most @max bytes). Returns GC_OK, or
 * GC_RESOURCE_EXHAUSTED / GC_INTERNAL with a message in @err.
 */
int gh_inflate(int enc, const uint8_t *p, size_t n, size_t max,
	       uint8_t **out, size_t *len, char *err, size_t errlen);

/* @s percent-encoded for grpc-message into @out (@cap >= 4). */
void gh_pct_encode(const char *s, char *out, size_t cap);

/* grpc_tls.c */

/* The server context for @cert and @key (PEM). 0, or -EINVAL with @err. */
int gh_tls_new(const char *cert, const char *key, SSL_CTX **out, char *err,
	       size_t errlen);
void gh_tls_free(SSL_CTX *t); /* NULL-safe */

/* Start TLS on @c (server side). 0 or -ENOMEM. */
int gh_tls_conn(SSL_CTX *t, struct gh_conn *c);

/* Carry the handshake on: 1 done, 0 waiting, -EPROTO failed. */
int gh_tls_hello(struct gh_conn *c);

/* Read/write @c in plaintext or TLS: bytes, 0 at EOF (read), -EAGAIN, or
 * -EIO / -EPROTO. */
ssize_t gh_io_read(struct gh_conn *c, void *p, size_t n);
ssize_t gh_io_write(struct gh_conn *c, const void *p, size_t n);

#endif
