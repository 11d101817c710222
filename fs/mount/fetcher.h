/*
 * fetcher - turns reads of a store object into blocks of the cache
 * (DESIGN §4, §5).
 *
 * An object is read in blocks of its manifest's block size. With a
 * manifest, block i must hash to the manifest's digest: the cache refuses
 * anything else, so altered store bytes are neither served nor cached.
 * Without one (trust on first use), the first fetch records the digest of
 * what arrived under (store, key, ETag, block), and later fetches pin that
 * ETag with If-Match.
 *
 * One fetch per block across threads and processes (the cache's locks).
 * A sequential reader gets read-ahead: a small pool of threads keeps
 * several ranged GETs in flight. Everything is bounded by `timeout`; a
 * fetch that failed is remembered for a few seconds, so the kernel's
 * synchronous retry after a failed read-ahead fails at once, and only one
 * log line is written per object and failure window.
 *
 * Threads: all functions are safe concurrently. Errors: 0 or a negative
 * errno; every failure to get a block's bytes is -EIO.
 */
#ifndef ASSETFS_FS_FETCHER_H
#define ASSETFS_FS_FETCHER_H

#include <stdint.h>

#include "fs/cache/cache.h"
#include "fs/catalog/stats.h"
#include "fs/catalog/store.h"
#include "resolver/meta.h"

struct fetcher;

struct fetcher_opts {
	int timeout_ms;	    /* bound on one block; 0 -> 30000 */
	int threads;	    /* read-ahead threads, GETs in flight; 0 -> 8 */
	int fail_memory_ms; /* remember a failure this long; 0 -> 3000 */
};

/* One object to read. All pointers borrowed for the duration of a call. */
struct fetch_obj {
	const char *key;		/* object key in the store */
	uint64_t size;
	uint32_t block_size;
	const struct manifest_file *mf; /* block digests, or NULL for TOFU */
	const char *etag;		/* TOFU: the ETag to pin (may be "") */
};

/*
 * Make a fetcher over @st and @cache (borrowed; @stats may be NULL) and
 * start its read-ahead threads. Returns 0, -ENOMEM or -EAGAIN.
 */
int fetcher_new(struct store *st, struct cache *cache, struct stats *stats,
		const struct fetcher_opts *opts, struct fetcher **out);

/* Stop the threads (dropping queued read-ahead) and free. NULL-safe. */
void fetcher_free(struct fetcher *f);

/* Number of blocks of @o. */
uint64_t fetcher_block_count(const struct fetch_obj *o);

/*
 * Make block @index of @o present in the cache (fetching it if needed) and
 * open it: *@fd gets an fd owned by the caller, *@len the block's length.
 * Returns 0, -EINVAL for an index past the end, or -EIO (fetch failed,
 * timed out, bytes with the wrong digest, the object changed; logged once).
 */
int fetcher_block(struct fetcher *f, const struct fetch_obj *o,
		  uint64_t index, int *fd, uint64_t *len);

/*
 * Queue blocks [@first, @first + @n) of @o for background fetching
 * (blocks queued or past the end are skipped; @o is copied); blocks
 * already cached are read into the page cache ahead instead (an async
 * hint to the kernel). Never blocks; drops work when the queue is full.
 */
void fetcher_readahead(struct fetcher *f, const struct fetch_obj *o,
		       uint64_t first, uint64_t n);

/* Bytes of @o present in the cache, into *@out. Returns 0 or an error. */
int fetcher_cached_bytes(struct fetcher *f, const struct fetch_obj *o,
			 uint64_t *out);

#endif
