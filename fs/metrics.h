/*
 * metrics - `-o metrics_port=N`: the mount's counters as Prometheus text
 * over HTTP on 127.0.0.1:N. A tiny single-threaded responder: one request
 * per connection, any path answers the metrics, a bounded read of the
 * request and a short socket timeout so a stuck client cannot block it
 * for long.
 *
 * Threads: one thread of its own; stats/cache/prov are thread-safe.
 * Errors: 0 or a negative errno.
 */
#ifndef ASSETFS_FS_METRICS_H
#define ASSETFS_FS_METRICS_H

#include "fs/cache.h"
#include "fs/stats.h"
#include "providers/provider.h"

struct metrics;

/*
 * Listen on 127.0.0.1:@port and serve @stats (borrowed; @cache and @prov,
 * borrowed and may be NULL, refresh the gauges). Returns 0, -EADDRINUSE,
 * or another negative errno.
 */
int metrics_start(int port, struct stats *stats, struct cache *cache,
		  struct prov *prov, struct metrics **out);

/* Stop the thread and close; sets *@mx to NULL. NULL-safe. */
void metrics_stop(struct metrics **mx);

#endif
