/*
 * stats - the mount's counters: atomic, lock-free, readable at any time by
 * `assetfs stats` (through a private xattr on the mount root) and by the
 * Prometheus responder (fs/metrics).
 *
 * One struct stats per process, made by main and handed to every module
 * that counts (fetcher, cache, catalog, mount). Counters only grow, except
 * gauges (STAT_CACHE_BYTES), which are set.
 *
 * Threads: every function is safe from any thread; a NULL @s is a no-op
 * so modules can run without counting (unit tests).
 */
#ifndef ASSETFS_FS_STATS_H
#define ASSETFS_FS_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"

enum stat_id {
	STAT_BYTES_FETCHED = 0, /* body bytes received from the store */
	STAT_BYTES_SERVED,	/* bytes returned to readers of the mount */
	STAT_BLOCK_HITS,	/* block reads served from the cache */
	STAT_BLOCK_MISSES,	/* block reads that needed a fetch */
	STAT_BLOCKS_FETCHED,	/* blocks fetched and published by us */
	STAT_RETRIES,		/* provider retries */
	STAT_ERRORS,		/* ops that failed with EIO */
	STAT_DIGEST_MISMATCHES, /* fetched bytes refused: wrong SHA-256 */
	STAT_TIMEOUTS,		/* fetches given up after `timeout` */
	STAT_EVICTIONS,		/* blocks evicted from the cache */
	STAT_CACHE_BYTES,	/* gauge: bytes of blocks in the cache */
	STAT_READAHEAD_BLOCKS,	/* blocks fetched ahead of a reader */
	STAT_STORE_REQUESTS,	/* requests made to the store */
	STAT_VERSIONS_REFRESHES, /* .versions documents (re)read */
	STAT_OFFLINE_SERVES,	/* lists served from the offline copy */
	STAT_LOOKUPS,
	STAT_READS,
	STAT_OPENS,
	STAT_SHA256_BLOCKS,	/* blocks hashed (this process) */
	STAT_SHA256_BATCHES,	/* SIMD passes that hashed them */
	STAT__COUNT
};

struct stats;

/* Returns a zeroed set of counters, or NULL on out of memory. */
struct stats *stats_new(void);
void stats_free(struct stats *s); /* NULL-safe */

void stats_add(struct stats *s, enum stat_id id, uint64_t n);
static inline void stats_inc(struct stats *s, enum stat_id id)
{
	stats_add(s, id, 1);
}
/* Set a gauge (or any counter) to @v. */
void stats_set(struct stats *s, enum stat_id id, uint64_t v);
uint64_t stats_get(const struct stats *s, enum stat_id id);

struct cache;
struct prov;

/*
 * Copy into @s the counters other modules keep (cache bytes, evictions,
 * hash batches, provider retries); @c and @p are borrowed and may be NULL.
 */
void stats_pull(struct stats *s, struct cache *c, struct prov *p);

/* The snake_case name of a counter ("bytes_fetched"). */
const char *stats_name(enum stat_id id);

/* Whether a counter is a gauge (Prometheus type). */
bool stats_is_gauge(enum stat_id id);

enum stats_format {
	STATS_FMT_TEXT = 0, /* "key value\n" lines */
	STATS_FMT_JSON,	    /* {"key": value, ...} */
	STATS_FMT_PROM,	    /* Prometheus text, names assetfs_* */
};

/*
 * Append every counter to @out in @fmt. Returns 0 or -ENOMEM / -EFBIG
 * (the buf's cap).
 */
int stats_format(const struct stats *s, enum stats_format fmt,
		 struct buf *out);

#endif
