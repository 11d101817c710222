/*
 * metrics_grpc - gRPC call counters by method and status code, with a
 * latency histogram, shared by every worker process like metrics.h's
 * (one anonymous shared mapping made before the fork), and their
 * Prometheus text form:
 *
 *   assetfs_server_grpc_requests_total{method,code}
 *   assetfs_server_grpc_request_duration_seconds{method,code} (histogram)
 *
 * The table is fixed (methods x codes), so no series is ever claimed or
 * dropped. Threads and processes: every call is safe from anywhere
 * (relaxed atomics). Errors: 0 or a negative errno.
 */
#ifndef ASSETFS_SERVER_METRICS_GRPC_H
#define ASSETFS_SERVER_METRICS_GRPC_H

#include <stdint.h>

#include "common/buf.h"

enum metrics_grpc_method {
	MG_SERVER_LIVE,
	MG_SERVER_READY,
	MG_MODEL_READY,
	MG_SERVER_METADATA,
	MG_MODEL_METADATA,
	MG_MODEL_INFER,
	MG_MODEL_PREDICT,  /* seldon.protos.Model/Predict */
	MG_SELDON_PREDICT, /* seldon.protos.Seldon/Predict */
	MG_OTHER,	   /* unknown methods (UNIMPLEMENTED) */
	MG_N_METHODS,
};

struct metrics_grpc;

int metrics_grpc_new(struct metrics_grpc **out);
void metrics_grpc_free(struct metrics_grpc *m); /* NULL-safe */

/* Count one call of @method answered with @code (0..16) after @ns. */
void metrics_grpc_call(struct metrics_grpc *m, unsigned method, int code,
		       int64_t ns);

/* Append the exposition (nothing for rows never counted). NULL-safe. */
int metrics_grpc_render(struct metrics_grpc *m, struct buf *out);

#endif
