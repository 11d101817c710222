/*
 * pins - pinned asset versions kept whole in the cache (DESIGN §5,
 * docs/cache.md): resolving a pin's spec, recording it in the cache's pin
 * table (fs/cache/cache_pin.h) and warming it (fs/mount/warm.h); floating
 * pins ("fraud/xgb:1", "fraud/xgb") follow their alias: a new version is
 * pinned and warmed beside the old one, which is released once the new
 * one is complete. Used by `assetfs warm` / `assetfs pin` (one call, then
 * exit) and by the mount, which runs pins_daemon_start(): a thread that
 * keeps every pin of its store current, reads `-o pins=FILE`, and with
 * `-o warm_before_flip` answers the catalog's alias gate.
 *
 * Threads: all calls are safe concurrently (the pin table is shared
 * through sqlite by every process using the cache). Errors: 0 or a
 * negative errno with a one-line message in @err (WARM_ERR_MAX bytes).
 */
#ifndef ASSETFS_FS_PINS_H
#define ASSETFS_FS_PINS_H

#include <stdbool.h>

#include "fs/cache/cache.h"
#include "fs/catalog/catalog.h"
#include "fs/mount/fetcher.h"
#include "fs/mount/warm.h"

struct pins;

/* Over @cat, @fe and @cache (all borrowed). Returns 0 or -ENOMEM. */
int pins_new(struct catalog *cat, struct fetcher *fe, struct cache *cache,
	     int threads, struct pins **out);

/* Stops the daemon thread if running, and frees. NULL-safe. */
void pins_free(struct pins *p);

/* The store's URL pins are recorded under (borrowed). */
const char *pins_store(const struct pins *p);

/*
 * Normalise pin spec @text ("NAME" or "NAME:VERSION"; a [sub] path is
 * refused: a pin keeps whole versions) into @out. Returns 0 or -EINVAL.
 */
int pins_spec_norm(const char *text, char *out, size_t len, char *err,
		   size_t errlen);

/*
 * Parse the text of a pin file (it comes from a ConfigMap: hostile): one
 * spec per line, '#' starts a comment, blank lines and surrounding
 * blanks ignored; a line that is not a valid pin spec is skipped with a
 * warning naming @path (borrowed, for messages only). @text (@len bytes,
 * need not be NUL-terminated; a NUL byte ends the text) is only read.
 * *@specs gets a malloc'd array of *@n normalised specs, each listed once
 * (the first time it appears); free with pins_specs_free(). Returns 0 or
 * -ENOMEM (then *@specs is NULL and *@n 0).
 */
int pins_file_parse(const char *text, size_t len, const char *path,
		    char ***specs, size_t *n);
void pins_specs_free(char **specs, size_t n);

/*
 * Resolve @spec now (version list, then .meta): *@v gets a reference
 * (cat_version_unref()). Returns 0 or an error (-ENOENT no such asset or
 * version, store errors).
 */
int pins_resolve(struct pins *p, const char *spec, struct cat_version **v,
		 char *err, size_t errlen);

struct pins_report {
	char version[SPEC_VERSION_MAX + 1]; /* what the spec resolved to */
	bool warmed;			    /* a warm ran (else: was ready) */
	struct warm_result w;		    /* when warmed */
};

/*
 * Make pin @spec current: resolve it, record the version (refused with
 * -ENOSPC when it does not fit, the sizes in @err), warm it, mark it
 * ready and release the versions it held before. @source: "cli" or
 * "file:PATH". @fresh: a new pin (a failure records nothing) rather than
 * one being kept current (a failure is recorded as its state).
 * @progress (may be NULL) as for warm_version(). Returns 0 or an error.
 */
int pins_ensure(struct pins *p, const char *spec, const char *source,
		bool fresh, warm_progress_fn progress, void *arg,
		struct pins_report *rep, char *err, size_t errlen);

/*
 * The alias gate of warm_before_flip (catalog_alias_gate_fn; @arg is the
 * struct pins): holds @target back while a pin that resolves to it in @l
 * is not complete, showing the version that pin held before.
 */
int pins_gate(void *arg, const char *name, const struct version_list *l,
	      const char *target, char *keep, size_t len);

struct pins_daemon_opts {
	const char *file; /* -o pins=FILE, or NULL; borrowed */
	int interval_ms;  /* how often pins are checked; 0 -> 1000 */
};

/*
 * Start the mount's pin thread: every interval, re-read @o->file if it
 * changed (added specs pinned and warmed, specs no longer listed
 * unpinned), then keep every pin of this store current (floating pins
 * follow new versions as the catalog's version lists show them). Failed
 * pins are retried after 5 s or when their spec resolves to another
 * version. Returns 0 or -errno.
 */
int pins_daemon_start(struct pins *p, const struct pins_daemon_opts *o);

/*
 * A stats source (stats_add_source()): the gauges
 * assetfs_pin_bytes_present{spec,version}, assetfs_pin_bytes{spec,version}
 * and assetfs_pin_ready{spec} of this store's pins. @ctx is the pins.
 */
int pins_prom(void *ctx, struct buf *out);

/*
 * The mount's pins in one call: make them over @cat, @fe, @cache (all
 * borrowed), register pins_prom() with @stats, set the catalog's alias
 * gate when @warm_before_flip, start the daemon with @file (borrowed, may
 * be NULL). Returns 0 or -errno (*@out NULL).
 */
int pins_mount_start(struct catalog *cat, struct fetcher *fe,
		     struct cache *cache, struct stats *stats, const char *file,
		     bool warm_before_flip, struct pins **out);

/* Undo pins_mount_start(); sets *@p NULL. NULL-safe. */
void pins_mount_stop(struct pins **p, struct stats *stats);

#endif
