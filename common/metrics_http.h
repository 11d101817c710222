/*
 * metrics_http - a Prometheus /metrics endpoint on libmicrohttpd, shared
 * by the mount (`-o metrics_port=`) and assetfs-server (`--metrics-port`).
 *
 * The caller owns the numbers; this module owns the socket. On every GET
 * or HEAD of /metrics it calls the caller's render function for a fresh
 * body (capped at METRICS_HTTP_BODY_MAX) and answers it as
 * `text/plain; version=0.0.4`; any other path is 404, any other method
 * 405, a render failure 500. One internal polling thread serves every
 * connection, with a connection limit and an idle timeout, so a slow or
 * hostile scraper cannot hold it for long or make it allocate without
 * bound.
 *
 * Threads: the render function runs on libmicrohttpd's thread, one call
 * at a time, and must be safe against the caller's other threads.
 * Errors: 0 or a negative errno.
 */
#ifndef ASSETFS_COMMON_METRICS_HTTP_H
#define ASSETFS_COMMON_METRICS_HTTP_H

#include <stdbool.h>

#include "common/buf.h"

#define METRICS_HTTP_BODY_MAX (4u << 20)

struct metrics_http;

/*
 * Append the exposition to @out (capped). Returns 0 or a negative errno
 * (the scrape then gets 500). @ctx is what metrics_http_start() was given.
 */
typedef int (*metrics_http_render_fn)(void *ctx, struct buf *out);

/*
 * Listen on @addr:@port and serve /metrics from @fn(@ctx). @addr
 * (borrowed) is a numeric IPv4 or IPv6 address; @ctx is borrowed and must
 * outlive the endpoint. Returns 0 and sets *@out, -EINVAL (not a numeric
 * address, or a port outside 1..65535), -EADDRINUSE, or another negative
 * errno. Nothing is left open on failure.
 */
int metrics_http_start(const char *addr, int port, metrics_http_render_fn fn,
		       void *ctx, struct metrics_http **out);

/*
 * As metrics_http_start, at @path (borrowed, starting with '/'; Seldon
 * serves its counters at /prometheus) instead of /metrics.
 */
int metrics_http_start_at(const char *addr, int port, const char *path,
			  metrics_http_render_fn fn, void *ctx,
			  struct metrics_http **out);

/* Whether @addr is an address metrics_http_start() accepts. */
bool metrics_http_addr_valid(const char *addr);

/*
 * Close the socket and wait for the thread (a render in progress
 * finishes first); sets *@h to NULL. NULL-safe.
 */
void metrics_http_stop(struct metrics_http **h);

#endif
