/*
 * catalog - the store's tree as the mount shows it (DESIGN §4), with TTLs:
 * namespace levels, version lists (re-read after versions_ttl; the aliases
 * move with them) and versions (their `.meta`, manifest, file sizes and
 * ETags, kept for the life of the mount: version content never changes).
 *
 * Listing a namespace is one delimited listing, after which the assets'
 * `.versions` are fetched in parallel; listing an asset fetches the
 * `.meta` of a bounded number of its versions in parallel (the rest when
 * they are looked up). Nothing walks a version's data: a folder
 * version's files come from its `.meta` contents and manifest (without a
 * manifest, one listing of the version's prefix gives sizes and ETags).
 *
 * Offline: every document read from the store (levels, .versions, .meta,
 * object sizes/ETags) is also kept in the cache's documents, and when the
 * store cannot be reached the last known copy is served, also after a
 * restart. A request that finds the store unreachable takes it offline
 * (store.h, store_health): requests are then refused at once until a
 * background probe sees the store answer again, so lookups of what is not
 * known fail with EIO at once instead of each waiting a `timeout`.
 *
 * Stale-while-revalidate: a namespace level or version list that is known
 * is answered at once, also after its TTL; the refresh then runs on a
 * background thread and the new list (and the aliases it moves) replaces
 * the old when it lands. Only a name never seen waits for the store.
 *
 * Hostile content: invalid names, malformed or oversized documents and
 * `.meta` contents that escape the version are skipped with one log line
 * each; the rest of the tree stays usable.
 *
 * Threads: every function is safe concurrently; results are refcounted,
 * immutable snapshots (one catalog mutex guards the maps, never held
 * across I/O). Errors: 0 or a negative errno.
 */
#ifndef ASSETFS_FS_CATALOG_H
#define ASSETFS_FS_CATALOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fs/cache/cache.h"
#include "fs/catalog/stats.h"
#include "fs/catalog/store.h"
#include "resolver/meta.h"
#include "resolver/version.h"

struct catalog;

struct catalog_opts {
	int versions_ttl_ms; /* 0 -> 60000 */
	int parallel;	     /* threads for parallel fetches; 0 -> 16 */
};

/* One namespace level: child component names, sorted. */
struct cat_level {
	char **assets; /* last components of the assets below */
	size_t n_assets;
	char **namespaces; /* last components of the sub-namespaces */
	size_t n_namespaces;
	/* private */
	atomic_int refs;
};

/* An asset's version list and its aliases. */
struct cat_versions {
	struct version_list list; /* newest first */
	char **alias_names;	  /* "latest", then "N.latest" by major,
				     newest first */
	char **alias_targets;	  /* the version each alias names */
	size_t *alias_index;	  /* its index in list */
	size_t n_aliases;
	bool offline; /* served from the last known copy */
	/* private */
	uint64_t doc_hash; /* xxh3 of the document, to skip rewriting it */
	int64_t fetched_ms;
	atomic_int refs;
};

/* A file or dir inside a version. Node 0 is the version itself. */
struct cat_node {
	char *relpath;	  /* "" for node 0 */
	const char *comp; /* last component (into relpath) */
	bool is_dir;
	uint64_t size;
	char *etag;			 /* owned, NULL with a manifest */
	const struct manifest_file *mf;	 /* NULL without a manifest */
	uint32_t parent;		 /* node index */
	uint32_t first_child;		 /* 0 = none */
	uint32_t next_sibling;		 /* 0 = none */
	/* private */
	uint32_t last_child; /* 0 = none */
};

struct cat_version {
	char *name;
	char *version;
	struct meta meta;
	struct cat_node *nodes;
	size_t n_nodes;
	uint32_t block_size; /* the manifest's, else the TOFU block size */
	/* private */
	uint32_t *by_path; /* node indexes sorted by relpath */
	atomic_int refs;
};

#define CAT_TOFU_BLOCK_SIZE (4u << 20)

/*
 * Make a catalog over @st (borrowed). @cache (borrowed, may be NULL: no
 * offline copies) and @stats (borrowed, may be NULL). If @st has a verify
 * key (store_verify_key()), the catalog loads it too and checks the
 * signature of every `.meta` it serves, also of offline copies (see
 * catalog_version()). Returns 0, -ENOMEM, or the error of loading the key
 * (logged).
 */
int catalog_new(struct store *st, struct cache *cache, struct stats *stats,
		const struct catalog_opts *opts, struct catalog **out);
void catalog_free(struct catalog *c); /* NULL-safe */

/*
 * The level at namespace @ns ("" for the root). Past the TTL, the known
 * level is returned and re-listed in the background; a level never listed
 * is listed now, and its assets' version lists fetched in parallel.
 * Returns 0 with a reference in *@out, or an error (a store failure with
 * no last known copy).
 */
int catalog_level(struct catalog *c, const char *ns, struct cat_level **out);
void cat_level_unref(struct cat_level *l); /* NULL-safe */

/*
 * The version list of asset @name. Past the TTL, the known list (or the
 * known "no such asset" or "malformed") is returned and re-read in the
 * background (the next call after it lands sees the new list and
 * aliases); only a name never seen is read now. Returns 0 with a reference, -ENOENT
 * if there is no such asset (or @name is not a valid name), -EINVAL for a
 * malformed `.versions` (logged), or a store error with no last known
 * copy.
 */
int catalog_versions(struct catalog *c, const char *name,
		     struct cat_versions **out);
void cat_versions_unref(struct cat_versions *v); /* NULL-safe */

/*
 * Is @name a namespace (a non-empty level)? Returns 1, 0, or an error.
 * On a store that cannot list, whose namespaces are known only from a
 * possibly missing or stale assets.index, every valid name is one (1):
 * the caller asks after finding @name is not an asset, and an asset
 * below it must be found by name.
 */
int catalog_is_namespace(struct catalog *c, const char *name);

/*
 * Version @version of @name: its .meta and files. Returns 0 with a
 * reference, -ENOENT, -EINVAL (hostile .meta, logged), or an error.
 * With a verify key: -EBADMSG (logged once per versions_ttl, naming the
 * version) when the `.meta` has no signature that verifies with the key,
 * online or, offline, when the kept copy's kept signature does not verify
 * (or none is kept); a refused version is never served from a cache, and
 * -EBADMSG is not an "unreachable" error (catalog_err_unreachable()).
 */
int catalog_version(struct catalog *c, const char *name, const char *version,
		    struct cat_version **out);
void cat_version_unref(struct cat_version *v); /* NULL-safe */

/* The most `.meta` documents one listing of an asset dir fetches. */
#define CATALOG_LIST_AHEAD 64

/*
 * Fetch in parallel the `.meta` of up to CATALOG_LIST_AHEAD versions of
 * @v not known yet: the aliases' targets first, then the newest. A
 * listing shows their types at once; the others are listed without a
 * type (their `.meta` is fetched when they are looked up), so a list of
 * 100,000 versions costs a bounded number of requests, not 100,000.
 * Errors are logged per version; returns 0 or -ENOMEM.
 */
int catalog_prefetch_versions(struct catalog *c, const char *name,
			      const struct cat_versions *v);

/*
 * Version @version of @name if it is known without asking the store:
 * 0 with a reference, the error remembered for it (within its TTL), or
 * -EAGAIN if it has not been fetched.
 */
int catalog_version_peek(struct catalog *c, const char *name,
			 const char *version, struct cat_version **out);

/* The node at @relpath in @v, or -ENOENT. Returns the index. */
int cat_version_find(const struct cat_version *v, const char *relpath);

/*
 * The target of alias @alias, or NULL if @v has no such alias. O(log n)
 * (cat_versions_alias_find(): its index in alias_names, or -ENOENT).
 */
const char *cat_versions_alias(const struct cat_versions *v,
			       const char *alias);
int cat_versions_alias_find(const struct cat_versions *v, const char *alias);

/*
 * Whether @v lists @version; cat_versions_find(): its index in list, or
 * -ENOENT. O(log n).
 */
bool cat_versions_has(const struct cat_versions *v, const char *version);
int cat_versions_find(const struct cat_versions *v, const char *version);

/*
 * Whether @err (negative errno from a catalog call) says the store could
 * not be reached (rather than "no such thing" or "malformed"), so a last
 * known copy may stand in for the answer.
 */
bool catalog_err_unreachable(int err);

/*
 * warm_before_flip (docs/cache.md): after a version list is read, the
 * catalog asks @gate whether alias target @target of asset @name (in the
 * new list @l) may be shown. The gate returns 1 with a version of @l in
 * @keep (@len bytes) to show instead for now, or 0 to let the alias move.
 * A held alias is asked again within a second, not after versions_ttl.
 * Called from any thread that reads a version list, with no catalog lock
 * held; @arg is borrowed. Set it before the catalog is shared.
 */
typedef int (*catalog_alias_gate_fn)(void *arg, const char *name,
				     const struct version_list *l,
				     const char *target, char *keep,
				     size_t len);
void catalog_set_alias_gate(struct catalog *c, catalog_alias_gate_fn gate,
			    void *arg);

/* The versions TTL in milliseconds. */
int catalog_ttl_ms(const struct catalog *c);

/* The store (borrowed). */
struct store *catalog_store(const struct catalog *c);

#endif
