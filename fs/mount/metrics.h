/*
 * metrics - `-o metrics_port=N`: the mount's counters as Prometheus text
 * at http://ADDR:N/metrics (`-o metrics_addr=`, default 127.0.0.1: the
 * counters are not secret, but exposing a port is the admin's choice; a
 * DaemonSet scraped by Prometheus sets 0.0.0.0). The HTTP side is
 * common/metrics_http (libmicrohttpd); this module only refreshes the
 * gauges other modules keep and renders fs/catalog/stats in its
 * Prometheus form on each scrape.
 *
 * Threads: renders on the HTTP thread; stats/cache/prov are thread-safe.
 * Errors: 0 or a negative errno.
 */
#ifndef ASSETFS_FS_METRICS_H
#define ASSETFS_FS_METRICS_H

#include <stdbool.h>

#include "fs/cache/cache.h"
#include "fs/catalog/stats.h"
#include "providers/provider.h"

struct metrics;

#define METRICS_DEFAULT_ADDR "127.0.0.1"

/*
 * Listen on @addr:@port and serve @stats (borrowed; @cache and @prov,
 * borrowed and may be NULL, refresh the gauges). @addr (borrowed) is a
 * numeric IPv4 or IPv6 address, NULL for METRICS_DEFAULT_ADDR. Returns 0,
 * -EINVAL (not a numeric address, or a bad port), -EADDRINUSE, or another
 * negative errno.
 */
int metrics_start(const char *addr, int port, struct stats *stats,
		  struct cache *cache, struct prov *prov,
		  struct metrics **out);

/* Whether @addr is an address metrics_start() accepts. */
bool metrics_addr_valid(const char *addr);

/* Stop serving and free; sets *@mx to NULL. NULL-safe. */
void metrics_stop(struct metrics **mx);

#endif
