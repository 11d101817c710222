/*
 * proto - the three prediction protocols (Open Inference Protocol V2,
 * Seldon, TF Serving) and the router that picks one by path.
 *
 * Each protocol answers in its own error shape and picks its own status
 * codes; helpers here do what they share: parse a body with a depth cap,
 * find a model version, write matrices. A handler takes a reference on
 * the serving version for the whole request, so a swap in the middle
 * never changes the model under it.
 *
 * Threads: handlers run concurrently on the HTTP threads; the context is
 * read-only after start.
 */
#ifndef ASSETFS_SERVER_PROTO_H
#define ASSETFS_SERVER_PROTO_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "server/http.h"
#include "server/registry.h"

#define PROTO_MAX_DEPTH 32

struct server_ctx {
	struct registry *reg;
	struct metrics *metrics;
	int max_depth;	   /* JSON nesting accepted in a body */
	bool metrics_here; /* serve /metrics on the main port too */
};

/* The HTTP handler of the main port (http_handler_fn). */
void router_handle(void *ctx, const struct http_request *req,
		   struct http_response *resp);

/* The handler of the metrics port: GET /metrics. */
void router_metrics_handle(void *ctx, const struct http_request *req,
			   struct http_response *resp);

/*
 * Parse the body as JSON. Returns the tree, or NULL with *@status (400)
 * and a message in @err (empty body, too deep, malformed).
 */
cJSON *proto_parse_body(const struct server_ctx *c,
			const struct http_request *req, char *err,
			size_t errlen, int *status);

/*
 * Find model @name and take a reference on its serving version (checked
 * against @version when non-NULL). Returns 200 with *@m and *@v set, 404
 * (unknown model or version) or 503 (not ready), with @err set.
 */
int proto_acquire(const struct server_ctx *c, const char *name,
		  const char *version, struct model **m,
		  struct model_version **v, char *err, size_t errlen);

/*
 * Append @rows x @k values as JSON: rows of arrays when @k > 1 (or
 * !@flat_single), else a flat array. FP32 formatting when @fp32.
 */
int proto_write_rows(struct buf *b, const double *y, size_t rows, size_t k,
		     bool fp32, bool flat_single);

/* Does the version answer in FP32 (xgboost) or FP64 (plugins)? */
bool proto_fp32(const struct model_version *v);

/* Does a model of this version count as servable right now? */
bool proto_model_ready(const struct server_ctx *c, struct model *m);

/*
 * The request parsers of each protocol, apart from any model (the fuzz
 * target drives them directly). Each fills @x (rows >= 1, cols >= 1) or
 * leaves it empty with a message in @err naming the field.
 *
 * v2_parse_inputs: the "inputs" array; @n_features decides whether a
 * single 1-D tensor is a row (any value but 1) or a column. Returns 0,
 * 400 or 500 (out of memory).
 * seldon_parse: the request object; *@enc says which encoding it used
 * (0 ndarray, 1 tensor, 2 jsonData). Returns 0 or a negative errno.
 * tfs_parse: the request object; *@columnar is true for "inputs".
 * Returns 0 or a negative errno.
 */
int v2_parse_inputs(const cJSON *inputs, int64_t n_features, struct matrix *x,
		    char *err, size_t errlen);
int seldon_parse(const cJSON *j, struct matrix *x, int *enc, char *err,
		 size_t errlen);
int tfs_parse(const cJSON *j, struct matrix *x, bool *columnar, char *err,
	      size_t errlen);

void v2_handle(struct server_ctx *c, const struct http_request *req,
	       struct http_response *resp);
void seldon_handle(struct server_ctx *c, const struct http_request *req,
		   struct http_response *resp);
void tfs_handle(struct server_ctx *c, const struct http_request *req,
		struct http_response *resp);

#endif
