/*
 * cache_int - the bottom layer of the block cache: the shared structs
 * (struct cache, txns, fetch locks), their lock order, and the helpers
 * with no sqlite and no file walks (clocks, digest sets, paths, sizes),
 * defined in cache_util.c. Not part of the contract: see cache.h.
 *
 * The module's files form layers; each calls only the layers below it,
 * and includes only their headers:
 *
 *   cache_admin.c              gc, verify            (top: `assetfs cache`)
 *   cache.c  cache_txn.c       open/close, hits;     writes
 *   cache_scan.c               walks of blocks/ and tmp/, reconciliation
 *   cache_docs.c cache_pin.c   TOFU map, documents, stats; the pin table
 *   cache_index.c              sqlite: blocks, LRU, eviction, limits
 *   cache_lock.c               fetch locks
 *   cache_util.c               clocks, digest sets, paths (this header)
 *
 * The sqlite layer's internal calls are in cache_index_int.h, the walks'
 * in cache_scan_int.h. Siblings on one line do not call each other
 * (the cache_layers unit test checks the objects: fs/cache/meson.build).
 *
 * Moving parts:
 *
 * - The index (sqlite, WAL, synchronous=NORMAL) holds one row per block
 *   (size, xxh3, last access, write time, state) and running totals kept by
 *   triggers, so the shared quota is one cheap read. Every change to blocks
 *   happens in a BEGIN IMMEDIATE transaction, which serialises eviction and
 *   publication across all processes using the dir.
 * - Block state: 0 = written in this boot, not yet known durable; 1 =
 *   durable (a syncfs() ran after it was written, or it was re-hashed);
 *   2 = suspect (state 0 from a previous boot, or found on disk without an
 *   index row): checked before it is served.
 * - The hit path opens the file and records the access in an in-memory
 *   table (c->touch, under c->mem_lock); the maintenance thread flushes it
 *   every CACHE_FLUSH_MS, and commits flush it before choosing victims.
 *   Suspect digests are mirrored in memory (c->suspect) so a hit needs no
 *   sqlite unless the block is suspect.
 * - Fetch locks are OFD byte-range locks on locks/blocks.lock: one file,
 *   nothing to clean up, released by the kernel when the holder dies,
 *   exclusive between threads because each lock has its own open file
 *   description.
 *
 * Locks: c->db_lock (the sqlite connection and its statements) may be held
 * while taking c->mem_lock, never the reverse; c->lk_lock is a leaf.
 * Counters are atomics. The helpers are internal: same errno convention as
 * cache.h; *_locked ones expect c->db_lock held.
 */
#ifndef ASSETFS_FS_CACHE_INT_H
#define ASSETFS_FS_CACHE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/statvfs.h>

#include <sqlite3.h>
#ifdef ASSETFS_XXH_DISPATCH
#include <xxh_x86dispatch.h> /* xxh3 on AVX2 / AVX-512 where the CPU has it */
#else
#include <xxhash.h>
#endif

#include "common/sha256_batch.h"
#include "fs/cache/cache.h"

#define CACHE_FLUSH_MS 2000	   /* batched access times */
#define CACHE_SYNC_MS 30000	   /* syncfs + mark durable */
#define CACHE_TOUCH_MAX (1u << 16) /* touches kept between flushes */
#define CACHE_TMP_MIN_AGE 1	   /* s: empty temp files younger are live */
#define CACHE_BUSY_MS 10000	   /* sqlite busy timeout */
#define CACHE_IO_CHUNK (1u << 20)

enum { BLK_FRESH = 0, BLK_DURABLE = 1, BLK_SUSPECT = 2 };

enum cache_stmt {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_TOUCH,
	ST_GET_BLOCK,
	ST_PUT_BLOCK,
	ST_DEL_BLOCK,
	ST_VICTIMS,
	ST_TOTALS,
	ST_SET_STATE,
	ST_OBJ_GET,
	ST_OBJ_PUT,
	ST_DOC_GET,
	ST_DOC_PUT,
	ST_META_GET,
	ST_META_PUT,
	ST_COUNT_SUSPECT,
	ST_COUNT_DOCS,
	ST_COUNT_OBJ,
	ST_DOC_KEYS,
	ST__N,
};

/* An open-addressing digest -> value table; value 0 marks a free slot. */
struct dent {
	struct digest d;
	int64_t v;
};

struct dset {
	struct dent *e;
	size_t cap; /* power of two, or 0 */
	size_t n;
};

/*
 * A txn's writes reach its temp file in CACHE_STAGE pieces: whole,
 * aligned writes let the page cache take them in large folios, where the
 * network's small pieces cost a page-cache lookup, a reservation and a
 * partial-page fill each (a quarter of a cold read's CPU, measured).
 */
#define CACHE_STAGE (1u << 20)
#define CACHE_STAGES_KEPT 32

struct cache {
	char *dir;
	char lock_path[CACHE_PATH_MAX];
	char boot_id[64];
	uint64_t max_bytes;
	uint64_t min_free_bytes;
	bool inspect;

	pthread_mutex_t db_lock;
	sqlite3 *db;		 /* protected by db_lock */
	sqlite3_stmt *st[ST__N]; /* protected by db_lock */
	int64_t last_time;	 /* protected by db_lock */

	pthread_mutex_t mem_lock;
	struct dset touch;    /* protected by mem_lock */
	struct dset suspect;  /* protected by mem_lock; 1 / -1 done */
	struct dset unsynced; /* protected by mem_lock: our commits to sync */
	size_t suspect_live;  /* protected by mem_lock */
	/* txn staging buffers kept for reuse (fresh ones fault in page by
	 * page) */
	char *stages[CACHE_STAGES_KEPT]; /* protected by mem_lock */
	int n_stages;			 /* protected by mem_lock */

	pthread_t maint;
	bool maint_running;
	pthread_cond_t maint_cond; /* with mem_lock */
	bool maint_stop;	   /* protected by mem_lock */
	bool dirty;		   /* protected by mem_lock: unsynced writes */

	/*
	 * Fetch-lock keys held by this process, so that our own waiters
	 * sleep on a condvar and wake at once, instead of polling the OFD
	 * lock (which is what waiters in other processes do).
	 */
	pthread_mutex_t lk_lock; /* a leaf lock */
	pthread_cond_t lk_cond;	 /* with lk_lock; broadcast on unlock */
	struct held_key *held;	 /* protected by lk_lock */

	/* SHA-256 of committed blocks, shared by all fetch threads */
	struct sha256_batch *hash;

	uint64_t tmp_seq;					/* atomic */
	uint64_t hits, misses, bytes_written, blocks_written;	/* atomic */
	uint64_t evictions, bytes_evicted, mismatches, corrupt; /* atomic */
};


struct cache_txn {
	struct cache *c;
	int fd;
	char path[CACHE_PATH_MAX];
	XXH3_state_t *xxh;
	char *stage;	/* CACHE_STAGE bytes: writes go out whole */
	size_t staged;	/* bytes in stage */
	bool announced;	/* to c->hash, as a block on its way */
	uint64_t len;	/* bytes written, staged ones included */
	int err;
};

struct held_key {
	uint64_t key;
	pthread_t owner;
	struct held_key *next;
};

struct cache_lock {
	struct cache *c;
	uint64_t key;
	int fd;
};

#define ATOMIC_ADD(p, n) __atomic_add_fetch((p), (n), __ATOMIC_RELAXED)
#define ATOMIC_GET(p) __atomic_load_n((p), __ATOMIC_RELAXED)

int64_t cache_now_us(void);

int64_t cache_mono_ms(void);

/* The first 8 bytes of @d: a uniform hash and the fetch lock's key. */
uint64_t cache_digest_key64(const struct digest *d);

struct dent *cache_dset_find(const struct dset *s, const struct digest *d);

/*
 * Set @d to @v (non-zero), keeping the larger value when present. Grows at
 * half load up to @limit entries. Returns 0, -ENOSPC at the limit, -ENOMEM.
 */
int cache_dset_put(struct dset *s, const struct digest *d, int64_t v,
		   size_t limit);

void cache_dset_free(struct dset *s);

/*
 * Block @d is no longer suspect in this process (re-checked, re-hashed or
 * freshly written): the hit path stops checking it. Takes c->mem_lock.
 */
void cache_suspect_clear(struct cache *c, const struct digest *d);

/* snprintf into @out; -ENAMETOOLONG if it does not fit. */
int cache_path_fmt(char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

uint64_t cache_size_resolve(const struct cache_size *s,
			    const struct statvfs *v);

uint64_t cache_disk_free(const struct cache *c);

#endif
