/*
 * cache - content-addressed block cache shared by every assetfs process
 * using the same directory (DESIGN §5).
 *
 * Layout of a cache dir:
 *   blocks/<xx>/<sha256 hex>  one file per block, immutable once visible
 *   tmp/                      temp files of writes in progress
 *   locks/blocks.lock         one file; per-key fetch locks are OFD byte
 *                             range locks on it (see cache_lock_block())
 *   index.db                  sqlite (WAL): block size, xxh3, last access,
 *                             TOFU object->block mapping, offline documents
 *
 * Invariants: a block file is only ever created by rename(2) from tmp/ after
 * its bytes hashed to its name, so a reader never sees a partial or wrong
 * block. The files are the truth; the index is rebuilt from them when
 * missing or corrupt. A block's index row is committed (with eviction of
 * older blocks to make room) before its file is renamed into place, so a
 * crash in between leaves a row without a file (a miss, aged out by the
 * LRU), never a file the quota does not count. Blocks are not fsync'd: the
 * boot id of the machine is recorded in the index, a syncfs() every 30 s
 * after writes and at cache_close() marks earlier blocks durable, and the
 * other blocks of a boot that ended are re-checked against their recorded
 * xxh3 before they are served again.
 *
 * Threads: every call is safe from any thread on one struct cache. The
 * sqlite connection is one per struct cache, guarded by a mutex; the hit
 * path (cache_block_open) never touches sqlite: last-access updates are
 * batched in memory and flushed by a maintenance thread every couple of
 * seconds, before eviction, and on close. Several processes may open the
 * same dir at once: the index is the shared quota, sqlite serialises writes.
 *
 * Errors: 0 (or a count) on success, a negative errno on failure. SQLITE_*
 * codes are mapped in one place (cache_index.c: cache_sqlite_err()).
 */
#ifndef ASSETFS_FS_CACHE_H
#define ASSETFS_FS_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/digest.h"

#define CACHE_DEFAULT_SIZE (10ULL << 30) /* cache_size default: 10 GiB */
#define CACHE_DEFAULT_MIN_FREE_PCT 5	 /* cache_min_free default: 5% */
#define CACHE_LOCK_TIMEOUT_MS 60000	 /* a sane bound for fetch locks */
#define CACHE_DOC_MAX (16u << 20)	 /* largest document stored */
#define CACHE_PATH_MAX 4096

struct cache;
struct cache_txn;
struct cache_lock;

/*
 * A size given by the user: either absolute bytes or a percentage of the
 * filesystem holding the cache dir (pct != 0 wins).
 */
struct cache_size {
	uint64_t bytes;
	unsigned pct; /* 0..100; 0 means "use bytes" */
};

struct cache_opts {
	const char *dir;	    /* borrowed; NULL: cache_default_dir() */
	struct cache_size max;	    /* cache_size: total bytes of blocks */
	struct cache_size min_free; /* cache_min_free: free disk to keep */
	/*
	 * CLI tools (`assetfs cache ...`): no maintenance thread, and max /
	 * min_free are ignored in favour of the limits recorded in the index
	 * by the last mount (a mount records its limits at every open).
	 */
	bool inspect;
};

/* Fill @o with the defaults: dir NULL, 10 GiB, 5% min free, not inspect. */
void cache_opts_init(struct cache_opts *o);

/*
 * Parse "10G", "512M", "4k", "1.5G", "123" (bytes, binary units K M G T,
 * optional trailing "B"/"iB") or "5%" into @out. Returns 0 or -EINVAL
 * (also for overflow and percentages above 100).
 */
int cache_parse_size(const char *s, struct cache_size *out);

/*
 * Write the default cache dir into @out: $XDG_CACHE_HOME/assetfs, else
 * $HOME/.cache/assetfs, or /var/cache/assetfs when running as root.
 * Returns 0, -ENAMETOOLONG, or -ENOENT if neither variable is set.
 */
int cache_default_dir(char *out, size_t len);

/*
 * Open (creating as needed) the cache dir of @opts. Creates blocks/, tmp/,
 * locks/ and index.db; removes the temp files of dead writers (a live
 * writer holds flock() on its temp file, so a file that can be locked is
 * dead, in any process or container sharing the dir); rebuilds the index
 * from the block files if index.db is missing or corrupt (the old one is
 * kept as index.db.corrupt; rebuilt blocks are suspect until re-hashed on
 * first read); marks the unsynced blocks of a previous boot as suspect.
 * Unless opts->inspect, records the resolved limits in the index and
 * starts the maintenance thread (flushes access times every 2 s, syncfs
 * + marks blocks durable every 30 s after writes, evicts when the disk
 * falls below min_free). Call it after any fork() that daemonizes.
 * @opts is borrowed. On success *@out owns the cache (cache_close()).
 * Returns 0 or a negative errno (-EACCES, -ENOSPC, -EIO ...).
 */
int cache_open(const struct cache_opts *opts, struct cache **out);

/*
 * Stop the maintenance thread, flush batched access times, and if this
 * process wrote blocks, syncfs() the cache's filesystem so they need no
 * re-check after a reboot; then free. Sets *@c to NULL. NULL-safe.
 * Outstanding txns and locks must be finished first.
 */
void cache_close(struct cache **c);

/* The cache dir (borrowed, valid until cache_close()). */
const char *cache_dir(const struct cache *c);

/*
 * Hit path. Open block @d for reading: *@fd gets an O_RDONLY|O_CLOEXEC fd
 * (owned by the caller, close() it) and *@size (may be NULL) its size.
 * Returns 0 (a hit, counted, access time batched in memory), -ENOENT (a
 * miss, counted; also when a suspect block failed its xxh3 re-check: it is
 * then removed, logged and counted as corrupt, and must be fetched again),
 * or another negative errno. No sqlite access unless the block is suspect.
 */
int cache_block_open(struct cache *c, const struct digest *d, int *fd,
		     uint64_t *size);

/*
 * Is block @d present? *@size (may be NULL) gets its size. Does not count
 * as a hit or miss nor touch the LRU (for xattrs such as
 * user.assetfs.cached). Returns 0, -ENOENT, or a negative errno.
 */
int cache_block_stat(struct cache *c, const struct digest *d, uint64_t *size);

/*
 * Single flight. Take the fetch lock of block @d, waiting at most
 * @timeout_ms (0: try once). Exclusive across threads and processes that
 * share the cache dir (an OFD lock on locks/blocks.lock at an offset
 * derived from the key, on a private open file description; released by
 * the kernel if the holder dies). Waiters in the holder's process sleep on
 * a condvar and wake at once on cache_unlock(); waiters in other processes
 * poll the OFD lock with a backoff capped at 5 ms. The protocol for a miss:
 *
 *     if (cache_block_open(c, d, &fd, NULL) == -ENOENT) {
 *             cache_lock_block(c, d, CACHE_LOCK_TIMEOUT_MS, &lk);
 *             if (cache_block_recheck(c, d, &fd, NULL) == -ENOENT)
 *                     ... fetch; cache_txn_begin/write/commit ...
 *             cache_unlock(&lk);
 *             ... then cache_block_recheck() again if fd < 0 ...
 *     }
 *
 * A waiter woken after the holder published finds the block on its
 * re-check. The holder dying releases the lock (kernel), so a waiter then
 * takes it and fetches itself.
 * Returns 0 with *@out owned by the caller, -ETIMEDOUT, -EDEADLK if the
 * calling thread already holds the key (locks are not re-entrant), or a
 * negative errno; on failure *@out is left untouched.
 */
int cache_lock_block(struct cache *c, const struct digest *d,
		     unsigned timeout_ms, struct cache_lock **out);

/* Release and free *@lk; sets it to NULL. NULL-safe. */
void cache_unlock(struct cache_lock **lk);

/*
 * Like cache_block_open() but counts neither a hit nor a miss (for the
 * re-checks around a fetch: the lookup that missed was already counted, so
 * hits + misses = lookups). The LRU is touched as for a hit.
 */
int cache_block_recheck(struct cache *c, const struct digest *d, int *fd,
			uint64_t *size);

/*
 * Writes. Begin a new block: a temp file in tmp/. *@out is owned by the
 * caller until cache_txn_commit() or cache_txn_abort() consumes it. A txn
 * has one owner thread at a time. Returns 0 or a negative errno.
 */
int cache_txn_begin(struct cache *c, struct cache_txn **out);

/*
 * Append @len bytes (borrowed) to the block: staged, written out in
 * CACHE_STAGE pieces, xxh3'd as they go (SHA-256 comes at commit).
 * Returns 0 or a negative errno (-ENOSPC...); after an error the txn can
 * only be aborted.
 */
int cache_txn_write(struct cache_txn *txn, const void *data, size_t len);

/*
 * Publish @txn. Its SHA-256 is computed here, from the temp file, through
 * the cache's batcher (common/sha256_batch.h): blocks committed at the
 * same time by other threads share the pass. If @want is non-NULL and the
 * bytes do not hash to it:
 * -EIO, nothing published, the mismatch is logged and counted. Otherwise
 * the block is renamed into blocks/ (no fsync) and recorded in the index
 * with its size, xxh3 and access time, evicting least recently used blocks
 * first so that the total stays within cache_size and the disk keeps
 * cache_min_free (-ENOSPC if the block cannot fit even in an empty cache;
 * nothing published). @got (may be NULL) receives the SHA-256 of the
 * bytes on every path where it was computed (trust on first use passes
 * @want NULL and records @got). Committing a block already present is a
 * success. Consumes @txn on every path.
 */
int cache_txn_commit(struct cache *c, struct cache_txn *txn,
		     const struct digest *want, struct digest *got);

/* Drop @txn and its temp file; sets *@txn to NULL. NULL-safe. */
void cache_txn_abort(struct cache_txn **txn);

/* begin + write + commit of a whole buffer. Same returns as commit. */
int cache_put_block(struct cache *c, const void *data, size_t len,
		    const struct digest *want, struct digest *got);

/*
 * Trust on first use, for objects without a manifest: the digest of block
 * @index (of size @block_size) of object @key at @etag in store @store.
 * All strings borrowed. A new ETag means a new object: the old mapping is
 * simply never asked for again (and aged out with its blocks).
 */
struct cache_objkey {
	const char *store; /* store URL, e.g. "s3://bucket/prefix" */
	const char *key;   /* object key within the store */
	const char *etag;  /* ETag (or size+mtime token) the bytes came from */
	uint32_t block_size;
	uint64_t index;
};

/* Returns 0 with *@out set, -ENOENT, or a negative errno. */
int cache_objblock_get(struct cache *c, const struct cache_objkey *k,
		       struct digest *out);

/* Record @d for @k (replacing any previous). Returns 0 or a negative errno. */
int cache_objblock_put(struct cache *c, const struct cache_objkey *k,
		       const struct digest *d);

/*
 * Fetch lock for a TOFU block whose digest is not yet known, keyed on the
 * whole (store, key, etag, block_size, index) tuple. Same contract as
 * cache_lock_block(); re-check with cache_objblock_get() once locked.
 */
int cache_lock_objblock(struct cache *c, const struct cache_objkey *k,
			unsigned timeout_ms, struct cache_lock **out);

/*
 * Documents for offline use (.versions lists, .meta, assets.index):
 * store @len bytes of @data (borrowed, at most CACHE_DOC_MAX) under
 * (@store, @key) with @etag (may be NULL) and the current time, replacing
 * any previous copy. Returns 0, -EFBIG, or a negative errno.
 */
int cache_doc_put(struct cache *c, const char *store, const char *key,
		  const void *data, size_t len, const char *etag);

/*
 * The keys of @store's stored documents that start with @prefix, in key
 * order, at most @max: *@keys is a malloc'd array of *@n malloc'd strings
 * (the caller frees each and the array). Returns 0 or a negative errno.
 */
int cache_doc_keys(struct cache *c, const char *store, const char *prefix,
		   size_t max, char ***keys, size_t *n);

/*
 * Get the last stored copy: appended to @out (its cap applies: -EFBIG);
 * @etag (may be NULL) gets a malloc'd copy of the ETag or NULL (caller
 * frees); @stored_at (may be NULL) the Unix time it was stored.
 * Returns 0, -ENOENT, or a negative errno.
 */
int cache_doc_get(struct cache *c, const char *store, const char *key,
		  struct buf *out, char **etag, int64_t *stored_at);

struct cache_stats {
	/* this process, since cache_open() */
	uint64_t hits;
	uint64_t misses;
	uint64_t bytes_written; /* bytes of blocks committed */
	uint64_t blocks_written;
	uint64_t evictions; /* blocks evicted by this process */
	uint64_t bytes_evicted;
	uint64_t digest_mismatches; /* commits refused: wrong bytes */
	uint64_t corrupt_blocks;    /* on-disk blocks failing re-checks */
	uint64_t hashed_blocks;	    /* blocks SHA-256'd at commit */
	uint64_t hash_batches;	    /* SIMD passes they took (see sha256_batch) */
	/* the shared index, all processes */
	uint64_t blocks;
	uint64_t bytes;
	uint64_t max_bytes;	  /* resolved cache_size */
	uint64_t min_free_bytes;  /* resolved cache_min_free */
	uint64_t disk_free_bytes; /* statvfs f_bavail of the cache fs */
	uint64_t suspect_blocks;  /* still to be re-checked after a crash */
	uint64_t docs;
	uint64_t objblocks;
};

/* Fill @st. Reads the index (one short query). Returns 0 or -errno. */
int cache_get_stats(struct cache *c, struct cache_stats *st);

/*
 * Evict least recently used blocks until the total is at most @target
 * bytes (and the disk keeps min_free), remove stale temp files, drop index
 * rows whose file is gone and index block files the index lacks.
 * *@evicted (may be NULL) gets the number of blocks removed.
 */
int cache_gc(struct cache *c, uint64_t target, uint64_t *evicted);

struct cache_verify_report {
	uint64_t checked; /* block files re-hashed */
	uint64_t bytes;	  /* their bytes */
	uint64_t bad;	  /* wrong content, wrong name: removed */
	uint64_t missing; /* index rows without a file: dropped */
	uint64_t orphans; /* files not in the index: added */
	/* called for each bad block (hex name, reason), may be NULL */
	void (*on_bad)(const char *hex, const char *why, void *arg);
	void *arg;
};

/*
 * Re-hash every block file with SHA-256 against its name; remove bad ones
 * (and their index rows), reconcile the index with the files. @r is filled
 * (its callback fields are read). Returns 0 when the walk completed (even
 * if bad blocks were found: see r->bad) or a negative errno.
 */
int cache_verify(struct cache *c, struct cache_verify_report *r);

/*
 * Re-hash block @d's file with SHA-256 against its name (a readiness
 * check that cannot lie: `assetfs pin wait`). *@size (may be NULL) gets
 * its size. Returns 0 (good; now known durable), -ENOENT (absent), -EIO
 * (wrong content or unreadable: removed, logged and counted as corrupt,
 * so the next fetch replaces it), or a negative errno.
 */
int cache_block_verify(struct cache *c, const struct digest *d,
		       uint64_t *size);

/* Write the path of block @d into @out. Returns 0 or -ENAMETOOLONG. */
int cache_block_path(const struct cache *c, const struct digest *d, char *out,
		     size_t len);

#endif
