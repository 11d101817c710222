/*
 * stats - the mount's counters: atomic, lock-free, readable at any time by
 * `assetfs stats` (through a private xattr on the mount root) and by the
 * Prometheus endpoint (fs/mount/metrics, served by common/metrics_http).
 *
 * One table, STATS_TABLE below, drives both: each row names a counter's
 * enum id, its `assetfs stats` key, its Prometheus name, its type and its
 * help text. To count something new, add one row (and stats_pull() it if
 * another module keeps the number). Prometheus names follow the
 * conventions `promtool check metrics` enforces: a counter ends in
 * `_total`, units are spelled out (`_bytes`, `_seconds`), every series has
 * # HELP and # TYPE. Series with labels (one per pin, say) come from
 * sources registered with stats_add_source().
 *
 * One struct stats per process, made by main and handed to every module
 * that counts (fetcher, cache, catalog, mount). Counters only grow;
 * gauges are set.
 *
 * Threads: every function is safe from any thread; a NULL @s is a no-op
 * so modules can run without counting (unit tests).
 */
#ifndef ASSETFS_FS_STATS_H
#define ASSETFS_FS_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"

/*
 * X(ID, stats key, Prometheus name, COUNTER|GAUGE, help). Keys are what
 * `assetfs stats` prints and scripts parse: never rename one. The
 * Prometheus names were renamed once (docs/mount.md has the table).
 */
#define STATS_TABLE(X)                                                        \
	X(BYTES_FETCHED, "bytes_fetched", "assetfs_fetched_bytes_total",      \
	  COUNTER, "Body bytes received from the store.")                     \
	X(BYTES_SERVED, "bytes_served", "assetfs_served_bytes_total",         \
	  COUNTER, "Bytes returned to readers of the mount.")                 \
	X(BLOCK_HITS, "block_hits", "assetfs_block_hits_total", COUNTER,      \
	  "Block reads served from the cache.")                               \
	X(BLOCK_MISSES, "block_misses", "assetfs_block_misses_total",         \
	  COUNTER, "Block reads that needed a fetch.")                        \
	X(BLOCKS_FETCHED, "blocks_fetched", "assetfs_blocks_fetched_total",   \
	  COUNTER, "Blocks fetched from the store and published by this "     \
		   "process.")                                                \
	X(RETRIES, "retries", "assetfs_store_retries_total", COUNTER,         \
	  "Store requests retried (5xx, 429, resets, timeouts).")             \
	X(ERRORS, "errors", "assetfs_io_errors_total", COUNTER,               \
	  "File system operations that failed with EIO.")                     \
	X(DIGEST_MISMATCHES, "digest_mismatches",                             \
	  "assetfs_digest_mismatches_total", COUNTER,                         \
	  "Fetched blocks refused because their SHA-256 was wrong.")          \
	X(TIMEOUTS, "timeouts", "assetfs_fetch_timeouts_total", COUNTER,      \
	  "Fetches given up after the timeout option.")                       \
	X(EVICTIONS, "evictions", "assetfs_cache_evictions_total", COUNTER,   \
	  "Blocks evicted from the cache.")                                   \
	X(CACHE_BYTES, "cache_bytes", "assetfs_cache_bytes", GAUGE,           \
	  "Bytes of blocks in the cache.")                                    \
	X(READAHEAD_BLOCKS, "readahead_blocks",                               \
	  "assetfs_readahead_blocks_total", COUNTER,                          \
	  "Blocks fetched ahead of a sequential reader.")                     \
	X(STORE_REQUESTS, "store_requests", "assetfs_store_requests_total",   \
	  COUNTER, "Requests made to the store.")                             \
	X(VERSIONS_REFRESHES, "versions_refreshes",                           \
	  "assetfs_versions_refreshes_total", COUNTER,                        \
	  "Version lists (.versions documents) read or re-read.")             \
	X(OFFLINE_SERVES, "offline_serves", "assetfs_offline_serves_total",   \
	  COUNTER, "Lists served from the offline copy in the cache.")        \
	X(LOOKUPS, "lookups", "assetfs_lookups_total", COUNTER,               \
	  "FUSE lookups answered.")                                           \
	X(READS, "reads", "assetfs_reads_total", COUNTER,                     \
	  "FUSE reads answered.")                                             \
	X(OPENS, "opens", "assetfs_opens_total", COUNTER,                     \
	  "FUSE opens answered.")                                             \
	X(SHA256_BLOCKS, "sha256_blocks", "assetfs_sha256_blocks_total",      \
	  COUNTER, "Blocks hashed with SHA-256 by this process.")             \
	X(SHA256_BATCHES, "sha256_batches", "assetfs_sha256_batches_total",   \
	  COUNTER, "SIMD hashing passes that hashed those blocks.")           \
	X(PINS, "pins", "assetfs_pins", GAUGE,                                \
	  "Pinned specs in the cache (all processes).")                       \
	X(PINNED_BYTES_PRESENT, "pinned_bytes_present",                       \
	  "assetfs_pinned_bytes_present", GAUGE,                              \
	  "Bytes of pinned blocks present in the cache.")                     \
	X(PINNED_BYTES_TOTAL, "pinned_bytes_total",                           \
	  "assetfs_pinned_bytes", GAUGE,                           \
	  "Bytes of every pinned block, present or not.")                     \
	X(STORE_OFFLINE, "store_offline", "assetfs_store_offline", GAUGE,     \
	  "1 while the store is known unreachable (uncached reads fail at "   \
	  "once), else 0.")                                                   \
	X(STORE_STATE_SINCE, "store_state_since",                             \
	  "assetfs_store_state_since_seconds", GAUGE,                         \
	  "Unix time at which the store last went online or offline.")       \
	X(PID, "pid", "assetfs_worker_pid", GAUGE,                            \
	  "Process id of the worker serving the mount.")                      \
	X(SUPERVISOR_PID, "supervisor_pid", "assetfs_supervisor_pid", GAUGE,  \
	  "Process id of the supervisor holding /dev/fuse.")                  \
	X(STARTED_AT, "started_at", "assetfs_worker_start_time_seconds",      \
	  GAUGE, "Unix time the serving worker started.")                     \
	X(TAKEOVERS, "takeovers", "assetfs_takeovers_total", COUNTER,         \
	  "Hand-overs of the mount to a new process (-o takeover).")          \
	X(WORKER_RESTARTS, "worker_restarts",                                 \
	  "assetfs_worker_restarts_total", COUNTER,                           \
	  "Workers started on the same connection after one died.")           \
	X(RESENT_REQUESTS, "resent_requests",                                 \
	  "assetfs_resent_requests_total", COUNTER,                           \
	  "Requests the kernel sent again after a worker died.")

#define STATS_ENUM_ROW(id, key, prom, kind, help) STAT_##id,
enum stat_id {
	STATS_TABLE(STATS_ENUM_ROW) STAT__COUNT
};
#undef STATS_ENUM_ROW

enum stat_kind {
	STAT_KIND_COUNTER = 0, /* only grows: Prometheus "counter" */
	STAT_KIND_GAUGE,       /* set to the current value */
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

/* The `assetfs stats` key of a counter ("bytes_fetched"). */
const char *stats_name(enum stat_id id);

/* Its Prometheus name ("assetfs_fetched_bytes_total"). */
const char *stats_prom_name(enum stat_id id);

/* Its help text (one line, no newline). */
const char *stats_help(enum stat_id id);

/* Whether a counter is a gauge (Prometheus type). */
bool stats_is_gauge(enum stat_id id);

enum stats_format {
	STATS_FMT_TEXT = 0, /* "key value\n" lines */
	STATS_FMT_JSON,	    /* {"key": value, ...} */
	STATS_FMT_PROM,	    /* Prometheus text: # HELP, # TYPE, value */
};

/*
 * Append every counter to @out in @fmt; for STATS_FMT_PROM, then what
 * every registered source adds. Returns 0 or -ENOMEM / -EFBIG (the buf's
 * cap), or a source's error.
 */
int stats_format(struct stats *s, enum stats_format fmt, struct buf *out);

/*
 * A source of labelled Prometheus series (say, one gauge per pin): append
 * whole families to @out with stats_prom_family() and
 * stats_prom_sample(). Runs on the metrics thread; must be thread-safe
 * against its owner. Returns 0 or a negative errno.
 */
typedef int (*stats_source_fn)(void *ctx, struct buf *out);

#define STATS_SOURCES_MAX 8

/*
 * Register @fn(@ctx) (@ctx borrowed: it must outlive @s or be removed
 * first). Returns 0, or -ENOSPC past STATS_SOURCES_MAX.
 */
int stats_add_source(struct stats *s, stats_source_fn fn, void *ctx);

/* Unregister what stats_add_source(@fn, @ctx) registered. */
void stats_remove_source(struct stats *s, stats_source_fn fn, void *ctx);

/*
 * The # HELP and # TYPE lines of family @name: @kind says counter or
 * gauge (a counter's name must end in _total). Same returns as buf_printf.
 */
int stats_prom_family(struct buf *out, const char *name, enum stat_kind kind,
		      const char *help);

/*
 * One sample: `name{k1="v1",...} value`. @labels holds @n_labels pairs
 * (key, value, key, value...); the values (borrowed, any bytes) are
 * escaped. Same returns as buf_printf.
 */
int stats_prom_sample(struct buf *out, const char *name,
		      const char *const *labels, unsigned n_labels,
		      uint64_t value);

#endif
