/*
 * proto - the three REST prediction protocols (Open Inference Protocol
 * V2, Seldon, TF Serving), called by the router (router.h).
 *
 * Each protocol answers in its own error shape and picks its own status
 * codes; what they share lives below them in proto_util.h. A handler takes
 * a reference on the serving version for the whole request, so a swap in
 * the middle never changes the model under it.
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
#include "server/proto_util.h"
#include "server/registry.h"

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
