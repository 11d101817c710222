/*
 * cache_pin - pinned versions in the block cache (DESIGN §5 "Pins"): the
 * pin table of index.db, shared by every process using the cache dir.
 *
 * A pin is (store, spec) — "fraud/xgb:1.2" (exact), "fraud/xgb:1" or
 * "fraud/xgb" (floating) — and holds one or, while a floating pin moves
 * to a new version, two versions. Each pinned version lists its blocks
 * (digest, size); a block listed by any pin is never chosen by eviction.
 * Pins count against cache_size: the distinct pinned blocks plus the
 * bytes of pinned blocks whose digest is not known yet (objects without a
 * manifest, until fetched) must fit in it, or the pin is refused.
 *
 * This module records and answers; it fetches nothing (fs/mount/pins.c
 * resolves specs and warms). Threads: every call is safe concurrently and
 * runs in one sqlite transaction. Errors: 0 or a negative errno.
 */
#ifndef ASSETFS_FS_CACHE_PIN_H
#define ASSETFS_FS_CACHE_PIN_H

#include <stddef.h>
#include <stdint.h>

#include "common/digest.h"
#include "fs/cache/cache.h"

#define CACHE_PIN_REASON_MAX 512

enum cache_pin_state {
	CACHE_PIN_WARMING = 0, /* blocks being fetched (or to be) */
	CACHE_PIN_READY = 1,   /* every block was fetched and verified */
	CACHE_PIN_FAILED = 2,  /* the last attempt failed: see reason */
};

/* What a pin needs, when it does not fit (cache_pin_version: -ENOSPC). */
struct cache_pin_fit {
	uint64_t need;	     /* bytes of the version to pin */
	uint64_t pinned;     /* bytes pinned by the others already */
	uint64_t cache_size; /* the limit */
};

/*
 * Pin @version of (@store, @spec) with its @n blocks (@d and @size,
 * borrowed; a digest listed twice counts once) and @pending bytes of
 * blocks whose digest is not known yet, state WARMING, @source ("cli",
 * or "file:PATH" for a mount's pin file) recorded with the pin.
 * Re-pinning a version replaces its block list. Other versions of the
 * pin are kept (release them with cache_pin_release()). Returns 0, or
 * -ENOSPC when all pins would then exceed cache_size (nothing recorded;
 * @fit, may be NULL, gets the sizes), or -errno.
 */
int cache_pin_version(struct cache *c, const char *store, const char *spec,
		      const char *version, const struct digest *d,
		      const uint64_t *size, size_t n, uint64_t pending,
		      const char *source, struct cache_pin_fit *fit);

/*
 * Record a pin with no version (its spec could not be resolved), state
 * FAILED with @reason, unless it already has versions (then only their
 * newest gets the reason). Returns 0 or -errno.
 */
int cache_pin_fail(struct cache *c, const char *store, const char *spec,
		   const char *source, const char *reason);

/*
 * Add blocks learned while warming (objects without a manifest) to a
 * pinned version and take @done_pending bytes off its pending count.
 * Returns 0, -ENOENT if the version is not pinned, or -errno.
 */
int cache_pin_add_blocks(struct cache *c, const char *store, const char *spec,
			 const char *version, const struct digest *d,
			 const uint64_t *size, size_t n, uint64_t done_pending);

/*
 * Set the state of a pinned version (@reason, may be NULL, for FAILED).
 * Returns 0, -ENOENT if it is not pinned, or -errno.
 */
int cache_pin_set_state(struct cache *c, const char *store, const char *spec,
			const char *version, enum cache_pin_state state,
			const char *reason);

/* Drop one version of a pin (and its block list). Returns 0 or -errno. */
int cache_pin_release(struct cache *c, const char *store, const char *spec,
		      const char *version);

/*
 * Unpin (@store, @spec) entirely: every version. @store NULL: of any
 * store. Returns the number of versions dropped (0: it was not pinned),
 * or -errno.
 */
int cache_pin_remove(struct cache *c, const char *store, const char *spec);

/* One pinned version (or a version-less failed pin), as listed. */
struct cache_pin_info {
	char *store;
	char *spec;
	char *version; /* "" for a pin that never resolved */
	char *source;
	enum cache_pin_state state;
	char *reason;		/* "" unless FAILED */
	uint64_t bytes_total;	/* distinct blocks + pending */
	uint64_t bytes_present; /* blocks with an index row */
	uint64_t blocks, blocks_present;
	int64_t updated; /* Unix time of the last state change */
};

/*
 * Every pinned version, of @store (NULL: all), ordered by store, spec and
 * version: *@out a malloc'd array of *@n (cache_pin_list_free()).
 * Presence is the index's view (a row per block), not a re-hash.
 * Returns 0 or -errno.
 */
int cache_pin_list(struct cache *c, const char *store,
		   struct cache_pin_info **out, size_t *n);
void cache_pin_list_free(struct cache_pin_info *p, size_t n); /* NULL-safe */

/* Free the strings of one entry (not the entry). NULL-safe. */
void cache_pin_info_clear(struct cache_pin_info *e);

/*
 * The blocks of one pinned version: *@d and *@size malloc'd arrays of
 * *@n entries (caller frees both). Returns 0, -ENOENT, or -errno.
 */
int cache_pin_blocks(struct cache *c, const char *store, const char *spec,
		     const char *version, struct digest **d, uint64_t **size,
		     size_t *n);

/* Totals over all pins: versions, bytes present and total. */
struct cache_pin_totals {
	uint64_t pins;	   /* distinct (store, spec) */
	uint64_t versions; /* pinned versions */
	uint64_t bytes_total;
	uint64_t bytes_present;
};

int cache_pin_totals(struct cache *c, struct cache_pin_totals *t);

#endif
