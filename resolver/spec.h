/*
 * spec - asset specs "name[:version][[sub/path]]" and the name and relative
 * path rules (DESIGN §3).
 *
 * A name is segments of [A-Za-z0-9._-], each starting and ending with an
 * alphanumeric, joined by single '/', at most SPEC_NAME_MAX bytes: it is a
 * path in the mount, so it can never be "." or ".." or escape the tree.
 * A sub path is relative: non-empty segments, none "." or "..", no leading
 * or trailing '/', no NUL and no other control character (bytes below 0x20
 * and 0x7f), at most SPEC_PATH_MAX bytes. Any other byte is allowed.
 *
 * Pure functions, no I/O, thread-safe. Errors: 0 or -EINVAL (with a message
 * naming the bad part in @err, e.g. "invalid asset name 'a//b': empty
 * segment") or -ENOMEM.
 */
#ifndef ASSETFS_RESOLVER_SPEC_H
#define ASSETFS_RESOLVER_SPEC_H

#include <stddef.h>

#define SPEC_NAME_MAX 1024
#define SPEC_VERSION_MAX 64
#define SPEC_PATH_MAX 4096
#define SPEC_ERR_MAX 256 /* a good size for the @err buffers below */

struct spec {
	char *name;    /* owned; always set after a successful parse */
	char *version; /* owned; NULL when the spec names no version */
	char *sub;     /* owned; NULL when the spec has no [sub/path] */
};

/*
 * Parse @text into @out (which the caller zeroes or spec_clear()s). The
 * version, if present, must be non-empty and made of [A-Za-z0-9._-]; whether
 * it is valid for a versioning system is decided at resolution time.
 * On error @out is left empty.
 */
int spec_parse(const char *text, struct spec *out, char *err, size_t errlen);

/* Free the fields; @s may be reused. NULL-safe. */
void spec_clear(struct spec *s);

/* Check an asset name (see above). Returns 0 or -EINVAL with @err set. */
int spec_check_name(const char *name, char *err, size_t errlen);

/* Check a relative path inside an asset. Returns 0 or -EINVAL with @err. */
int spec_check_relpath(const char *path, char *err, size_t errlen);

/*
 * Format "name[:version][[sub]]" into @buf. Returns the length, or -ENOSPC
 * if it does not fit (then @buf holds a truncated string).
 */
int spec_format(const struct spec *s, char *buf, size_t len);

#endif
