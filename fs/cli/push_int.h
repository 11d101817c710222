/*
 * push_int - what the files of the push command share (see push.h).
 *
 * A push is three files along its phases: push_plan.c walks PATH and
 * checks where the new version may go, push_hash.c builds the .meta and
 * its manifest (SHA-256 of every block and file), push.c runs the
 * upload/commit sequence (data, .meta, .meta.sig, .versions, index) and
 * deletes what it wrote when a step fails. One struct push_ctx carries a
 * push through all three; it belongs to the thread running push_asset().
 * Errors: 0 or a negative errno; push_fail() puts the message in ctx->err.
 */
#ifndef ASSETFS_FS_CLI_PUSH_INT_H
#define ASSETFS_FS_CLI_PUSH_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/progress.h"
#include "fs/cli/push.h"
#include "resolver/meta.h"
#include "resolver/version.h"

struct stat;

struct push_file {
	char *rel;  /* relpath in the asset, "" for a file asset */
	char *path; /* local path */
	uint64_t size;
	struct timespec mtime;
};

struct push_ctx {
	struct store *s;
	struct push_file *files;
	size_t n_files, cap_files;
	uint64_t total;
	char **written; /* keys written so far (for cleanup) */
	size_t n_written, cap_written;
	struct progress prog;
	uint64_t base; /* bytes of the files already uploaded */
	char *err;
	size_t errlen;
};

/* Format the message of a failure into @c->err; returns @ret. */
int push_fail(struct push_ctx *c, int ret, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The provider's message of the last failure, else strerror(-@ret). */
const char *push_reason(int ret);

/* Add the regular file @path (stat @st) as relpath @rel of the asset. */
int push_add_file(struct push_ctx *c, const char *rel, const char *path,
		  const struct stat *st);

/*
 * Collect the files of folder @dir (relpaths "@rel<name>") into @c,
 * sorted by relpath. Returns 0 or a negative errno (message set).
 */
int push_collect(struct push_ctx *c, const char *dir);

/*
 * The version list of @name as it is now (empty if the asset is new),
 * under the store's system or, for a new asset with an explicit @want,
 * the system @want belongs to. @vl is filled (owned by the caller).
 */
int push_read_versions(struct push_ctx *c, const char *name,
		       const char *want, struct version_list *vl,
		       bool *is_new);

/* A new asset @name may neither nest in an asset nor be a namespace. */
int push_check_placement(struct push_ctx *c, const char *name);

/* Delete the leftovers of an interrupted push of unlisted @version. */
int push_clear_leftovers(struct push_ctx *c, const char *name,
			 const char *version);

/* Whether @vl lists @v. */
bool push_listed(const struct version_list *vl, const char *v);

/*
 * Build the .meta of the new version into @m: push_date now, contents for
 * a folder, and the manifest (hashing every file of @c, progress shown in
 * @c->prog). On failure @m is cleared. Returns 0 or a negative errno.
 */
int push_build_meta(struct push_ctx *c, bool is_dir, struct meta *m);

#endif
