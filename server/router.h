/*
 * router - path -> protocol on the main port, metrics accounting for
 * every request, and the handler of the metrics port.
 *
 * Arrows: router calls the protocol handlers (proto.h), never the other
 * way round. Threads: as http.h says of handlers.
 */
#ifndef ASSETFS_SERVER_ROUTER_H
#define ASSETFS_SERVER_ROUTER_H

#include "server/http.h"

/* The HTTP handler of the main port (http_handler_fn); @ctx is a
 * struct server_ctx. */
void router_handle(void *ctx, const struct http_request *req,
		   struct http_response *resp);

/* The handler of the metrics port: GET the metrics path. */
void router_metrics_handle(void *ctx, const struct http_request *req,
			   struct http_response *resp);

#endif
