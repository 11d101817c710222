/*
 * push - `assetfs push PATH SPEC`: upload a file or a folder as a new,
 * immutable version of an asset (DESIGN §2, §7).
 *
 * Order of writes, so that a reader never sees a version whose data is
 * missing: the data objects, then `<name>/<version>.meta` (with the
 * manifest: SHA-256 of every 4 MiB block and of each file), then, when
 * signing, `<name>/<version>.meta.sig` (the Ed25519 signature of the exact
 * `.meta` bytes, fs/sign.h), then `<name>.versions` last, then
 * `assets.index`. A listed version therefore always has its signature.
 * A failure before `.versions` deletes what was written; the store's
 * visible state is unchanged either way. A version already listed is never overwritten.
 *
 * A new asset may not nest inside another asset nor take the name of a
 * namespace (-EEXIST): in the tree a name is one or the other. Leftovers
 * of an interrupted push of the same (unlisted) version are deleted first.
 *
 * Folders: regular files below PATH, recursively; dotfiles and dot
 * directories are skipped, symlinks to files are followed, symlinks to
 * directories and special files are skipped, empty folders are refused.
 *
 * Threads: one push at a time per struct store is not required, but two
 * pushes of one asset race on `.versions` (object stores have no locks;
 * the last writer wins after a re-read just before writing).
 * Errors: 0 or a negative errno with a one-line message in @err.
 */
#ifndef ASSETFS_FS_PUSH_H
#define ASSETFS_FS_PUSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fs/catalog/sign.h"
#include "fs/catalog/store.h"
#include "resolver/spec.h"

#define PUSH_PROGRESS_MIN (16u << 20) /* show a bar from this many bytes */
#define PUSH_MAX_DEPTH 64

struct push_opts {
	bool bump_major; /* next major instead of next minor */
	bool dry_run;	 /* compute everything, write nothing */
	bool progress;	 /* allow a progress bar on a terminal */
	/* private key to sign the .meta with (borrowed), or NULL */
	const struct sign_key *sign;
};

struct push_result {
	char name[SPEC_NAME_MAX + 1];
	char version[SPEC_VERSION_MAX + 1];
	bool is_directory;
	bool is_signed; /* a .meta.sig was written (or would be, dry run) */
	size_t n_files;
	uint64_t bytes;
	bool index_updated; /* assets.index written (false in a dry run, or
			       if it already listed the asset) */
	char warning[STORE_ERR_MAX]; /* non-fatal problem, "" if none (e.g.
					assets.index could not be updated) */
};

/*
 * Push @path as a new version of the asset named by @spec_text
 * ("name" or "name:version"; a [sub] is refused). Without a version: a new
 * asset gets 0.0 (or, under simple_date, the current time), an existing
 * one the next minor, or with @opts->bump_major the next major. With a
 * version: exactly that, refused with -EEXIST if the asset lists it (or
 * if a new name would nest, see above).
 * @opts may be NULL. Fills @res (may be NULL).
 * Returns 0; -EINVAL (bad spec, version, path or file name, or a sign
 * key that is not private), -ENOENT (no such @path), -EEXIST, -EROFS, or
 * a provider error; message in @err.
 */
int push_asset(struct store *s, const char *path, const char *spec_text,
	       const struct push_opts *opts, struct push_result *res, char *err,
	       size_t errlen);

#endif
