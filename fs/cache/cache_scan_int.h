/*
 * cache_scan_int - walks over the cache dir's files (cache_scan.c): dead
 * writers' temp files, the block files, and the reconciliation of the
 * index with them (the files are the truth). Above the sqlite layer
 * (cache_index_int.h); called by cache.c at open and by cache_admin.c.
 * Not part of the contract. Errors: 0 or a negative errno.
 */
#ifndef ASSETFS_FS_CACHE_SCAN_INT_H
#define ASSETFS_FS_CACHE_SCAN_INT_H

#include <stdint.h>

#include "fs/cache/cache_int.h"

/*
 * Remove temp files of dead writers: a live writer holds flock() on its
 * temp file from just after creating it, so a file we can lock is dead,
 * unless it is empty and new (a writer between open and flock).
 * *@removed gets the count.
 */
int cache_clean_tmp(struct cache *c, uint64_t *removed);

/*
 * Call @fn for each file blocks/<xx>/<64 hex> whose name is in the right
 * folder. Stops at the first negative return of @fn and returns it.
 */
int cache_walk_blocks(struct cache *c,
		      int (*fn)(struct cache *c, const struct digest *d,
				const char *path, void *arg),
		      void *arg);

/*
 * Make the index match the block files: add rows for files it lacks (as
 * suspect: we do not know whether they were durable) and drop rows whose
 * file is gone. Runs in one write txn so no commit slips between the walk
 * and the row scan. Caller holds db_lock. @orphans, @missing may be NULL.
 */
int cache_reconcile_locked(struct cache *c, uint64_t *orphans,
			   uint64_t *missing);

#endif
