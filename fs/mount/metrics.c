/*
 * metrics - see metrics.h. Each scrape pulls the numbers other modules
 * keep into the stats table, then renders it; the socket, the threads and
 * HTTP are common/metrics_http's.
 */
#include <errno.h>
#include <stdlib.h>

#include "common/metrics_http.h"
#include "fs/mount/metrics.h"

struct metrics {
	struct metrics_http *http;
	struct stats *stats;
	struct cache *cache;
	struct prov *prov;
};

static int metrics_render(void *ctx, struct buf *out)
{
	struct metrics *mx = ctx;

	stats_pull(mx->stats, mx->cache, mx->prov);
	return stats_format(mx->stats, STATS_FMT_PROM, out);
}

bool metrics_addr_valid(const char *addr)
{
	return metrics_http_addr_valid(addr);
}

int metrics_start(const char *addr, int port, struct stats *stats,
		  struct cache *cache, struct prov *prov, struct metrics **out)
{
	struct metrics *mx;
	int ret;

	mx = calloc(1, sizeof(*mx));
	if (!mx)
		return -ENOMEM;
	mx->stats = stats;
	mx->cache = cache;
	mx->prov = prov;
	ret = metrics_http_start(addr ? addr : METRICS_DEFAULT_ADDR, port,
				 metrics_render, mx, &mx->http);
	if (ret < 0) {
		free(mx);
		return ret;
	}
	*out = mx;
	return 0;
}

void metrics_stop(struct metrics **mxp)
{
	struct metrics *mx = mxp ? *mxp : NULL;

	if (!mx)
		return;
	metrics_http_stop(&mx->http);
	free(mx);
	*mxp = NULL;
}
