/*
 * stats - atomic counters; see stats.h. Relaxed atomics are enough: the
 * counters are independent and only ever read as a snapshot for people.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "fs/cache/cache.h"
#include "fs/catalog/stats.h"
#include "providers/provider.h"

struct stats {
	atomic_uint_fast64_t v[STAT__COUNT];
};

static const char *const stat_names[STAT__COUNT] = {
	[STAT_BYTES_FETCHED] = "bytes_fetched",
	[STAT_BYTES_SERVED] = "bytes_served",
	[STAT_BLOCK_HITS] = "block_hits",
	[STAT_BLOCK_MISSES] = "block_misses",
	[STAT_BLOCKS_FETCHED] = "blocks_fetched",
	[STAT_RETRIES] = "retries",
	[STAT_ERRORS] = "errors",
	[STAT_DIGEST_MISMATCHES] = "digest_mismatches",
	[STAT_TIMEOUTS] = "timeouts",
	[STAT_EVICTIONS] = "evictions",
	[STAT_CACHE_BYTES] = "cache_bytes",
	[STAT_READAHEAD_BLOCKS] = "readahead_blocks",
	[STAT_STORE_REQUESTS] = "store_requests",
	[STAT_VERSIONS_REFRESHES] = "versions_refreshes",
	[STAT_OFFLINE_SERVES] = "offline_serves",
	[STAT_LOOKUPS] = "lookups",
	[STAT_READS] = "reads",
	[STAT_OPENS] = "opens",
	[STAT_SHA256_BLOCKS] = "sha256_blocks",
	[STAT_SHA256_BATCHES] = "sha256_batches",
};

struct stats *stats_new(void)
{
	struct stats *s = calloc(1, sizeof(*s));
	size_t i;

	if (!s)
		return NULL;
	for (i = 0; i < STAT__COUNT; i++)
		atomic_init(&s->v[i], 0);
	return s;
}

void stats_free(struct stats *s)
{
	free(s);
}

void stats_add(struct stats *s, enum stat_id id, uint64_t n)
{
	if (!s || (unsigned)id >= STAT__COUNT)
		return;
	atomic_fetch_add_explicit(&s->v[id], n, memory_order_relaxed);
}

void stats_set(struct stats *s, enum stat_id id, uint64_t v)
{
	if (!s || (unsigned)id >= STAT__COUNT)
		return;
	atomic_store_explicit(&s->v[id], v, memory_order_relaxed);
}

uint64_t stats_get(const struct stats *s, enum stat_id id)
{
	if (!s || (unsigned)id >= STAT__COUNT)
		return 0;
	return atomic_load_explicit(&((struct stats *)s)->v[id],
				    memory_order_relaxed);
}

const char *stats_name(enum stat_id id)
{
	if ((unsigned)id >= STAT__COUNT)
		return "unknown";
	return stat_names[id];
}

bool stats_is_gauge(enum stat_id id)
{
	return id == STAT_CACHE_BYTES;
}

int stats_format(const struct stats *s, enum stats_format fmt,
		 struct buf *out)
{
	int ret = 0;
	int i;

	if (fmt == STATS_FMT_JSON)
		ret = buf_puts(out, "{");
	for (i = 0; i < STAT__COUNT && ret == 0; i++) {
		unsigned long long v = stats_get(s, (enum stat_id)i);
		const char *n = stats_name((enum stat_id)i);

		switch (fmt) {
		case STATS_FMT_TEXT:
			ret = buf_printf(out, "%s %llu\n", n, v);
			break;
		case STATS_FMT_JSON:
			ret = buf_printf(out, "%s\"%s\": %llu", i ? ", " : "",
					 n, v);
			break;
		case STATS_FMT_PROM:
			ret = buf_printf(out, "# TYPE assetfs_%s %s\n"
					      "assetfs_%s %llu\n",
					 n,
					 stats_is_gauge((enum stat_id)i) ?
						 "gauge" : "counter",
					 n, v);
			break;
		}
	}
	if (ret == 0 && fmt == STATS_FMT_JSON)
		ret = buf_puts(out, "}\n");
	return ret;
}

void stats_pull(struct stats *s, struct cache *c, struct prov *p)
{
	struct cache_stats cs;
	struct prov_stats ps;

	if (c && cache_get_stats(c, &cs) == 0) {
		stats_set(s, STAT_CACHE_BYTES, cs.bytes);
		stats_set(s, STAT_EVICTIONS, cs.evictions);
		stats_set(s, STAT_SHA256_BLOCKS, cs.hashed_blocks);
		stats_set(s, STAT_SHA256_BATCHES, cs.hash_batches);
	}
	if (p) {
		prov_get_stats(p, &ps);
		stats_set(s, STAT_RETRIES, ps.retries);
	}
}
