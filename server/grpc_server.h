/*
 * grpc_server - the gRPC front end of assetfs-server: gRPC over HTTP/2 on
 * libnghttp2 (plaintext, or TLS with OpenSSL), one server per worker
 * process, beside the REST server.
 *
 * HTTP/2 and gRPC framing never leave grpc_server.c, grpc_call.c and
 * grpc_tls.c (grpc_server_int.h). The services (grpc_v2.c: the Open
 * Inference Protocol's inference.GRPCInferenceService; grpc_seldon.c:
 * seldon.protos Model and Seldon Predict) are tables of methods that take
 * a request's serialized bytes and answer serialized bytes or a gRPC
 * status code with a message: they see protobuf-c, never HTTP/2.
 *
 * Each of @threads event loops owns the connections given to it and
 * answers a call on its own thread as soon as the call's last byte is
 * read (predictions take microseconds), without waiting for any client:
 * one that does not read its answers holds only its own connection. A
 * call that would load a lazy model runs on a loader thread instead, so
 * the loop goes on. Every worker binds the port with SO_REUSEPORT.
 *
 * Threads: start and stop from one thread; methods run on the loops and
 * the loader and must be thread-safe. Errors: 0 or a negative errno.
 */
#ifndef ASSETFS_SERVER_GRPC_SERVER_H
#define ASSETFS_SERVER_GRPC_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/proto_util.h"
#include "server/tensor.h"

/* gRPC status codes (the gRPC status code list), for the services */
enum grpc_code {
	GC_OK = 0,
	GC_INVALID_ARGUMENT = 3,
	GC_NOT_FOUND = 5,
	GC_RESOURCE_EXHAUSTED = 8,
	GC_FAILED_PRECONDITION = 9,
	GC_UNIMPLEMENTED = 12,
	GC_INTERNAL = 13,
	GC_UNAVAILABLE = 14,
};

/* What a method answers: bytes, or a status with a message. */
struct grpc_reply {
	int code;	   /* enum grpc_code */
	char msg[ERR_MAX]; /* the status message when code != GC_OK */
	uint8_t *out;	   /* malloc'd serialized response (GC_OK) */
	size_t out_len;
};

/*
 * A method: @in is the request (@len bytes, hostile), @r is zeroed. The
 * method fills @r; it owns nothing it did not allocate into @r->out.
 */
typedef void (*grpc_method_fn)(struct server_ctx *c, const uint8_t *in,
			       size_t len, struct grpc_reply *r);

struct grpc_method {
	const char *path; /* "/inference.GRPCInferenceService/ModelInfer" */
	grpc_method_fn fn;
	unsigned metric;  /* index for metrics_grpc */
};

/* The methods of each service (grpc_v2.c, grpc_seldon.c). */
extern const struct grpc_method grpc_v2_methods[];
extern const size_t grpc_v2_n_methods;
extern const struct grpc_method grpc_seldon_methods[];
extern const size_t grpc_seldon_n_methods;

struct grpc_opts {
	int port;
	unsigned threads;	  /* event loops (threads) */
	size_t max_message;	  /* bytes received and sent, per message */
	unsigned max_streams;	  /* concurrent streams per connection */
	unsigned keepalive_ms;	  /* HTTP/2 PING every, when idle */
	unsigned keepalive_timeout_ms;
	const char *tls_cert;	  /* PEM files, or NULL for plaintext */
	const char *tls_key;
};

struct grpc_front;

/*
 * Bind 0.0.0.0:@o->port (SO_REUSEPORT), start the loops and serve
 * both services with a copy of @ctx that never waits for a lazy load
 * (what it points to is borrowed until grpc_front_stop). Returns 0 and
 * the server in *@out, -EADDRINUSE / -EINVAL (TLS files unreadable) /
 * -ENOMEM, with a message in @err.
 */
int grpc_front_start(const struct grpc_opts *o, struct server_ctx *ctx,
		     struct grpc_front **out, char *err, size_t errlen);

/* Calls answered so far (for max-requests). */
uint64_t grpc_front_done(struct grpc_front *g);

/*
 * Stop accepting (GOAWAY on every connection), let calls in flight
 * finish for up to @grace_ms, close every connection
 * left, and stop the threads. NULL-safe.
 */
void grpc_front_stop(struct grpc_front *g, unsigned grace_ms);

#endif
