/*
 * store - the modelkit store layout (DESIGN §2) over a provider: object
 * keys, version lists, `.meta` documents, namespace listings, the asset
 * index and spec resolution. Used by the CLI and by the mount's catalog.
 *
 * Layout, keys relative to the store's prefix:
 *   <name>.versions            {"versions": [...]}  (the only mutable object)
 *   <name>/<version>           a file asset's bytes
 *   <name>/<version>/<relpath> each file of a folder asset
 *   <name>/<version>.meta      push_date, is_directory, contents, manifest
 *   assets.index               {"assets": [...]}
 *
 * Every read goes through providers/provider.h: nothing here assumes the
 * store is a local directory. Documents from the store are hostile and are
 * read with the resolver's caps (VERSIONS_MAX_BYTES, META_MAX_BYTES,
 * ASSETS_INDEX_MAX_BYTES).
 *
 * Threads: a struct store is immutable after store_open() and may be used
 * from many threads at once (the provider is thread-safe); the result
 * structs have one owner.
 *
 * Errors: 0 or a negative errno, with a one-line message in @err (a buffer
 * of STORE_ERR_MAX bytes is enough) naming what was wrong:
 *   -ENOENT     no such asset / version / file ("no such asset 'fraud/x'")
 *   -EINVAL     a bad spec, name or document from the store
 *   -ENOTDIR    a [sub] path given for a file asset
 *   -EISDIR     a folder version where a file was expected
 *   -EBADMSG    a `.meta` whose signature is missing or does not verify
 *               with the store's verify key (see struct store_opts)
 *   other       the provider's errors (-EIO, -ETIMEDOUT, -EACCES, ...)
 */
#ifndef ASSETFS_FS_STORE_H
#define ASSETFS_FS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "providers/provider.h"
#include "resolver/assets_index.h"
#include "resolver/meta.h"
#include "resolver/spec.h"
#include "resolver/version.h"

#define STORE_ERR_MAX 1024
#define STORE_KEY_MAX (SPEC_NAME_MAX + SPEC_VERSION_MAX + SPEC_PATH_MAX + 16)
#define STORE_INDEX_KEY "assets.index"
#define STORE_VERSIONS_SUFFIX ".versions"
#define STORE_META_SUFFIX ".meta"
#define STORE_SIG_SUFFIX ".meta.sig"

struct store;

struct store_opts {
	const struct prov_opts *prov; /* NULL for defaults; borrowed */
	/* "auto", "major_minor", "simple_date"; NULL: from
	   MODELKIT_ASSETS_VERSIONING_SYSTEM (unset -> auto) */
	const char *versioning;
	/* path of an Ed25519 public key (PEM, see fs/sign.h), or NULL:
	   with a key, store_get_meta() verifies every `.meta` against its
	   `.meta.sig` and refuses a version without a good signature */
	const char *verify_key;
};

/*
 * Store health: whether the store answers (store_health.c). A request
 * that fails in a way that says the store cannot be reached
 * (store_err_unreachable(): refused or reset connections, DNS failures,
 * no answer within `timeout` through the provider's retries) takes the
 * store `offline`: store_health_gate() then refuses requests at once with
 * -EIO, and a background probe with backoff (250 ms up to 4 s) brings it
 * back `online` when the store answers. Transitions are logged once each
 * and set the stats gauges store_offline and store_state_since.
 */
enum store_avail {
	STORE_ONLINE = 0,
	STORE_OFFLINE,
};

struct store_health;
struct stats;

/* The health of @s (owned by @s; valid until store_close()). */
struct store_health *store_health(struct store *s);

/* 0 if a request may go to the store, -EIO while it is offline. */
int store_health_gate(struct store_health *h);

/*
 * After a request for @what failed with @err (@reason: the provider's
 * message, may be NULL): if @err says the store is unreachable, go
 * offline (logged) and start the probe. Other errors (an answer such as
 * "no such object") change nothing.
 */
void store_health_report(struct store_health *h, int err, const char *what,
			 const char *reason);

/* After a request the store answered: back online if it was offline. */
void store_health_report_ok(struct store_health *h);

/* The state, and since when (Unix seconds) in *@since_s if not NULL. */
enum store_avail store_health_state(struct store_health *h, int64_t *since_s);

/* Keep the gauges of @st (borrowed, may be NULL) up to date. */
void store_health_set_stats(struct store_health *h, struct stats *st);

/* Whether @err (a negative errno) says the store could not be reached. */
bool store_err_unreachable(int err);

/*
 * Open the store at @url (a URL as prov_open() takes; see
 * prov_store_url() for the --store / environment precedence). @opts may be
 * NULL. Returns 0, -EINVAL (bad URL or versioning system, or a verify key
 * that is not an Ed25519 public key), -ENOMEM, the errno of reading the
 * verify key (-ENOENT, -EACCES) or a provider error; message in @err.
 * Opening does not touch the store, so a store that is unreachable fails
 * at the first read, not here.
 */
int store_open(const char *url, const struct store_opts *opts,
	       struct store **out, char *err, size_t errlen);

/*
 * Wrap an already open provider. Consumes @prov on every path (closed on
 * failure). @versioning as in struct store_opts. Returns 0, -EINVAL or
 * -ENOMEM.
 */
int store_from_prov(struct prov *prov, const char *versioning,
		    struct store **out, char *err, size_t errlen);

/* Close the provider and free; sets *@s to NULL. NULL-safe. */
void store_close(struct store **s);

/* The provider (borrowed; lives as long as the store). */
struct prov *store_prov(const struct store *s);

/* The configured versioning system (VERSIONING_AUTO: detect per asset). */
enum versioning store_versioning(const struct store *s);

/* The verify key's path (borrowed), or NULL if the store does not verify. */
const char *store_verify_key(const struct store *s);

/*
 * Object keys. @name must be a valid name, @version non-empty; @relpath
 * NULL or "" names the file asset object itself. Return the length, or
 * -ENAMETOOLONG if @len is too small.
 */
int store_key_versions(const char *name, char *buf, size_t len);
int store_key_meta(const char *name, const char *version, char *buf,
		   size_t len);
int store_key_sig(const char *name, const char *version, char *buf,
		  size_t len);
int store_key_file(const char *name, const char *version, const char *relpath,
		   char *buf, size_t len);

/*
 * "<store url>/<key>" for messages and `assetfs resolve`. Returns the
 * length or -ENAMETOOLONG.
 */
int store_object_url(const struct store *s, const char *key, char *buf,
		     size_t len);

/*
 * Fetch and parse `<name>.versions` with the store's versioning system.
 * @raw, if non-NULL, receives the document's bytes (appended; the read is
 * capped at VERSIONS_MAX_BYTES whatever @raw's own cap), @etag, if
 * non-NULL, an owned copy of the ETag (or NULL). Invalid entries
 * are dropped (counted in out->n_invalid). Returns 0; -ENOENT "no such
 * asset 'NAME'"; -EINVAL for a malformed document; -EFBIG; a provider
 * error. On error @out is empty, *@etag NULL and @raw unchanged.
 */
int store_get_versions(struct store *s, const char *name,
		       struct version_list *out, struct buf *raw, char **etag,
		       char *err, size_t errlen);

/*
 * Parse a `.versions` document held elsewhere (the mount's offline copy)
 * exactly as store_get_versions() would. Same returns, minus I/O errors.
 */
int store_parse_versions(const struct store *s, const char *json, size_t len,
			 struct version_list *out, char *err, size_t errlen);

/*
 * Fetch and parse `<name>/<version>.meta`. @raw and @etag as for
 * store_get_versions(). When the store has a verify key, also fetch
 * `<name>/<version>.meta.sig` and check it against the exact bytes
 * fetched, before parsing: a missing, malformed or wrong signature is
 * -EBADMSG with "NAME:VERSION: .meta signature does not verify with KEY"
 * (or "... has no signature ..."), and @raw is left unchanged.
 * Returns 0; -ENOENT "no .meta for 'NAME:VERSION'"; -EBADMSG;
 * -EINVAL (malformed, message from meta_parse naming the key); -EFBIG; a
 * provider error. On error @out is empty.
 */
int store_get_meta(struct store *s, const char *name, const char *version,
		   struct meta *out, struct buf *raw, char **etag, char *err,
		   size_t errlen);

/* One namespace level: what `ls` of a directory of the tree shows. */
struct store_level {
	char **assets; /* owned full names ("fraud/xgb"), sorted */
	size_t n_assets;
	char **namespaces; /* owned full names ("fraud/team"), sorted; a
			      prefix that is also an asset is not listed */
	size_t n_namespaces;
	size_t n_skipped; /* entries skipped as invalid names */
};

/*
 * One delimited listing of @ns ("" for the root, else a valid name such as
 * "fraud"): the assets directly below it (recognised by their
 * `<name>.versions` object) and the sub-namespaces (common prefixes that
 * are not assets' data prefixes). Returns 0 (empty lists for an unknown
 * namespace), -ENOTSUP when the provider cannot list (use
 * store_list_assets() then), -EINVAL for a bad @ns, or a provider error.
 */
int store_list_level(struct store *s, const char *ns, struct store_level *out,
		     char *err, size_t errlen);
void store_level_clear(struct store_level *l); /* NULL-safe, reusable */

/*
 * Every asset name in the store: a full (undelimited) listing keeping the
 * `.versions` objects, or `assets.index` when the provider cannot list (a
 * missing index is then an empty result). Returns 0 or an error; on error
 * @out is empty. Free with assets_index_clear().
 */
int store_list_assets(struct store *s, struct assets_index *out, char *err,
		      size_t errlen);

/*
 * Read `assets.index`. Returns 0, -ENOENT if the store has none, -EINVAL
 * for a malformed one, or a provider error.
 */
int store_read_index(struct store *s, struct assets_index *out, char *err,
		     size_t errlen);

/* Write `assets.index` atomically. Returns 0, -EROFS or an error. */
int store_write_index(struct store *s, const struct assets_index *ix, char *err,
		      size_t errlen);

/* A spec resolved against the store. */
struct store_resolved {
	char *name;		 /* owned */
	char *version;		 /* owned, complete */
	char *sub;		 /* owned normalised relpath, or NULL */
	struct meta meta;	 /* the version's parsed .meta */
	char key[STORE_KEY_MAX]; /* the object key: the file asset, the
				    [sub] file, or for a folder version
				    without [sub] "<name>/<version>" */
};

/*
 * Resolve @spec: fetch the version list, pick the version (newest, exact,
 * or newest of a major), fetch its `.meta`, and check a [sub] path:
 * -ENOTDIR for a file asset, -ENOENT if the folder does not contain it.
 * Returns 0 or an error (-ENOENT no such asset / version / file, -EINVAL
 * a malformed version for the system, provider errors); message in @err.
 * On error @out is empty. Free with store_resolved_clear().
 */
int store_resolve(struct store *s, const struct spec *spec,
		  struct store_resolved *out, char *err, size_t errlen);
void store_resolved_clear(struct store_resolved *r); /* NULL-safe */

#endif
