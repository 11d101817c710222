/*
 * catalog_int - what the files of the catalog share, and nothing outside
 * fs/catalog/catalog*.c may use:
 *   catalog.c          lifecycle, snapshots' refcounts, the store's
 *                      reachability, offline documents' I/O, small helpers
 *   catalog_map.c      the string map behind the three caches
 *   catalog_refresh.c  namespace levels and version lists (TTLs, aliases)
 *   catalog_offline.c  the offline forms of levels and object sizes
 *   catalog_version.c  versions: .meta, object sizes, the node tree
 *   catalog_vlist.c    lookups in a version list and its aliases
 *   catalog_sig.c      signatures of kept `.meta` copies
 *
 * Locking: c->lock guards the three maps; c->bg_lock the queue of
 * background refreshes. Neither is held across I/O; the functions here
 * say when they take them.
 */
#ifndef ASSETFS_FS_CATALOG_INT_H
#define ASSETFS_FS_CATALOG_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "fs/catalog/catalog.h"
#include "fs/catalog/sign.h"

#define CAT_DOC_MAX (64u << 20)
#define CAT_OBJ_LEVEL "assetfs:level:"
#define CAT_OBJ_INFO "assetfs:objinfo:"
#define CAT_OBJ_SIG "assetfs:sig:"
/* The most kept documents an offline listing looks through. */
#define CAT_OFFLINE_KEYS_MAX 100000
#define CAT_SIG_MAX 4096 /* cap on a fetched .meta.sig (64 bytes) */

#define CAT_BG_THREADS 2	/* background refreshers */
#define CAT_BG_QUEUE_MAX 4096	/* queued refreshes; more are dropped */
#define CAT_RECHECK_MS 1000	/* an offline copy is re-tried this soon */

/* A queued background refresh: @fn(@c, @key). */
struct cat_bg_job {
	void (*fn)(struct catalog *c, const char *key);
	struct cat_bg_job *next;
	char key[];
};

/* One entry of a map: a snapshot or a remembered error. */
struct ment {
	char *key;
	void *val;     /* the snapshot, or NULL for a remembered error */
	int err;       /* the error when val is NULL */
	int64_t at_ms; /* when fetched */
	bool refreshing; /* a background refresh is queued or running */
	struct ment *next;
};

/* A chained hash map from strings to entries (catalog_map.c). */
struct smap {
	struct ment **b;
	size_t size; /* power of two */
	size_t n;
};

struct catalog {
	struct store *st;
	struct cache *cache;
	struct stats *stats;
	const char *url;
	struct sign_key *verify; /* owned, or NULL: no signature checks */
	int ttl_ms;
	int parallel;
	pthread_mutex_t lock;
	struct smap levels;	  /* protected by lock */
	struct smap versions;	  /* protected by lock */
	struct smap metas;	  /* protected by lock */
	/* background refreshes (stale-while-revalidate), catalog.c */
	pthread_mutex_t bg_lock; /* after lock, never the other way */
	pthread_cond_t bg_cond;
	struct cat_bg_job *bg_head, *bg_tail; /* protected by bg_lock */
	size_t bg_n;			      /* protected by bg_lock */
	bool bg_stop;			      /* protected by bg_lock */
	pthread_t bg_threads[CAT_BG_THREADS];
	int bg_started;
	catalog_alias_gate_fn gate; /* set before use, then read-only */
	void *gate_arg;
};

/* ---- catalog_map.c (callers hold the map's lock) ---- */

int cat_map_init(struct smap *m);
struct ment *cat_map_get(struct smap *m, const char *key);
/* Find or add the entry for @key. Returns NULL on out of memory. */
struct ment *cat_map_put(struct smap *m, const char *key);
/* Free every entry, dropping its value with @unref. */
void cat_map_clear(struct smap *m, void (*unref)(void *));

/* ---- catalog.c ---- */

/* Run @fn(@arg, i) for i in [0, @n) on up to @threads threads. */
void cat_par_for(int threads, size_t n, void (*fn)(void *, size_t), void *arg);

void cat_strv_free(char **v, size_t n);
/* Append a copy of @s. 0 or -ENOMEM. */
int cat_strv_push(char ***v, size_t *n, const char *s);
void cat_strv_sort_uniq(char **v, size_t *n);
/* The last '/'-component of @full (a pointer into it). */
const char *cat_last_comp(const char *full);

/* Whether @err says the store is unreachable rather than "no such thing". */
bool cat_store_down(int err);
/*
 * Before a request to the store: -EIO while the store is offline (so
 * lookups do not each wait a `timeout`: store_health_gate()), else counts
 * the request and returns 0.
 */
int cat_store_call(struct catalog *c);
/*
 * Queue @fn(@c, @key) for a background thread. Returns 0, or -EAGAIN
 * (the queue is full or stopping: the caller clears its mark) or -ENOMEM.
 * Takes c->bg_lock.
 */
int cat_bg_push(struct catalog *c, void (*fn)(struct catalog *, const char *),
		const char *key);
/*
 * After a failed request for @what: if @err says the store is down, the
 * store goes offline (store_health_report(): logged once, probed) (@msg,
 * the provider's reason, may be NULL).
 */
void cat_note_failure(struct catalog *c, int err, const char *what,
		      const char *msg);

/* Keep / read a document for offline use (no-ops without a cache). */
void cat_doc_put(struct catalog *c, const char *key, const char *data,
		 size_t len, const char *etag);
int cat_doc_get(struct catalog *c, const char *key, struct buf *out);

/* ---- catalog_offline.c ---- */

int cat_level_to_json(const struct cat_level *l, struct buf *out);
/*
 * Parse a kept level document (hostile: the cache dir is shared) into
 * the empty @l: entries that are not one valid name component are
 * skipped; the result is sorted and unique. Returns 0, or -EINVAL (not
 * JSON, or an array missing) / -ENOMEM with @l left empty.
 */
int cat_level_from_json(const char *s, size_t len, struct cat_level *l);
/*
 * Offline and never listed: the level as far as this process knows it,
 * from the assets and namespaces it has seen and the version lists the
 * cache keeps. Returns 0 if anything is known below @ns, else -ENOENT.
 * Takes c->lock.
 */
int cat_level_from_memory(struct catalog *c, const char *ns,
			  struct cat_level *l);

/* Sizes and ETags of the objects of a version without a manifest. */
struct objinfo {
	char **paths;
	uint64_t *sizes;
	char **etags;
	size_t n;
};

void cat_objinfo_clear(struct objinfo *oi);
int cat_objinfo_add(struct objinfo *oi, const char *path, uint64_t size,
		    const char *etag);
/* The index of @path, or -ENOENT. */
int cat_objinfo_find(const struct objinfo *oi, const char *path);
int cat_objinfo_to_json(const struct objinfo *oi, struct buf *out);
/*
 * Parse a kept objinfo document (hostile) into the empty @oi: entries
 * without a string "p" and "e" and a whole size in [0, 2^53] are
 * skipped. Returns 0, or -EINVAL (not JSON, no "files" array) / -ENOMEM
 * with @oi left empty.
 */
int cat_objinfo_from_json(const char *s, size_t len, struct objinfo *oi);

/* ---- catalog_vlist.c ---- */

/* Build @v's aliases from its list (one pass). 0 or -ENOMEM. */
int cat_versions_build_aliases(struct cat_versions *v);

/* ---- catalog_sig.c ---- */

/*
 * With a key, once store_get_meta() verified @raw (the `.meta` of
 * @name:@version, store key @key): read the `.meta.sig` again, check it
 * against @raw and keep both for offline use. Returns 0 (also when the
 * signature cannot be read now: the document was verified, it is just not
 * kept), or -EBADMSG with a message in @err if the signature no longer
 * verifies @raw.
 */
int cat_keep_signed(struct catalog *c, const char *name, const char *version,
		    const char *key, const struct buf *raw, const char *etag,
		    char *err, size_t errlen);

/*
 * Offline, with a key: does the kept signature of @name:@version verify
 * @raw, its kept `.meta`, with this mount's key? Returns 0, or -EBADMSG
 * with a message in @err (no kept signature, or a wrong one).
 */
int cat_cached_sig_ok(struct catalog *c, const char *name, const char *version,
		      const struct buf *raw, char *err, size_t errlen);

#endif
