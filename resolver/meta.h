/*
 * meta - the `.meta` document of a version and the assetfs manifest inside
 * it (DESIGN §2).
 *
 *   {"push_date": "...", "is_directory": bool, "contents": [...],
 *    "assetfs": {"format": 1, "block_size": N,
 *                "files": [{"path", "size", "sha256", "blocks": [...]}]}}
 *
 * Everything here comes from the store and is hostile: sizes are capped,
 * contents paths are validated with spec_check_relpath() after removing
 * one leading '/' (duplicates are merged; a path that is both a file and a
 * directory, "a" and "a/b", is an error), and a manifest must agree with
 * itself (block counts, sizes, paths that match contents). Unknown keys
 * are ignored.
 *
 * Details: a file asset (is_directory false) never has contents, whatever
 * the document says. "assetfs": null is no manifest; a manifest "format"
 * above MANIFEST_FORMAT is ignored (read as a version without one), so a
 * newer writer does not make old readers fail. Manifest paths may also
 * start with one '/'. Sizes are integers up to 2^53. A one-block file's
 * sha256 must equal its block's, an empty file's the SHA-256 of nothing.
 *
 * Pure functions, no I/O, thread-safe. Errors: 0 or a negative errno with a
 * message in @err.
 */
#ifndef ASSETFS_RESOLVER_META_H
#define ASSETFS_RESOLVER_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/digest.h"

#define META_MAX_BYTES (8u << 20)   /* a larger .meta is refused unread */
#define META_MAX_FILES 1000000      /* entries in contents / manifest */
#define MANIFEST_FORMAT 1
#define MANIFEST_BLOCK_SIZE (4u << 20) /* what assetfs push writes */
#define MANIFEST_BLOCK_MIN (64u << 10)
#define MANIFEST_BLOCK_MAX (64u << 20)

struct manifest_file {
	char *path;	       /* "" for a file asset */
	uint64_t size;
	struct digest sha256;  /* of the whole file */
	struct digest *blocks; /* ceil(size / block_size) entries */
	size_t n_blocks;
};

struct manifest {
	int format;
	uint32_t block_size; /* power of two within the MIN..MAX bounds */
	struct manifest_file *files; /* sorted by path */
	size_t n_files;
};

struct meta {
	int64_t push_date; /* UTC seconds since the epoch */
	int32_t push_date_nsec;
	bool is_directory;
	char **contents; /* normalised relpaths, sorted; folder assets only */
	size_t n_contents;
	struct manifest *manifest; /* NULL when the document has none */
};

/*
 * Parse a `.meta` document of @len bytes. Returns 0; -EFBIG over
 * META_MAX_BYTES; -EINVAL for malformed JSON, missing or wrong-typed
 * push_date / is_directory / contents, a bad contents path or a manifest
 * that does not agree with itself or with contents (message in @err);
 * -ENOMEM. On error @out is left empty.
 */
int meta_parse(const char *json, size_t len, struct meta *out, char *err,
	       size_t errlen);

/* Free everything; @m may be reused. NULL-safe. */
void meta_clear(struct meta *m);

/* The manifest entry for @path ("" for a file asset), or NULL. */
const struct manifest_file *manifest_find(const struct manifest *m,
					  const char *path);

/* Number of blocks of a file of @size bytes. */
uint64_t manifest_block_count(uint64_t size, uint32_t block_size);

/*
 * Serialise @m as a `.meta` document (push_date in ISO-8601 UTC with
 * microseconds; contents and the manifest when present) into @out.
 * Returns 0, -EINVAL for a push_date outside the years 0000..9999, -EFBIG
 * past @out's cap, or -ENOMEM.
 */
int meta_format(const struct meta *m, struct buf *out);

#endif
