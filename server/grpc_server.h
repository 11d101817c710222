/*
 * grpc_server - the gRPC front end of assetfs-server, on the gRPC C core
 * (libgrpc): one server per worker process, beside the REST server.
 *
 * gRPC types never leave grpc_server.c. The services (grpc_v2.c: the Open
 * Inference Protocol's inference.GRPCInferenceService; grpc_seldon.c:
 * seldon.protos Model and Seldon Predict) are tables of methods that take
 * a request's serialized bytes and answer serialized bytes or a gRPC
 * status code with a message: they see protobuf-c, never gRPC.
 *
 * Calls are served asynchronously: a pool of threads takes events from
 * one completion queue, answers a call on the thread that received it
 * (predictions take microseconds) and never waits for a client, so one
 * that does not read its answers holds only its own streams. Every worker
 * binds the port with SO_REUSEPORT; gRPC core is initialised in the
 * worker, after the fork (grpc_init in grpc_server_start).
 *
 * Threads: start and stop from one thread; methods run on the pool and
 * must be thread-safe. Errors: 0 or a negative errno.
 */
#ifndef ASSETFS_SERVER_GRPC_SERVER_H
#define ASSETFS_SERVER_GRPC_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/proto_util.h"
#include "server/tensor.h"

/* gRPC status codes (grpc/status.h), for the services */
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
	bool busy;	  /* requests often: keep more calls armed */
};

/* The methods of each service (grpc_v2.c, grpc_seldon.c). */
extern const struct grpc_method grpc_v2_methods[];
extern const size_t grpc_v2_n_methods;
extern const struct grpc_method grpc_seldon_methods[];
extern const size_t grpc_seldon_n_methods;

struct grpc_opts {
	int port;
	unsigned threads;	  /* completion-queue threads */
	size_t max_message;	  /* bytes received and sent, per message */
	unsigned max_streams;	  /* concurrent streams per connection */
	unsigned keepalive_ms;	  /* HTTP/2 PING every, when idle */
	unsigned keepalive_timeout_ms;
	const char *tls_cert;	  /* PEM files, or NULL for plaintext */
	const char *tls_key;
};

struct grpc_front;

/*
 * Initialise gRPC core, bind 0.0.0.0:@o->port (SO_REUSEPORT) and serve
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
 * Stop accepting, let calls in flight finish for up to @grace_ms, cancel
 * the rest, stop the threads and shut gRPC core down. NULL-safe.
 */
void grpc_front_stop(struct grpc_front *g, unsigned grace_ms);

#endif
