/*
 * warm - fetch every block of an asset version into the cache, without a
 * mount (`assetfs warm`, pins): the version's files come from the
 * catalog, their blocks through the fetcher (the one fetch path: ranged
 * GETs, digests checked against the manifest at commit, one fetch per
 * block across processes through the cache's locks), several blocks at
 * once on a few threads. What is present already is not fetched again, so
 * a warm that was interrupted resumes where it stopped.
 *
 * Threads: warm_version() runs its own worker threads and returns when
 * they are done; any number of calls may run at once. Errors: 0 or a
 * negative errno with a one-line message in @err.
 */
#ifndef ASSETFS_FS_WARM_H
#define ASSETFS_FS_WARM_H

#include <stddef.h>
#include <stdint.h>

#include "common/digest.h"
#include "fs/catalog/catalog.h"
#include "fs/mount/fetcher.h"

#define WARM_ERR_MAX 1024

/* The blocks of one version, as a pin records them. */
struct warm_blocks {
	struct digest *d; /* known digests (manifest), owned */
	uint64_t *size;	  /* their lengths, owned */
	size_t n;
	uint64_t pending; /* bytes of blocks with no manifest digest */
	uint64_t total;	  /* every block's bytes (duplicates counted) */
};

void warm_blocks_clear(struct warm_blocks *b); /* NULL-safe, reusable */

/*
 * The blocks of @v (borrowed): filled into @out (warm_blocks_clear() it).
 * Returns 0 or -ENOMEM.
 */
int warm_list_blocks(const struct cat_version *v, struct warm_blocks *out);

struct warm_result {
	uint64_t bytes_total;	/* every block of the version */
	uint64_t bytes_fetched; /* by this call (the store's body bytes) */
	uint64_t bytes_present; /* found in the cache, not fetched */
	uint64_t blocks;
	int64_t ms;
	/* digests learned for blocks without a manifest (trust on first
	   use), owned: the caller pins them */
	struct warm_blocks learned;
};

/*
 * Progress: called from the calling thread about ten times a second
 * with the bytes done (present or fetched) of @total. May be NULL.
 * Returns 0 to go on; non-zero stops the warm: no further block is
 * begun, and warm_version() returns -ECANCELED once the blocks in flight
 * are done (a mount being unmounted does not wait for a whole version).
 */
typedef int (*warm_progress_fn)(void *arg, uint64_t done, uint64_t total);

/*
 * Fetch every block of @v (borrowed) that the cache lacks through @fe
 * (borrowed), on @threads threads (0: 8). @url is the store's URL (the
 * key of trust-on-first-use digests). @r is filled (r->learned owned by
 * the caller, also on failure). Returns 0 when every block is in the
 * cache, -EIO naming the first file and block that failed (the others
 * are still tried), -ECANCELED (@progress said stop), or -ENOMEM.
 */
int warm_version(struct fetcher *fe, struct cache *cache, const char *url,
		 const struct cat_version *v, int threads,
		 warm_progress_fn progress, void *arg, struct warm_result *r,
		 char *err, size_t errlen);

/*
 * Re-hash every block of @v (borrowed) from the cache: *@present bytes
 * are there and hash to their names, of *@total. A block that does not
 * is removed (cache_block_verify()). Blocks without a manifest digest
 * count as present when the trust-on-first-use map names a block that
 * verifies. Returns 0 (complete or not: compare the two) or -errno.
 */
int warm_check_version(struct cache *cache, const char *url,
		       const struct cat_version *v, uint64_t *present,
		       uint64_t *total, char *why, size_t whylen);

#endif
