/*
 * cache_index_int - the sqlite layer of the block cache (cache_index.c:
 * schema, statements, block rows, LRU eviction, crash detection, limits;
 * cache_docs.c: the TOFU map, offline documents, statistics). It sits on
 * cache_int.h and calls nothing above it; cache.c, cache_txn.c,
 * cache_scan.c and cache_admin.c call it. Not part of the contract.
 *
 * Every function named *_locked expects c->db_lock held by the caller;
 * the others take it. Changes to blocks happen inside BEGIN IMMEDIATE
 * transactions (cache_db_begin/cache_db_end), which serialise eviction and
 * publication across every process sharing the cache dir.
 * Errors: 0 or a negative errno; SQLITE_* codes are mapped only by
 * cache_sqlite_err().
 */
#ifndef ASSETFS_FS_CACHE_INDEX_INT_H
#define ASSETFS_FS_CACHE_INDEX_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <sqlite3.h>

#include "fs/cache/cache_int.h"

/* The one place SQLITE_* result codes become errno values. */
int cache_sqlite_err(int rc);

/* Caller holds c->db_lock. Returns a reset statement or NULL (logged). */
sqlite3_stmt *cache_st(struct cache *c, enum cache_stmt id);

/* Run a statement that returns no rows; resets it. Returns 0 or -errno. */
int cache_st_done(struct cache *c, sqlite3_stmt *s);

/* BEGIN IMMEDIATE. Caller holds db_lock. Returns 0 or -errno. */
int cache_db_begin(struct cache *c);

/* COMMIT when @ret >= 0 (then returns its result), else ROLLBACK and
 * return @ret. Caller holds db_lock. */
int cache_db_end(struct cache *c, int ret);

/* Strictly increasing per process, so LRU order of our own writes holds.
 * Caller holds db_lock. */
int64_t cache_now(struct cache *c);

/* Write the batched access times (takes db_lock). Returns 0 or -errno. */
int cache_flush_touches(struct cache *c);

/* The shared running totals of the blocks table. Caller holds db_lock. */
int cache_totals_locked(struct cache *c, uint64_t *blocks, uint64_t *bytes);

int cache_del_block_locked(struct cache *c, const struct digest *d);

/*
 * Drop block @d's row in its own write txn (after its file was found bad
 * and unlinked). Caller holds db_lock. Returns 0 or -errno.
 */
int cache_forget_block_locked(struct cache *c, const struct digest *d);

/*
 * Block @d was re-hashed and found good: mark it durable with the fresh
 * @xxh (its xxh3). Caller holds db_lock. Returns 0 or -errno.
 */
int cache_mark_durable_locked(struct cache *c, const struct digest *d,
			      uint64_t xxh);

/*
 * Evict least recently used blocks until @need more bytes fit under
 * @target and the disk keeps min_free after writing them. Caller holds
 * db_lock inside a write txn. Returns 0, -ENOSPC if the index runs out of
 * blocks first, or -errno. Victims are unlinked at once (a reader with the
 * file open keeps its bytes), so the caller must commit the txn whatever
 * this returns: rolling back would resurrect rows of files already gone.
 */
int cache_evict_locked(struct cache *c, uint64_t need, uint64_t target);

void cache_db_close(struct cache *c);

/* Open index.db and create the schema. Returns 0, -EUCLEAN if corrupt. */
int cache_db_open(struct cache *c, bool *created);

/* Move a corrupt index aside (index.db.corrupt) so a fresh one is built. */
void cache_db_discard(struct cache *c);

/* 1 if block @d has a row, 0 if not, or -errno. Caller holds db_lock. */
int cache_block_row_exists(struct cache *c, const struct digest *d);

/* Insert or replace block @d's row. @xxh may be NULL (unknown). Caller
 * holds db_lock. Returns 0 or -errno. */
int cache_put_block_row(struct cache *c, const struct digest *d, uint64_t size,
			const uint64_t *xxh, int64_t atime, int state);

/* After a reboot: unsynced blocks of the last boot become suspect. */
int cache_boot_check_locked(struct cache *c);

/* Mirror the suspect blocks of the index in c->suspect. */
int cache_load_suspects_locked(struct cache *c);

/* Resolve and record (mount) or read back (inspect) the cache limits. */
int cache_limits_locked(struct cache *c, const struct cache_opts *o);

/*
 * syncfs() the cache's filesystem, then mark durable (state 1) the blocks
 * whose rows were committed more than 5 s before (a row is committed just
 * before its file is renamed). Takes db_lock.
 */
int cache_sync_and_mark(struct cache *c);

#endif
