/*
 * proto_util - what the prediction protocols share, below all of them:
 * the server context, parsing a request body as exactly one JSON value
 * with a depth cap, finding a model version and holding it for a request,
 * and writing matrices of predictions as JSON.
 *
 * Arrows: router -> proto_v2 / proto_seldon / proto_tfs / grpc_* ->
 * proto_util -> registry, tensor. Nothing here calls back into a protocol
 * or the router.
 *
 * Threads: every function is safe concurrently; the context is read-only
 * after start. Errors: as each function says.
 */
#ifndef ASSETFS_SERVER_PROTO_UTIL_H
#define ASSETFS_SERVER_PROTO_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "common/buf.h"
#include "server/registry.h"

#define PROTO_MAX_DEPTH 32

struct server_ctx {
	struct registry *reg;
	struct metrics *metrics;
	struct metrics_grpc *gmetrics; /* may be NULL */
	int max_depth;	   /* JSON nesting accepted in a body */
	bool metrics_here; /* serve /metrics on the main port too */
	const char *metrics_path; /* "/metrics" unless told otherwise */
	bool no_wait; /* proto_acquire answers 503 while a lazy load runs */
	/* non-NULL: rather than load a lazy model on this thread,
	 * proto_acquire sets *load_deferred and answers 503 (the caller
	 * runs the request again where it may block: gRPC's loops) */
	bool *load_deferred;
};

/*
 * Parse @body (@len bytes) as one JSON object and nothing after it but
 * whitespace. Returns the tree, or NULL with *@status (400) and a message
 * in @err (empty body, too deep, malformed, bytes after the value, not an
 * object).
 */
cJSON *proto_parse_body(const struct server_ctx *c, const char *body,
			size_t len, char *err, size_t errlen, int *status);

/*
 * Find model @name and take a reference on its serving version (checked
 * against @version when non-NULL). Returns 200 with *@m and *@v set, 404
 * (unknown model or version) or 503 (not ready; with @c->no_wait also
 * while another thread loads it lazily), with @err set. The caller drops
 * *@v with model_version_unref().
 */
int proto_acquire(const struct server_ctx *c, const char *name,
		  const char *version, struct model **m,
		  struct model_version **v, char *err, size_t errlen);

/*
 * Append @rows x @k values as JSON: rows of arrays when @k > 1 (or
 * !@flat_single), else a flat array. FP32 formatting when @fp32.
 * Returns 0 or -ENOMEM.
 */
int proto_write_rows(struct buf *b, const double *y, size_t rows, size_t k,
		     bool fp32, bool flat_single);

/* Does the version answer in FP32 (xgboost) or FP64 (plugins)? */
bool proto_fp32(const struct model_version *v);

/* The status for a model_predict() error: 400 for -EINVAL (the input),
 * 503 for -EAGAIN (the model's process is unavailable), else 500. */
int proto_predict_status(int ret);

/* Does a model count as servable right now (lazy: not failed)? */
bool proto_model_ready(const struct server_ctx *c, struct model *m);

/* Are all models servable (the servers' readiness)? */
bool proto_all_ready(const struct server_ctx *c);

/*
 * Replace @b's content with @j printed compactly; consumes @j.
 * Returns 0 or -ENOMEM.
 */
int proto_put_json(struct buf *b, cJSON *j);

#endif
